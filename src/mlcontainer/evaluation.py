"""Metrics, the confusion matrix, and the report page and picture of an evaluated model."""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd

    from mlcontainer.schema import Label


@dataclass(frozen=True)
class MetricSpec:
    """A metric the comparison can report and select by."""

    name: str
    label: str
    greater_is_better: bool
    needs_proba: bool


METRICS: dict[str, MetricSpec] = {
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
        MetricSpec("log_loss", "Log loss", False, True),
    )
}
DEFAULT_METRIC = "f1_macro"


def check_metric(name: str) -> MetricSpec:
    """Return the metric called ``name`` or fail listing the valid ones."""
    if name not in METRICS:
        raise ConfigError(f"unknown metric {name!r}; valid: {', '.join(METRICS)}")
    return METRICS[name]


def label_array(values: Sequence[Label] | np.ndarray | pd.Series) -> np.ndarray:
    """Return labels as scikit-learn wants them: int64 if all are whole numbers, else objects.

    An object array of Python ints has the target type "unknown", which no metric accepts.
    """
    items = values.tolist() if hasattr(values, "tolist") else list(values)
    if items and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in items):
        return np.asarray(items, dtype=np.int64)
    return np.asarray(items, dtype=object)


def labels_from_proba(proba: np.ndarray, classes: Sequence[Label]) -> np.ndarray:
    """Pick the most probable class of each row (first class on ties), as the server does."""
    labels: np.ndarray = label_array(classes)[np.argmax(proba, axis=1)]
    return labels


def score_all(
    y_true: Sequence[Label] | np.ndarray | pd.Series,
    y_pred: Sequence[Label] | np.ndarray,
    proba: np.ndarray,
    classes: Sequence[Label],
) -> dict[str, float]:
    """Compute every metric in :data:`METRICS`; a metric that is undefined here is NaN.

    NumPy on one confusion matrix rather than ten ``sklearn.metrics`` calls: their input checks
    cost ~40 ms per fold (a quarter of a default run's scoring); tests hold the two equal.
    """
    labels = list(classes)
    truth = _positions(y_true, labels)
    pred = _positions(y_pred, labels)
    k = len(labels)
    cm = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k).astype(float)
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    # zero_division=0, as scikit-learn: a class never predicted (or absent) scores 0.
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support)
    f1 = _ratio(2 * tp, support + predicted)
    weights = support / support.sum()
    out = {
        "accuracy": tp.sum() / cm.sum(),
        # Mean recall over the classes present in the truth (scikit-learn warns on absent ones).
        "balanced_accuracy": recall[support > 0].mean(),
        "roc_auc_ovr": _roc_auc(truth, proba, k),
        "log_loss": -np.mean(np.log(np.clip(proba[np.arange(len(truth)), truth], 1e-15, 1.0))),
    }
    for name, per_class in (("precision", precision), ("recall", recall), ("f1", f1)):
        out[f"{name}_macro"] = per_class.mean()
        out[f"{name}_weighted"] = (per_class * weights).sum()
    return {k: float(out[k]) for k in METRICS}


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

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form written to ``metrics.json``."""
        return {
            "test_rows": self.test_rows,
            "metrics": json_floats(self.metrics),
            "confusion_matrix": self.confusion_matrix,
            "per_class": {k: json_floats(v) for k, v in self.per_class.items()},
        }


def evaluate(
    pipeline: Any,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    classes: Sequence[Label],
    *,
    sample_rows: int = 5,
) -> Evaluation:
    """Score a fitted pipeline once on the test split and keep a few example predictions."""
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    proba = pipeline.predict_proba(X_test)
    pred = labels_from_proba(proba, classes)
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
            "probability": float(proba[i].max()),
        }
        for i in range(min(sample_rows, len(X_test)))
    ]
    return Evaluation(
        metrics=score_all(truth, pred, proba, classes),
        confusion_matrix=cm.astype(int).tolist(),
        per_class=per_class,
        samples=samples,
        test_rows=len(X_test),
    )


def _py(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def json_floats(values: Mapping[str, float]) -> dict[str, float | None]:
    """Replace NaN by ``None`` so the values are valid JSON."""
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}


#: The colour of an empty cell and of the largest count (matplotlib's "Blues" ends).
_LIGHT, _DARK = (247, 251, 255), (8, 48, 107)
#: Class names longer than this are cut (with "…") so the picture keeps its size.
_LABEL_CHARS = 24


def confusion_matrix_png(matrix: Sequence[Sequence[int]], classes: Sequence[Label]) -> bytes:
    """Draw the confusion matrix as a PNG (counts in each cell, true labels down the side).

    Drawn with Pillow rather than matplotlib: importing and laying out a matplotlib figure
    cost ~1 s of CPU per run (measured), an eighth of the default run's target, for one
    small picture. The file is byte-identical from run to run (no date, no software tag).
    """
    from PIL import Image, ImageDraw, ImageFont

    data = np.asarray(matrix, dtype=np.int64).reshape(len(classes), len(classes))
    n = len(classes)
    font = ImageFont.load_default(size=14)
    bold = ImageFont.load_default(size=16)
    names = [_cut(str(c)) for c in classes]
    cell = max(34, min(64, 560 // max(n, 1)))
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def width(text: str, f: Any = font) -> int:
        left, _, right, _ = probe.textbbox((0, 0), text, font=f)
        return int(right - left)

    widest = max((width(t) for t in names), default=0)
    upright = all(width(t) <= cell - 4 for t in names)  # else x labels are drawn rotated
    pad, title_h, axis_h = 12, 30, 22
    left = pad + axis_h + widest + 8
    top = pad + title_h
    below = (22 if upright else widest + 10) + axis_h + pad
    size = (
        max(left + n * cell + pad, width("Confusion matrix (test split)", bold) + 2 * pad),
        top + n * cell + below,
    )
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.text(
        (size[0] // 2, pad), "Confusion matrix (test split)", fill="black", font=bold, anchor="mt"
    )
    peak = int(data.max()) if data.size else 0
    for i in range(n):
        for j in range(n):
            share = data[i, j] / peak if peak else 0.0
            colour = tuple(round(a + (b - a) * share) for a, b in zip(_LIGHT, _DARK, strict=True))
            x, y = left + j * cell, top + i * cell
            draw.rectangle((x, y, x + cell - 1, y + cell - 1), fill=colour)
            ink = "white" if share > 0.5 else "black"
            draw.text(
                (x + cell // 2, y + cell // 2), str(data[i, j]), fill=ink, font=font, anchor="mm"
            )
    draw.rectangle((left, top, left + n * cell - 1, top + n * cell - 1), outline="#888888")
    for k, name in enumerate(names):
        middle = top + k * cell + cell // 2
        draw.text((left - 6, middle), name, fill="black", font=font, anchor="rm")
        centre = left + k * cell + cell // 2
        if upright:
            draw.text((centre, top + n * cell + 4), name, fill="black", font=font, anchor="mt")
        else:
            label = _text_image(name, font, width(name)).rotate(90, expand=True)
            image.paste(label, (centre - label.width // 2, top + n * cell + 4), label)
    grid_bottom = top + n * cell + below - axis_h - pad
    draw.text(
        (left + n * cell // 2, grid_bottom + 4),
        "Predicted label",
        fill="black",
        font=font,
        anchor="mt",
    )
    side = _text_image("True label", font, width("True label")).rotate(90, expand=True)
    image.paste(side, (pad, top + n * cell // 2 - side.height // 2), side)
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def _cut(text: str) -> str:
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def _text_image(text: str, font: Any, width: int) -> Any:
    """Return ``text`` in black on a transparent strip, to be rotated and pasted."""
    from PIL import Image, ImageDraw

    strip = Image.new("RGBA", (width + 4, 20), (255, 255, 255, 0))
    ImageDraw.Draw(strip).text((2, 10), text, fill="black", font=font, anchor="lm")
    return strip


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.3em .6em;
text-align:right}th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}
tr.selected{background:#e8f4e8;font-weight:600}.muted{color:#777}code{background:#f4f4f4}
"""


