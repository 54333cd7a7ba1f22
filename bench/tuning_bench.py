"""Tuning and budget benchmark (issue 15): quality against FLAML at the same wall-clock
budget, the budget under load, and the default wine run's wall time.

Subcommands:

* ``flaml``: for every file in ../shared/datasets/ and the built-in datasets, the default
  ``mlcontainer train`` (60 s budget) as a process, then FLAML's ``AutoML`` on exactly the
  same train/test split (the columns mlcontainer kept, 20% test, seed 42) with
  ``time_budget`` 60 and the same selection metric (macro F1 or R²). FLAML runs in its own
  virtual environment (bench/.venv-flaml, made here with uv; never a project dependency).
  Test macro F1 and ROC AUC (one-vs-rest for several classes), or R² and RMSE; wall time
  and peak memory (max RSS of the process) of each.
* ``busy``: the default Adult run alone, then with one and with two other default Adult
  runs started beside it; the measured run's wall time against its 60 s budget, how many
  candidates were compared (ranked) and the budget's lines.
* ``wine``: the default ``mlcontainer train`` on wine, median wall time of ``--repeat``.

Usage:
    uv run python bench/tuning_bench.py flaml [--seeds 42,0,1] [--only adult,wine]
    uv run python bench/tuning_bench.py busy
    uv run python bench/tuning_bench.py wine --repeat 5

Results go to bench/results/tuning-<what>-<time>.json and stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from regression_bench import flaml_python, load_average  # noqa: E402

RESULTS = BENCH / "results"
SHARED = BENCH.parent.parent / "shared" / "datasets"
BUDGET = 60.0
SEED = 42
TEST_SIZE = 0.2
#: (label, --dataset, --target or None)
DATASETS = (
    ("adult", str(SHARED / "adult.csv"), "income"),
    ("titanic", str(SHARED / "titanic.csv"), "survived"),
    ("pima", str(SHARED / "pima-indians-diabetes.csv"), "column_9"),
    ("sonar", str(SHARED / "sonar.csv"), "column_61"),
    ("winequality-red", str(SHARED / "winequality-red.csv"), "column_12"),
    ("auto_imports", str(SHARED / "auto_imports.csv"), "column_26"),
    ("wine", "wine", None),
    ("iris", "iris", None),
    ("breast_cancer", "breast_cancer", None),
    ("digits", "digits", None),
    ("penguins", "penguins", None),
    ("diabetes", "diabetes", None),
)

FLAML_SCRIPT = r"""
import json, sys, time
import numpy as np, pandas as pd
from flaml import AutoML
from sklearn.metrics import f1_score, roc_auc_score
folder, budget, task = sys.argv[1], float(sys.argv[2]), sys.argv[3]
text = json.load(open(f"{folder}/text_columns.json"))
def frame(name, target=False):
    df = pd.read_csv(f"{folder}/{name}.csv", dtype=str if target and task != "regression"
                     else {c: str for c in text}, keep_default_na=False, na_values=[""])
    for c in text if not target else ():  # text as categoricals, as FLAML expects
        df[c] = df[c].astype("category")
    return df
X_train, X_test = frame("X_train"), frame("X_test")
y_train, y_test = frame("y_train", True)["y"], frame("y_test", True)["y"]
automl = AutoML()
start = time.perf_counter()
automl.fit(X_train, y_train, task=task, time_budget=budget, seed=0, verbose=0,
           metric="r2" if task == "regression" else "macro_f1")
seconds = time.perf_counter() - start
out = {"best": automl.best_estimator, "fit_seconds": seconds}
if task == "regression":
    err = automl.predict(X_test) - y_test.to_numpy()
    ss = float(np.sum((y_test.to_numpy() - y_test.mean()) ** 2))
    out |= {"r2": 1 - float(np.sum(err ** 2)) / ss, "rmse": float(np.sqrt(np.mean(err ** 2)))}
else:
    proba = automl.predict_proba(X_test)
    classes = list(automl.classes_)
    out["f1_macro"] = float(f1_score(y_test, automl.predict(X_test), average="macro"))
    if len(classes) == 2:
        out["roc_auc"] = float(roc_auc_score(y_test == classes[1], proba[:, 1]))
    else:
        out["roc_auc"] = float(roc_auc_score(y_test, proba, multi_class="ovr", labels=classes))
