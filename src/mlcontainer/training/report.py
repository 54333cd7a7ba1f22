"""The report page of a trained model: one self-contained HTML file from a Jinja2 template."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence

from mlcontainer.core.artifacts import Manifest
from mlcontainer.core.schema import Label
from mlcontainer.training.metrics import METRICS, Evaluation

TEMPLATE = "report.html"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


#: Each picture's title and the one line that says how to read it.
PICTURES = {
    "confusion_matrix": (
        "Confusion matrix",
        "Rows are the true classes, columns the predicted ones: the diagonal is right.",
    ),
    "predicted_vs_actual": (
        "Predicted vs actual",
        "One point per test row; on the red diagonal the prediction is exact.",
    ),
    "residuals": (
        "Residuals vs predicted",
        "Errors should scatter evenly around zero: a curve or a funnel means a missed pattern.",
    ),
    "residual_histogram": (
        "Residual histogram",
        "How large the errors are, and whether they lean one way.",
    ),
}


def render_report(
    manifest: Manifest,
    evaluation: Evaluation,
    classes: Sequence[Label],
    pictures: Mapping[str, bytes],
) -> str:
    """Return one self-contained HTML page (pictures embedded) describing the trained model."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("mlcontainer.training", "templates"),
        autoescape=select_autoescape(["html"]),
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = _fmt
    return env.get_template(TEMPLATE).render(
        title=f"mlcontainer: {manifest.name}",
        dataset=manifest.dataset,
        selection=manifest.selection,
        leaderboard=manifest.leaderboard,
        metric_label=METRICS[manifest.selection.metric].label,
        labels={name: spec.label for name, spec in METRICS.items()},
        evaluation=evaluation,
        classes=classes,
        regression=manifest.input_schema.is_regression,
        pictures=[
            (*PICTURES[name], base64.b64encode(data).decode()) for name, data in pictures.items()
        ],
        first_metric="r2" if manifest.input_schema.is_regression else "accuracy",
    )
