"""Tuning: a few strong preset configurations per candidate, searched by successive halving.

Each candidate family has its registry default first, then up to three presets that are
known to do well on tabular data (slower, shallower or more regularised boosting; forests
that look at more features per split or stop earlier; stronger or weaker regularisation for
the linear models and the SVM; more neighbours), and, where the classes are imbalanced,
a ``class_weight="balanced"`` variant. The search is deterministic: the same rows, folds
and seed give the same rounds, the same survivor and the same parameters, locally or on a
Dask cluster.

Successive halving (as scikit-learn's ``HalvingGridSearchCV`` does, with the rows as the
resource): every preset is cross-validated on a third (or a ninth) of each fold's rows, the
best third go on to three times the rows, until one preset is scored on the full fold. The
survivor's scores are the candidate's scores. The search runs on the same folds as the
comparison, so the candidate's folds are never used to pick its preset and then judge it on
other rows.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlcontainer.core.schema import Task

#: Each round keeps this share of the presets (rounded up) and multiplies the rows by it.
FACTOR = 3
#: Rows a preset is fitted on in the first round at least: fewer compare presets by noise.
MIN_ROUND_ROWS = 500
#: The minority class's share of the rows under which the classes count as imbalanced (and
#: ``class_weight="balanced"`` variants join the search).
IMBALANCED_SHARE = 0.25


@dataclass(frozen=True)
class Spread:
    """A hyperparameter given in units of the regression target's standard deviation."""

    factor: float


@dataclass(frozen=True)
class Preset:
    """One configuration of a candidate: parameters of its model step, and its cost.

    ``params`` are ``set_params`` names of the pipeline's ``model`` step (the SVM classifier's
    SVC sits inside its calibration: ``estimator__C``); a :class:`Spread` value is multiplied
    by the training target's spread. ``cost`` is the fit time relative to the default's.
    """

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    cost: float = 1.0
    #: Only searched where the classes are imbalanced.
    imbalanced_only: bool = False

    def resolved(self, scale: float) -> dict[str, Any]:
        """The parameters with target-spread values turned into numbers."""
        return {
            k: (v.factor * scale if isinstance(v, Spread) else v) for k, v in self.params.items()
        }

    def shown(self, scale: float) -> dict[str, Any]:
        """The parameters as the leaderboard and the manifest show them (JSON values)."""
        return {k: _json(v) for k, v in self.resolved(scale).items()}


def _json(value: Any) -> Any:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    return value


DEFAULT = Preset("default")
_BALANCED = {"class_weight": "balanced"}
#: Gradient boosting's presets, the same for both tasks.
_BOOSTING = (
    DEFAULT,
    Preset(
        "depth=6",
        {"max_depth": 6, "max_leaf_nodes": None, "max_iter": 300, "early_stopping": True},
        cost=1.2,
    ),
    Preset(
        "lr=0.07 leaves=20",
        {
            "learning_rate": 0.07,
            "max_leaf_nodes": 20,
            "max_iter": 300,
            "early_stopping": True,
        },
        cost=1.4,
    ),
    Preset(
        "leaves=63 l2=1",
        {"max_leaf_nodes": 63, "min_samples_leaf": 40, "l2_regularization": 1.0},
        cost=1.3,
    ),
)