def render_report(
    *,
    title: str,
    dataset: Mapping[str, Any],
    leaderboard: Sequence[Mapping[str, Any]],
    selection: Mapping[str, Any],
    evaluation: Evaluation,
    classes: Sequence[Label],
    png: bytes,
) -> str:
    """Return one self-contained HTML page (picture embedded) describing the trained model."""
    e = html.escape
    metric = str(selection["metric"])
    rows = []
    for entry in leaderboard:
        cls = ' class="selected"' if entry["name"] == selection["model"] else ""
        if entry.get("error"):
            rows.append(
                f"<tr{cls}><td>{e(entry['name'])}</td><td colspan=4>failed: "
                f"{e(str(entry['error']))}</td></tr>"
            )
            continue
        score = entry["scores"][metric]
        rows.append(
            f"<tr{cls}><td>{e(entry['name'])}</td><td>{_fmt(score['mean'])} ± "
            f"{_fmt(score['std'])}</td><td>{_fmt(entry['scores']['accuracy']['mean'])}</td>"
            f"<td>{entry['fit_seconds']:.3f}</td><td>{entry['predict_ms_per_row']:.4f}</td></tr>"
        )
    metric_rows = "".join(
        f"<tr><td>{e(METRICS[k].label)}</td><td>{_fmt(v)}</td></tr>"
        for k, v in evaluation.metrics.items()
    )
    class_rows = "".join(
        f"<tr><td>{e(c)}</td><td>{_fmt(v['precision'])}</td><td>{_fmt(v['recall'])}</td>"
        f"<td>{_fmt(v['f1'])}</td><td>{int(v['support'])}</td></tr>"
        for c, v in evaluation.per_class.items()
    )
    counts = ", ".join(f"{e(str(k))}: {v}" for k, v in dataset["class_counts"].items())
    img = base64.b64encode(png).decode()
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{e(title)}</h1>
<h2>Dataset</h2>
<p><b>{e(str(dataset["name"]))}</b> from <code>{e(str(dataset["source"]))}</code>:
{dataset["rows"]} rows, {dataset["features"]} features, target <code>{e(str(dataset["target"]))}
</code> ({len(classes)} classes: {counts}).
<span class="muted">Content fingerprint {e(str(dataset["fingerprint"])[:16])}…</span></p>
<h2>Model comparison</h2>
<p>{selection["cv"]}-fold stratified cross-validation on the training split
({selection["train_rows"]} rows); selected by <b>{e(METRICS[metric].label)}</b>.</p>
<table><tr><th>Model</th><th>{e(METRICS[metric].label)} (mean ± std)</th><th>Accuracy</th>
<th>Fit time (s)</th><th>Predict (ms/row)</th></tr>{"".join(rows)}</table>
<h2>Selected model on the test split</h2>
<p><b>{e(str(selection["model"]))}</b>, scored once on {evaluation.test_rows} held-out rows.</p>
<table><tr><th>Metric</th><th>Value</th></tr>{metric_rows}</table>
<img alt="Confusion matrix" src="data:image/png;base64,{img}">
<h3>Per class</h3>
<table><tr><th>Class</th><th>Precision</th><th>Recall</th><th>F1</th><th>Support</th></tr>
{class_rows}</table>
</body></html>
"""


def _fmt(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.4f}"
