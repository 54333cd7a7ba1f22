"""Regression benchmark (issue 13): train wall time, quality against FLAML and a default
HistGradientBoostingRegressor on the same split, and single-row /predict latency against a
classifier.

Subcommands:

* ``train``: default ``mlcontainer train`` (every regressor and the baseline, 5-fold CV, the
  60 s budget) on the built-in diabetes data and on ../shared/datasets/auto_imports.csv
  (price, ``column_26``); wall time of the whole process, median of ``--repeat`` runs, and
  the selected model's test R² and RMSE.
* ``quality``: for each of ``--seeds`` (default 42, the default seed, and 0-3), the same
  default run with ``--seed``, then on exactly its train/test split (20% test): FLAML's
  ``AutoML`` for regression with ``time_budget`` = mlcontainer's measured wall time (FLAML
  in its own virtual environment, bench/.venv-flaml, made here with uv; never a project
  dependency), and scikit-learn's ``HistGradientBoostingRegressor`` with its
  defaults (categories as pandas categoricals). Test R² and RMSE for each, and their means
  over the splits (a test split of 41 or 89 rows moves R² by a few hundredths).
* ``latency``: ``mlcontainer serve`` (ONNX, 1 sync worker) of a regressor (diabetes, ridge)
  and of a classifier (wine, logistic regression), one row per request at one connection
  with ``wrk``, alternating the two servers ``--repeat`` times; p50 per run and the median.

Usage:
    uv run python bench/regression_bench.py train --repeat 3
    uv run python bench/regression_bench.py quality
    uv run python bench/regression_bench.py latency --seconds 10 --repeat 3

Results go to bench/results/regression-<what>-<time>.json and stdout.
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
ROOT = BENCH.parent
RESULTS = BENCH / "results"
SHARED = ROOT.parent / "shared" / "datasets"
FLAML_VENV = BENCH / ".venv-flaml"
FLAML_PYTHON = FLAML_VENV / "bin" / "python"
FLAML_PIN = "flaml[automl]==2.8.0"
#: (label, --dataset, --target or None)
DATASETS = (
    ("diabetes", "diabetes", None),
    ("auto_imports", str(SHARED / "auto_imports.csv"), "column_26"),
)
SEED = 42
TEST_SIZE = 0.2

FLAML_SCRIPT = r"""
import json, sys, time
import numpy as np, pandas as pd
from flaml import AutoML
folder, budget = sys.argv[1], float(sys.argv[2])
text = json.load(open(f"{folder}/text_columns.json"))
def frame(name):
    df = pd.read_csv(f"{folder}/{name}.csv", dtype={c: str for c in text}, keep_default_na=False,
                     na_values=[""])
    for c in text if name.startswith("X") else ():  # text as categoricals, as FLAML expects
        df[c] = df[c].astype("category")
    return df
X_train, X_test = frame("X_train"), frame("X_test")
y_train, y_test = frame("y_train")["y"], frame("y_test")["y"]
automl = AutoML()
start = time.perf_counter()
automl.fit(X_train, y_train, task="regression", time_budget=budget, metric="r2", seed=0,
           verbose=0)
seconds = time.perf_counter() - start
pred = automl.predict(X_test)
err = pred - y_test.to_numpy()
ss = float(np.sum((y_test.to_numpy() - y_test.mean()) ** 2))
print(json.dumps({"r2": 1 - float(np.sum(err ** 2)) / ss, "rmse": float(np.sqrt(np.mean(err ** 2))),
                  "best": automl.best_estimator, "fit_seconds": seconds}))
