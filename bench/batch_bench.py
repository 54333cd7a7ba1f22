"""Benchmark batch prediction of a partitioned Parquet dataset: local `predict` against
`predict --scheduler` on a Dask cluster of 2 one-thread workers on this machine.

Usage (from the repository root; under the shared benchmark lock):

    flock ../bench.lock nice -n 0 uv run python bench/batch_bench.py            # 10 M rows
    flock ../bench.lock nice -n 0 uv run python bench/batch_bench.py --rows 1000000

It trains a logistic regression on penguins (text and numeric features, some missing), writes
``--rows`` rows drawn from penguins (numbers jittered) as ``--partitions`` Parquet files, then
runs each command ``--repeats`` times, alternating which goes first, in fresh processes. Each
run's wall time includes loading the model (and, on the cluster, connecting and sending it).
The two outputs are checked to be the same table. Prints rows/s per run, the medians, and the
load average before and after each run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
NO_UI = ("--no-dashboard",)
WORKER = ("--host", "127.0.0.1", "--memory-limit", "4GiB")


def _load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def _model(work: Path) -> Path:
    out = work / "model"
    if not (out / "model.json").exists():
        train = ["train", "-d", "penguins", "-m", "logistic_regression", "-o", out]
        subprocess.run(
            [BIN / "mlcontainer", *train],
            check=True,
            capture_output=True,
        )
    return out


def _data(work: Path, rows: int, partitions: int) -> Path:
    folder = work / f"rows-{rows}-{partitions}"
    if folder.is_dir():
        return folder
    from mlcontainer.training.data.dataset import load_dataset

    source = load_dataset("penguins").X.reset_index(drop=True)
    rng = np.random.default_rng(0)
    tmp = folder.with_suffix(".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    per = -(-rows // partitions)
    for i in range(partitions):
        n = min(per, rows - i * per)
        picked = source.iloc[rng.integers(0, len(source), n)].reset_index(drop=True)
        for name in picked.columns:
            if picked[name].dtype.kind == "f":
                picked[name] = (picked[name] * rng.normal(1, 0.02, n)).round(1)
        table = pa.Table.from_pandas(picked, preserve_index=False)
        pq.write_table(table, tmp / f"part-{i:05d}.parquet", row_group_size=250_000)
    tmp.rename(folder)
    return folder


def _run(args: list[str | Path]) -> float:
    started = time.perf_counter()
    command = [BIN / "mlcontainer", *map(str, args)]
    done = subprocess.run(command, check=False, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode:
        raise SystemExit(f"failed: {args}\n{done.stderr[-2000:]}")
    return elapsed


def _cluster(port: int) -> list[subprocess.Popen[bytes]]:
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [BIN / "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), *NO_UI],
            **quiet,
        )
    ]
    for _ in range(2):
        procs.append(
            subprocess.Popen(
                [BIN / "dask", "worker", address, "--nthreads", "1", *NO_UI, *WORKER],
                **quiet,
            )
        )
    import distributed

    with distributed.Client(address, timeout=60) as client:
        client.wait_for_workers(2, timeout=120)
    return procs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--partitions", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--port", type=int, default=17800)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "batch-bench")
    given = parser.parse_args()
    given.work.mkdir(parents=True, exist_ok=True)
    model, data = _model(given.work), _data(given.work, given.rows, given.partitions)
    size = sum(p.stat().st_size for p in data.iterdir())
    print(f"{given.rows:,} rows in {given.partitions} partitions, {size / 1e6:.0f} MB", flush=True)
    procs = _cluster(given.port)
    address = f"tcp://127.0.0.1:{given.port}"
    outputs = {"local": given.work / "local.parquet", "dask": given.work / "dask.parquet"}
    base = ["predict", "--model", model, "-i", data]
    commands = {
        "local": [*base, "-o", outputs["local"]],
        "dask": [*base, "-o", outputs["dask"], "--scheduler", address],
    }
    runs: dict[str, list[dict[str, object]]] = {"local": [], "dask": []}
    try:
        for repeat in range(given.repeats):
            order = ["local", "dask"] if repeat % 2 == 0 else ["dask", "local"]
            for name in order:
                before = _load()
                seconds = _run(commands[name])
                run = {"seconds": round(seconds, 2), "rows_per_s": round(given.rows / seconds)}
                runs[name].append({**run, "load_before": before, "load_after": _load()})
                print(name, json.dumps(runs[name][-1]), flush=True)
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
    same = pq.read_table(outputs["local"]).equals(pq.read_table(outputs["dask"]))
    print(f"outputs identical: {same}")
    for name, measured in runs.items():
        rates = [r["rows_per_s"] for r in measured]
        print(f"{name}: median {statistics.median(rates):,.0f} rows/s over {len(rates)} runs")
    print(f"cores: {os.cpu_count()}")


if __name__ == "__main__":
    main()
