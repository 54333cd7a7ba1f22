"""Real data at real size: `train` on UCI Adult (budgeted, unbounded, on a Dask cluster) and
`predict` on 1 000 000 generated rows. Records wall time, peak memory and test accuracy.

    uv run python bench/realdata_bench.py all --repeat 3
    uv run python bench/realdata_bench.py train-default --repeat 5
    uv run python bench/realdata_bench.py predict --rows 1000000   # runtimes x CSV readers
    uv run python bench/realdata_bench.py latency                  # 1-row, in-process

Each measured command runs in a fresh child process (so imports count, as for a user) that
reports its own peak RSS. Medians over --repeat runs; the machine is shared and noisy.
Results go to stdout as JSON lines and, with --record FILE, are appended to FILE.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
ADULT = ROOT.parent / "shared" / "datasets" / "adult.csv"
PORTS = range(17500, 17600)

# Runs the CLI in this child and prints its peak RSS (KiB) last on stderr.
_MEASURE = """
import resource, sys
from mlcontainer.cli import main
code = 0
try:
    main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code or 0
print("PEAK_KIB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
sys.exit(code)
"""


def run_cli(
    args: list[str], *, timeout: float = 3600, env: dict[str, str] | None = None
) -> dict[str, Any]:
    """Run `mlcontainer ARGS` in a child; return wall seconds and peak memory.

    ``env`` replaces the child's environment (e.g. PYTHONPATH to another revision's src/).
    """
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"mlcontainer {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    peak = next(
        int(line.split()[1]) for line in done.stderr.splitlines() if line.startswith("PEAK_KIB")
    )
    return {"wall_s": round(wall, 2), "peak_mib": round(peak / 1024, 1), "stdout": done.stdout}


def train_adult(out: Path, extra: list[str]) -> dict[str, Any]:
    """Train on adult.csv with the given extra options; return timing and the manifest's facts."""
    args = ["train", "-d", str(ADULT), "-t", "income", "-o", str(out), *extra]
    measured = run_cli(args)
    manifest = json.loads((out / "model.json").read_text())
    board = manifest["leaderboard"]
    return {
        "wall_s": measured["wall_s"],
        "peak_mib": measured["peak_mib"],
        "selected": manifest["selection"]["model"],
        "test_accuracy": round(manifest["metrics"]["accuracy"], 4),
        "test_f1_macro": round(manifest["metrics"]["f1_macro"], 4),
        "budget_lines": manifest["selection"].get("budget", []),
        "cut": {e["name"]: e["budget"]["action"] for e in board if e.get("budget")},
        "cv_fit_seconds": {e["name"]: e["fit_seconds"] for e in board},
    }


def _median_runs(label: str, runs: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "bench": label,
        "runs": len(runs),
        "wall_s_median": statistics.median(r["wall_s"] for r in runs),
        "wall_s_all": [r["wall_s"] for r in runs],
        "peak_mib_median": statistics.median(r["peak_mib"] for r in runs),
        "test_accuracy": [r["test_accuracy"] for r in runs],
        "selected": sorted({r["selected"] for r in runs}),
        "last": runs[-1],
    }


