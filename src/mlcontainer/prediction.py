"""Validate input rows against a model's schema and predict labels and class probabilities."""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlcontainer.errors import InputValidationError
from mlcontainer.evaluation import labels_from_proba

if TYPE_CHECKING:
    from mlcontainer.artifacts import LoadedModel
    from mlcontainer.schema import Feature, Label, Schema

#: How many bad values one error lists in ``details`` before it stops counting.
MAX_DETAILS = 20
_TRUE = frozenset({"true", "1", "yes", "y", "t"})
_FALSE = frozenset({"false", "0", "no", "n", "f"})


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
            {"prediction": label, "probabilities": dict(zip(names, map(float, row), strict=True))}
            for label, row in zip(self.labels, self.probabilities, strict=True)
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


def _coerce_typed(feature: Feature, values: Sequence[Any], errors: _Errors) -> list[Any]:
    """Check JSON-typed values (numbers, booleans, strings, null) against one feature."""
    out: list[Any] = []
    for row, value in enumerate(values):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            out.append(np.nan)
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
        out.append(np.nan)
    return out


def _to_float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an int beyond float range
        return math.inf if value > 0 else -math.inf


def _coerce_text(feature: Feature, values: pd.Series, errors: _Errors) -> pd.Series:
    """Parse text values (from CSV) for one feature; empty cells are missing."""
    text = values.astype(object).where(values.notna(), None)
    text = text.map(lambda v: v.strip() if isinstance(v, str) else v)
    text = text.where(text != "", None)
    if feature.kind == "categorical":
        return text.map(lambda v: np.nan if v is None else str(v))
    if feature.kind == "numeric":
        parsed = pd.to_numeric(text, errors="coerce").astype(float)
        bad = parsed.isna() & text.notna()
        inf = np.isinf(parsed.to_numpy())
        for row in np.flatnonzero(bad.to_numpy()):
            errors.add(
                row=int(row),
                column=feature.name,
                message=f"expected a number, got {_describe(text.iloc[row])}",
            )
        for row in np.flatnonzero(inf):
            errors.add(
                row=int(row), column=feature.name, message="expected a finite number, got infinity"
            )
        return parsed

    def to_bool(v: Any) -> float | None:
        if v is None:
            return np.nan
        low = str(v).lower()
        return 1.0 if low in _TRUE else 0.0 if low in _FALSE else None

    parsed_b = text.map(to_bool)
    for row in np.flatnonzero(parsed_b.isna().to_numpy() & text.notna().to_numpy()):
        errors.add(
            row=int(row),
            column=feature.name,
            message=f"expected true or false, got {_describe(text.iloc[row])}",
        )
    return parsed_b.astype(float)


