"""Typed cells (JSON, Excel) read by one rule: a column with text is text, else typed."""

from __future__ import annotations

import datetime as dt

import pytest

from mlcontainer.core.cells import cell_text, text_or_typed


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, None),
        ("x", "x"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (0.1, "0.1"),
        (1e20, "1e+20"),
        (dt.date(2024, 1, 2), "2024-01-02"),
    ],
)
def test_cell_text_writes_a_typed_cell_as_a_csv_holds_it(value: object, text: str | None) -> None:
    assert cell_text(value) == text
    if isinstance(value, float):
        assert float(text) == value  # type: ignore[arg-type]  # exact: read back the same


def test_a_column_with_any_text_is_text_cell_by_cell() -> None:
    assert text_or_typed([1, "?", 2.5, None, True]) == (["1", "?", "2.5", None, "true"], True)


def test_a_column_without_text_keeps_its_types() -> None:
    assert text_or_typed([1, 2.5, None, False]) == ([1, 2.5, None, False], False)
