"""Metrics: what the comparison selects by, and the selected model's scores on the test split."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.decision import decide
from mlcontainer.core.errors import ConfigError
from mlcontainer.core.labels import label_array
from mlcontainer.core.schema import Label, Task
from mlcontainer.core.suggest import did_you_mean

if TYPE_CHECKING:
    import pandas as pd

    from mlcontainer.core.artifacts import Decision


@dataclass(frozen=True)
class MetricSpec:
    """A metric the comparison can report and select by."""

    name: str
    label: str
    greater_is_better: bool
    needs_proba: bool
    task: Task = "classification"


CLASSIFICATION_METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec("accuracy", "Accuracy", True, False),
        MetricSpec("balanced_accuracy", "Balanced accuracy", True, False),
        MetricSpec("f1_macro", "F1 (macro)", True, False),
        MetricSpec("f1_weighted", "F1 (weighted)", True, False),
        MetricSpec("precision_macro", "Precision (macro)", True, False),
        MetricSpec("precision_weighted", "Precision (weighted)", True, False),
        MetricSpec("recall_macro", "Recall (macro)", True, False),
        MetricSpec("recall_weighted", "Recall (weighted)", True, False),
        MetricSpec("roc_auc_ovr", "ROC AUC (one-vs-rest)", True, True),
        MetricSpec("pr_auc", "PR AUC (average precision)", True, True),
        MetricSpec("log_loss", "Log loss", False, True),
        MetricSpec("brier", "Brier score", False, True),
    )
}
REGRESSION_METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec("rmse", "RMSE (root mean squared error)", False, False, "regression"),
        MetricSpec("mae", "MAE (mean absolute error)", False, False, "regression"),
        MetricSpec("r2", "R² (coefficient of determination)", True, False, "regression"),
        MetricSpec("median_ae", "Median absolute error", False, False, "regression"),
        MetricSpec("mape", "MAPE (mean absolute percentage error)", False, False, "regression"),
    )
}
#: Every metric by name (the names of the two tasks do not overlap).
METRICS: dict[str, MetricSpec] = {**CLASSIFICATION_METRICS, **REGRESSION_METRICS}
TASK_METRICS: dict[Task, dict[str, MetricSpec]] = {
    "classification": CLASSIFICATION_METRICS,
    "regression": REGRESSION_METRICS,
}
#: What each task selects by unless ``--metric`` says otherwise.
DEFAULT_METRICS: dict[Task, str] = {"classification": "f1_macro", "regression": "rmse"}
DEFAULT_METRIC = DEFAULT_METRICS["classification"]


def check_metric(name: str, task: Task | None = None) -> MetricSpec:
    """Return the metric ``name`` (of ``task``, when given) or fail listing the valid ones."""
    if name not in METRICS:
        raise ConfigError(
            f"unknown metric {name!r}{did_you_mean(name, METRICS)}; valid: {', '.join(METRICS)}"
        )
    spec = METRICS[name]
    if task is not None and spec.task != task:
        raise ConfigError(
            f"--metric {name} is a {spec.task} metric, and the task is {task}; valid for "
            f"{task}: {', '.join(TASK_METRICS[task])}"
        )
    return spec


def score_regression(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R², median absolute error and MAPE (NaN where the truth holds a zero)."""
    truth = np.asarray(y_true, dtype=float)
    error = np.asarray(y_pred, dtype=float) - truth
    spread = float(np.sum((truth - truth.mean()) ** 2))
    out = {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": 1.0 - float(np.sum(error**2)) / spread if spread > 0 else math.nan,
        "median_ae": float(np.median(np.abs(error))),
        "mape": float(np.mean(np.abs(error) / np.abs(truth))) if np.all(truth != 0) else math.nan,
    }
    return out


def score_all(
    y_true: Sequence[Label] | np.ndarray | pd.Series,
    y_pred: Sequence[Label] | np.ndarray,
    proba: np.ndarray,
    classes: Sequence[Label],
) -> dict[str, float]:
    """Compute every metric in :data:`METRICS`; a metric that is undefined here is NaN.

    Macro averages are over the classes present in ``y_true``.

    NumPy on one confusion matrix rather than ten ``sklearn.metrics`` calls: their input checks
    cost ~40 ms per fold (a quarter of a default run's scoring); tests hold the two equal.
    """
    labels = list(classes)
    truth = _positions(y_true, labels)
    pred = _positions(y_pred, labels)
    return score_positions(truth, pred, proba, len(labels))