def bench_train(label: str, extra: list[str], repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(train_adult(Path(tmp) / "model", extra))
    return _median_runs(label, runs)


def _free_port() -> int:
    for port in PORTS:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {PORTS}")


def bench_cluster(repeat: int) -> dict[str, Any]:
    """The default run with --scheduler on a local scheduler + 2 one-thread workers."""
    import distributed

    dask = str(Path(sys.executable).with_name("dask"))
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    procs = [
        subprocess.Popen(
            [dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
            **quiet,
        )
    ]
    worker = [dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]
    procs += [subprocess.Popen(worker, **quiet) for _ in range(2)]
    try:
        with distributed.Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
        return bench_train(
            "train adult.csv --scheduler (2 local workers)", ["--scheduler", address], repeat
        )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def make_rows(path: Path, rows: int, *, seed: int = 0) -> Path:
    """Write `rows` feature rows drawn (with replacement) from adult.csv, without the target."""
    import pandas as pd

    adult = pd.read_csv(ADULT, skipinitialspace=True).drop(columns=["income"])
    sample = adult.sample(n=rows, replace=True, random_state=seed)
    sample.to_csv(path, index=False)
    return path


def bench_predict(rows: int, repeat: int, chunk: int, model: Path | None) -> dict[str, Any]:
    """`mlcontainer predict` on `rows` generated rows, per runtime and CSV reader, fresh processes.

    Runs interleave the configurations (onnx+arrow, onnx+stdlib, sklearn+arrow) so that the
    machine's load falls on all of them alike.
    """
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if model is None:
            model = work / "model"
            train_adult(model, [])
        manifest = json.loads((model / "model.json").read_text())
        source = make_rows(work / "rows.csv", rows)
        result: dict[str, Any] = {
            "bench": f"predict {rows:,} generated adult rows",
            "model": manifest["selection"]["model"],
            "default_runtime": manifest.get("runtime", {}).get("default"),
            "rows": rows,
            "chunk_rows": chunk,
            "input_mib": round(source.stat().st_size / 2**20, 1),
            "load_before": os.getloadavg(),
        }
        configs = [("onnx", "arrow"), ("onnx", "stdlib"), ("sklearn", "arrow")]
        runs: dict[str, list[dict[str, Any]]] = {f"{r}+{c}": [] for r, c in configs}
        for _ in range(repeat):
            for runtime, reader in configs:
                out = work / "preds.csv"
                args = ["predict", "--model", str(model), "-i", str(source), "-o", str(out)]
                args += ["--chunk-size", str(chunk), "--runtime", runtime, "--csv-reader", reader]
                runs[f"{runtime}+{reader}"].append(run_cli(args))
                out.unlink()
        for name, done in runs.items():
            walls = [r["wall_s"] for r in done]
            result[name] = {
                "wall_s_median": statistics.median(walls),
                "wall_s_all": walls,
                "rows_per_s_median": round(rows / statistics.median(walls)),
                "peak_mib_median": statistics.median(r["peak_mib"] for r in done),
            }
        result["load_after"] = os.getloadavg()
        result["onnx_arrow_stages_s"] = predict_stages(model, source, chunk)
        return result


def predict_stages(model: Path, source: Path, chunk: int) -> dict[str, float]:
    """Where one in-process ONNX run spends its time, one stage after the other on one thread:
    pyarrow CSV parsing, validation, inference (one intra-op thread), CSV output."""
    from mlcontainer.inference.arrowreader import ArrowChunk, decode, iter_chunks
    from mlcontainer.inference.output import write_predictions
    from mlcontainer.inference.predictor import load_predictor

    predictor = load_predictor(model, "onnx", threads=1)
    predictor.warm_up()
    spent = dict.fromkeys(("csv_read", "validate", "onnx_inference", "write_csv"), 0.0)
    with source.open("rb") as handle:
        chunks = iter_chunks(handle, chunk_rows=chunk)
        while True:
            t0 = time.perf_counter()
            chunk_read = next(chunks, None)
            t1 = time.perf_counter()
            spent["csv_read"] += t1 - t0
            if chunk_read is None:
                break
            assert isinstance(chunk_read, ArrowChunk)
            decoded = decode(predictor.schema, chunk_read)
            t2 = time.perf_counter()
            prediction = predictor.predict(decoded)
            t3 = time.perf_counter()
            write_predictions(prediction, "csv")
            t4 = time.perf_counter()
            spent["validate"] += t2 - t1
            spent["onnx_inference"] += t3 - t2
            spent["write_csv"] += t4 - t3
    return {k: round(v, 2) for k, v in spent.items()}


def bench_latency(repeat: int) -> list[dict[str, Any]]:
    """In-process single-row `predict_records` latency of both runtimes (wine: default, RF)."""
    from mlcontainer.inference.predictor import load_predictor

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, extra in (("default", []), ("random_forest", ["-m", "random_forest"])):
            model = Path(tmp) / label
            run_cli(["train", "-d", "wine", "-o", str(model), *extra])
            manifest = json.loads((model / "model.json").read_text())
            entry: dict[str, Any] = {
                "bench": f"1-row predict_records latency, wine {label}",
                "model": manifest["selection"]["model"],
            }
            for runtime in ("onnx", "sklearn"):
                predictor = load_predictor(model, runtime, threads=1)
                predictor.warm_up()
                record = dict.fromkeys(predictor.schema.names, 1.0)
                times = []
                for _ in range(max(repeat, 1) * 200):
                    t0 = time.perf_counter()
                    predictor.predict_records([record])
                    times.append(time.perf_counter() - t0)
                entry[runtime] = {
                    "p50_ms": round(statistics.median(times) * 1000, 3),
                    "p90_ms": round(statistics.quantiles(times, n=10)[-1] * 1000, 3),
                }
            results.append(entry)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "what",
        choices=["train-default", "train-unbounded", "train-cluster", "predict", "latency", "all"],
    )
    parser.add_argument(
        "--model", type=Path, default=None, help="predict: an adult model folder (else train one)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--chunk-size", type=int, default=50_000)
    parser.add_argument("--record", type=Path, default=None, help="append results (JSON lines)")
    ns = parser.parse_args()
    if not ADULT.is_file():
        raise SystemExit(f"{ADULT} is absent: this benchmark needs the shared real datasets")
    todo = (
        [ns.what]
        if ns.what != "all"
        else ["train-default", "train-cluster", "predict", "train-unbounded"]
    )
    for what in todo:
        if what == "train-default":
            result = bench_train("train adult.csv (default: --time-budget 60)", [], ns.repeat)
        elif what == "train-unbounded":
            result = bench_train(
                "train adult.csv --time-budget 0 (unbounded)", ["--time-budget", "0"], 1
            )
        elif what == "train-cluster":
            result = bench_cluster(ns.repeat)
        elif what == "latency":
            result = bench_latency(ns.repeat)
        else:
            result = bench_predict(ns.rows, ns.repeat, ns.chunk_size, ns.model)
        for item in result if isinstance(result, list) else [result]:
            line = json.dumps(item)
            print(line, flush=True)
            if ns.record is not None:
                with ns.record.open("a") as fh:
                    fh.write(line + "\n")


if __name__ == "__main__":
    main()