#: The presets of each candidate, per task, the registry default first. Missing: no search.
PRESETS: dict[tuple[str, Task], tuple[Preset, ...]] = {
    ("logistic_regression", "classification"): (
        DEFAULT,
        Preset("C=0.1", {"C": 0.1}),
        Preset("C=10", {"C": 10.0}, cost=1.5),
        Preset("balanced", _BALANCED, imbalanced_only=True),
    ),
    ("decision_tree", "classification"): (
        DEFAULT,
        Preset("leaf=5", {"min_samples_leaf": 5}, cost=0.9),
        Preset("leaf=20", {"min_samples_leaf": 20}, cost=0.8),
        Preset("leaf=5 balanced", {"min_samples_leaf": 5, **_BALANCED}, 0.9, True),
    ),
    ("random_forest", "classification"): (
        DEFAULT,
        Preset("leaf=3", {"min_samples_leaf": 3}, cost=0.7),
        Preset("features=0.5", {"max_features": 0.5}, cost=2.5),
        Preset("balanced", {"class_weight": "balanced_subsample"}, imbalanced_only=True),
    ),
    ("extra_trees", "classification"): (
        DEFAULT,
        Preset("leaf=3", {"min_samples_leaf": 3}, cost=0.7),
        Preset("features=0.5", {"max_features": 0.5}, cost=2.5),
        Preset("balanced", _BALANCED, imbalanced_only=True),
    ),
    ("hist_gradient_boosting", "classification"): (
        *_BOOSTING,
        Preset("balanced", _BALANCED, imbalanced_only=True),
    ),
    ("svm", "classification"): (
        DEFAULT,
        Preset("C=0.25", {"estimator__C": 0.25}, cost=1.1),
        Preset("C=4", {"estimator__C": 4.0}, cost=1.2),
        Preset("balanced", {"estimator__class_weight": "balanced"}, imbalanced_only=True),
    ),
    ("k_nearest_neighbors", "classification"): (
        DEFAULT,
        Preset("k=15", {"n_neighbors": 15}, cost=1.1),
        Preset("k=31 distance", {"n_neighbors": 31, "weights": "distance"}, cost=1.2),
    ),
    ("ridge", "regression"): (
        DEFAULT,
        Preset("alpha=0.1", {"alpha": 0.1}),
        Preset("alpha=10", {"alpha": 10.0}),
    ),
    ("decision_tree", "regression"): (
        DEFAULT,
        Preset("leaf=5", {"min_samples_leaf": 5}, cost=0.9),
        Preset("leaf=20", {"min_samples_leaf": 20}, cost=0.8),
    ),
    ("random_forest", "regression"): (
        DEFAULT,
        Preset("features=0.33", {"max_features": 0.33}, cost=0.4),
        Preset("leaf=3", {"min_samples_leaf": 3}, cost=0.7),
    ),
    ("extra_trees", "regression"): (
        DEFAULT,
        Preset("features=0.5", {"max_features": 0.5}, cost=0.6),
        Preset("leaf=3", {"min_samples_leaf": 3}, cost=0.7),
    ),
    ("hist_gradient_boosting", "regression"): _BOOSTING,
    ("svm", "regression"): (
        DEFAULT,
        Preset("C=1 spread", {"C": Spread(1.0)}, cost=0.9),
        Preset("C=10 spread", {"C": Spread(10.0)}, cost=1.3),
    ),
    ("k_nearest_neighbors", "regression"): (
        DEFAULT,
        Preset("k=15", {"n_neighbors": 15}, cost=1.1),
        Preset("k=31 distance", {"n_neighbors": 31, "weights": "distance"}, cost=1.2),
    ),
}

#: Which candidates' searches the budget keeps first when it cannot keep every search:
#: gradient boosting, the strongest family on tabular data, then the cheap linear models.
SEARCH_PRIORITY = (
    "hist_gradient_boosting",
    "logistic_regression",
    "ridge",
    "random_forest",
    "extra_trees",
    "svm",
    "k_nearest_neighbors",
    "decision_tree",
)


def is_imbalanced(class_counts: Mapping[Any, int]) -> bool:
    """Whether the smallest class holds less than ``IMBALANCED_SHARE`` of the rows."""
    total = sum(class_counts.values())
    return bool(total) and min(class_counts.values()) / total < IMBALANCED_SHARE


def presets_for(model: str, task: Task, *, imbalanced: bool = False) -> tuple[Preset, ...]:
    """The presets searched for ``model``, the default first (the default alone if none)."""
    found = PRESETS.get((model, task), (DEFAULT,))
    return tuple(p for p in found if imbalanced or not p.imbalanced_only)


@dataclass(frozen=True)
class Round:
    """One round of successive halving: how many presets it fits, on how many rows."""

    presets: int
    rows: int


def schedule(presets: int, rows: int) -> tuple[Round, ...]:
    """The rounds that take ``presets`` down to one, the last on ``rows`` (a fold's fit rows).

    Each round fits the best third (rounded up) of the previous round's presets on three
    times its rows. No round fits fewer than ``MIN_ROUND_ROWS`` rows, and a round on the same
    rows as the one before is left out (its presets were ranked there): on small data every
    preset is fitted once on all the rows, and the best one is kept.
    """
    counts = [max(presets, 1)]
    while counts[-1] > 1:
        counts.append(math.ceil(counts[-1] / FACTOR))
    last = len(counts) - 1
    out: list[Round] = []
    for i, count in enumerate(counts):
        fit = min(rows, max(rows // FACTOR ** (last - i), MIN_ROUND_ROWS))
        if out and out[-1].rows == fit:
            continue
        out.append(Round(count, fit))
    return tuple(out)


def relative_cost(presets: tuple[Preset, ...], rows: int, exponent: float) -> float:
    """The search's cost in units of one default fit on ``rows`` (cost grows as rows^exponent).

    The presets that survive a round are not known in advance: each round is priced at the
    mean cost of the presets searched.
    """
    if len(presets) <= 1:
        return presets[0].cost if presets else 1.0
    mean = sum(p.cost for p in presets) / len(presets)
    return math.fsum(
        r.presets * mean * (r.rows / max(rows, 1)) ** exponent for r in schedule(len(presets), rows)
    )