"""


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_train(dataset: str, target: str | None, out: Path, *extra: str) -> dict[str, Any]:
    """One default `mlcontainer train` as a process: wall time, selection, test metrics."""
    cmd = [sys.executable, "-m", "mlcontainer", "train", "-d", dataset, "-o", str(out), *extra]
    if target is not None:
        cmd += ["-t", target]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    manifest = json.loads((out / "model.json").read_text())
    metrics = manifest["metrics"]
    runtime = manifest.get("runtime") or {}
    return {
        "wall s": wall,
        "selected": manifest["selection"]["model"],
        "test r2": metrics.get("r2"),
        "test rmse": metrics.get("rmse"),
        "runtime": runtime.get("default"),
        "load average": load_average(),
    }


def bench_train(repeat: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, dataset, target in DATASETS:
        runs = []
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(run_train(dataset, target, Path(tmp) / "m"))
            print(label, runs[-1], file=sys.stderr)
        out[label] = {
            "median wall s": statistics.median(r["wall s"] for r in runs),
            "runs": runs,
        }
    return out


def flaml_python() -> Path:
    """bench/.venv-flaml, made with uv on first use (FLAML is never a project dependency)."""
    if not FLAML_PYTHON.exists():
        subprocess.run(["uv", "venv", "-q", "-p", "3.11", str(FLAML_VENV)], check=True)
        subprocess.run(
            ["uv", "pip", "install", "-q", "--python", str(FLAML_PYTHON), FLAML_PIN], check=True
        )
    return FLAML_PYTHON


def _split(dataset: str, target: str | None, seed: int = SEED) -> Any:
    from mlcontainer.training.data.dataset import load_dataset
    from mlcontainer.training.search.split import split_dataset

    ds = load_dataset(dataset, target=target)
    return ds, split_dataset(ds, test_size=TEST_SIZE, cv=5, random_state=seed)


def default_hgb(split: Any) -> dict[str, float]:
    """scikit-learn's HistGradientBoostingRegressor with its defaults, categories native."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingRegressor

    def typed(frame: Any) -> Any:
        frame = frame.copy()
        for column in frame.columns:
            if frame[column].dtype == object or str(frame[column].dtype) in ("string", "str"):
                frame[column] = frame[column].astype("category")
        return frame

    X_train, X_test = typed(split.X_train), typed(split.X_test)
    for column in X_train.columns:  # the test split's categories as the training split's
        if str(X_train[column].dtype) == "category":
            X_test[column] = X_test[column].cat.set_categories(X_train[column].cat.categories)
    model = HistGradientBoostingRegressor(categorical_features="from_dtype", random_state=0)
    start = time.perf_counter()
    model.fit(X_train, split.y_train.to_numpy(dtype=float))
    seconds = time.perf_counter() - start
    pred = model.predict(X_test)
    truth = split.y_test.to_numpy(dtype=float)
    err = pred - truth
    return {
        "r2": 1 - float(np.sum(err**2)) / float(np.sum((truth - truth.mean()) ** 2)),
        "rmse": float(np.sqrt(np.mean(err**2))),
        "fit_seconds": seconds,
    }


