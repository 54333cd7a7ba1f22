"""Pictures of an evaluated model, as PNG bytes for the report and the serving page."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import numpy as np

from mlcontainer.core.schema import Label

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


def regression_pngs(truth: Sequence[float], predicted: Sequence[float]) -> dict[str, bytes]:
    """The pictures of a regressor on the test split, as PNG bytes by name.

    ``predicted_vs_actual`` (a point per row, the diagonal where they agree), ``residuals``
    (error against the prediction: a pattern means the model misses something) and
    ``residual_histogram`` (how large the errors are). Drawn with matplotlib (Agg, no
    display); byte-identical from run to run (no date or software tag in the file).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    actual = np.asarray(truth, dtype=float)
    guess = np.asarray(predicted, dtype=float)
    error = guess - actual
    out: dict[str, bytes] = {}
    low, high = float(min(actual.min(), guess.min())), float(max(actual.max(), guess.max()))

    fig, ax = plt.subplots(figsize=(5.2, 4.4), dpi=100)
    ax.scatter(actual, guess, s=14, alpha=0.7, color="#1f77b4", edgecolors="none")
    ax.plot([low, high], [low, high], color="#d62728", linewidth=1, label="prediction = actual")
    ax.set(title="Predicted vs actual (test split)", xlabel="actual", ylabel="predicted")
    ax.legend(loc="upper left", frameon=False)
    out["predicted_vs_actual"] = _png(fig)

    fig, ax = plt.subplots(figsize=(5.2, 4.4), dpi=100)
    ax.scatter(guess, error, s=14, alpha=0.7, color="#1f77b4", edgecolors="none")
    ax.axhline(0.0, color="#d62728", linewidth=1)
    ax.set(title="Residuals vs predicted (test split)", xlabel="predicted",
           ylabel="residual (predicted - actual)")  # fmt: skip
    out["residuals"] = _png(fig)

    fig, ax = plt.subplots(figsize=(5.2, 4.4), dpi=100)
    ax.hist(error, bins=min(30, max(5, len(error) // 5)), color="#1f77b4", alpha=0.8)
    ax.axvline(0.0, color="#d62728", linewidth=1)
    ax.set(title="Residuals (test split)", xlabel="residual (predicted - actual)", ylabel="rows")
    out["residual_histogram"] = _png(fig)
    return out


def _png(fig: Any) -> bytes:
    """Render a matplotlib figure to PNG bytes, without metadata, and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()
