"""Permutation importance of the original columns on the test split, bounded in time."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.artifacts import Decision
from mlcontainer.core.decision import decide
from mlcontainer.core.labels import label_array
from mlcontainer.core.schema import Schema
from mlcontainer.core.threads import one_native_thread
from mlcontainer.training.search.metrics import TASK_METRICS, score_all, score_regression

if TYPE_CHECKING:
    import pandas as pd

#: Test rows the columns are shuffled on: a seeded sample of a larger split. 1 000 rows of
#: Adult (14 columns, 5 shuffles) took 1.0 s with its gradient boosting model here.
MAX_ROWS = 1000
#: Shuffles per column; the report shows their spread.
REPEATS = 5
#: Columns kept (largest first) in the manifest, the report and the picture.
TOP = 15
#: Seconds the shuffling may take, estimated from one scoring of the sample; a slower model
#: (an SVM or k-NN on many rows) is shuffled on fewer rows instead, and the report says so.
SECONDS = 2.5
#: The fewest rows the time limit may leave.
MIN_ROWS = 100
#: What is scored when the selection metric is undefined on the sample (always defined).
FALLBACK = {"classification": "accuracy", "regression": "mae"}


@dataclass(frozen=True)
class ColumnScore:
    """How much the score dropped when one original column was shuffled."""

    column: str
    mean: float
    std: float


@dataclass(frozen=True)
class Importances:
    """The columns that matter most, and how that was measured."""

    metric: str
    rows: int
    repeats: int
    #: Largest first, at most :data:`TOP`.
    columns: tuple[ColumnScore, ...]
    #: How many columns were shuffled in all.
    total: int


def permutation_importances(
    pipeline: Any,
    X: pd.DataFrame,
    y: pd.Series,
    schema: Schema,
    *,
    metric: str,
    random_state: int,
    decision: Decision | None = None,
    max_rows: int = MAX_ROWS,
    repeats: int = REPEATS,
    seconds: float = SECONDS,
) -> Importances:
    """Shuffle each original column of ``X`` (not its one-hot parts: the pipeline encodes
    after the shuffle) and measure how much ``metric`` drops, as a greater-is-better score.
    A binary classifier's ``decision`` (calibration, threshold) is applied as when serving.

    Scored with the project's own metrics (NumPy, as in cross-validation): scikit-learn's
    scorers check their inputs on every call, and this makes ``repeats`` calls per column.
    """
    from sklearn.inspection import permutation_importance

    truth = np.asarray(y, dtype=float) if schema.is_regression else label_array(y)
    rows = min(max_rows, len(X))
    rng = np.random.default_rng(random_state)
    idx = np.sort(rng.choice(len(X), size=rows, replace=False))
    sample, target = X.iloc[idx], truth[idx]
    if metric not in TASK_METRICS[schema.task]:
        metric = FALLBACK[schema.task]
    score = _scorer(schema, metric, decision)
    with one_native_thread():
        start = time.perf_counter()
        first = score(pipeline, sample, target)
        estimate = (time.perf_counter() - start) * repeats * X.shape[1]
        if not math.isfinite(first):  # e.g. MAPE where the sample's truth holds a zero
            metric = FALLBACK[schema.task]
            score = _scorer(schema, metric, decision)
        if estimate > seconds and rows > MIN_ROWS:
            rows = max(MIN_ROWS, int(rows * seconds / estimate))
            sample, target = sample.iloc[:rows], target[:rows]
        result = permutation_importance(
            pipeline, sample, target, scoring=score, n_repeats=repeats, random_state=random_state
        )
    means, stds = result.importances_mean, result.importances_std
    ranked = sorted(
        (ColumnScore(str(c), float(means[j]), float(stds[j])) for j, c in enumerate(X.columns)),
        key=lambda c: -c.mean,
    )
    return Importances(metric, rows, repeats, tuple(ranked[:TOP]), X.shape[1])


def _scorer(schema: Schema, metric: str, decision: Decision | None) -> Any:
    """A scoring callable for ``permutation_importance``: ``metric``, greater is better."""
    spec = TASK_METRICS[schema.task][metric]
    sign = 1.0 if spec.greater_is_better else -1.0
    classes = schema.classes

    def score(estimator: Any, X: pd.DataFrame, y: np.ndarray) -> float:
        if schema.is_regression:
            values = score_regression(y, np.asarray(estimator.predict(X), dtype=float))
        else:
            proba = np.asarray(estimator.predict_proba(X), dtype=float)
            decided = decide(proba, classes, decision)
            values = score_all(y, decided.labels, decided.probabilities, classes)
        return sign * values[spec.name]

    return score
