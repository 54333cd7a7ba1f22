"""The report page of a trained model: one self-contained HTML file from a Jinja2 template."""

from __future__ import annotations

import base64
import math
from collections.abc import Sequence

from mlcontainer.core.artifacts import Manifest
from mlcontainer.core.schema import Label
from mlcontainer.training.metrics import METRICS, Evaluation

TEMPLATE = "report.html"


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def render_report(
    manifest: Manifest, evaluation: Evaluation, classes: Sequence[Label], png: bytes
) -> str:
    """Return one self-contained HTML page (picture embedded) describing the trained model."""
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
        png=base64.b64encode(png).decode(),
    )
