"""Raw-socket helpers for the hostile-client tests: framings, half-closes, slow clients."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Answer:
    """What a raw request got: the status (0: none), headers, body, and whether it was reset."""

    status: int
    headers: dict[str, str]
    body: bytes
    reset: bool = False

    def json(self) -> Any:
        return json.loads(self.body)


def head(method: str, path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunked(body: bytes, size: int = 65536) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(body[i : i + size]), body[i : i + size])
             for i in range(0, len(body), size)]  # fmt: skip
    return b"".join(parts) + b"0\r\n\r\n"


def send(port: int, data: bytes, *, half_close: bool = False, timeout: float = 30) -> Answer:
    """Send raw bytes on a new connection; read the first answer until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before reading everything: read its answer
        received = bytearray()
        reset = False
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except ConnectionResetError:
            reset = True
    return parse(bytes(received), reset=reset)


def parse(raw: bytes, *, reset: bool = False) -> Answer:
    """Parse the first HTTP/1.1 response in ``raw`` (Content-Length framed)."""
    end = raw.find(b"\r\n\r\n")
    if end < 0:
        return Answer(0, {}, raw, reset)
    lines = raw[:end].decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:])}
    size = int(headers.get("content-length", len(raw) - end - 4))
    return Answer(status, headers, raw[end + 4 : end + 4 + size], reset)


def post(port: int, path: str, body: bytes, content_type: str = "application/json",
         **headers: str) -> Answer:  # fmt: skip
    """POST ``body`` with its Content-Length."""
    given = {"Content-Type": content_type, "Content-Length": str(len(body)), **headers}
    return send(port, head("POST", path, given) + body)


def worker_pids(server_pid: int) -> list[int]:
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [int(c) for c in children]


def memory_kib(pid: int, field: str) -> int:
    """VmRSS (now) or VmHWM (peak) of a process, in KiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(rf"^{field}:\s+(\d+) kB", status, re.M)
    assert match, status
    return int(match.group(1))


@contextlib.contextmanager
def slow_clients(port: int, count: int, *, every: float = 1.0) -> Iterator[None]:
    """Hold ``count`` connections that send a request head one header line per ``every``
    seconds and never finish it (slowloris)."""
    socks = []
    for _ in range(count):
        sock = socket.socket()
        sock.settimeout(5)
        sock.connect(("127.0.0.1", port))
        sock.setblocking(False)
        socks.append(sock)
    stop = threading.Event()

    def drip() -> None:
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.send(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        while not stop.wait(every):
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.send(b"X-Slow: 1\r\n")

    dripper = threading.Thread(target=drip, daemon=True)
    dripper.start()
    try:
        yield
    finally:
        stop.set()
        dripper.join(timeout=10)
        for sock in socks:
            sock.close()


def timed_get(url: str, timeout: float) -> float:
    """Seconds a GET took (``timeout`` if it failed or timed out)."""
    import urllib.request

    started = time.perf_counter()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            r.read()
    except OSError:
        return timeout
    return time.perf_counter() - started
