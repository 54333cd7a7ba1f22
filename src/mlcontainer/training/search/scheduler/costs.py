"""What one fit costs: seconds per family on a reference fold, and how that grows with rows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlcontainer.training.search.models import MAX_CATEGORIES

if TYPE_CHECKING:
    from mlcontainer.core.schema import Schema

#: The costs below are for a fold that fits this many rows of this many encoded columns.
REF_ROWS = 20_000


REF_WIDTH = 100


#: Seconds a fit takes whatever its rows (building the pipeline, encoding, predicting), for
#: the families without their own (see ``Cost.overhead``).
FIT_OVERHEAD = 0.02


@dataclass(frozen=True)
class Cost:
    """How long one CV fold (fit + predict) of a candidate takes, and how that grows."""

    seconds: float
    exponent: float
    why: str
    #: Seconds each fit takes whatever its rows. The measured speed is judged on the rest:
    #: a forest's 100 trees cost ~0.1 s even on 100 rows, and taken for slowness on a small
    #: file that made the whole machine look 35x slower than estimated (measured, issue 15).
    overhead: float = FIT_OVERHEAD
    #: Whether it fits one model per class when there are more than two (gradient
    #: boosting's trees: six quality levels made a fold six times dearer than estimated).
    per_class: bool = False

    def factor(self, classes: int) -> float:
        """How much dearer a fold is with ``classes`` classes than with two (or a number)."""
        return float(classes) if self.per_class and classes > 2 else 1.0

    @property
    def superlinear(self) -> bool:
        """Whether the cost grows faster than the rows (only such candidates are cut back)."""
        return self.exponent > 1.0


#: One core of this 2-core machine, a fold of UCI Adult (20 000 rows, ~100 encoded columns),
#: fit and predict, preprocessing included (~0.5 s: one-hot encoding text columns). Measured
#: with the default presets in issue 15 (fits at 2 000-20 000 rows, quiet machine, scaled to
#: 20 000 rows with the exponent). The plan needs them right within a factor of ~1.5; a
#: slower or busier machine is measured while the comparison runs and planned for again.
COSTS: dict[str, Cost] = {
    "logistic_regression": Cost(1.2, 1.0, "lbfgs passes over the rows"),
    "decision_tree": Cost(0.8, 1.1, "a tree sorts the rows at every split (n log n)"),
    "random_forest": Cost(
        4.8, 1.15, "100 trees each sort the rows at every split (n log n)", overhead=0.12
    ),
    "extra_trees": Cost(
        4.8, 1.1, "100 trees each split on random thresholds (n log n)", overhead=0.12
    ),
    "hist_gradient_boosting": Cost(
        3.0, 1.0, "it bins the rows once, then works on bins", overhead=0.1, per_class=True
    ),
    "svm": Cost(
        25.0,
        2.0,
        "an RBF-kernel SVM's fit grows with the square of the rows (and calibration fits it 4 "
        "times)",
        overhead=0.03,
    ),
    "k_nearest_neighbors": Cost(
        2.0, 2.0, "exact k-NN compares every row it predicts with every training row"
    ),
    "naive_bayes": Cost(0.9, 1.0, "one pass over the rows"),
    "ridge": Cost(1.0, 1.0, "one least-squares solve over the rows"),
    # Nothing to learn, but the rows are still encoded (one-hot columns of Adult: ~0.5 s).
    "baseline": Cost(0.6, 1.0, "it counts the classes or averages the target"),
}


def feature_width(schema: Schema) -> int:
    """Estimate how many columns the preprocessing makes: one-hot columns are bounded."""
    width = 0
    for f in schema.features:
        if f.kind == "categorical":
            n = len(f.categories) + 1 if f.categories is not None else MAX_CATEGORIES
            width += min(n, MAX_CATEGORIES)
        else:
            width += 1
    return max(width, 1)


def estimate(model: str, *, rows: int, width: int, speed: float = 1.0, classes: int = 2) -> float:
    """Estimate one fold's fit + predict seconds for ``rows`` fit rows of ``width`` columns.

    ``speed`` (how much slower than the costs the machine runs) scales the part that grows
    with the rows, as it is measured (:mod:`.speed` judges the fits on that part: on a small
    file the fixed part is most of a fit, and a ratio over the whole would say "slow" when
    only the constant is larger than guessed).
    """
    cost = COSTS[model]
    scaled = cost.seconds * (rows / REF_ROWS) ** cost.exponent * (width / REF_WIDTH)
    return float(cost.overhead + scaled * cost.factor(classes) * speed)


def rows_for(
    model: str, seconds: float, *, width: int, speed: float = 1.0, classes: int = 2
) -> int:
    """The fit rows one fold can have in ``seconds`` (the inverse of :func:`estimate`)."""
    cost = COSTS[model]
    per_row = cost.seconds * width / REF_WIDTH * speed * cost.factor(classes)
    scale = (seconds - cost.overhead) / per_row
    return int(REF_ROWS * max(scale, 0.0) ** (1 / cost.exponent))
