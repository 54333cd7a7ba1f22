"""The comparison's order: strongest families first, SVM and k-NN last."""

from __future__ import annotations

from mlcontainer.training.search.models import MODELS
from mlcontainer.training.search.scheduler.order import STRENGTH, comparison_order


def test_every_candidate_has_a_strength() -> None:
    assert set(STRENGTH) == set(MODELS)


def test_gradient_boosting_runs_first_and_the_quadratic_ones_last() -> None:
    order = comparison_order(list(MODELS))
    assert order[0] == "hist_gradient_boosting"
    assert set(order[-2:]) == {"svm", "k_nearest_neighbors"}
    assert order.index("random_forest") < order.index("decision_tree")
