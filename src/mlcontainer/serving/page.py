"""The model summary behind ``GET /``: as JSON, and as the data of the HTML page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlcontainer.inference.predictor import Predictor

#: The answer puts the typed values of this many of the most important features against
#: their training spread.
TOP_FEATURES = 5
#: Metrics shown on the page, in this order, when the manifest has them.
PAGE_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc_ovr", "log_loss")
REGRESSION_PAGE_METRICS = ("r2", "rmse", "mae", "median_ae", "mape")


def model_summary(predictor: Predictor) -> dict[str, Any]:
    """Summarise the model: name, estimator, runtime, dataset, metrics, classes, input schema,
    and what helps fill the form (a typical row, held-out rows, the most important features)."""
    manifest = predictor.manifest
    examples = manifest.examples
    return {
        "name": predictor.name,
        "task": predictor.schema.task,
        "estimator": manifest.model.description or manifest.model.estimator,
        "runtime": predictor.runtime,
        "runtime_reason": predictor.runtime_reason,
        "dataset": manifest.dataset.model_dump(mode="json"),
        "metrics": dict(manifest.metrics),
        "classes": list(predictor.classes),
        "features": [f.to_dict() for f in predictor.schema.features],
        "sha256": predictor.sha256,
        "examples": examples.model_dump(mode="json") if examples is not None else None,
        "top_features": top_features(predictor),
        "links": {
            "predict": "/predict",
            "model": "/model",
            "openapi": "/openapi.json",
            "metrics": "/metrics",
            "report": "/report",
            "confusion_matrix": "/confusion_matrix.png",
        },
    }


def top_features(predictor: Predictor) -> list[str]:
    """The features that matter most (by permutation importance; in schema order for folders
    that did not measure it), at most :data:`TOP_FEATURES`."""
    names = list(predictor.schema.names)
    importance = predictor.manifest.importance
    if importance is not None:
        ranked = [c.column for c in importance.columns if c.column in names]
        names = ranked + [n for n in names if n not in ranked]
    return names[:TOP_FEATURES]


def page_metrics(summary: dict[str, Any]) -> list[tuple[str, float]]:
    """Return the headline metrics for the page as ``(name, value)`` pairs."""
    metrics = summary["metrics"]
    names = REGRESSION_PAGE_METRICS if summary.get("task") == "regression" else PAGE_METRICS
    return [(n, float(metrics[n])) for n in names if isinstance(metrics.get(n), (int, float))]
