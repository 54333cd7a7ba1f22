"""How fast `mlcontainer serve` starts: when its port is bound, what `/ready` answers while the
model loads (503 at once, or nothing), and when it answers 200; scikit-learn and ONNX.

    uv run python bench/start_bench.py                     # every shared dataset, both runtimes
    uv run python bench/start_bench.py --repeat 5 --only adult.csv
    uv run python bench/start_bench.py --busy              # two busy loops beside each start

Model folders are trained first, by the interpreter running this script (so another checkout's
venv measures that checkout): gradient boosting and a random forest on each shared dataset.
Each start is a fresh `python -m mlcontainer serve` process with the defaults (one worker);
/ready is polled every 50 ms with a 2 s timeout per request: a request that got no answer in
2 s counts as a hang. Medians over --repeat starts; the load average is recorded beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "datasets"
#: (file in ../shared/datasets, target)
DATASETS = (
    ("titanic.csv", "survived"),
    ("adult.csv", "income"),
    ("pima-indians-diabetes.csv", "column_9"),
    ("auto_imports.csv", "column_26"),
    ("winequality-red.csv", "column_12"),
    ("sonar.csv", "column_61"),
)
MODELS = ("hist_gradient_boosting", "random_forest")
BUSY = "while True: pass"


def train(folder: Path, source: Path, target: str, model: str) -> None:
    """Train one model folder with this interpreter's mlcontainer (no time budget)."""
    command = [sys.executable, "-m", "mlcontainer", "train", "-d", str(source), "-t", target]
    command += ["-m", model, "--cv", "3", "--time-budget", "0", "-o", str(folder)]
    subprocess.run(command, check=True, capture_output=True, timeout=1800)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(url: str) -> int | None:
    """/ready's status, or None when nothing answered within 2 s (or the port refused)."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
        return None


def start_once(folder: Path, runtime: str, *, timeout: float = 300) -> dict[str, Any]:
    """Start a server, watch it until /ready is 200, stop it; the times from the start."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCONTAINER_")}
    command = [sys.executable, "-m", "mlcontainer", "serve", "--model", str(folder)]
    command += ["--port", str(port), "--runtime", runtime]
    started = time.monotonic()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    bound = first_status = first_at = ready = None
    hangs = 0
    try:
        while time.monotonic() - started < timeout and process.poll() is None:
            now = time.monotonic() - started
            if bound is None:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        bound = now
                if bound is None:
                    time.sleep(0.05)
                    continue
            asked = time.monotonic()
            status = _ready(f"http://127.0.0.1:{port}/ready")
            if status is None and time.monotonic() - asked >= 1.9:
                hangs += 1
            if status is not None and first_status is None:
                first_status, first_at = status, time.monotonic() - started
            if status == 200:
                ready = time.monotonic() - started
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, err = process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            _, err = process.communicate()
    return {
        "bound_s": None if bound is None else round(bound, 2),
        "first_status": first_status,
        "first_answer_s": None if first_at is None else round(first_at, 2),
        "ready_s": None if ready is None else round(ready, 2),
        "ready_hangs": hangs,
        "error": None if ready is not None else err.strip().splitlines()[-1:],
    }


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return round(statistics.median(known), 2) if known else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", help="one dataset file name, e.g. adult.csv")
    parser.add_argument("--busy", action="store_true", help="two busy loops beside each start")
    parser.add_argument("--record", type=Path, help="append the results as JSON lines here")
    args = parser.parse_args()
    if not SHARED.is_dir():
        raise SystemExit(f"{SHARED} is absent: nothing to measure")
    rows = []
    with tempfile.TemporaryDirectory(prefix="start-bench-") as scratch:
        for name, target in DATASETS:
            if args.only and name != args.only:
                continue
            for model in MODELS:
                folder = Path(scratch) / f"{Path(name).stem}-{model}"
                train(folder, SHARED / name, target, model)
                manifest = json.loads((folder / "model.json").read_text())
                runtimes = ["sklearn"] + (["onnx"] if manifest["runtime"]["onnx"] else [])
                for runtime in runtimes:
                    busy = [
                        subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2 * args.busy)
                    ]
                    try:
                        runs = [start_once(folder, runtime) for _ in range(args.repeat)]
                    finally:
                        for loop in busy:
                            loop.kill()
                            loop.wait()
                    row = {
                        "dataset": name,
                        "model": model,
                        "runtime": runtime,
                        "busy": args.busy,
                        "skops_mb": round((folder / "model.skops").stat().st_size / 1e6, 1),
                        "bound_s": _median([r["bound_s"] for r in runs]),
                        "first_status": [r["first_status"] for r in runs],
                        "first_answer_s": _median([r["first_answer_s"] for r in runs]),
                        "ready_s": _median([r["ready_s"] for r in runs]),
                        "ready_hangs": sum(r["ready_hangs"] for r in runs),
                        "errors": [r["error"] for r in runs if r["error"]],
                        "loadavg": Path("/proc/loadavg").read_text().split()[:3],
                    }
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    if args.record:
        with args.record.open("a") as handle:
            handle.writelines(json.dumps(r) + "\n" for r in rows)


if __name__ == "__main__":
    main()
