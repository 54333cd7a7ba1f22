"""Read the rows of an Excel workbook's first sheet (``.xlsx``) with python-calamine.

calamine (Rust) reads the workbook without running anything in it: no formulas are
evaluated, their saved values are read. Each row comes with its row number in the sheet, as
Excel shows it (the number an error names as its line); blank rows are skipped as blank
lines are in a CSV. Cells keep their types: numbers (whole ones as ``int``), text, booleans;
an empty cell is ``None``; a date or a time becomes its ISO text, as a CSV export writes it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from mlcontainer.core.formats import ErrorType

#: Whole numbers up to this size are read as ``int`` (beyond it a float is no exact integer).
_EXACT = 2**53


def iter_sheet_rows(path: Path, error: ErrorType) -> Iterator[tuple[int, list[Any]]]:
    """Yield ``(row number, cells)`` for each non-blank row of the first sheet of ``path``."""
    try:
        import python_calamine
    except ImportError:
        raise error(
            f"cannot read {path}: Excel files need python-calamine (install mlcontainer[formats])"
        ) from None
    try:
        workbook = python_calamine.CalamineWorkbook.from_path(str(path))
        sheet = workbook.get_sheet_by_index(0)
        rows = sheet.iter_rows()
    except python_calamine.CalamineError as exc:
        raise error(f"cannot read {path}: not a valid .xlsx workbook ({exc})") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    # iter_rows starts at the sheet's first row, whatever row its first cell is on.
    for number, row in enumerate(rows, start=1):
        cells = [_cell(v) for v in row]
        if any(c is not None for c in cells):
            yield number, cells


def _cell(value: Any) -> Any:
    if isinstance(value, str):
        return value if value else None
    if isinstance(value, float) and value.is_integer() and abs(value) < _EXACT:
        return int(value)
    if isinstance(value, (dt.date, dt.time, dt.timedelta)):
        return str(value)
    return value
