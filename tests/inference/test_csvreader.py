"""The stdlib CSV reader: rows with their file lines, strict quoting, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlcontainer.core.errors import InputValidationError
from mlcontainer.inference.csvreader import read_csv_text


def test_read_csv_text_reads_header_and_rows(tmp_path: Path) -> None:
    chunk = read_csv_text(b"\xef\xbb\xbfa, b\n1, x\n\n2,\n")
    assert chunk.names == ["a", "b"]
    assert chunk.rows == [["1", "x"], ["2", ""]]
    assert list(chunk.lines) == [2, 4]  # the blank line 3 is skipped, not renumbered


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "the input is empty"), (b"\n\n", "the input is empty"), (b"a\n\xff\n", "not UTF-8")],
)
def test_read_csv_text_refuses_empty_or_undecodable_input(data: bytes, message: str) -> None:
    with pytest.raises(InputValidationError, match=message):
        read_csv_text(data)
