"""Hostile-conditions benchmark: latency, throughput, shutdown and slow clients (issue 14).

For one model folder and one source tree (``--src``: this checkout's ``src`` by default, or
an older tree exported with ``git archive REV src | tar -x -C DIR``), each round measures
with `mlcontainer serve` on 127.0.0.1 (ports 18700-18799):

* single-row ``/predict`` p50 at 1 connection and throughput at 8 connections (`wrk`,
  keep-alive, ``--duration`` seconds each);
* idle shutdown: ready server, SIGTERM, seconds until the process has exited (and its code);
* loaded shutdown: 16 clients posting one row per new connection; SIGTERM after 1 s; seconds
  to exit, and what every request got: 200, 503, reset (accepted, then cut off) or refused
  (never accepted);
* slow clients: 200 connections that send a request head one header line per second for
  ``--slow-seconds``; meanwhile a normal client asks ``/health`` every 0.2 s (2 s timeout):
  p50/p99 and how many timed out.

Rounds are repeated ``--repeats`` times and medians reported. Results go to
bench/results/hostile-<time>.json and stdout.

Usage:
    uv run python bench/hostile_bench.py --model artifacts
    git archive 4e84cb2 src | tar -x -C /tmp/before
    uv run python bench/hostile_bench.py --model artifacts --src /tmp/before/src --label before
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PORTS = iter(range(18700, 18800))


def start(model: Path, src: Path, *options: str) -> tuple[subprocess.Popen[bytes], int]:
    port = next(PORTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCONTAINER_")}
    env.update({"PYTHONPATH": str(src), "PORT": str(port)})
    process = subprocess.Popen(
        [sys.executable, "-m", "mlcontainer", "serve", "--model", str(model), *options],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=2) as r:
                if r.status == 200:
                    return process, port
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("server not ready")


def stop(process: subprocess.Popen[bytes]) -> tuple[float, int]:
    started = time.perf_counter()
    process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    return time.perf_counter() - started, code


def row(model: Path) -> dict[str, Any]:
    schema = json.loads((model / "model.json").read_text())["schema"]
    return {
        f["name"]: (f.get("categories") or ["x"])[0] if f["type"] == "categorical" else 1.0
        for f in schema["features"]
    }


def wrk(url: str, body: str, *, connections: int, seconds: int) -> dict[str, float]:
    script = 'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
    script += f"wrk.body = [==[{body}]==]\n"
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(script)
    try:
        out = subprocess.run(
            ["wrk", f"-t{min(connections, 2)}", f"-c{connections}", f"-d{seconds}s",
             "--latency", "-s", fh.name, url],
            capture_output=True, text=True, check=True, timeout=seconds + 60,
        ).stdout  # fmt: skip
    finally:
        Path(fh.name).unlink()
    m = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    units = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "p50 ms": float(m.group(1)) * units[m.group(2)] if m else float("nan"),
        "req/s": float(rps.group(1)) if rps else 0.0,
    }


def post_once(port: int, body: bytes) -> str:
    """One POST on a new connection: 200, 503, reset (accepted then cut off) or refused."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.connect()
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "refused"
    try:
        conn.request("POST", "/predict", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        return str(response.status)
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        return "reset"
    except OSError as exc:
        return f"error {type(exc).__name__}"
    finally:
        conn.close()


def loaded_shutdown(model: Path, src: Path, clients: int = 16) -> dict[str, Any]:
    process, port = start(model, src)
    body = json.dumps({"instances": [row(model)] * 200}).encode()
    outcomes: dict[str, int] = {}
    lock = threading.Lock()
    stopping = threading.Event()

    def client() -> None:
        while not stopping.is_set():
            outcome = post_once(port, body)
            with lock:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome == "refused":
                return

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    seconds, code = stop(process)
    stopping.set()
    for t in threads:
        t.join(timeout=60)
    return {"seconds": seconds, "exit": code, "outcomes": outcomes}


def slow_clients(
    model: Path, src: Path, *options: str, n: int = 200, seconds: float = 20
) -> dict[str, float]:
    process, port = start(model, src, *options)
    sel = selectors.DefaultSelector()
    socks = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    sel_stop = threading.Event()

    def drip() -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.send(b"POST /predict HTTP/1.1\r\nHost: x\r\n")
        while not sel_stop.wait(1.0):
            for s in socks:
                with contextlib.suppress(OSError):
                    s.send(b"X-Slow: 1\r\n")

    dripper = threading.Thread(target=drip)
    dripper.start()
    times: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds
    time.sleep(1.0)
    while time.monotonic() < deadline:
        begun = time.perf_counter()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                r.read()
            times.append(time.perf_counter() - begun)
        except OSError:
            failures += 1
            times.append(2.0)
        time.sleep(0.2)
    sel_stop.set()
    dripper.join()
    for s in socks:
        s.close()
    sel.close()
    stop(process)
    times.sort()
    return {
        "probes": len(times),
        "timed out": failures,
        "p50 s": statistics.median(times),
        "p99 s": times[max(0, int(len(times) * 0.99) - 1)],
    }


def one_round(model: Path, src: Path, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    process, port = start(model, src)
    body = json.dumps({"instances": [row(model)]})
    url = f"http://127.0.0.1:{port}/predict"
    out["1 row c1"] = wrk(url, body, connections=1, seconds=args.duration)
    out["1 row c8"] = wrk(url, body, connections=8, seconds=args.duration)
    seconds, code = stop(process)
    out["idle shutdown after load"] = {"seconds": seconds, "exit": code}
    process, _ = start(model, src)
    time.sleep(1)
    seconds, code = stop(process)
    out["idle shutdown"] = {"seconds": seconds, "exit": code}
    out["loaded shutdown"] = loaded_shutdown(model, src)
    out["slow clients"] = slow_clients(model, src, seconds=args.slow_seconds)
    out["slow clients --threads 4"] = slow_clients(
        model, src, "--threads", "4", seconds=args.slow_seconds
    )
    return out


def median_of(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    def med(values: list[Any]) -> Any:
        if isinstance(values[0], dict):
            keys = {k for v in values for k in v}
            return {k: med([v.get(k, 0) for v in values]) for k in sorted(keys)}
        return statistics.median(values)

    return med(rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--src", type=Path, default=ROOT / "src")
    parser.add_argument("--label", default="after")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--slow-seconds", type=float, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    began = datetime.now(UTC)
    load = [os.getloadavg()]
    rounds = []
    for i in range(args.repeats):
        rounds.append(one_round(args.model.resolve(), args.src.resolve(), args))
        load.append(os.getloadavg())
        print(f"round {i + 1}: {json.dumps(rounds[-1])}", file=sys.stderr)
    result = {
        "label": args.label,
        "src": str(args.src),
        "model": str(args.model),
        "started": began.isoformat(timespec="seconds"),
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "load averages (1, 5, 15 min) before each round and at the end": load,
        "median": median_of(rounds),
        "rounds": rounds,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"hostile-{args.label}-{began:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result["median"], indent=2))
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