print(json.dumps(out))
"""


def run(cmd: list[str]) -> tuple[float, float, str, str, int]:
    """Run ``cmd`` to the end: wall seconds, peak RSS in MB, stdout, stderr, exit code."""
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return wall, usage.ru_maxrss / 1024, out.read(), err.read(), proc.returncode


def ours(dataset: str, target: str | None, folder: Path, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "mlcontainer", "train", "-d", dataset, "-o", str(folder)]
    cmd += [*(["-t", target] if target else []), *extra]
    wall, peak, _, err, code = run(cmd)
    if code != 0:
        raise SystemExit(f"mlcontainer train {dataset} failed:\n{err[-3000:]}")
    manifest = json.loads((folder / "model.json").read_text())
    m = manifest["metrics"]
    board = manifest["leaderboard"]
    return {
        "wall s": round(wall, 2),
        "peak MB": round(peak),
        "selected": manifest["selection"]["model"],
        "preset": board[0].get("preset"),
        "threshold": (manifest.get("decision") or {}).get("threshold"),
        "ranked": sum(c["error"] is None for c in board),
        "candidates": len(board),
        "budget lines": sum(c["budget"] is not None for c in board),
        **{k: m[k] for k in ("f1_macro", "roc_auc_ovr", "accuracy", "r2", "rmse") if k in m},
    }


def flaml(dataset: str, target: str | None, seed: int = SEED) -> dict[str, Any]:
    import pandas as pd
    from pandas.api.types import is_numeric_dtype as is_numeric

    from mlcontainer.training.data.dataset import load_dataset
    from mlcontainer.training.search.split import split_dataset

    ds = load_dataset(dataset, target=target)
    split = split_dataset(ds, test_size=TEST_SIZE, cv=5, random_state=seed)
    task = "regression" if ds.schema.is_regression else "classification"
    with tempfile.TemporaryDirectory() as tmp:
        text = [c for c in split.X_train.columns if not is_numeric(split.X_train[c])]
        Path(tmp, "text_columns.json").write_text(json.dumps(text))
        for name, part in (("X_train", split.X_train), ("X_test", split.X_test)):
            part.to_csv(f"{tmp}/{name}.csv", index=False)
        for name, part in (("y_train", split.y_train), ("y_test", split.y_test)):
            values = part.to_numpy(dtype=float) if task == "regression" else part.astype(str)
            pd.DataFrame({"y": values}).to_csv(f"{tmp}/{name}.csv", index=False)
        cmd = [str(flaml_python()), "-c", FLAML_SCRIPT, tmp, f"{BUDGET:g}", task]
        wall, peak, out, err, code = run(cmd)
    if code != 0:
        return {"error": err.strip().splitlines()[-1] if err.strip() else f"exit {code}"}
    return {"wall s": round(wall, 2), "peak MB": round(peak), **json.loads(out.splitlines()[-1])}


def bench_flaml(only: set[str] | None, seeds: list[int]) -> dict[str, Any]:
    """Per dataset and split seed, both tools on one split; the score difference's mean."""
    out: dict[str, Any] = {}
    for label, dataset, target in DATASETS:
        if only and label not in only:
            continue
        if dataset.startswith(str(SHARED)) and not Path(dataset).exists():
            out[label] = {"skipped": f"{dataset} is absent"}
            continue
        rows = []
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                mine = ours(dataset, target, Path(tmp) / "m", "--seed", str(seed))
            mine["load average"] = load_average()
            theirs = flaml(dataset, target, seed)
            theirs["load average"] = load_average()
            key = "r2" if "r2" in mine else "f1_macro"
            row: dict[str, Any] = {"seed": seed, "mlcontainer": mine, "flaml": theirs}
            if key in theirs:
                row["difference"] = round(mine[key] - theirs[key], 4)
            print(label, json.dumps(row), file=sys.stderr, flush=True)
            rows.append(row)
        diffs = [r["difference"] for r in rows if "difference" in r]
        out[label] = {
            "metric": "r2" if "r2" in rows[0]["mlcontainer"] else "f1_macro",
            "mean mlcontainer - flaml": round(statistics.mean(diffs), 4) if diffs else None,
            "splits": len(rows),
            "runs": rows,
        }
    compared = [r for r in out.values() if r.get("mean mlcontainer - flaml") is not None]
    out["at least flaml's mean score"] = (
        f"{sum(r['mean mlcontainer - flaml'] >= 0 for r in compared)} of {len(compared)}"
    )
    return out


def bench_busy() -> dict[str, Any]:
    _, dataset, target = DATASETS[0]
    out: dict[str, Any] = {}
    for others in (0, 1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "mlcontainer", "train", "-d", dataset, "-t", target]
            beside = [
                subprocess.Popen(
                    [*cmd, "-o", f"{tmp}/other{i}"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for i in range(others)
            ]
            time.sleep(1.0 if others else 0.0)  # the others are past their imports
            mine = ours(dataset, target, Path(tmp) / "m")
            mine["load average"] = load_average()
            for p in beside:
                p.wait()
            manifest = json.loads((Path(tmp) / "m" / "model.json").read_text())
            mine["budget reasons"] = [
                f"{c['name']}: {c['budget']['reason']}" for c in manifest["leaderboard"]
                if c["budget"] is not None
            ]  # fmt: skip
        mine["within budget + 5%"] = mine["wall s"] <= BUDGET * 1.05
        print(f"{others} beside", json.dumps(mine), file=sys.stderr, flush=True)
        out[f"{others} other runs beside it"] = mine
    return out


def bench_wine(repeat: int) -> dict[str, Any]:
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as tmp:
            runs.append(ours("wine", None, Path(tmp) / "m"))
            runs[-1]["load average"] = load_average()
    return {"median wall s": statistics.median(r["wall s"] for r in runs), "runs": runs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    flaml_cmd = sub.add_parser("flaml")
    flaml_cmd.add_argument("--only", default="", help="comma-separated dataset labels")
    flaml_cmd.add_argument("--seeds", default="42", help="comma-separated split seeds")
    sub.add_parser("busy")
    wine = sub.add_parser("wine")
    wine.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started = datetime.now(UTC)
    if args.what == "flaml":
        only = set(filter(None, args.only.split(","))) or None
        report = bench_flaml(only, [int(x) for x in args.seeds.split(",")])
    elif args.what == "busy":
        report = bench_busy()
    else:
        report = bench_wine(args.repeat)
    report = {"started": started.isoformat(timespec="seconds"), "cores": os.cpu_count(), **report}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"tuning-{args.what}-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"written {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