def score_positions(
    truth: np.ndarray,
    pred: np.ndarray,
    proba: np.ndarray,
    k: int,
    only: str | None = None,
) -> dict[str, float]:
    """:func:`score_all` of class positions (0 to ``k - 1``); only the metric ``only`` when
    given (the ensemble's greedy search scores thousands of blends by one metric)."""
    cm = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k).astype(float)
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    # zero_division=0, as scikit-learn: a class never predicted (or absent) scores 0.
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    weights = support / support.sum()
    wanted = CLASSIFICATION_METRICS if only is None else (only,)
    out: dict[str, Any] = {
        "accuracy": tp.sum() / cm.sum(),
        # Mean recall over the classes present in the truth (scikit-learn warns on absent ones).
        "balanced_accuracy": recall[support > 0].mean(),
    }
    if "roc_auc_ovr" in wanted:
        out["roc_auc_ovr"] = _roc_auc(truth, proba, k)
    if "pr_auc" in wanted:
        out["pr_auc"] = _pr_auc(truth, proba, k)
    if "log_loss" in wanted:
        out["log_loss"] = -np.mean(np.log(np.clip(proba[np.arange(len(truth)), truth], 1e-15, 1)))
    if "brier" in wanted:
        # Half the squared distance to the one-hot truth, summed over classes: in [0, 1], and
        # for two classes the usual mean of (p - y)² of the positive class.
        out["brier"] = np.mean(np.sum((proba - np.eye(k)[truth]) ** 2, axis=1)) / 2
    # Macro averages over the classes the truth holds: a class with no rows here (absent from
    # a fold or the test split) is not averaged in as a zero.
    present = support > 0
    for name, per_class in (("precision", precision), ("recall", recall), ("f1", f1)):
        out[f"{name}_macro"] = per_class[present].mean()
        out[f"{name}_weighted"] = (per_class * weights).sum()
    return {m: float(out[m]) for m in wanted}


def _positions(values: Sequence[Label] | np.ndarray | pd.Series, labels: list[Any]) -> np.ndarray:
    index = {c: i for i, c in enumerate(labels)}
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    return np.fromiter((index[v] for v in items), dtype=np.intp, count=len(items))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out: np.ndarray = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
    return out


def _roc_auc(truth: np.ndarray, proba: np.ndarray, k: int) -> float:
    """One-vs-rest AUC, macro over the classes (binary: of the second class)."""
    if np.bincount(truth, minlength=k).min() == 0:
        return math.nan  # undefined for a class with no positives
    if k == 2:
        return _binary_auc(truth == 1, proba[:, 1])
    return float(np.mean([_binary_auc(truth == j, proba[:, j]) for j in range(k)]))


def _pr_auc(truth: np.ndarray, proba: np.ndarray, k: int) -> float:
    """Average precision, one-vs-rest and macro over the classes (binary: of the second)."""
    if np.bincount(truth, minlength=k).min() == 0:
        return math.nan  # undefined for a class with no positives
    if k == 2:
        return _average_precision(truth == 1, proba[:, 1])
    return float(np.mean([_average_precision(truth == j, proba[:, j]) for j in range(k)]))


def _average_precision(positive: np.ndarray, score: np.ndarray) -> float:
    """Sum over thresholds (tied scores together) of precision x the recall gained, as
    ``sklearn.metrics.average_precision_score``."""
    order = np.argsort(-score, kind="mergesort")
    ranked, hits = score[order], positive[order].astype(float)
    ends = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # last row of each tie
    tp = np.cumsum(hits)[ends]
    precision = tp / (ends + 1)
    recall = tp / tp[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _binary_auc(positive: np.ndarray, score: np.ndarray) -> float:
    # Mann-Whitney U from average ranks (ties share their mean rank), as the ROC curve's area.
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2)[inverse]
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


