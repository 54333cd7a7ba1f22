"""Benchmark what the report adds to the default `train`: the report stage's seconds (permutation
importance, the matplotlib pictures, the HTML and the model card) and the files' sizes.

Usage (from the repository root):

    uv run python bench/report_bench.py                 # wine and Adult, 3 runs each
    uv run python bench/report_bench.py -d wine --runs 5

Each run is a fresh process running the default `train` (imports included: matplotlib is
first imported in the report stage, so its import is counted there). After the run the same
process times each part of the stage again, warm, for the breakdown. Adult is read from
``../shared/datasets/adult.csv`` beside the repository; it is skipped, saying so, when absent.
Targets (issue 16): the stage takes at most 1 s on wine and 5 s on Adult. Figures are
recorded in bench/README.md with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ADULT = REPO.parent / "shared" / "datasets" / "adult.csv"
#: name -> (dataset argument, target, seconds the report stage may take)
DATASETS = {"wine": ("wine", None, 1.0), "adult": (str(ADULT), "income", 5.0)}

CHILD = r"""
import json, sys, time
from pathlib import Path
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.workflow import run_training
from mlcontainer.training.report.card import model_card
from mlcontainer.training.report.importance import permutation_importances
from mlcontainer.training.data.profile import column_profiles
from mlcontainer.training.report.report import model_parameters, render_report, report_pictures

arg = json.loads(sys.argv[1])
out = Path(arg["output"])
extra = {"target": arg["target"]} if arg["target"] else {}
outcome = run_training(TrainOptions(dataset=arg["dataset"], output=out, **extra))
r, ds, ev, m = outcome.result, outcome.dataset, outcome.evaluation, outcome.manifest
parts = {}
def lap(name, fn):
    start = time.perf_counter()
    value = fn()
    parts[name] = time.perf_counter() - start
    return value
imp = lap("permutation importance", lambda: permutation_importances(
    r.pipeline, r.split.X_test, r.split.y_test, ds.schema, metric=r.metric,
    random_state=r.seed, decision=r.decision))
pictures = lap("pictures (warm)", lambda: report_pictures(m, ev, imp))
params = model_parameters(r.pipeline)
lap("profile + HTML", lambda: render_report(
    m, ev, ds.schema.classes, pictures, profile=column_profiles(ds.X, ds.schema),
    params=params, importances=imp))
lap("model card", lambda: model_card(m, r.pipeline, params=params, importances=imp,
    warnings=ev.warnings))
print(json.dumps({
    "report stage": outcome.seconds["report"],
    "train stages": outcome.seconds,
    "parts": parts,
    "importance rows": imp.rows,
    "pictures": len(pictures),
    "report.html KiB": (out / "report.html").stat().st_size / 1024,
    "README.md KiB": (out / "README.md").stat().st_size / 1024,
}))
"""


def run(name: str, runs: int) -> dict[str, object]:
    dataset, target, limit = DATASETS[name]
    samples = []
    with tempfile.TemporaryDirectory(prefix="report-bench-") as tmp:
        for i in range(runs):
            arg = json.dumps({"dataset": dataset, "target": target, "output": f"{tmp}/a{i}"})
            done = subprocess.run(
                [sys.executable, "-c", CHILD, arg], check=True, capture_output=True, text=True
            )
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    stage = statistics.median(s["report stage"] for s in samples)
    return {
        "dataset": name,
        "runs": runs,
        "report stage median s": round(stage, 3),
        "report stage all s": [round(s["report stage"], 3) for s in samples],
        "target s": limit,
        "within target": stage <= limit,
        "parts median s": {
            k: round(statistics.median(s["parts"][k] for s in samples), 3)
            for k in samples[0]["parts"]
        },
        "train total median s": round(
            statistics.median(sum(s["train stages"].values()) for s in samples), 2
        ),
        "importance rows": samples[0]["importance rows"],
        "pictures": samples[0]["pictures"],
        "report.html KiB": round(samples[0]["report.html KiB"], 1),
        "README.md KiB": round(samples[0]["README.md KiB"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per dataset (median)")
    parser.add_argument("--dataset", "-d", action="append", choices=list(DATASETS))
    args = parser.parse_args()
    for name in args.dataset or list(DATASETS):
        if name == "adult" and not ADULT.exists():
            print(f"adult: skipped, {ADULT} is absent (see ../shared/datasets/README.md)")
            continue
        load = os.getloadavg()[0]
        result = run(name, args.runs)
        result["load average at start"] = round(load, 2)
        result["load average at end"] = round(os.getloadavg()[0], 2)
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
