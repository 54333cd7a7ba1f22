"""Validate input rows against a model's schema and predict labels and class probabilities.

Importable without pandas, scikit-learn, scipy or matplotlib: rows become typed NumPy columns
here, and a runtime (:mod:`mlcontainer.runtimes`, ONNX or scikit-learn) scores them.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal

import numpy as np

from mlcontainer import csvformat
from mlcontainer.config import RUNTIMES
from mlcontainer.errors import ConfigError, InputValidationError
from mlcontainer.evaluation import labels_from_proba

if TYPE_CHECKING:
    import pandas as pd

    from mlcontainer.artifacts import LoadedModel
    from mlcontainer.runtimes import Runtime
    from mlcontainer.schema import Feature, Label, Schema

#: How many bad values one error lists in ``details`` before it stops counting.
MAX_DETAILS = 20
RuntimeName = Literal["auto", "onnx", "sklearn"]
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})
_CSV_SPECIAL = frozenset(',"\r\n\x00')

#: One validated array per feature: float64 (NaN = missing) for numeric and boolean features,
#: object arrays of ``str`` (``None`` = missing) for categorical ones.
Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class Prediction:
    """Labels and per-class probabilities for a batch of rows, plus validation warnings."""

    labels: list[Label]
    probabilities: np.ndarray
    classes: tuple[Label, ...]
    warnings: list[str] = field(default_factory=list)

    def records(self) -> list[dict[str, Any]]:
        """Return one ``{"prediction": ..., "probabilities": {class: p}}`` per row."""
        names = [str(c) for c in self.classes]
        return [
            {"prediction": label, "probabilities": dict(zip(names, row, strict=True))}
            for label, row in zip(self.labels, self.probabilities.tolist(), strict=True)
        ]


class _Errors:
    """Collects per-value problems so one error reports every bad value (up to a limit)."""

    def __init__(self) -> None:
        self.details: list[dict[str, Any]] = []
        self.total = 0

    def add(self, *, row: int | None, column: str | None, message: str) -> None:
        self.total += 1
        if len(self.details) < MAX_DETAILS:
            self.details.append({"row": row, "column": column, "message": message})

    def raise_if_any(self) -> None:
        if not self.total:
            return
        first = self.details[0]
        where = ", ".join(
            p
            for p in (
                f"column {first['column']!r}" if first["column"] is not None else "",
                f"row {first['row']}" if first["row"] is not None else "",
            )
            if p
        )
        more = f" (and {self.total - 1} more problem(s))" if self.total > 1 else ""
        raise InputValidationError(f"{where}: {first['message']}{more}", details=self.details)


def _describe(value: Any) -> str:
    if isinstance(value, int) and value.bit_length() > 128:  # repr() refuses > 4300 digits
        return f"an integer of {value.bit_length()} bits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _coerce_typed(feature: Feature, values: Sequence[Any], errors: _Errors) -> np.ndarray:
    """Check JSON-typed values (numbers, booleans, strings, null) against one feature."""
    out: list[Any] = []
    missing: Any = None if feature.kind == "categorical" else math.nan
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(missing)
            continue
        if feature.kind == "numeric":
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                number = _to_float(value)
                if math.isinf(number):
                    errors.add(
                        row=row,
                        column=feature.name,
                        message="expected a finite number, got "
                        + ("infinity" if isinstance(value, float) else _describe(value)),
                    )
                out.append(number)
                continue
            expected = "a number"
        elif feature.kind == "boolean":
            if isinstance(value, bool) or (isinstance(value, int) and value in (0, 1)):
                out.append(float(value))
                continue
            expected = "true or false"
        else:
            if isinstance(value, str):
                out.append(value.strip())
                continue
            if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 64:
                out.append(str(value))
                continue
            expected = "a string"
        errors.add(
            row=row, column=feature.name, message=f"expected {expected}, got {_describe(value)}"
        )
        out.append(missing)
    return _typed_array(feature, out)


def _typed_array(feature: Feature, values: list[Any]) -> np.ndarray:
    if feature.kind == "categorical":
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array
    return np.asarray(values, dtype=np.float64)


def _to_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf if value > 0 else -math.inf


def _coerce_text(feature: Feature, values: Sequence[str | None], errors: _Errors) -> np.ndarray:
    """Parse text cells (from CSV) for one feature; empty cells (and ``None``) are missing."""
    if feature.kind == "categorical":
        try:  # C-level strip and compare: ~1.5x the list comprehension below on CSV text
            stripped: list[Any] = list(map(str.strip, values))  # type: ignore[arg-type]
            cells: np.ndarray = np.array(stripped, dtype=object)
        except TypeError:  # a None (Parquet null) among the cells
            return _typed_array(
                feature, [v.strip() or None if v is not None else None for v in values]
            )
        cells[cells == ""] = None
        return cells
    if feature.kind == "numeric":
        return _parse_numbers(feature, values, errors)
    out: list[float] = []
    for row, value in enumerate(values):
        flag = bool_from_text(value)
        if flag is None:
            report_not_bool(feature, row, value, errors)
            flag = math.nan
        out.append(flag)
    return np.asarray(out, dtype=np.float64)


def bool_from_text(value: str | None) -> float | None:
    """1.0 or 0.0 for a true/false word, NaN for an empty cell, None for anything else."""
    text = value.strip().lower() if value is not None else ""
    if not text:
        return math.nan
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    return None


def report_not_bool(feature: Feature, row: int, value: str | None, errors: _Errors) -> None:
    """Report a boolean feature's cell that is no true/false word."""
    text = value.strip() if value is not None else ""
    errors.add(row=row, column=feature.name, message=f"expected true or false, got {text!r}")


