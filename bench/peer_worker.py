"""One peer-benchmark run inside a tool's own venv: train on train.csv within the budget, save
the model, predict test.csv, time a 1-row prediction of the saved model reloaded.

    <venv>/bin/python bench/peer_worker.py TOOL PRESET WORKDIR TARGET TASK BUDGET SEED

Writes WORKDIR/result.json: predictions (labels and, for classes, probabilities in the order
of ``classes``), the training wall time and the 1-row latency (median of 30 calls, after one
warm-up). Peak memory is measured from outside (``/usr/bin/time``). Imports only the tool it
runs, pandas and the standard library.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

LATENCY_CALLS = 30


def _latency(predict_one: Any) -> float:
    predict_one()  # warm-up: lazy imports, first-call caches
    times = []
    for _ in range(LATENCY_CALLS):
        start = time.perf_counter()
        predict_one()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def run_mlcontainer(work: Path, target: str, task: str, budget: float, seed: int) -> dict[str, Any]:
    from mlcontainer.inference.predictor import load_predictor
    from mlcontainer.training.options import TrainOptions
    from mlcontainer.training.workflow import run_training

    model = work / "model"
    start = time.perf_counter()
    options = TrainOptions(
        dataset=str(work / "train.csv"),
        target=target,
        task=task,
        time_budget=budget,
        seed=seed,
        output=model,
    )
    run_training(options)
    wall = time.perf_counter() - start
    import pandas as pd

    test = pd.read_csv(work / "test.csv")
    records = test.astype(object).where(test.notna(), None).to_dict("records")
    predictor = load_predictor(model)
    answer = predictor.predict_records(records)
    out: dict[str, Any] = {"wall": wall, "runtime": predictor.runtime}
    if task == "regression":
        out["values"] = [float(v) for v in answer.labels]
    else:
        out["classes"] = [str(c) for c in answer.classes]
        out["labels"] = [str(v) for v in answer.labels]
        out["probabilities"] = [[float(p) for p in row] for row in answer.probabilities]
    out["latency_ms"] = _latency(lambda: predictor.predict_records(records[:1]))
    return out


def run_flaml(work: Path, target: str, task: str, budget: float, seed: int) -> dict[str, Any]:
    import pickle

    import pandas as pd
    from flaml import AutoML

    train = pd.read_csv(work / "train.csv")
    test = pd.read_csv(work / "test.csv")
    X, y = train.drop(columns=[target]), train[target]
    if task != "regression":
        y = y.astype(str)
    automl = AutoML()
    start = time.perf_counter()
    automl.fit(X, y, task="regression" if task == "regression" else "classification",
               time_budget=budget, seed=seed, verbose=0)  # fmt: skip
    wall = time.perf_counter() - start
    (work / "model.pkl").write_bytes(pickle.dumps(automl))
    loaded = pickle.loads((work / "model.pkl").read_bytes())  # our own file
    out: dict[str, Any] = {"wall": wall, "best": str(automl.best_estimator)}
    if task == "regression":
        out["values"] = [float(v) for v in loaded.predict(test)]
    else:
        out["classes"] = [str(c) for c in loaded.classes_]
        out["labels"] = [str(v) for v in loaded.predict(test)]
        out["probabilities"] = loaded.predict_proba(test).tolist()
    one = test.head(1)
    out["latency_ms"] = _latency(lambda: loaded.predict(one))
    return out


def run_autogluon(
    work: Path, target: str, task: str, budget: float, seed: int, preset: str
) -> dict[str, Any]:
    import pandas as pd
    from autogluon.tabular import TabularPredictor

    train = pd.read_csv(work / "train.csv")
    test = pd.read_csv(work / "test.csv")
    if task != "regression":
        train[target] = train[target].astype(str)
    problem = "regression" if task == "regression" else None  # None: binary or multiclass
    start = time.perf_counter()
    TabularPredictor(label=target, path=str(work / "ag"), problem_type=problem, verbosity=0).fit(
        train,
        time_limit=budget,
        presets=preset,
        # high_quality's DyStack refits a copy in a subprocess; without ray it stops with
        # "Learner is already fit" (AutoGluon 1.6.3): stacking is kept, its check is not run.
        **({"dynamic_stacking": False} if preset != "medium_quality" else {}),
    )  # its models' own fixed seeds
    del seed  # the split varies with the seed; AutoGluon's fit takes none
    wall = time.perf_counter() - start
    loaded = TabularPredictor.load(str(work / "ag"), verbosity=0)
    out: dict[str, Any] = {"wall": wall, "best": str(loaded.model_best)}
    if task == "regression":
        out["values"] = [float(v) for v in loaded.predict(test)]
    else:
        proba = loaded.predict_proba(test)
        out["classes"] = [str(c) for c in proba.columns]
        out["labels"] = [str(v) for v in loaded.predict(test)]
        out["probabilities"] = proba.to_numpy().tolist()
    one = test.head(1)
    out["latency_ms"] = _latency(lambda: loaded.predict(one))
    return out


def main(argv: list[str]) -> None:
    tool, preset, workdir, target, task, budget, seed = argv
    work = Path(workdir)
    args = (work, target, task, float(budget), int(seed))
    if tool == "mlcontainer":
        out = run_mlcontainer(*args)
    elif tool == "flaml":
        out = run_flaml(*args)
    elif tool == "autogluon":
        out = run_autogluon(*args, preset=preset)
    else:
        raise SystemExit(f"unknown tool {tool!r}; valid: mlcontainer, flaml, autogluon")
    (work / "result.json").write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
