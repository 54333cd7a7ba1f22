"""The measured speed: a ratio of sums over fits large enough to tell, never one tiny fit."""

from __future__ import annotations

import pytest

from mlcontainer.training.search.scheduler.speed import MEANINGFUL, Speed


def test_tiny_fits_do_not_swing_the_machines_speed() -> None:
    speed = Speed()
    speed.record("naive_bayes", estimated=0.001, actual=3.0)  # 3000x: fixed costs, noise
    assert speed.ratio == 1.0
    speed.record("hist_gradient_boosting", estimated=2.0, actual=6.0)
    speed.record("logistic_regression", estimated=1.0, actual=3.0)
    assert speed.ratio == pytest.approx(3.0)


def test_a_candidate_much_slower_than_its_estimate_is_known_by_its_own_fits() -> None:
    speed = Speed()
    speed.record("hist_gradient_boosting", estimated=2.0, actual=2.0)
    assert speed.of("k_nearest_neighbors") == pytest.approx(1.0)  # the machine's, unmeasured
    speed.record("k_nearest_neighbors", estimated=MEANINGFUL / 10, actual=9.0)
    assert speed.of("k_nearest_neighbors") == pytest.approx(9.0 / (MEANINGFUL / 10))
    assert speed.ratio == pytest.approx(1.0)
