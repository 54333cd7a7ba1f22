"""The model summary behind ``GET /``: as JSON, and as the data of the HTML page."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlcontainer.inference.predictor import Predictor

#: Metrics shown on the page, in this order, when the manifest has them.
PAGE_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "roc_auc_ovr", "log_loss")
REGRESSION_PAGE_METRICS = ("r2", "rmse", "mae", "median_ae", "mape")


def model_summary(predictor: Predictor) -> dict[str, Any]:
    """Summarise the model: name, estimator, runtime, dataset, metrics, classes, input schema."""
    manifest = predictor.manifest
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
        "links": {
            "predict": "/predict",
            "model": "/model",
            "openapi": "/openapi.json",
            "metrics": "/metrics",
            "report": "/report",
            "confusion_matrix": "/confusion_matrix.png",
        },
    }


def page_metrics(summary: dict[str, Any]) -> list[tuple[str, float]]:
    """Return the headline metrics for the page as ``(name, value)`` pairs."""
    metrics = summary["metrics"]
    names = REGRESSION_PAGE_METRICS if summary.get("task") == "regression" else PAGE_METRICS
    return [(n, float(metrics[n])) for n in names if isinstance(metrics.get(n), (int, float))]
