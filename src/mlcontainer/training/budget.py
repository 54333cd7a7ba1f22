"""Plan a comparison that keeps a time budget: estimate each candidate, subsample or skip it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mlcontainer.training.models import BASELINE, MAX_CATEGORIES

if TYPE_CHECKING:
    from mlcontainer.core.schema import Schema

DEFAULT_TIME_BUDGET = 60.0
#: Share of the budget planned for cross-validation; the rest is for loading the data, the
#: final fit of the selected model, the test evaluation and saving.
CV_SHARE = 0.6
#: Past this share of the budget, folds not yet started are skipped (estimates can be wrong:
#: the machine may be slower or busier than the one the costs were measured on).
GUARD_SHARE = 0.75
#: A subsample smaller than this compares unfairly with candidates fitted on every row.
MIN_SUBSAMPLE_ROWS = 1_000
#: The costs below are for a fold that fits this many rows of this many encoded columns.
REF_ROWS = 20_000
REF_WIDTH = 100


@dataclass(frozen=True)
class Cost:
    """How long one CV fold (fit + predict) of a candidate takes, and how that grows."""

    seconds: float
    exponent: float
    why: str

    @property
    def superlinear(self) -> bool:
        """Whether the cost grows faster than the rows (only such candidates are cut back)."""
        return self.exponent > 1.0


#: One core of this 2-core machine, a fold of UCI Adult (20 000 rows, ~100 encoded columns),
#: preprocessing included (~0.6 s: one-hot encoding text columns); figures from issue 6 and
#: bench/realdata_bench.py. Rough by design: the plan only has to tell a 1-second candidate
#: from a 5-minute one; the guard catches the rest.
COSTS: dict[str, Cost] = {
    "logistic_regression": Cost(2.0, 1.0, "lbfgs passes over the rows"),
    "decision_tree": Cost(1.0, 1.1, "a tree sorts the rows at every split (n log n)"),
    "random_forest": Cost(8.5, 1.15, "100 trees each sort the rows at every split (n log n)"),
    "extra_trees": Cost(7.5, 1.1, "100 trees each split on random thresholds (n log n)"),
    "hist_gradient_boosting": Cost(3.0, 1.0, "it bins the rows once, then works on bins"),
    "svm": Cost(
        55.0,
        2.0,
        "an RBF-kernel SVM's fit grows with the square of the rows (and calibration fits it 4 "
        "times)",
    ),
    "k_nearest_neighbors": Cost(
        2.5, 2.0, "exact k-NN compares every row it predicts with every training row"
    ),
    "naive_bayes": Cost(0.7, 1.0, "one pass over the rows"),
    "ridge": Cost(1.0, 1.0, "one least-squares solve over the rows"),
    "baseline": Cost(0.01, 1.0, "it counts the classes or averages the target"),
}


@dataclass(frozen=True)
class Action:
    """What the budget did to one candidate: fit each fold on fewer rows, or skip it."""

    model: str
    kind: Literal["subsample", "skip"]
    rows: int
    reason: str

    def to_dict(self) -> dict[str, object]:
        """Return the JSON form kept in the manifest's leaderboard."""
        return {"action": self.kind, "rows": self.rows, "reason": self.reason}


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


def estimate(model: str, *, rows: int, width: int) -> float:
    """Estimate one fold's fit + predict seconds for ``rows`` fit rows of ``width`` columns."""
    cost = COSTS[model]
    return float(cost.seconds * (rows / REF_ROWS) ** cost.exponent * (width / REF_WIDTH))


def _rows_for(model: str, seconds: float, *, width: int) -> int:
    cost = COSTS[model]
    scale = seconds / (cost.seconds * width / REF_WIDTH)
    return int(REF_ROWS * max(scale, 0.0) ** (1 / cost.exponent))


def _fair_share(totals: Mapping[str, float], room: float) -> float:
    """Return the cap that shares ``room`` seconds: small ones keep theirs, the rest get equal."""
    remaining = max(room, 0.0)
    ordered = sorted(totals.values())
    for i, total in enumerate(ordered):
        share = remaining / (len(ordered) - i)
        if total > share:
            return share
        remaining -= total
    return math.inf


def plan(
    models: Sequence[str],
    *,
    fit_rows: int,
    width: int,
    cv: int,
    budget: float | None,
    parallelism: int = 1,
) -> dict[str, Action]:
    """Decide which candidates to subsample or skip so the comparison fits the budget.

    Deterministic (rows, columns and budget only, no clock), so a local run and a cluster run
    with the same seed compare the same candidates on the same rows. Candidates whose cost is
    linear in the rows are never cut: they are the cheap, scalable ones.
    """
    if budget is None:
        return {}
    totals = {m: cv * estimate(m, rows=fit_rows, width=width) for m in models}
    room = budget * CV_SHARE * max(parallelism, 1)
    if sum(totals.values()) <= room:
        return {}
    fixed = sum(t for m, t in totals.items() if not COSTS[m].superlinear)
    flexible = {m: t for m, t in totals.items() if COSTS[m].superlinear}
    actions: dict[str, Action] = {}
    share = math.inf
    while flexible:
        share = _fair_share(flexible, room - fixed)
        too_small = [
            m
            for m, t in flexible.items()
            if t > share and _rows_for(m, share / cv, width=width) < MIN_SUBSAMPLE_ROWS
        ]
        real = len(totals) - (BASELINE in totals)  # the baseline does not count as a model
        if len(too_small) == len(flexible) and len(flexible) + len(actions) == real:
            # Never skip every candidate: the cheapest runs on the smallest fair subsample.
            too_small.remove(min(too_small, key=lambda m: flexible[m]))
        if not too_small:
            break
        for m in too_small:
            rows = _rows_for(m, share / cv, width=width)
            actions[m] = Action(
                m,
                "skip",
                0,
                f"skipped: {COSTS[m].why}; the {budget:g} s budget leaves it time for about "
                f"{rows:,} rows per fold, too few (< {MIN_SUBSAMPLE_ROWS:,}) to compare fairly",
            )
            del flexible[m]
    for m, total in flexible.items():
        if total <= share:
            continue
        rows = max(_rows_for(m, share / cv, width=width), min(MIN_SUBSAMPLE_ROWS, fit_rows))
        if rows >= 0.9 * fit_rows:  # not worth a line: the estimate is not that precise
            continue
        actions[m] = Action(
            m,
            "subsample",
            rows,
            f"cross-validated on {rows:,} of {fit_rows:,} rows per fold: {COSTS[m].why}; all "
            f"rows would take about {total:.0f} s, more than its share of the {budget:g} s "
            "budget",
        )
    return actions
