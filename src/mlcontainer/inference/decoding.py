"""Decode a batch into typed columns: JSON records, positional rows, or a table of text cells.

Each function checks the batch's shape against the model's schema (an empty batch, missing
features, rows of the wrong width), then applies the cell rules of :mod:`.coercion` to every
feature, and raises one :class:`~mlcontainer.core.errors.InputValidationError` listing the
problems. Rows are counted from 0, as positions in the batch; a reader renumbers them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from mlcontainer.core.errors import InputValidationError, Problem, Problems, Reason
from mlcontainer.core.recipe import CellRules
from mlcontainer.core.schema import Schema
from mlcontainer.core.suggest import did_you_mean
from mlcontainer.inference.coercion import PLAIN, coerce_text, coerce_typed, describe
from mlcontainer.inference.types import Columns, Decoded


def check_columns(
    schema: Schema,
    present: Iterable[str],
    n_rows: int,
    ignored: Mapping[str, str] | None = None,
) -> list[str]:
    """Refuse an empty batch or missing features; return notes for the columns not used.

    ``ignored`` names columns the model knows it does not use (the target, dropped ones)
    with why; any other column is unknown.
    """
    if n_rows == 0:
        raise InputValidationError("no rows to predict: the batch is empty")
    present = list(present)
    names = schema.names
    missing = [n for n in names if n not in present]
    if missing:
        others = [c for c in present if c not in names]
        shown = ", ".join(repr(m) + did_you_mean(m, others) for m in missing)
        raise InputValidationError(
            f"missing feature(s) {shown}; the model expects {', '.join(map(repr, names))}",
            problems=[
                Problem(Reason.MISSING_FEATURE, "missing feature", column=m) for m in missing
            ],
        )
    known = ignored or {}
    notes = [f"ignored column {c!r} ({known[c]})" for c in present if c in known]
    extra = [c for c in present if c not in names and c not in known]
    if extra:
        notes.append(f"ignored unknown column(s) {', '.join(map(repr, extra))}")
    return notes


def from_records(
    schema: Schema,
    records: Sequence[Mapping[str, Any]],
    rules: CellRules = PLAIN,
    ignored: Mapping[str, str] | None = None,
) -> Decoded:
    """Validate JSON-style records (``{feature: value}``) into typed columns."""
    seen: dict[str, None] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise InputValidationError.of(
                [Problem(Reason.ROW_SHAPE, f"expected an object of feature values, got "
                         f"{describe(rec)}", row=i)]
            )  # fmt: skip
        seen.update(dict.fromkeys(rec))
    warnings = check_columns(schema, seen, len(records), ignored)
    missing = Problems()
    for i, rec in enumerate(records):
        for n in schema.names:
            if n not in rec:
                missing.add(Reason.MISSING_FEATURE, "missing feature", row=i, column=n)
    missing.raise_if_any()
    problems = Problems()
    columns = {
        f.name: coerce_typed(f, [rec[f.name] for rec in records], problems, rules)
        for f in schema.features
    }
    problems.raise_if_any()
    return Decoded(columns, len(records), warnings)


def from_rows(schema: Schema, rows: Sequence[Sequence[Any]], rules: CellRules = PLAIN) -> Decoded:
    """Validate positional rows (values in schema order) into typed columns."""
    if len(rows) == 0:
        raise InputValidationError("no rows to predict: the batch is empty")
    width = len(schema.features)
    problems = Problems()
    for i, row in enumerate(rows):
        if isinstance(row, (str, bytes, Mapping)) or not isinstance(row, Sequence):
            problems.add(Reason.ROW_SHAPE, f"expected a list of {width} values", row=i, column=None)
        elif len(row) != width:
            problems.add(
                Reason.ROW_SHAPE,
                f"expected {width} values in schema order, got {len(row)}",
                row=i,
                column=None,
            )
    problems.raise_if_any()
    columns = {
        f.name: coerce_typed(f, [row[j] for row in rows], problems, rules)
        for j, f in enumerate(schema.features)
    }
    problems.raise_if_any()
    return Decoded(columns, len(rows))


def positions(header: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """Strip a header's names; map each name to its first column (a repeated name: the first)."""
    names = [str(h).strip() for h in header]
    position: dict[str, int] = {}
    for j, n in enumerate(names):
        position.setdefault(n, j)
    return names, position


def from_text(
    schema: Schema,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    rules: CellRules = PLAIN,
    ignored: Mapping[str, str] | None = None,
    *,
    lines: Sequence[int] | None = None,
) -> Decoded:
    """Validate a CSV-style table (text cells, parsed per the schema) into typed columns.

    ``lines`` (the file line of each row) turns the rows of errors into lines.
    """
    try:
        names, position = positions(header)
        warnings = check_columns(schema, names, len(rows), ignored)
        check_widths(rows, len(names))
        cells = list(zip(*rows, strict=True)) if rows else []
        text = {f.name: cells[position[f.name]] for f in schema.features}
        columns = from_cells(schema, text, rules=rules)
    except InputValidationError as exc:
        raise exc.at_lines(lines) if lines is not None else exc from None
    return Decoded(columns, len(rows), warnings, lines=lines)


def from_cells(
    schema: Schema,
    cells: Mapping[str, Sequence[Any]],
    *,
    typed: Iterable[str] = (),
    rules: CellRules = PLAIN,
) -> Columns:
    """Validate one sequence of cells per feature: text cells unless named in ``typed``."""
    as_typed = set(typed)
    problems = Problems()
    columns = {
        f.name: coerce_typed(f, cells[f.name], problems, rules)
        if f.name in as_typed
        else coerce_text(f, cells[f.name], problems, rules)
        for f in schema.features
    }
    problems.raise_if_any()
    return columns


def check_widths(rows: Sequence[Sequence[str]], width: int) -> None:
    """Refuse CSV rows with more or fewer fields than ``width`` columns, first one first.

    A short row is never padded: it is a row cut off (a failed upload, a truncated file) or
    a delimiter lost, and a made-up prediction for it would look like the model's answer.
    """
    if all(len(r) == width for r in rows):
        return
    index, row = next((i, r) for i, r in enumerate(rows) if len(r) != width)
    fix = (
        "quote a field that holds the delimiter"
        if len(row) > width
        else "is the row cut short? write an empty field for a missing value"
    )
    raise InputValidationError.of(
        [Problem(Reason.ROW_SHAPE, f"it has {len(row)} fields for {width} columns; {fix}",
                 row=index)],
        prefix="cannot parse the input CSV: ",
    )  # fmt: skip
