"""Read a data file (CSV, Parquet, Excel, JSON) into a clean frame, and record how: the recipe.

CSV is read with the shared parser (:mod:`mlcontainer.core.csvtext`): the delimiter is told
from the first lines, a header line is told from a first row of data (every cell of the first
row parses as a number where the column below is numeric, or repeats a value of the column),
a header's empty or repeated names are named and reported. Cells are stripped, markers
(``--na-values``) become missing, values all wrapped in single quotes are unwrapped, and a
text column whose values are then all numbers is numeric. The recipe records each choice so
that prediction reads its rows the same way.

Excel sheets and JSON records hold typed cells: a column keeps its numbers and booleans
unless it holds text, when it is read as a CSV column is (``core.cells.text_or_typed``). An
Excel sheet's first row is told from data as a CSV's is; JSON records name their columns.
CSV and JSON files may be compressed (``.gz``, ``.zst``): see :mod:`mlcontainer.core.formats`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlcontainer.core.cells import DEFAULT_NA_VALUES, cell_text, text_or_typed
from mlcontainer.core.csvtext import (
    SAMPLE_LINES,
    CsvError,
    Row,
    given_names,
    iter_rows,
    positional_names,
    sniff_delimiter,
    unique_names,
)
from mlcontainer.core.errors import DatasetError
from mlcontainer.core.excel import iter_sheet_rows
from mlcontainer.core.formats import check_file, open_bytes
from mlcontainer.core.jsonrecords import columns_of, iter_records
from mlcontainer.core.recipe import IntakeRecipe, unwrap

#: Text pandas' CSV reader reads as booleans (only where every row has one).
_TRUE_TEXT = ("True", "TRUE", "true")
_BOOLEAN_TEXT = (*_TRUE_TEXT, "False", "FALSE", "false")
#: Rows turned into a frame at a time while reading a CSV: bounds the Python strings alive.
CHUNK_ROWS = 50_000


@dataclass(frozen=True)
class Table:
    """A file read into a frame, the recipe that read it, and what intake said about it."""

    frame: pd.DataFrame
    recipe: IntakeRecipe
    notes: list[str] = field(default_factory=list)


def read_table(
    path: Path,
    *,
    na_values: Sequence[str] = DEFAULT_NA_VALUES,
    header: bool | None = None,
    columns: Sequence[str] | None = None,
) -> Table:
    """Read a CSV or Parquet file with a clear error for every way it can fail.

    ``header``: True or False overrides the guess; ``columns`` names the columns of a file
    without a header line (given alone it means there is none; with ``header=True`` the
    header line is read and replaced).
    """
    kind = check_file(path, DatasetError, what="dataset file").kind
    markers = tuple(dict.fromkeys(("", *na_values)))
    if kind in ("json", "jsonl", "parquet") and (header is not None or columns is not None):
        given = "--columns" if columns is not None else "--header/--no-header"
        raise DatasetError(
            f"{given} applies to CSV and Excel files; {path.name}'s columns are named by "
            f"its {'records' if kind != 'parquet' else 'schema'}: leave it out"
        )
    try:
        if kind == "csv":
            frame, recipe, notes = _read_csv(path, markers, header, columns)
        elif kind == "excel":
            frame, recipe, notes = _read_excel(path, markers, header, columns)
        elif kind in ("json", "jsonl"):
            frame, recipe, notes = _read_json(path, lines=kind == "jsonl")
        else:
            frame = _read_parquet(path)
            recipe, notes = IntakeRecipe(source_format="parquet", header=True), []
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    frame, unquoted, numeric = clean_text(frame, na_values=markers)
    if unquoted:
        notes.append(
            f"values of {_list(unquoted)} were all wrapped in single quotes ('-1'); "
            "they are read without them, here and when predicting"
        )
    recipe = recipe.model_copy(
        update={
            "columns": [str(c) for c in frame.columns],
            "na_values": list(markers),
            "unquote": unquoted,
            "numeric_text": numeric,
        }
    )
    return Table(frame, recipe, notes)


def _read_csv(
    path: Path, markers: tuple[str, ...], header: bool | None, columns: Sequence[str] | None
) -> tuple[pd.DataFrame, IntakeRecipe, list[str]]:
    with open_bytes(path, DatasetError) as handle:
        sample = handle.readlines(1 << 16)[:SAMPLE_LINES]
    try:
        lines = [b.decode("utf-8-sig" if i == 0 else "utf-8") for i, b in enumerate(sample)]
    except UnicodeDecodeError as exc:
        raise DatasetError(f"cannot read {path}: it is not UTF-8 text ({exc.reason})") from None
    delimiter = sniff_delimiter(lines)
    with open_bytes(path, DatasetError) as handle:
        rows = iter_rows(handle, delimiter=delimiter)
        try:
            head = [Row(*row) for _, row in zip(range(SAMPLE_LINES), rows, strict=False)]
            has_header, names, notes = _layout(path, head, markers, header, columns)
            data = head[1:] if has_header else head
            frame = _frame(path, names, _chain(data, rows))
        except CsvError as exc:
            raise DatasetError(f"cannot read {path}: {exc.describe()}") from None
    if frame.empty:
        raise DatasetError(f"cannot use {path}: it has a header but no data rows")
    recipe = IntakeRecipe(source_format="csv", delimiter=delimiter, header=has_header)
    return frame, recipe, notes


def _layout(
    path: Path,
    head: list[Row],
    markers: Sequence[str],
    header: bool | None,
    columns: Sequence[str] | None,
) -> tuple[bool, list[str], list[str]]:
    """Whether the first of ``head`` (text cells) is a header, the column names, notes."""
    if not head:
        raise DatasetError(f"cannot read {path}: the file is empty")
    first = head[0]
    has_header, why = _decide_header(head, markers, header, columns)
    notes: list[str] = []
    if columns is not None:
        names = given_names(columns, first)
    elif has_header:
        names, notes = unique_names(first.cells)
    else:
        names = positional_names(len(first.cells))
        notes.append(
            f"{path.name} has no header line ({why}): its {len(names)} columns are "
            f"named column_1 … column_{len(names)}; use --header if line "
            f"{first.line} is one, or --columns to name them"
        )
    return has_header, names, notes


def _read_excel(
    path: Path, markers: tuple[str, ...], header: bool | None, columns: Sequence[str] | None
) -> tuple[pd.DataFrame, IntakeRecipe, list[str]]:
    """The first sheet's rows; its first row is a header line or data as a CSV's would be."""
    rows = list(iter_sheet_rows(path, DatasetError))
    head = [Row(line, [cell_text(c) or "" for c in cells]) for line, cells in rows[:SAMPLE_LINES]]
    try:
        has_header, names, notes = _layout(path, head, markers, header, columns)
    except CsvError as exc:
        raise DatasetError(f"cannot read {path}: {exc.describe()}") from None
    data = rows[1:] if has_header else rows
    if not data:
        raise DatasetError(f"cannot use {path}: it has a header but no data rows")
    width = len(names)
    for line, cells in data:  # calamine's rows are as wide as the sheet's used range
        if any(c is not None for c in cells[width:]):
            raise DatasetError(
                f"cannot read {path}: row {line} has a value beyond the header's {width} columns"
            )
    values = {
        n: [cells[j] if j < len(cells) else None for _, cells in data] for j, n in enumerate(names)
    }
    recipe = IntakeRecipe(source_format="excel", header=has_header)
    return typed_frame(values), recipe, notes


def _read_json(path: Path, *, lines: bool) -> tuple[pd.DataFrame, IntakeRecipe, list[str]]:
    """Every record of a JSON list or JSON Lines file; a column a record lacks is missing there."""
    with open_bytes(path, DatasetError) as handle:
        records = iter_records(handle, lines=lines, name=str(path), error=DatasetError)
        names, values = columns_of(record for _, record in records)
    if not names:
        raise DatasetError(f"cannot use {path}: it holds no records")
    recipe = IntakeRecipe(source_format="jsonl" if lines else "json", header=True)
    return typed_frame(values), recipe, []


def typed_frame(values: dict[str, list[Any]]) -> pd.DataFrame:
    """A frame of typed cells, column by column: text (see ``text_or_typed``) as object
    columns, true/false with nulls as nullable booleans, numbers as numbers."""
    columns: dict[str, Any] = {}
    for name, given in values.items():
        cells, as_text = text_or_typed(given)
        present = [c for c in cells if c is not None]
        if as_text:
            columns[name] = pd.Series(cells, dtype=object)
        elif present and all(isinstance(c, bool) for c in present):
            columns[name] = pd.array(cells, dtype="boolean")
        else:
            columns[name] = pd.Series(cells, dtype=object).infer_objects()
    return pd.DataFrame(columns)


def _chain(
    head: list[Row], rest: Iterator[tuple[int, list[str]]]
) -> Iterator[tuple[int, list[str]]]:
    yield from head
    yield from rest


def _decide_header(
    head: list[Row], markers: Sequence[str], header: bool | None, columns: Sequence[str] | None
) -> tuple[bool, str]:
    if header is not None:
        return header, "--header" if header else "--no-header"
    if columns is not None:
        return False, "--columns"
    return guess_header([r.cells for r in head], markers)


def guess_header(rows: Sequence[Sequence[str]], markers: Sequence[str]) -> tuple[bool, str]:
    """Tell whether the first of ``rows`` is a header line; return the answer and why.

    A column whose other values are all numbers votes "header" when its first cell is text
    and "data" when it is a number; a text column votes "data" when its first cell repeats
    one of its values. Any "header" vote wins (one text name over numbers is telling); with
    no vote at all the first row is taken as a header, as most files have one.
    """
    first, rest = rows[0], rows[1:]
    missing = set(markers)
    header_votes: list[int] = []
    data_votes: list[int] = []
    for j, cell in enumerate(first):
        values = [unwrap(r[j].strip()) for r in rest if j < len(r)]
        values = [v for v in values if v not in missing]
        text = unwrap(cell.strip())
        if not values or text in missing:
            continue
        if all(_is_number(v) for v in values):
            (data_votes if _is_number(text) else header_votes).append(j)
        elif text in set(values):
            data_votes.append(j)
    if header_votes:
        return True, f"column {header_votes[0] + 1} is named over numbers"
    if data_votes:
        numeric = [j for j in data_votes if _is_number(unwrap(first[j].strip()))]
        if numeric:
            return False, "its first row holds numbers where the columns below do"
        return False, "its first row repeats values of the columns below"
    return True, "nothing in the first row tells it from a header"


def _is_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _frame(path: Path, names: list[str], rows: Iterator[tuple[int, list[str]]]) -> pd.DataFrame:
    """Build a frame of text cells, ``CHUNK_ROWS`` rows at a time; short rows are padded."""
    width = len(names)
    parts: list[pd.DataFrame] = []
    chunk: list[list[str]] = []
    for line, cells in rows:
        if len(cells) != width:
            if len(cells) > width:
                raise DatasetError(
                    f"cannot read {path}: line {line} has {len(cells)} fields, the header "
                    f"{width}; quote a field that holds the delimiter"
                )
            cells.extend([""] * (width - len(cells)))  # a short row: missing at the end
        chunk.append(cells)
        if len(chunk) >= CHUNK_ROWS:
            parts.append(pd.DataFrame(chunk, columns=names, dtype=object))
            chunk = []
    if chunk or not parts:
        parts.append(pd.DataFrame(chunk, columns=names, dtype=object))
    return pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]


def clean_text(
    frame: pd.DataFrame, *, na_values: Sequence[str]
) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Strip text cells and column names, unwrap single-quoted columns, blank out missing
    markers and retype numeric text. Returns the frame, the unwrapped and the numeric columns.
    """
    missing = {*na_values, ""}
    out = frame.rename(columns=lambda c: str(c).strip())
    unquoted: list[str] = []
    numeric: list[str] = []
    for name in out.columns:
        col = out[name]
        if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
            continue
        text = col.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
        present = text[text.notna() & ~text.isin(missing)]
        if len(present) and present.map(lambda v: isinstance(v, str) and unwrap(v) != v).all():
            text = text.map(lambda v: unwrap(v) if isinstance(v, str) else v)
            unquoted.append(str(name))
        text = text.where(~text.isin(missing) & text.notna(), np.nan)
        if text.notna().all() and text.isin(_BOOLEAN_TEXT).all():
            out[name] = text.isin(_TRUE_TEXT)  # True/False in every row: a boolean, as pandas
            continue
        numbers = pd.to_numeric(text, errors="coerce")
        if text.notna().any() and numbers.notna().sum() == text.notna().sum():
            out[name] = numbers
            numeric.append(str(name))
        else:
            out[name] = text
    return out, unquoted, numeric


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow
    except ImportError:
        raise DatasetError(
            f"cannot read {path}: Parquet needs pyarrow; install it with "
            "`uv pip install 'mlcontainer[parquet]'` or use a CSV file"
        ) from None
    import pyarrow.lib

    try:
        return pd.read_parquet(path)
    except pyarrow.lib.ArrowException as exc:
        raise DatasetError(f"cannot read {path}: not a valid Parquet file ({exc})") from None


def _list(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)
