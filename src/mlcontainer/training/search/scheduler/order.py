"""The order candidates are compared in: strongest first, so a budget cuts the weakest."""

from __future__ import annotations

from collections.abc import Sequence

from mlcontainer.training.search.scheduler.costs import COSTS

#: Families by how often they win on tabular data (gradient boosting, then the forests, then
#: the linear models; the leaderboards of the shared datasets and of Adult, issues 15-22),
#: the baseline once the strong and cheap ones ran: it is the bar the warning compares to.
STRENGTH = (
    "hist_gradient_boosting",
    "random_forest",
    "logistic_regression",
    "ridge",
    "extra_trees",
    "baseline",
    "naive_bayes",
    "decision_tree",
    "svm",
    "k_nearest_neighbors",
)


def comparison_order(models: Sequence[str]) -> list[str]:
    """``models`` in the order they are compared: strongest first, and those whose cost
    grows faster than the rows squared (SVM, k-NN) last, screened with the time left over."""
    rank = {m: i for i, m in enumerate(STRENGTH)}
    return sorted(models, key=lambda m: (COSTS[m].exponent >= 2.0, rank.get(m, len(STRENGTH)), m))
