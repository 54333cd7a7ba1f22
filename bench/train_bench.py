"""Benchmark `mlcontainer train`: wall time, CPU time and peak memory per built-in dataset.

Usage (from the repository root):

    uv run python bench/train_bench.py                      # default run on every built-in
    uv run python bench/train_bench.py --runs 5 -d wine     # more runs, one dataset
    uv run python bench/train_bench.py -d wine -- --jobs 2  # extra `train` options after --
    uv run python bench/train_bench.py --breakdown -d wine  # where the time goes
    uv run python bench/train_bench.py --via-uv -d wine     # through `uv run` as a user types it

Each run is a fresh process (imports included), as a user sees it. The machine is shared and
noisy: the script reports medians, and CPU time (user + sys) next to wall time, since CPU time
moves less with other people's load. Figures are recorded in bench/README.md.
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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("iris", "wine", "breast_cancer", "digits", "penguins")

#: Run in a child process: time the imports a training run needs, then each stage of it.
BREAKDOWN = r"""
import json, sys, time
from importlib import import_module
#: What a default run imports, in the order it first needs them.
IMPORTS = {
    "import cli (click, pandas, numpy)": ["mlcontainer.cli", "mlcontainer.training.workflow"],
    "import scikit-learn models": [
        "sklearn.ensemble", "sklearn.linear_model", "sklearn.svm", "sklearn.neighbors",
        "sklearn.calibration", "sklearn.compose", "sklearn.impute", "sklearn.model_selection",
    ],
    "import matplotlib (report pictures)": ["matplotlib.figure", "matplotlib.backends.backend_agg"],
    "import skl2onnx, onnxruntime": ["skl2onnx", "onnxruntime"],
    "import skops.io": ["skops.io"],
}
t0 = time.perf_counter()
stages = {}
for label, modules in IMPORTS.items():
    start = time.perf_counter()
    for module in modules:
        try:
            import_module(module)
        except ImportError:
            pass
    stages[label] = time.perf_counter() - start
from pathlib import Path
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.workflow import run_training
argv = json.loads(sys.argv[1])
jobs = {} if argv["jobs"] is None else {"jobs": argv["jobs"]}  # else train's default
options = TrainOptions(dataset=argv["dataset"], output=Path(argv["output"]), **jobs)
outcome = run_training(options)
t5 = time.perf_counter()
stages.update({f"stage {k}": v for k, v in outcome.seconds.items()})
stages["total in process"] = t5 - t0
stages["matplotlib imported (1 = yes)"] = float("matplotlib" in sys.modules)
fits = {c["name"]: c["fit_seconds"] for c in outcome.manifest.to_json()["leaderboard"]}
print(json.dumps({"stages": stages, "fit_seconds": fits, "cv": options.cv}))
"""


@dataclass(frozen=True)
class Run:
    """One timed child process."""

    wall: float
    cpu: float
    peak_mib: float


def timed(argv: list[str], *, cwd: Path) -> Run:
    """Run ``argv`` to completion; return its wall time, CPU time and peak RSS."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    # wait4 gives this child's own rusage (and that of the children it waited for).
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{err}")
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def bench_dataset(dataset: str, *, runs: int, extra: list[str], via_uv: bool) -> list[Run]:
    """Time ``runs`` fresh ``mlcontainer train`` processes on ``dataset``."""
    if via_uv:
        prefix = ["uv", "run", "--project", str(REPO), "mlcontainer"]
    else:
        prefix = [str(Path(sys.executable).parent / "mlcontainer")]
    results = []
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        for _ in range(runs):
            out = Path(tmp) / "artifacts"
            argv = [*prefix, "train", "--dataset", dataset, "--output", str(out), *extra]
            results.append(timed(argv, cwd=Path(tmp)))
            shutil.rmtree(out, ignore_errors=True)
    return results


def breakdown(dataset: str, *, runs: int, jobs: int | None) -> dict[str, dict[str, float]]:
    """Median seconds per import and per stage, and per candidate's mean fold fit."""
    samples: list[dict[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        for _ in range(runs):
            arg = json.dumps({"dataset": dataset, "output": f"{tmp}/a", "jobs": jobs})
            done = subprocess.run(
                [sys.executable, "-c", BREAKDOWN, arg],
                check=True,
                capture_output=True,
                text=True,
                cwd=tmp,
            )
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    out: dict[str, dict[str, float]] = {}
    for part in ("stages", "fit_seconds"):
        keys = samples[0][part]
        out[part] = {k: statistics.median(s[part][k] for s in samples) for k in keys}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per dataset (median)")
    parser.add_argument("--dataset", "-d", action="append", choices=DATASETS)
    parser.add_argument("--breakdown", action="store_true", help="time imports and stages")
    parser.add_argument("--via-uv", action="store_true", help="run through `uv run`")
    parser.add_argument("extra", nargs="*", help="options passed to `mlcontainer train`")
    args = parser.parse_args()
    datasets = args.dataset or list(DATASETS)
    print(f"# {time.strftime('%Y-%m-%d %H:%M')} load average {os.getloadavg()[0]:.1f}, ", end="")
    print(f"{os.cpu_count()} cores; train {' '.join(args.extra) or '(defaults)'}")
    if args.breakdown:
        jobs = int(args.extra[args.extra.index("--jobs") + 1]) if "--jobs" in args.extra else None
        for dataset in datasets:
            result = breakdown(dataset, runs=args.runs, jobs=jobs)
            print(f"\n{dataset}: median of {args.runs} runs, seconds")
            for name, secs in result["stages"].items():
                print(f"  {name:36s} {secs:6.2f}")
            print("  mean fit per fold:")
            for name, secs in sorted(result["fit_seconds"].items(), key=lambda kv: -kv[1]):
                print(f"    {name:34s} {secs:6.3f}")
        return
    print("\n| dataset | wall s (median) | min-max | CPU s (median) | peak RSS MiB |")
    print("|---|---|---|---|---|")
    for dataset in datasets:
        runs = bench_dataset(dataset, runs=args.runs, extra=args.extra, via_uv=args.via_uv)
        walls = [r.wall for r in runs]
        print(
            f"| {dataset} | {statistics.median(walls):.2f} | {min(walls):.2f}-{max(walls):.2f} "
            f"| {statistics.median(r.cpu for r in runs):.2f} "
            f"| {max(r.peak_mib for r in runs):.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
