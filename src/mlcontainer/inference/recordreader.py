"""Read rows to predict from Excel sheets and JSON / JSON Lines files: typed cells, in chunks.

The files are read as ``train`` reads them (:mod:`mlcontainer.core.excel`,
:mod:`mlcontainer.core.jsonrecords`): a JSON record names its columns (one it lacks is
missing there); an Excel sheet's first row is laid out by the same rule as a CSV's (a
header line, or data in the training file's columns). A column of a chunk that holds text
is read as CSV text, one without text keeps its types
(:func:`~mlcontainer.core.cells.text_or_typed`). Errors name the line a record starts on,
or the sheet's row number.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import replace
from pathlib import Path
from typing import Any

from mlcontainer.core.cells import cell_text, text_or_typed
from mlcontainer.core.csvtext import Row
from mlcontainer.core.errors import InputValidationError
from mlcontainer.core.excel import iter_sheet_rows
from mlcontainer.core.formats import Kind, open_bytes
from mlcontainer.core.jsonrecords import columns_of, iter_records
from mlcontainer.core.recipe import CellRules
from mlcontainer.core.schema import Schema
from mlcontainer.inference.decoding import check_columns, from_cells, positions
from mlcontainer.inference.layout import Resolver
from mlcontainer.inference.types import Decoded

#: The file types this module reads.
KINDS: tuple[Kind, ...] = ("excel", "json", "jsonl")


def iter_decoded(
    path: Path,
    kind: Kind,
    *,
    schema: Schema,
    rules: CellRules,
    ignored: Mapping[str, str],
    resolve: Resolver,
    chunk_rows: int,
) -> Iterator[tuple[Decoded, int]]:
    """Yield (validated chunk, input bytes read so far) from an Excel or JSON file."""
    if kind == "excel":
        chunks = _sheet_chunks(path, resolve, chunk_rows)
        size = path.stat().st_size  # the sheet is read whole: its bytes are read at once
        for names, rows, lines, notes in chunks:
            decoded = from_typed_rows(schema, names, rows, lines, rules, ignored)
            yield replace(decoded, warnings=[*notes, *decoded.warnings]), size
        return
    with (
        open_bytes(path, InputValidationError) as handle,
        # Closed before the file is: a refused chunk leaves the reader mid-file.
        closing(
            iter_records(handle, lines=kind == "jsonl", name=str(path), error=InputValidationError)
        ) as records,
    ):
        while chunk := list(itertools.islice(records, chunk_rows)):
            names, values = columns_of(record for _, record in chunk)
            rows = [list(row) for row in zip(*values.values(), strict=True)] if names else []
            lines = [line for line, _ in chunk]
            yield from_typed_rows(schema, names, rows, lines, rules, ignored), handle.tell()


def from_typed_rows(
    schema: Schema,
    names: Sequence[str],
    rows: Sequence[Sequence[Any]],
    lines: Sequence[int],
    rules: CellRules,
    ignored: Mapping[str, str],
) -> Decoded:
    """Validate rows of typed cells (numbers, text, booleans, ``None``) into typed columns.

    ``lines`` (where each row starts in its file) turns the rows of errors into lines.
    """
    try:
        stripped, position = positions(names)
        warnings = check_columns(schema, stripped, len(rows), ignored)
        cells: dict[str, list[Any]] = {}
        typed: list[str] = []
        for feature in schema.features:
            j = position[feature.name]
            cells[feature.name], as_text = text_or_typed([row[j] for row in rows])
            if not as_text:
                typed.append(feature.name)
        columns = from_cells(schema, cells, typed=typed, rules=rules)
    except InputValidationError as exc:
        raise exc.at_lines(lines) from None
    return Decoded(columns, len(rows), warnings, lines=lines)


def _sheet_chunks(
    path: Path, resolve: Resolver, chunk_rows: int
) -> Iterator[tuple[list[str], list[list[Any]], list[int], list[str]]]:
    """The first sheet's names and rows, ``chunk_rows`` at a time, with the layout's note."""
    rows = iter_sheet_rows(path, InputValidationError)
    first = next(rows, None)
    if first is None:
        raise InputValidationError(f"cannot read {path}: its first sheet is empty")
    line, cells = first
    layout = resolve(Row(line, [cell_text(c) or "" for c in cells]))
    data = itertools.chain([first], rows) if layout.first_is_data else rows
    notes = [layout.note] if layout.note else []
    while chunk := list(itertools.islice(data, chunk_rows)):
        yield layout.names, [c for _, c in chunk], [n for n, _ in chunk], notes
        notes = []
