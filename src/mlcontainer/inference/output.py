"""Render predictions for a file or a pipe: CSV (label, one probability per class) or JSON."""

from __future__ import annotations

import csv
import io
import json

from mlcontainer.inference import csvformat
from mlcontainer.inference.types import Prediction

OUTPUT_FORMATS = ("csv", "json")
_CSV_SPECIAL = frozenset(',"\r\n\x00')


def write_predictions(prediction: Prediction, fmt: str) -> bytes:
    """Render predictions as CSV (label + one probability column per class) or JSON; a
    regressor's as one ``prediction`` column (``%.6g``) or ``{"predictions": [...]}``."""
    if prediction.is_regression:
        if fmt == "json":
            return (json.dumps({"predictions": prediction.labels}) + "\n").encode()
        return ("prediction\n" + "".join(f"{v:.6g}\n" for v in prediction.labels)).encode()
    if fmt == "json":
        return (json.dumps(prediction.records(), indent=None) + "\n").encode()
    header = ["prediction", *(f"proba_{c}" for c in prediction.classes)]
    names = [str(c) for c in prediction.classes]
    if prediction.positions is not None and not any(
        set(text) & _CSV_SPECIAL for text in (*header, *names)
    ):
        # No cell needs quoting: the rows are rendered on whole arrays (csvformat), ~5x
        # faster than one format string per row, each label by its class position.
        body = csvformat.csv_body(names, prediction.probabilities, prediction.positions)
        return (",".join(header) + "\n").encode() + body
    rows = zip(prediction.labels, prediction.probabilities.tolist(), strict=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([label, *(f"{p:.6g}" for p in row)] for label, row in rows)
    return buf.getvalue().encode()
