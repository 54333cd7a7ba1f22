"""What a cell of an input file means, whatever the file's format: the missing-value markers,
and when a typed cell (JSON, Excel) is read as text.

A leaf without third-party imports, so the command line can show ``--na-values``' default
without loading the recipe's pydantic model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

#: Cell values read as missing (after surrounding spaces are stripped) unless ``--na-values``
#: gives another list. ``?`` is UCI's marker; an empty cell is always missing.
DEFAULT_NA_VALUES: tuple[str, ...] = (
    "",
    "?",
    "NA",
    "N/A",
    "n/a",
    "NaN",
    "nan",
    "NULL",
    "null",
    "None",
    "#N/A",
)


def cell_text(value: Any) -> str | None:
    """A typed cell (JSON, Excel) as a CSV would hold it; ``None`` stays missing.

    Booleans are ``true``/``false``, numbers their shortest exact text, dates and times
    their ISO text.
    """
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def text_or_typed(values: Sequence[Any]) -> tuple[list[Any], bool]:
    """Read a column of typed cells (from JSON or Excel) by one rule, in training and predicting.

    A column holding any text is text, cell by cell like a CSV column (its numbers and
    booleans written as text: missing-value markers, quotes and numbers in text then apply
    to it as to a CSV's); a column without text keeps its values' types. Returns the values
    and whether they are text.
    """
    if any(isinstance(v, str) for v in values):
        return [cell_text(v) for v in values], True
    return list(values), False
