"""An Excel sheet's rows with their row numbers and typed cells, read with python-calamine."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mlcontainer.core.errors import DatasetError
from mlcontainer.core.excel import iter_sheet_rows

xlsxwriter = pytest.importorskip("xlsxwriter")  # the dev group writes what calamine reads
pytest.importorskip("python_calamine")


def test_rows_keep_their_sheet_numbers_and_types(tmp_path: Path) -> None:
    path = tmp_path / "d.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet("first")
    date = book.add_format({"num_format": "yyyy-mm-dd"})
    sheet.write_row(2, 1, ["n", "x", "flag", "when"])  # the table starts at B3
    sheet.write_row(3, 1, [1, 2.5, True])
    sheet.write_datetime(3, 4, dt.datetime(2024, 1, 2), date)
    sheet.write_row(5, 1, [3, "text", False, ""])  # row 5 is blank: skipped
    book.add_worksheet("second").write(0, 0, "not read")
    book.close()
    rows = list(iter_sheet_rows(path, DatasetError))
    assert rows == [
        (3, ["n", "x", "flag", "when"]),
        (4, [1, 2.5, True, "2024-01-02"]),  # a whole number is an int, a date its ISO text
        (6, [3, "text", False, None]),  # an empty cell is missing
    ]


def test_a_file_that_is_no_workbook_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "d.xlsx"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(DatasetError, match=r"cannot read .*d\.xlsx: not a valid \.xlsx workbook"):
        list(iter_sheet_rows(path, DatasetError))
