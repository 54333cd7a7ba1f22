"""Pictures of a trained model for the report and the serving page, drawn with matplotlib.

Every picture is a :class:`Picture`: PNG bytes with the title and axis labels drawn on it
and a one-line caption saying how to read it. Figures are built with
``matplotlib.figure.Figure`` (no pyplot state, no display: PNGs go through the Agg canvas),
and the files are byte-identical from run to run (no date or software tag in them).
matplotlib is imported only inside the drawing functions: the serving-only install has none.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mlcontainer.core.schema import Label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

#: Names longer than this are cut (with "…") so a picture keeps its size.
_LABEL_CHARS = 24
#: One-vs-rest curves are drawn for at most this many classes (the most frequent ones).
MAX_CURVES = 10
_BLUE, _RED, _GREEN, _GREY = "#1f77b4", "#d62728", "#2ca02c", "#7f7f7f"
_DPI = 100


@dataclass(frozen=True)
class Picture:
    """A drawn picture: its name, what its title and axes say, how to read it, and the PNG.

    ``figure`` is the matplotlib figure it was rendered from (what was drawn, as data); two
    pictures are equal when everything else is.
    """

    name: str
    title: str
    xlabel: str
    ylabel: str
    caption: str
    png: bytes
    figure: Figure = field(compare=False, repr=False)


def _figure(width: float, height: float) -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI)
    return fig, fig.subplots()


def _picture(name: str, fig: Figure, caption: str) -> Picture:
    """Render ``fig`` to PNG bytes without metadata; its first axes give the title and labels."""
    ax = fig.axes[0]
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return Picture(
        name, ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), caption, buf.getvalue(), fig
    )


def _cut(text: object) -> str:
    text = str(text)
    return text if len(text) <= _LABEL_CHARS else text[: _LABEL_CHARS - 1] + "…"


def confusion_matrix_picture(matrix: Sequence[Sequence[int]], classes: Sequence[Label]) -> Picture:
    """Draw the confusion matrix: counts in each cell, true classes down the side."""
    from sklearn.metrics import ConfusionMatrixDisplay

    n = len(classes)
    data = np.asarray(matrix, dtype=np.int64).reshape(n, n)
    names = [_cut(c) for c in classes]
    side = min(9.0, max(4.2, 2.4 + 0.5 * n))
    fig, ax = _figure(side + 0.4, side)
    upright = all(len(name) <= 6 for name in names) or n <= 3
    ConfusionMatrixDisplay(data, display_labels=names).plot(
        ax=ax,
        cmap="Blues",
        colorbar=False,
        values_format="d",
        xticks_rotation="horizontal" if upright else "vertical",
    )
    ax.set_title("Confusion matrix (test split)")
    return _picture(
        "confusion_matrix",
        fig,
        "Rows are the true classes, columns the predicted ones: counts on the diagonal are "
        "right, any other cell says which class was taken for which.",
    )


def classification_pictures(
    truth: Sequence[Label],
    probabilities: np.ndarray,
    classes: Sequence[Label],
    *,
    threshold: float | None = None,
    positive: Label | None = None,
) -> list[Picture]:
    """ROC and precision-recall curves (one-vs-rest for several classes) and the calibration
    curve of a classifier's test-split probabilities (one column per class, in order).

    For two classes the operating point is marked on the ROC and precision-recall curves:
    ``threshold`` (predict ``positive``, default the second class, when its probability is
    at least that), or 0.5 when it is None.
    """
    from sklearn.calibration import CalibrationDisplay
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    proba = np.asarray(probabilities, dtype=float)
    labels = list(classes)
    truth_list = list(truth)
    if len(labels) == 2:
        pos = labels.index(positive) if positive is not None else 1
        curves = [(str(labels[pos]), np.array([t == labels[pos] for t in truth_list]), pos)]
    else:
        curves = _one_vs_rest(truth_list, labels)
    binary = len(labels) == 2
    shown = ", ".join(name for name, _, _ in curves)
    left_out = len(labels) - len(curves) if not binary else 0
    more = ""
    if left_out:
        what = "class is" if left_out == 1 else "classes are"
        more = f" ({left_out} {what} not drawn: the least frequent, or with no test rows)"

    fig, ax = _figure(5.6, 4.8)
    for k, (name, is_pos, j) in enumerate(curves):
        RocCurveDisplay.from_predictions(
            is_pos.astype(int), proba[:, j], pos_label=1, name=_cut(name), ax=ax,
            plot_chance_level=k == len(curves) - 1,
        )  # fmt: skip
    if binary:
        _mark_threshold(ax, curves[0][1], proba[:, curves[0][2]], threshold, kind="roc")
    ax.set(
        title="ROC curve (test split)",
        xlabel="false positive rate",
        ylabel="true positive rate",
    )
    ax.legend(loc="lower right", fontsize="small")
    roc = _picture(
        "roc_curve",
        fig,
        (
            f"How many {shown} rows are caught (up) for how many others are flagged (right) "
            "as the threshold moves; the dot is the threshold in use, the nearer the top left "
            "the better, the dashed diagonal is guessing."
            if binary
            else "Each class against the rest: the nearer a curve to the top left corner, the "
            f"better that class is told apart; the dashed diagonal is guessing{more}."
        ),
    )

    fig, ax = _figure(5.6, 4.8)
    for name, is_pos, j in curves:
        PrecisionRecallDisplay.from_predictions(
            is_pos.astype(int), proba[:, j], pos_label=1, name=_cut(name), ax=ax,
            plot_chance_level=binary,
        )  # fmt: skip
    if binary:
        _mark_threshold(ax, curves[0][1], proba[:, curves[0][2]], threshold, kind="pr")
    ax.set(title="Precision-recall curve (test split)", xlabel="recall", ylabel="precision")
    ax.legend(loc="lower left", fontsize="small")
    pr = _picture(
        "precision_recall_curve",
        fig,
        (
            f"Of the rows predicted {shown}, the share that are (up), against the share of "
            f"all {shown} rows found (right); the dot is the threshold in use, the dashed line "
            "the share of positives (guessing)."
            if binary
            else "Each class against the rest: precision (up) against recall (right) as the "
            f"threshold moves; the higher and further right, the better{more}."
        ),
    )

    fig, ax = _figure(5.6, 4.8)
    bins = 10 if len(truth_list) >= 200 else 5
    for k, (name, is_pos, j) in enumerate(curves):
        CalibrationDisplay.from_predictions(
            is_pos.astype(int), proba[:, j], n_bins=bins, pos_label=1, name=_cut(name), ax=ax,
            ref_line=k == 0,
        )  # fmt: skip
    ax.set(
        title="Calibration curve (test split)",
        xlabel="mean predicted probability",
        ylabel="share of rows that are the class",
    )
    ax.legend(loc="upper left", fontsize="small")
    calibration = _picture(
        "calibration_curve",
        fig,
        f"Test rows grouped into {bins} bins by predicted probability: on the dotted diagonal "
        "a predicted 0.8 comes true 8 times in 10; below it the model is overconfident, above "
        f"it underconfident{more}.",
    )
    return [roc, pr, calibration]


def _one_vs_rest(truth: list[Label], labels: list[Label]) -> list[tuple[str, np.ndarray, int]]:
    """The classes with both positive and negative test rows, most frequent first (at most
    :data:`MAX_CURVES`), each with its positives and its probability column."""
    out = []
    for j, c in enumerate(labels):
        is_pos = np.array([t == c for t in truth])
        if 0 < is_pos.sum() < len(is_pos):  # a curve needs both kinds of rows
            out.append((str(c), is_pos, j))
    out.sort(key=lambda item: -int(item[1].sum()))  # stable: ties keep the class order
    return sorted(out[:MAX_CURVES], key=lambda item: item[2])


def operating_point(
    is_pos: np.ndarray, score: np.ndarray, threshold: float
) -> tuple[float, float, float]:
    """The false positive rate, true positive rate (recall) and precision when the rows
    whose ``score`` is at least ``threshold`` are predicted positive (NaN where undefined)."""
    flagged = np.asarray(score, dtype=float) >= threshold
    positive = np.asarray(is_pos, dtype=bool)
    fpr = float(flagged[~positive].mean()) if (~positive).any() else math.nan
    tpr = float(flagged[positive].mean()) if positive.any() else math.nan
    precision = float(positive[flagged].mean()) if flagged.any() else math.nan
    return fpr, tpr, precision


def _mark_threshold(
    ax: Axes, is_pos: np.ndarray, score: np.ndarray, threshold: float | None, *, kind: str
) -> None:
    """Mark where the model operates: ``threshold``, or 0.5 when None."""
    t = 0.5 if threshold is None else threshold
    fpr, tpr, precision = operating_point(is_pos, score, t)
    x, y = (fpr, tpr) if kind == "roc" else (tpr, precision)
    if math.isnan(x) or math.isnan(y):
        return  # e.g. nothing predicted positive: no precision to mark
    label = f"threshold {t:.2f}" + (" (chosen)" if threshold is not None else "")
    ax.plot([x], [y], "o", color=_RED, markersize=7, label=label, zorder=5)


def fold_scores_picture(
    candidates: Sequence[tuple[str, Sequence[float | None]]],
    *,
    metric_label: str,
    greater_is_better: bool,
    selected: str,
    baseline: str = "baseline",
) -> Picture:
    """Each candidate's cross-validation score on every fold (a point a fold, a bar at the
    mean), best first as ranked, the selected model in green and the baseline in grey.

    The scale fits the models, not the baseline: a baseline far below them would squeeze
    their spreads into a line, so its mean is written at the edge instead.
    """
    rows = []
    for name, scores in candidates:
        finite = [s for s in scores if s is not None and math.isfinite(s)]
        if finite:  # a candidate that failed or was skipped has no fold scores
            rows.append((name, np.asarray(finite, dtype=float)))
    fig, ax = _figure(6.4, 1.3 + 0.42 * max(1, len(rows)))
    models = [v for n, v in rows if n != baseline] or [v for _, v in rows]
    low = min((float(v.min()) for v in models), default=0.0)
    high = max((float(v.max()) for v in models), default=1.0)
    pad = max(high - low, 0.02 * max(abs(high), 1e-9)) * 0.15
    low, high = low - pad, high + pad
    for i, (name, values) in enumerate(rows):
        colour = _GREEN if name == selected else _GREY if name == baseline else _BLUE
        # Spread the points a little up and down so equal fold scores stay visible.
        offsets = np.linspace(-0.18, 0.18, len(values)) if len(values) > 1 else np.zeros(1)
        mean = float(values.mean())
        if low <= mean <= high:
            ax.hlines(i, values.min(), values.max(), color=colour, linewidth=1, alpha=0.6)
            ax.scatter(values, i + offsets, s=22, color=colour, alpha=0.8, edgecolors="none")
            ax.plot([mean] * 2, [i - 0.3, i + 0.3], color=colour, linewidth=2.5)
        else:
            below = mean < low
            ax.annotate(
                f"{'← ' if below else ''}mean {mean:.4g}, off the scale{'' if below else ' →'}",
                xy=(low if below else high, i), ha="left" if below else "right",
                va="center", color=colour, fontsize="small",
            )  # fmt: skip
    ax.set_xlim(low, high)
    ax.set_yticks(range(len(rows)), [_cut(n) for n, _ in rows])
    ax.set_ylim(len(rows) - 0.5, -0.5)  # the best at the top
    better = "higher" if greater_is_better else "lower"
    ax.set(
        title="Cross-validation scores per candidate",
        xlabel=f"{metric_label} on each fold ({better} is better)",
        ylabel="candidate (best first)",
    )
    ax.grid(axis="x", alpha=0.3)
    return _picture(
        "fold_scores",
        fig,
        "A point per fold and a bar at the mean: a wide spread means the score depends on the "
        "rows it was measured on; green is the selected model, grey the baseline, which "
        "ignores the features.",
    )


def importance_picture(
    columns: Sequence[tuple[str, float, float]],
    *,
    metric_label: str,
    rows: int,
    repeats: int,
    total: int,
) -> Picture:
    """Permutation importance as horizontal bars (largest at the top) with the spread over
    the repeats as error bars."""
    names = [_cut(c) for c, _, _ in columns]
    means = np.asarray([m for _, m, _ in columns], dtype=float)
    stds = np.asarray([s for _, _, s in columns], dtype=float)
    fig, ax = _figure(6.4, 1.4 + 0.3 * max(1, len(columns)))
    ax.barh(range(len(columns)), means, xerr=stds, color=_BLUE, alpha=0.85, capsize=2)
    ax.axvline(0.0, color=_GREY, linewidth=0.8)
    ax.set_yticks(range(len(columns)), names)
    ax.set_ylim(len(columns) - 0.5, -0.5)
    ax.set(
        title="Permutation importance (test split)"
        if total <= len(columns)
        else f"Permutation importance (top {len(columns)} of {total} columns, test split)",
        xlabel=f"drop in {metric_label} when the column is shuffled",
        ylabel="column",
    )
    return _picture(
        "permutation_importance",
        fig,
        f"How much worse the model scores when one column's values are shuffled ({rows} test "
        f"rows, {repeats} shuffles each, the error bar their spread): a long bar is a column "
        "the model relies on, one near zero it could do without.",
    )


def regression_pictures(truth: Sequence[float], predicted: Sequence[float]) -> list[Picture]:
    """The pictures of a regressor on the test split: predicted vs actual (with the diagonal
    where they agree), residuals against predictions, and the residual histogram."""
    actual = np.asarray(truth, dtype=float)
    guess = np.asarray(predicted, dtype=float)
    error = guess - actual
    low, high = float(min(actual.min(), guess.min())), float(max(actual.max(), guess.max()))
    out = []

    fig, ax = _figure(5.2, 4.4)
    ax.scatter(actual, guess, s=14, alpha=0.7, color=_BLUE, edgecolors="none")
    ax.plot([low, high], [low, high], color=_RED, linewidth=1, label="prediction = actual")
    ax.set(title="Predicted vs actual (test split)", xlabel="actual", ylabel="predicted")
    ax.legend(loc="upper left", frameon=False)
    out.append(_picture(
        "predicted_vs_actual", fig,
        "One point per test row; on the red diagonal the prediction is exact.",
    ))  # fmt: skip

    fig, ax = _figure(5.2, 4.4)
    ax.scatter(guess, error, s=14, alpha=0.7, color=_BLUE, edgecolors="none")
    ax.axhline(0.0, color=_RED, linewidth=1)
    ax.set(title="Residuals vs predicted (test split)", xlabel="predicted",
           ylabel="residual (predicted - actual)")  # fmt: skip
    out.append(_picture(
        "residuals", fig,
        "Errors should scatter evenly around zero: a curve or a funnel means a missed pattern.",
    ))  # fmt: skip

    fig, ax = _figure(5.2, 4.4)
    ax.hist(error, bins=min(30, max(5, len(error) // 5)), color=_BLUE, alpha=0.8)
    ax.axvline(0.0, color=_RED, linewidth=1)
    ax.set(title="Residuals (test split)", xlabel="residual (predicted - actual)", ylabel="rows")
    out.append(_picture(
        "residual_histogram", fig, "How large the errors are, and whether they lean one way."
    ))  # fmt: skip
    return out
