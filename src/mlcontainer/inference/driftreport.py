"""The batch drift report: one self-contained HTML page, a picture per drifted feature.

matplotlib (the training extra) draws the pictures, imported only here; Jinja2 (Flask's)
renders the page with autoescaping, so a column or category named ``<script>`` is text.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlcontainer.core.drift import FeatureDrift

if TYPE_CHECKING:
    from mlcontainer.inference.driftcheck import BatchDrift

#: A feature whose PSI reaches this gets a picture ("a shift worth a look").
DRIFTED = 0.1
_DPI = 100


@dataclass(frozen=True)
class Picture:
    """One feature's bars, as an embedded PNG."""

    name: str
    data_uri: str


def drift_picture(drift: FeatureDrift) -> Picture:
    """Bars of the reference's and the batch's share per bin, side by side."""
    from matplotlib.figure import Figure

    bins = len(drift.display)
    fig = Figure(figsize=(max(5.0, 0.55 * bins + 2), 3.6), dpi=_DPI)
    ax = fig.add_subplot()
    x = np.arange(bins)
    ax.bar(x - 0.2, drift.expected[:bins], width=0.4, label="training (reference)")
    ax.bar(x + 0.2, drift.shares[:bins], width=0.4, label="this batch")
    ax.set_xticks(x, [_short(d) for d in drift.display], rotation=35, ha="right", fontsize=8)
    ax.set_ylabel("share of rows")
    ax.set_title(f"{drift.name}: PSI {drift.psi:.3f}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    encoded = base64.b64encode(buf.getvalue()).decode()
    return Picture(drift.name, f"data:image/png;base64,{encoded}")


def _short(text: str, limit: int = 24) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_report(result: BatchDrift, *, model: str, source: str, fail_above: float | None) -> str:
    """Return the report page: the ranked table, then a picture per drifted feature."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("mlcontainer.inference", "templates"),
        autoescape=select_autoescape(["html"]),
        keep_trailing_newline=True,
    )
    drifted = [d for d in result.drifts if d.psi >= DRIFTED]
    return env.get_template("drift.html").render(
        model=model,
        source=source,
        rows=result.rows,
        drifts=result.drifts,
        pictures=[drift_picture(d) for d in drifted],
        drifted=DRIFTED,
        fail_above=fail_above,
        largest=result.largest,
        warnings=result.warnings,
    )