def flaml(split: Any, budget: float) -> dict[str, Any]:
    import pandas as pd
    from pandas.api.types import is_numeric_dtype as is_numeric

    python = flaml_python()
    with tempfile.TemporaryDirectory() as tmp:
        text = [c for c in split.X_train.columns if not is_numeric(split.X_train[c])]
        Path(tmp, "text_columns.json").write_text(json.dumps(text))
        for name, part in (("X_train", split.X_train), ("X_test", split.X_test)):
            part.to_csv(f"{tmp}/{name}.csv", index=False)
        for name, part in (("y_train", split.y_train), ("y_test", split.y_test)):
            pd.DataFrame({"y": part.to_numpy(dtype=float)}).to_csv(f"{tmp}/{name}.csv", index=False)
        done = subprocess.run(
            [str(python), "-c", FLAML_SCRIPT, tmp, f"{budget:.1f}"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(f"FLAML failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def bench_quality(seeds: list[int]) -> dict[str, Any]:
    """Per dataset and seed (the split's, the folds', the models'): the three on one split."""
    out: dict[str, Any] = {}
    for label, dataset, target in DATASETS:
        rows = []
        for seed in seeds:
            with tempfile.TemporaryDirectory() as tmp:
                ours = run_train(dataset, target, Path(tmp) / "m", "--seed", str(seed))
            ds, split = _split(dataset, target, seed)
            assert ds.schema.is_regression, label
            row: dict[str, Any] = {
                "seed": seed,
                "mlcontainer": ours,
                "flaml": flaml(split, ours["wall s"]),
                "hist_gradient_boosting default": default_hgb(split),
                "test rows": len(split.y_test),
                "load average": load_average(),
            }
            print(label, json.dumps(row), file=sys.stderr)
            rows.append(row)
        out[label] = {
            "mean test r2": {
                "mlcontainer": statistics.mean(r["mlcontainer"]["test r2"] for r in rows),
                "flaml": statistics.mean(r["flaml"]["r2"] for r in rows),
                "hist_gradient_boosting default": statistics.mean(
                    r["hist_gradient_boosting default"]["r2"] for r in rows
                ),
            },
            "mean test rmse": {
                "mlcontainer": statistics.mean(r["mlcontainer"]["test rmse"] for r in rows),
                "flaml": statistics.mean(r["flaml"]["rmse"] for r in rows),
                "hist_gradient_boosting default": statistics.mean(
                    r["hist_gradient_boosting default"]["rmse"] for r in rows
                ),
            },
            "mlcontainer r2 >= flaml's": sum(
                r["mlcontainer"]["test r2"] >= r["flaml"]["r2"] for r in rows
            ),
            "splits": len(rows),
            "runs": rows,
        }
    return out


def bench_latency(seconds: int, repeat: int) -> dict[str, Any]:
    sys.path.insert(0, str(BENCH))
    from serve_bench import start, stop, wait_ready, wrk

    from mlcontainer.training.data.dataset import load_dataset

    models = {
        "regressor (diabetes, ridge)": ("diabetes", "ridge"),
        "classifier (wine, logistic_regression)": ("wine", "logistic_regression"),
    }
    runs: dict[str, list[float]] = {label: [] for label in models}
    with tempfile.TemporaryDirectory() as tmp:
        servers = {}
        for port, (label, (dataset, model)) in zip((18710, 18711), models.items(), strict=True):
            out = Path(tmp) / dataset
            run_train(dataset, None, out, "-m", model, "--cv", "3")
            row = json.loads(load_dataset(dataset).X.head(1).to_json(orient="records"))
            cmd = [sys.executable, "-m", "mlcontainer", "serve", "--model", str(out),
                   "--port", str(port), "--runtime", "onnx", "--workers", "1"]  # fmt: skip
            process = start(cmd, Path(tmp) / f"{dataset}.log")
            url = f"http://127.0.0.1:{port}"
            wait_ready(f"{url}/ready", process)
            servers[label] = (process, url, json.dumps({"instances": row}))
        try:
            for _ in range(repeat):
                for label, (_, url, body) in servers.items():
                    result = wrk(f"{url}/predict", body, connections=1, seconds=seconds)
                    assert result["non-2xx"] == 0, result
                    runs[label].append(result["p50 ms"])
                    print(label, result, load_average(), file=sys.stderr)
        finally:
            for process, _, _ in servers.values():
                stop(process)
    medians = {label: statistics.median(v) for label, v in runs.items()}
    reg, cls = medians.values()
    return {
        "p50 ms runs": runs,
        "p50 ms median": medians,
        "regressor / classifier": reg / cls,
        "load average": load_average(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    train = sub.add_parser("train")
    train.add_argument("--repeat", type=int, default=3)
    quality = sub.add_parser("quality")
    quality.add_argument("--seeds", default="42,0,1,2,3", help="comma-separated split seeds")
    latency = sub.add_parser("latency")
    latency.add_argument("--seconds", type=int, default=10)
    latency.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    started = datetime.now(UTC)
    if args.what == "train":
        report = bench_train(args.repeat)
    elif args.what == "quality":
        report = bench_quality([int(x) for x in args.seeds.split(",")])
    else:
        report = bench_latency(args.seconds, args.repeat)
    report = {"started": started.isoformat(timespec="seconds"), "cores": os.cpu_count(), **report}
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"regression-{args.what}-{started:%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"written {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
