"""Helpers shared by the serving tests: a sample row and a real server subprocess."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}

#: A Gentoo penguin (every serving test's penguins model predicts it).
PENGUIN_ROW = {
    "island": "Biscoe",
    "bill_length_mm": 47.5,
    "bill_depth_mm": 14.2,
    "flipper_length_mm": 215.0,
    "body_mass_g": 5000.0,
    "sex": "male",
    "year": 2008,
}


def free_port() -> int:
    """Return a port the kernel says is free on 127.0.0.1 (port 0 trick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LiveServer:
    """A `mlcontainer serve` subprocess and where to reach it."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)


def wait_ready(server: LiveServer, timeout: float = 90) -> None:
    """Poll /ready until 200; fail with the server's log if it dies or never gets there."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server exited with {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url + "/ready", timeout=2) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    server.stop()
    pytest.fail(f"server not ready after {timeout}s:\n{server.log()}")


def wait_workers_ready(server: LiveServer, workers: int, timeout: float = 90) -> set[int]:
    """Wait until ``workers`` workers have logged their model loaded (JSON logs); their pids."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = {
            int(r["pid"])
            for r in map(json.loads, filter(None, server.log().splitlines()))
            if r.get("logger") == "mlcontainer.serving.loading"
            and str(r.get("message", "")).startswith("model loaded")
        }
        if len(ready) >= workers:
            return ready
        if server.process.poll() is not None:
            pytest.fail(f"server exited with {server.process.returncode}:\n{server.log()}")
        time.sleep(0.2)
    pytest.fail(f"fewer than {workers} workers ready after {timeout}s:\n{server.log()}")
