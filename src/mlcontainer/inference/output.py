"""Render predictions for a file or a pipe: CSV (label, one probability per class), JSON, or
Parquet (the same columns as CSV, typed; needs pyarrow: ``mlcontainer[parquet]``)."""

from __future__ import annotations

import csv
import io
import json
from typing import IO, Any

from mlcontainer.core.errors import InputValidationError
from mlcontainer.inference import csvformat
from mlcontainer.inference.types import Prediction

OUTPUT_FORMATS = ("csv", "json", "parquet")
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
    header = column_names(prediction)
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


def column_names(prediction: Prediction) -> list[str]:
    """The output's columns: ``prediction``, then a classifier's ``proba_<class>`` per class."""
    return ["prediction", *(f"proba_{c}" for c in prediction.classes)]


def prediction_table(prediction: Prediction) -> Any:
    """Return the predictions as a pyarrow Table with the CSV output's columns, typed.

    The label column is int64 when every class is a whole number, else text (a regressor's:
    float64); probabilities are float64, every digit kept (CSV rounds them to ``%.6g``). The
    types come from the classes alone, so every chunk of a file has the same schema.
    """
    import pyarrow as pa

    if prediction.is_regression:
        return pa.table({"prediction": pa.array(prediction.labels, type=pa.float64())})
    whole = all(isinstance(c, int) and not isinstance(c, bool) for c in prediction.classes)
    labels = (
        pa.array(prediction.labels, type=pa.int64())
        if whole
        else pa.array([str(label) for label in prediction.labels], type=pa.string())
    )
    names = column_names(prediction)
    arrays = [labels, *(pa.array(prediction.probabilities[:, i]) for i in range(len(names) - 1))]
    return pa.table(dict(zip(names, arrays, strict=True)))


class ParquetSink:
    """Write prediction tables to one Parquet file, a row group per table, in order."""

    def __init__(self, handle: IO[bytes]) -> None:
        self._handle = handle
        self._writer: Any = None

    def write(self, table: Any) -> None:
        """Append ``table`` (from :func:`prediction_table`) as the file's next row group."""
        if self._writer is None:
            import pyarrow.parquet as pq

            self._writer = pq.ParquetWriter(self._handle, table.schema)
        self._writer.write_table(table)

    def close(self) -> None:
        """Write the file's footer (the file is complete only after this); once is enough."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def require_pyarrow(what: str) -> None:
    """Refuse Parquet early, in one line, where pyarrow is not installed."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise InputValidationError(
            f"{what} needs pyarrow (`uv pip install 'mlcontainer[parquet]'`)"
        ) from None
