"""What the budget keeps back for the refit and the output."""

from __future__ import annotations

import pytest

from mlcontainer.training.search.scheduler.reserve import (
    measured_refit,
    output_reserve,
    refit_estimate,
    refit_reserve,
)


@pytest.mark.parametrize("budget", [5.0, 20.0, 60.0, 600.0])
def test_the_output_reserve_is_a_bounded_share_of_the_budget(budget: float) -> None:
    kept = output_reserve(budget)
    assert 0 < kept <= 0.25 * budget
    assert kept >= min(3.0, 0.25 * budget)


def test_a_refit_is_forecast_from_the_full_row_count_and_the_speed() -> None:
    one = refit_estimate("hist_gradient_boosting", rows=20_000, width=100, classes=2, speed=1.0)
    three = refit_estimate("hist_gradient_boosting", rows=20_000, width=100, classes=2, speed=3.0)
    double = refit_estimate("hist_gradient_boosting", rows=40_000, width=100, classes=2, speed=1.0)
    assert three > 2.5 * one
    assert double == pytest.approx(0.1 + 2 * (one - 0.1))
    quadratic = refit_estimate("svm", rows=40_000, width=100, classes=2, speed=1.0)
    assert quadratic > 3.5 * refit_estimate("svm", rows=20_000, width=100, classes=2, speed=1.0)


def test_a_measured_refit_grows_with_the_rows_as_its_family_costs_grow() -> None:
    linear = measured_refit("logistic_regression", fold_seconds=2.02, fold_rows=1_000, rows=2_000)
    assert linear == pytest.approx(0.02 + 2.0 * 2)
    square = measured_refit("svm", fold_seconds=1.03, fold_rows=1_000, rows=2_000)
    assert square == pytest.approx(0.03 + 1.0 * 4)
    assert refit_reserve([1.0, 5.0, 2.0]) == 5.0
    assert refit_reserve([]) == 0.0