@dataclass(frozen=True)
class Evaluation:
    """The selected model's results on the held-out test split."""

    metrics: dict[str, float]
    confusion_matrix: list[list[int]]
    per_class: dict[str, dict[str, float]]
    samples: list[dict[str, Any]]
    test_rows: int
    #: What the scores leave out, e.g. a class with no test rows (not averaged in as a zero).
    warnings: list[str] = field(default_factory=list)
    task: Task = "classification"
    #: The test rows' true and predicted values (labels, or numbers), for the pictures.
    truth: tuple[Any, ...] = ()
    predicted: tuple[Any, ...] = ()
    #: A classifier's test-split probabilities, one column per class in schema order (for
    #: the ROC, precision-recall and calibration curves); None for a regressor.
    probabilities: np.ndarray | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form written to ``metrics.json`` (a regressor has no classes)."""
        out: dict[str, Any] = {
            "task": self.task,
            "test_rows": self.test_rows,
            "metrics": json_floats(self.metrics),
        }
        if self.task == "classification":
            out["confusion_matrix"] = self.confusion_matrix
            out["per_class"] = {k: json_floats(v) for k, v in self.per_class.items()}
        out["warnings"] = list(self.warnings)
        return out


def evaluate(
    pipeline: Any,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    classes: Sequence[Label],
    *,
    sample_rows: int = 5,
    task: Task = "classification",
    decision: Decision | None = None,
) -> Evaluation:
    """Score a fitted pipeline once on the test split and keep a few example predictions.

    A binary classifier's ``decision`` (calibration, threshold) is applied as the runtimes
    apply it: the scores are those of the labels and probabilities the model will serve.
    """
    if task == "regression":
        return _evaluate_regression(pipeline, X_test, y_test, sample_rows=sample_rows)
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    decided = decide(np.asarray(pipeline.predict_proba(X_test), dtype=float), classes, decision)
    proba, pred = decided.probabilities, decided.labels
    truth = label_array(y_test)
    labels = list(classes)
    cm = confusion_matrix(truth, pred, labels=labels)
    p, r, f, s = precision_recall_fscore_support(
        truth, pred, labels=labels, average=None, zero_division=0
    )
    per_class = {
        str(c): {
            "precision": float(p[i]),
            "recall": float(r[i]),
            "f1": float(f[i]),
            "support": float(s[i]),
        }
        for i, c in enumerate(labels)
    }
    samples = [
        {
            "row": int(X_test.index[i]),
            "true": _py(truth[i]),
            "predicted": _py(pred[i]),
            "probability": float(proba[i, decided.positions[i]]),
        }
        for i in range(min(sample_rows, len(X_test)))
    ]
    absent = [str(c) for i, c in enumerate(labels) if s[i] == 0]
    warnings = (
        [
            f"class(es) {', '.join(map(repr, absent))} have no rows in the test split: their "
            "precision, recall and F1 are left out of the macro averages, not counted as zero"
        ]
        if absent
        else []
    )
    return Evaluation(
        metrics=score_all(truth, pred, proba, classes),
        confusion_matrix=cm.astype(int).tolist(),
        per_class=per_class,
        samples=samples,
        test_rows=len(X_test),
        warnings=warnings,
        truth=tuple(_py(v) for v in truth),
        predicted=tuple(_py(v) for v in pred),
        probabilities=np.asarray(proba, dtype=float),
    )


def _evaluate_regression(
    pipeline: Any, X_test: pd.DataFrame, y_test: pd.Series, *, sample_rows: int
) -> Evaluation:
    """Score a fitted regressor once on the test split: metrics, and actual / predicted / error
    for a few rows."""
    truth = np.asarray(y_test, dtype=float)
    pred = np.asarray(pipeline.predict(X_test), dtype=float)
    samples = [
        {
            "row": int(X_test.index[i]),
            "true": float(truth[i]),
            "predicted": float(pred[i]),
            "error": float(pred[i] - truth[i]),
        }
        for i in range(min(sample_rows, len(X_test)))
    ]
    return Evaluation(
        metrics=score_regression(truth, pred),
        confusion_matrix=[],
        per_class={},
        samples=samples,
        test_rows=len(X_test),
        task="regression",
        truth=tuple(truth.tolist()),
        predicted=tuple(pred.tolist()),
    )


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def json_floats(values: Mapping[str, float]) -> dict[str, float | None]:
    """Replace NaN by ``None`` so the values are valid JSON."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}
