"""Typed errors: renumbered for the file their rows came from, and whole when pickled."""

from __future__ import annotations

import pickle

from mlcontainer.core.errors import InputValidationError, Problem, Reason


def _bad_row(row: int) -> InputValidationError:
    problem = Problem(Reason.WRONG_TYPE, "expected a number, got 'tall'", row=row, column="x")
    return InputValidationError.of([problem, problem], prefix="")


def test_rows_of_a_file_are_named_with_the_file_and_counted_from_1() -> None:
    located = _bad_row(2).in_file("part-3.parquet", first=10)
    assert located.message == (
        "in part-3.parquet (rows counted from 1): column 'x', row 13: "
        "expected a number, got 'tall' (and 1 more problem(s))"
    )
    assert [p.row for p in located.problems] == [13, 13]


def test_an_error_is_whole_after_pickling() -> None:
    error = _bad_row(4).in_file("a.parquet", first=0)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is InputValidationError
    assert (copy.message, copy.problems, copy.total) == (error.message, error.problems, 2)
    assert copy.details == error.details