class Predictor:
    """A loaded model that turns validated rows into predictions."""

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.schema: Schema = model.schema
        self.classes: tuple[Label, ...] = model.schema.classes

    @classmethod
    def from_dir(cls, model_dir: Path) -> Predictor:
        """Load and verify the model folder ``model_dir``."""
        from mlcontainer.artifacts import load

        return cls(load(model_dir))

    def _columns(self, present: Iterable[str], n_rows: int) -> tuple[list[str], list[str]]:
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
        warnings = [f"ignored unknown column(s) {', '.join(map(repr, extra))}"] if extra else []
        return names, warnings

    def frame_from_records(
        self, records: Sequence[Mapping[str, Any]]
    ) -> tuple[pd.DataFrame, list[str]]:
        """Validate JSON-style records (``{feature: value}``) into a typed frame."""
        seen: dict[str, None] = {}
        for i, rec in enumerate(records):
            if not isinstance(rec, Mapping):
                raise InputValidationError(
                    f"row {i}: expected an object of feature values, got {_describe(rec)}",
                    details=[{"row": i, "column": None, "message": "expected an object"}],
                )
            seen.update(dict.fromkeys(rec))
        names, warnings = self._columns(seen, len(records))
        errors = _Errors()
        missing_cells = _Errors()
        for i, rec in enumerate(records):
            for n in names:
                if n not in rec:
                    missing_cells.add(row=i, column=n, message="missing feature")
        missing_cells.raise_if_any()
        columns = {
            f.name: _coerce_typed(f, [rec[f.name] for rec in records], errors)
            for f in self.schema.features
        }
        errors.raise_if_any()
        return self._frame(columns), warnings

    def frame_from_rows(self, rows: Sequence[Sequence[Any]]) -> pd.DataFrame:
        """Validate positional rows (values in schema order) into a typed frame."""
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
        return self._frame(columns)

    def frame_from_table(self, table: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
        """Validate a table read from CSV/Parquet: text cells are parsed per the schema."""
        table = table.rename(columns=lambda c: str(c).strip())
        names, warnings = self._columns(table.columns, len(table))
        errors = _Errors()
        columns: dict[str, Any] = {}
        for f in self.schema.features:
            col = table[f.name].reset_index(drop=True)
            if col.dtype == object or pd.api.types.is_string_dtype(col):
                columns[f.name] = _coerce_text(f, col, errors)
            else:
                columns[f.name] = _coerce_typed(f, col.tolist(), errors)
        errors.raise_if_any()
        del names
        return self._frame(columns), warnings

    def _frame(self, columns: Mapping[str, Any]) -> pd.DataFrame:
        # Typed columns up front: a per-column astype after construction cost ~3 ms per
        # request on a 13-feature row, more than the rest of the HTTP path.
        return pd.DataFrame(
            {
                f.name: pd.Series(columns[f.name], dtype=object)
                if f.kind == "categorical"
                else np.asarray(columns[f.name], dtype=float)
                for f in self.schema.features
            },
            copy=False,
        )

    def predict_frame(self, frame: pd.DataFrame) -> Prediction:
        """Predict a frame already validated by one of the ``frame_from_*`` methods."""
        # Finite but extreme values (1e308) can overflow inside a model: refuse, don't guess.
        with np.errstate(all="ignore"):
            try:
                proba = np.asarray(self.model.pipeline.predict_proba(frame), dtype=float)
            except ValueError as exc:  # e.g. scaling 1e308 overflows to infinity
                raise InputValidationError(
                    f"the model cannot score these rows: {str(exc).splitlines()[0]} "
                    "(check for values far outside the range seen in training)"
                ) from None
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
        labels = [
            c.item() if isinstance(c, np.generic) else c
            for c in labels_from_proba(proba, self.classes)
        ]
        return Prediction(labels=labels, probabilities=proba, classes=self.classes)

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        """Validate records and predict them."""
        frame, warnings = self.frame_from_records(records)
        result = self.predict_frame(frame)
        return Prediction(result.labels, result.probabilities, result.classes, warnings)

    def predict_rows(self, rows: Sequence[Sequence[Any]]) -> Prediction:
        """Validate positional rows (values in schema order) and predict them."""
        return self.predict_frame(self.frame_from_rows(rows))


def read_input_table(source: Path | IO[bytes] | IO[str], schema: Schema) -> pd.DataFrame:
    """Read rows to predict from CSV (path or stream) or Parquet (path), all cells as text."""
    from mlcontainer.errors import InputValidationError as Invalid

    if isinstance(source, Path) and source.suffix.lower() in (".parquet", ".pq"):
        from mlcontainer.data import read_table

        return read_table(source)
    try:
        return pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=True)
    except FileNotFoundError:
        raise Invalid(f"input file not found: {source}") from None
    except pd.errors.EmptyDataError:
        raise Invalid("the input is empty: expected a CSV header line and rows") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise Invalid(f"cannot parse the input CSV: {str(exc).strip()}") from None
    except OSError as exc:
        raise Invalid(f"cannot read {source}: {exc.strerror or exc}") from None


def write_predictions(prediction: Prediction, fmt: str) -> bytes:
    """Render predictions as CSV (label + one probability column per class) or JSON."""
    import json

    if fmt == "json":
        return (json.dumps(prediction.records(), indent=None) + "\n").encode()
    frame = pd.DataFrame({"prediction": prediction.labels})
    for j, c in enumerate(prediction.classes):
        frame[f"proba_{c}"] = prediction.probabilities[:, j]
    buf = io.StringIO()
    frame.to_csv(buf, index=False, float_format="%.6g", lineterminator="\n")
    return buf.getvalue().encode()
