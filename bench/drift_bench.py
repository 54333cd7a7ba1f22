"""Drift benchmark: serving with and without the drift window, and `mlcontainer drift` at scale.

* ``--serve``: `mlcontainer serve` (ONNX, 2 sync workers) of a random forest on wine, with the
  drift window off (``--drift-window 0``) and on (the default, 10 000 rows per worker),
  alternated ``--repeats`` times: one row at 1 connection (p50) and at 8 (req/s), with wrk.
* ``--batch``: `mlcontainer drift` on ``--rows`` generated rows (real wine rows resampled, one
  column shifted), CSV: wall time and the peak resident memory of the process.

Usage:
    uv run python bench/drift_bench.py --serve --batch      # about 6 minutes on 2 cores

Results go to bench/results/drift-<time>.json and stdout, with the load average.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import serve_bench as sb

BENCH = Path(__file__).resolve().parent
MODEL = BENCH / "results" / "drift-models" / "wine-rf"
SETUPS = {"drift off": ["--drift-window", "0"], "drift on (10 000)": []}


def train() -> Path:
    if not (MODEL / "model.json").exists():
        subprocess.run(
            [sys.executable, "-m", "mlcontainer", "train", "--dataset", "wine",
             "--models", "random_forest", "--output", str(MODEL)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    return MODEL


def loadavg() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


def serve(args: argparse.Namespace) -> dict[str, Any]:
    model = train()
    body = json.dumps({"instances": sb.sample_rows(model, 1)})
    runs: dict[str, dict[str, list[dict[str, float]]]] = {s: {} for s in SETUPS}
    logs = BENCH / "results"
    for _ in range(args.repeats):
        for name, extra in SETUPS.items():
            port = 18650
            cmd = [sys.executable, "-m", "mlcontainer", "serve", "--model", str(model),
                   "--port", str(port), "--runtime", "onnx", "--workers", "2", *extra]  # fmt: skip
            process = sb.start(cmd, logs / "drift-serve.log")
            try:
                url = f"http://127.0.0.1:{port}"
                sb.wait_ready(url + "/ready", process)
                sb.wrk(url + "/predict", body, connections=8, seconds=1)  # warm both workers
                for label, conns in (("1 row, c=1", 1), ("1 row, c=8", 8)):
                    result = sb.wrk(
                        url + "/predict", body, connections=conns, seconds=args.duration
                    )
                    runs[name].setdefault(label, []).append(result)
            finally:
                sb.stop(process)
    return {
        name: {label: sb.median_runs(r) for label, r in by.items()} for name, by in runs.items()
    }


def batch(args: argparse.Namespace) -> dict[str, Any]:
    import numpy as np

    from mlcontainer.training.data.dataset import load_dataset

    model = train()
    data = BENCH / "results" / f"drift-{args.rows}.csv"
    if not data.exists():
        frame = load_dataset("wine").X
        rng = np.random.default_rng(0)
        big = frame.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
        big["alcohol"] = big["alcohol"] + rng.normal(1.0, 0.2, size=args.rows)
        big.to_csv(data, index=False)
    report = BENCH / "results" / "drift-report.html"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "mlcontainer", "drift", "--model", str(model), "--input",
         str(data), "--report", str(report)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if done.returncode not in (0, 3):
        raise SystemExit(done.stderr)
    return {
        "rows": args.rows,
        "input MB": round(data.stat().st_size / 1e6, 1),
        "wall s": round(wall, 2),
        "peak RSS MB (largest child so far)": round(peak_mb),
        "exit": done.returncode,
        "table head": done.stdout.splitlines()[:6],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--batch", action="store_true")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    report: dict[str, Any] = {"started": datetime.now(UTC).isoformat(), "load": loadavg()}
    if args.batch:  # first: its peak memory is then the only child's
        report["batch"] = batch(args)
    if args.serve:
        report["serve"] = serve(args)
    report["load after"] = loadavg()
    out = BENCH / "results" / f"drift-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    if "serve" in report:
        off, on = report["serve"]["drift off"], report["serve"]["drift on (10 000)"]
        p50 = on["1 row, c=1"]["p50 ms"] / off["1 row, c=1"]["p50 ms"] - 1
        rps = on["1 row, c=8"]["req/s"] / off["1 row, c=8"]["req/s"] - 1
        print(f"drift on vs off: p50 {p50:+.1%}, c8 req/s {rps:+.1%}")


if __name__ == "__main__":
    main()