def _parse_numbers(feature: Feature, values: Sequence[str | None], errors: _Errors) -> np.ndarray:
    # float() over the whole column first: ~4x faster than cell by cell with checks; only a
    # column holding an empty or a bad cell takes the slow path that finds and reports them.
    try:
        parsed = np.fromiter(map(float, values), dtype=np.float64, count=len(values))  # type: ignore[arg-type]
    except (ValueError, TypeError):
        parsed = np.asarray([_number_or_nan(v) for v in values], dtype=np.float64)
    rows = np.flatnonzero(~np.isfinite(parsed)).tolist()
    report_non_finite(feature, parsed, rows, [values[row] or "" for row in rows], errors)
    return parsed


def report_non_finite(
    feature: Feature, parsed: np.ndarray, rows: list[int], texts: list[str], errors: _Errors
) -> None:
    """Report the non-finite numbers in ``rows`` whose cell (``texts``) is not empty.

    An empty cell is a missing value; "inf" or "nan" written out are errors.
    """
    for row, cell in zip(rows, texts, strict=True):
        text = cell.strip()
        if not text:
            continue
        if np.isinf(parsed[row]):
            errors.add(
                row=row, column=feature.name, message="expected a finite number, got infinity"
            )
        elif np.isnan(parsed[row]):
            errors.add(
                row=row, column=feature.name, message=f"expected a number, got {_describe(text)}"
            )


def _number_or_nan(value: str | None) -> float:
    if value is None:
        return math.nan
    try:
        number = float(value)
    except ValueError:
        return math.nan
    return math.nan if math.isnan(number) else number  # "nan" text is reported as bad


