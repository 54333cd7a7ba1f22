"""Intake benchmark (issue 12): the default `train` on each shared file, as published, and what
header detection and the intake recipe cost `predict` on 1 000 000 rows against a revision.

    uv run python bench/intake_bench.py train --repeat 3
    uv run python bench/intake_bench.py predict-vs 786bda9 --rows 1000000 --repeat 3
    uv run python bench/intake_bench.py predict-vs main --runtime onnx --runtime sklearn

`train`: wall time, peak memory (the child's own RSS) and the test scores of the default
`mlcontainer train` on every file in ../shared/datasets (the headerless UCI copies untouched).
`predict-vs REV`: the same 1 000 000 generated Adult rows predicted (ONNX) with REV's code
(its src/ from `git archive`, on PYTHONPATH) and with this tree's, interleaved, each with a
logistic regression trained by that code; pyarrow's and the stdlib CSV reader; ONNX by
default, or each `--runtime` given. Each model's decision (Adult's tuned threshold) is reported.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from realdata_bench import ADULT, ROOT, make_rows, run_cli

SHARED = ROOT.parent / "shared" / "datasets"
#: The shared files and their targets as `train` names them (the UCI copies have no header).
FILES = {
    "titanic.csv": "survived",
    "adult.csv": "income",
    "pima-indians-diabetes.csv": "column_9",
    "sonar.csv": "column_61",
    "winequality-red.csv": "column_12",
}


def bench_train(repeat: int) -> list[dict[str, Any]]:
    results = []
    for name, target in FILES.items():
        runs = []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                out = Path(tmp) / "model"
                measured = run_cli(
                    ["train", "-d", str(SHARED / name), "-t", target, "-o", str(out)]
                )
                manifest = json.loads((out / "model.json").read_text())
                runs.append({**measured, "manifest": manifest})
        last = runs[-1]["manifest"]
        results.append(
            {
                "bench": f"train {name}",
                "wall_s_median": statistics.median(r["wall_s"] for r in runs),
                "wall_s_all": [r["wall_s"] for r in runs],
                "peak_mib_median": statistics.median(r["peak_mib"] for r in runs),
                "selected": sorted({r["manifest"]["selection"]["model"] for r in runs}),
                "rows": last["dataset"]["rows"],
                "excluded_classes": last["dataset"].get("excluded_classes", {}),
                "test_f1_macro": round(last["metrics"]["f1_macro"], 4),
                "test_accuracy": round(last["metrics"]["accuracy"], 4),
                "load": os.getloadavg(),
            }
        )
        print(json.dumps(results[-1]), flush=True)
    return results


def _source_of(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "archive", rev, "src"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "src"


def bench_predict_vs(
    rev: str, rows: int, repeat: int, runtimes: tuple[str, ...] = ("onnx",)
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        envs = {
            rev: {**os.environ, "PYTHONPATH": str(_source_of(rev, work / "old"))},
            "this tree": {k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
        }
        models = {}
        for label, env in envs.items():
            models[label] = work / f"model-{len(models)}"
            args = ["train", "-d", str(ADULT), "-t", "income", "-o", str(models[label])]
            run_cli([*args, "--models", "logistic_regression"], env=env)
        source = make_rows(work / "rows.csv", rows)
        runs: dict[str, list[float]] = {}
        configurations = [(r, reader) for r in runtimes for reader in ("arrow", "stdlib")]
        load = [os.getloadavg()[0]]
        for _ in range(repeat):
            for runtime, reader in configurations:
                for label, env in envs.items():
                    out = work / "preds.csv"
                    args = ["predict", "--model", str(models[label]), "-i", str(source)]
                    args += ["-o", str(out), "--runtime", runtime, "--csv-reader", reader]
                    runs.setdefault(f"{label} {runtime} {reader}", []).append(
                        run_cli(args, env=env)["wall_s"]
                    )
                    out.unlink()
            load.append(os.getloadavg()[0])
        result: dict[str, Any] = {"bench": f"predict {rows:,} adult rows, {rev} vs this tree"}
        for label, folder in models.items():
            manifest = json.loads((folder / "model.json").read_text())
            result[f"{label} decision"] = manifest.get("decision")
        for key, walls in runs.items():
            result[key] = {"wall_s_median": statistics.median(walls), "wall_s_all": walls}
        for runtime, reader in configurations:
            old = result[f"{rev} {runtime} {reader}"]["wall_s_median"]
            new = result[f"this tree {runtime} {reader}"]["wall_s_median"]
            result[f"{runtime} {reader} slower by"] = f"{(new / old - 1) * 100:+.1f}%"
        result["load_1min_between_rounds"] = load
        return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    train = sub.add_parser("train")
    train.add_argument("--repeat", type=int, default=3)
    vs = sub.add_parser("predict-vs")
    vs.add_argument("rev")
    vs.add_argument("--rows", type=int, default=1_000_000)
    vs.add_argument("--repeat", type=int, default=3)
    vs.add_argument("--runtime", action="append", choices=("onnx", "sklearn"), help="default: onnx")
    ns = parser.parse_args()
    if ns.what == "train":
        bench_train(ns.repeat)
    else:
        runtimes = tuple(ns.runtime or ("onnx",))
        print(json.dumps(bench_predict_vs(ns.rev, ns.rows, ns.repeat, runtimes), indent=2))


if __name__ == "__main__":
    main()
