"""A mistyped name is answered with the closest valid one, or nothing."""

from __future__ import annotations

import pytest

from mlcontainer.core.suggest import did_you_mean

COLUMNS = ["age", "workclass", "education", "education_num", "income"]


@pytest.mark.parametrize(
    ("name", "hint"),
    [
        ("incom", " (did you mean 'income'?)"),
        ("Income", " (did you mean 'income'?)"),  # case alone
        ("educaton", " (did you mean 'education'?)"),
        ("zip_code", ""),  # nothing close: no guess
        ("", ""),
    ],
)
def test_did_you_mean_names_the_closest_valid_name(name: str, hint: str) -> None:
    assert did_you_mean(name, COLUMNS) == hint


def test_did_you_mean_keeps_the_first_of_names_differing_in_case_alone() -> None:
    assert did_you_mean("A", ["a", "A2", "a"]) == " (did you mean 'a'?)"