class Predictor:
    """A loaded model that turns validated rows into predictions with one runtime."""

    def __init__(
        self,
        backend: Runtime,
        *,
        manifest: dict[str, Any],
        schema: Schema,
        sha256: str,
        runtime_reason: str | None = None,
    ) -> None:
        self.backend = backend
        self.runtime: str = backend.name
        self.runtime_reason = runtime_reason
        self.manifest = manifest
        self.schema = schema
        self.classes: tuple[Label, ...] = schema.classes
        self.name = str(manifest.get("name", ""))
        self.sha256 = sha256

    @classmethod
    def from_dir(cls, model_dir: Path) -> Predictor:
        """Load and verify the model folder ``model_dir`` with the scikit-learn runtime."""
        return load_predictor(model_dir, "sklearn")

    @property
    def model(self) -> LoadedModel:
        """The scikit-learn model (only with the scikit-learn runtime)."""
        loaded: LoadedModel | None = getattr(self.backend, "model", None)
        if loaded is None:
            raise ConfigError(f"the {self.runtime} runtime has no scikit-learn model")
        return loaded

    # --- validation: rows -> typed columns -------------------------------------------------

    def check_columns(self, present: Iterable[str], n_rows: int) -> list[str]:
        """Refuse an empty batch or missing features; return a warning for unknown columns."""
        if n_rows == 0:
            raise InputValidationError("no rows to predict: the batch is empty")
        present = list(present)
        names = self.schema.names
        missing = [n for n in names if n not in present]
        if missing:
            raise InputValidationError(
                f"missing feature(s) {', '.join(map(repr, missing))}; the model expects "
                f"{', '.join(map(repr, names))}",
                details=[{"row": None, "column": m, "message": "missing feature"} for m in missing],
            )
        extra = [c for c in present if c not in names]
        return [f"ignored unknown column(s) {', '.join(map(repr, extra))}"] if extra else []

    def columns_from_records(
        self, records: Sequence[Mapping[str, Any]]
    ) -> tuple[Columns, list[str]]:
        """Validate JSON-style records (``{feature: value}``) into typed columns."""
        seen: dict[str, None] = {}
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                raise InputValidationError(
                    f"row {i}: expected an object of feature values, got {_describe(rec)}",
                    details=[{"row": i, "column": None, "message": "expected an object"}],
                )
            seen.update(dict.fromkeys(rec))
        warnings = self.check_columns(seen, len(records))
        names = self.schema.names
        missing_cells = _Errors()
        for i, rec in enumerate(records):
            for n in names:
                if n not in rec:
                    missing_cells.add(row=i, column=n, message="missing feature")
        missing_cells.raise_if_any()
        errors = _Errors()
        columns = {
            f.name: _coerce_typed(f, [rec[f.name] for rec in records], errors)
            for f in self.schema.features
        }
        errors.raise_if_any()
        return columns, warnings

    def columns_from_rows(self, rows: Sequence[Sequence[Any]]) -> Columns:
        """Validate positional rows (values in schema order) into typed columns."""
        if len(rows) == 0:
            raise InputValidationError("no rows to predict: the batch is empty")
        width = len(self.schema.features)
        errors = _Errors()
        for i, row in enumerate(rows):
            if isinstance(row, (str, bytes, Mapping)) or not isinstance(row, Sequence):
                errors.add(row=i, column=None, message=f"expected a list of {width} values")
            elif len(row) != width:
                errors.add(
                    row=i,
                    column=None,
                    message=f"expected {width} values in schema order, got {len(row)}",
                )
        errors.raise_if_any()
        columns = {
            f.name: _coerce_typed(f, [row[j] for row in rows], errors)
            for j, f in enumerate(self.schema.features)
        }
        errors.raise_if_any()
        return columns

    def columns_from_text(
        self, header: Sequence[str], rows: Sequence[Sequence[str]]
    ) -> tuple[Columns, list[str]]:
        """Validate a CSV-style table (text cells, parsed per the schema) into typed columns."""
        names = [str(h).strip() for h in header]
        warnings = self.check_columns(names, len(rows))
        position: dict[str, int] = {}
        for j, n in enumerate(names):
            position.setdefault(n, j)
        width = len(names)
        if any(len(r) != width for r in rows):
            rows = [_fit(r, width, i) for i, r in enumerate(rows)]
        cells = list(zip(*rows, strict=True)) if rows else []
        text = {f.name: cells[position[f.name]] for f in self.schema.features}
        return self.columns_from_cells(text), warnings

    def columns_from_arrow(self, header: Sequence[str], table: Any) -> tuple[Columns, list[str]]:
        """Validate a pyarrow table of text columns (in ``header`` order) into typed columns.

        The same columns, warnings and errors as :meth:`columns_from_text` on the same cells.
        """
        from mlcontainer.arrowcsv import coerce

        names = [str(h).strip() for h in header]
        warnings = self.check_columns(names, table.num_rows)
        position: dict[str, int] = {}
        for j, n in enumerate(names):
            position.setdefault(n, j)
        errors = _Errors()
        columns = {
            f.name: coerce(f, table.column(position[f.name]), errors) for f in self.schema.features
        }
        errors.raise_if_any()
        return columns, warnings

    def columns_from_cells(
        self, cells: Mapping[str, Sequence[Any]], *, typed: Iterable[str] = ()
    ) -> Columns:
        """Validate one sequence of cells per feature: text cells unless named in ``typed``."""
        as_typed = set(typed)
        errors = _Errors()
        columns = {
            f.name: _coerce_typed(f, cells[f.name], errors)
            if f.name in as_typed
            else _coerce_text(f, cells[f.name], errors)
            for f in self.schema.features
        }
        errors.raise_if_any()
        return columns

    # --- prediction ------------------------------------------------------------------------

    def predict_columns(self, columns: Columns, warnings: Sequence[str] = ()) -> Prediction:
        """Predict columns validated by one of the ``columns_from_*`` methods."""
        proba = self.backend.predict_proba(columns)
        unscored = np.flatnonzero(~np.isfinite(proba).all(axis=1))
        if unscored.size:
            raise InputValidationError(
                f"row {int(unscored[0])}: the model cannot score it (its probabilities overflow); "
                "check for values far outside the range seen in training",
                details=[
                    {"row": int(r), "column": None, "message": "probabilities overflow"}
                    for r in unscored[:MAX_DETAILS]
                ],
            )
        labels = labels_from_proba(proba, self.classes).tolist()
        return Prediction(
            labels=labels, probabilities=proba, classes=self.classes, warnings=list(warnings)
        )

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        """Validate records and predict them."""
        columns, warnings = self.columns_from_records(records)
        return self.predict_columns(columns, warnings)

    def predict_rows(self, rows: Sequence[Sequence[Any]]) -> Prediction:
        """Validate positional rows (values in schema order) and predict them."""
        return self.predict_columns(self.columns_from_rows(rows))

    def predict_text_table(
        self, header: Sequence[str], rows: Sequence[Sequence[str]]
    ) -> Prediction:
        """Validate a CSV-style table (header + text rows) and predict it."""
        columns, warnings = self.columns_from_text(header, rows)
        return self.predict_columns(columns, warnings)

    def warm_up(self) -> None:
        """Pay the first prediction's one-off costs now (sessions, lazy imports, caches)."""
        # A category seen in training where the schema lists one, else a missing value.
        columns: Columns = {
            f.name: np.array([f.categories[0] if f.categories else None], dtype=object)
            if f.kind == "categorical"
            else np.zeros(1)
            for f in self.schema.features
        }
        try:
            self.backend.predict_proba(columns)
        except InputValidationError:
            return

    # --- pandas interface, kept for callers written before the runtimes ---------------------

    def frame_from_records(
        self, records: Sequence[Mapping[str, Any]]
    ) -> tuple[pd.DataFrame, list[str]]:
        """Validate JSON-style records into a typed frame (needs pandas)."""
        columns, warnings = self.columns_from_records(records)
        return self._frame(columns), warnings

    def frame_from_rows(self, rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
        """Validate positional rows into a typed frame (needs pandas)."""
        return self._frame(self.columns_from_rows(rows))

    def frame_from_table(self, table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """Validate a table read from CSV/Parquet into a typed frame (needs pandas)."""
        import pandas as pd

        table = table.rename(columns=lambda c: str(c).strip())
        warnings = self.check_columns(table.columns, len(table))
        cells: dict[str, list[Any]] = {}
        typed: list[str] = []
        for f in self.schema.features:
            col = table[f.name]
            if isinstance(col, pd.DataFrame):  # a duplicated header: the first one counts
                col = col.iloc[:, 0]
            text = col.dtype == object or pd.api.types.is_string_dtype(col)
            values = col.tolist()
            if text:
                values = [v if isinstance(v, str) else None for v in values]
            else:
                typed.append(f.name)
            cells[f.name] = values
        return self._frame(self.columns_from_cells(cells, typed=typed)), warnings

    def _frame(self, columns: Columns) -> pd.DataFrame:
        from mlcontainer.runtimes import to_frame

        return to_frame(self.schema, columns)

    def predict_frame(self, frame: pd.DataFrame) -> Prediction:
        """Predict a frame validated by one of the ``frame_from_*`` methods (needs pandas)."""
        columns: Columns = {}
        for f in self.schema.features:
            values = frame[f.name].to_numpy()
            if f.kind == "categorical":
                values = _typed_array(f, [v if isinstance(v, str) else None for v in values])
            columns[f.name] = np.asarray(values, dtype=object if f.kind == "categorical" else float)
        return self.predict_columns(columns)


def _fit(row: Sequence[str], width: int, index: int) -> Sequence[str]:
    """Pad a short CSV row with empty (missing) cells; refuse a row with too many."""
    if len(row) > width:
        raise InputValidationError(
            f"cannot parse the input CSV: row {index} has {len(row)} fields, the header {width}",
            details=[{"row": index, "column": None, "message": f"{len(row)} fields for {width}"}],
        )
    return [*row, *[""] * (width - len(row))]


def load_predictor(
    model_dir: Path, runtime: RuntimeName | str = "auto", *, threads: int | None = None
) -> Predictor:
    """Load and verify ``model_dir`` for the ``runtime`` asked for (auto: ONNX if verified).

    ``threads`` caps the runtime's compute threads (None: all cores for ONNX, as loaded
    for scikit-learn).
    """
    from mlcontainer import runtimes

    return runtimes.load(model_dir, runtime, threads=threads)


def read_csv_text(source: Path | IO[bytes] | bytes) -> tuple[list[str], list[list[str]]]:
    """Read a whole CSV (path, byte stream or bytes) into a header and rows of text cells."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    rows: list[list[str]] = []
    header: list[str] | None = None
    for chunk_header, chunk in iter_csv_chunks(source, chunk_rows=1 << 30):
        header = chunk_header
        rows.extend(chunk)
    if header is None:
        raise InputValidationError("the input is empty: expected a CSV header line and rows")
    return header, rows


def iter_csv_chunks(
    source: Path | IO[bytes], *, chunk_rows: int
) -> Generator[tuple[list[str], list[list[str]]], None, None]:
    """Yield (header, up to ``chunk_rows`` text rows) from a CSV, with clear errors.

    Blank lines are skipped and spaces after a delimiter ignored, as ``pandas.read_csv`` did.
    A header-only CSV yields one empty chunk; an empty input raises.
    """
    handle = open_input(source)
    try:
        yield from csv_text_chunks(handle, chunk_rows=chunk_rows)
    finally:
        if isinstance(source, Path):
            handle.close()


def csv_text_chunks(
    handle: IO[bytes],
    *,
    chunk_rows: int,
    header: list[str] | None = None,
    first_line: int = 1,
) -> Iterator[tuple[list[str], list[list[str]]]]:
    """The stdlib CSV reader behind :func:`iter_csv_chunks` (the reference for every reader).

    With ``header`` given, ``handle`` holds only data rows (the rest of a file whose
    ``first_line - 1`` lines were read already), and no empty chunk is yielded.
    """
    text = io.TextIOWrapper(handle, encoding="utf-8-sig" if header is None else "utf-8", newline="")
    reader = csv.reader(text, skipinitialspace=True, strict=False)
    try:
        if header is None:
            header = next((r for r in reader if r), None)
            if header is None:
                raise InputValidationError(
                    "the input is empty: expected a CSV header line and rows"
                )
            yielded = False
        else:
            yielded = True
        chunk: list[list[str]] = []
        for row in reader:
            if not row:
                continue
            chunk.append(row)
            if len(chunk) >= chunk_rows:
                yield header, chunk
                yielded = True
                chunk = []
        if chunk or not yielded:
            yield header, chunk
    except UnicodeDecodeError as exc:
        raise InputValidationError(
            f"cannot parse the input CSV: it is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start} of a block)"
        ) from None
    except csv.Error as exc:
        raise InputValidationError(
            f"cannot parse the input CSV: {exc} (line {reader.line_num + first_line - 1})"
        ) from None
    finally:
        text.detach()


def open_input(source: Path | IO[bytes]) -> IO[bytes]:
    """Open a path for reading bytes (a stream is returned as is), with clear errors."""
    if not isinstance(source, Path):
        return source
    try:
        return source.open("rb")
    except FileNotFoundError:
        raise InputValidationError(f"input file not found: {source}") from None
    except IsADirectoryError:
        raise InputValidationError(f"cannot read {source}: it is a folder") from None
    except OSError as exc:
        raise InputValidationError(f"cannot read {source}: {exc.strerror or exc}") from None


def read_input_table(source: Path | IO[bytes] | IO[str], schema: Schema) -> pd.DataFrame:
    """Read rows to predict from CSV (path or stream) or Parquet (path), all cells as text."""
    import pandas as pd

    if isinstance(source, Path) and source.suffix.lower() in (".parquet", ".pq"):
        from mlcontainer.data import read_table

        return read_table(source)
    if isinstance(source, io.TextIOBase):
        source = io.BytesIO(source.read().encode())
    header, rows = read_csv_text(source)  # type: ignore[arg-type]
    width = len(header)
    rows = [list(_fit(r, width, i)) for i, r in enumerate(rows)]
    return pd.DataFrame(rows, columns=header, dtype=object)


def write_predictions(prediction: Prediction, fmt: str) -> bytes:
    """Render predictions as CSV (label + one probability column per class) or JSON."""
    if fmt == "json":
        return (json.dumps(prediction.records(), indent=None) + "\n").encode()
    header = ["prediction", *(f"proba_{c}" for c in prediction.classes)]
    names = [str(c) for c in prediction.classes]
    if not any(set(text) & _CSV_SPECIAL for text in (*header, *names)):
        # No cell needs quoting: the rows are rendered on whole arrays (csvformat), ~5x
        # faster than one format string per row. The label is the most probable class.
        body = csvformat.csv_body(names, prediction.probabilities)
        return (",".join(header) + "\n").encode() + body
    rows = zip(prediction.labels, prediction.probabilities.tolist(), strict=True)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([label, *(f"{p:.6g}" for p in row)] for label, row in rows)
    return buf.getvalue().encode()


__all__ = [
    "RUNTIMES",
    "Columns",
    "Prediction",
    "Predictor",
    "csv_text_chunks",
    "iter_csv_chunks",
    "load_predictor",
    "open_input",
    "read_csv_text",
    "read_input_table",
    "write_predictions",
]
