"""Plan a comparison that keeps a time budget: estimate each candidate, subsample or skip it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mlcontainer.training.search.models import MAX_CATEGORIES
from mlcontainer.training.search.tuning import SEARCH_PRIORITY, Preset, relative_cost

if TYPE_CHECKING:
    from mlcontainer.core.schema import Schema

#: Share of the budget planned for cross-validation; the rest is for loading the data, the
#: final fit of the selected model, the test evaluation and saving.
CV_SHARE = 0.6
#: Share of the budget kept, after the refit, for the test evaluation, the ONNX export, the
#: report and saving: the refit is cut back so it ends before it.
RESERVE_SHARE = 0.15
#: Share of the comparison's room the planned searches may take before rows are cut.
SEARCH_SHARE = 0.35
#: The comparison re-plans what is left when it runs this much slower than the estimates,
#: once it has measured this many core-seconds of fits (less says little about the machine).
BEHIND = 1.25
MEASURED_ENOUGH = 2.0
#: Before its folds, each candidate is fitted once on an eighth of a fold's planned rows (at
#: least this many) to measure it, unless that is half its rows already.
PROBE_FRACTION = 8
PROBE_ROWS = 200
#: A subsample smaller than this compares unfairly with candidates fitted on every row.
MIN_SUBSAMPLE_ROWS = 1_000
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


def estimate(model: str, *, rows: int, width: int, speed: float = 1.0, classes: int = 2) -> float:
    """Estimate one fold's fit + predict seconds for ``rows`` fit rows of ``width`` columns.

    ``speed`` (how much slower than the costs the machine runs) scales the part that grows
    with the rows, as it is measured (:class:`~mlcontainer.training.search.selection` judges the
    fits on that part: on a small file the fixed part is most of a fit, and a ratio over the
    whole would say "slow" when only the constant is larger than guessed).
    """
    cost = COSTS[model]
    scaled = cost.seconds * (rows / REF_ROWS) ** cost.exponent * (width / REF_WIDTH)
    return float(cost.overhead + scaled * cost.factor(classes) * speed)


def _rows_for(
    model: str, seconds: float, *, width: int, speed: float = 1.0, classes: int = 2
) -> int:
    """The fit rows one fold can have in ``seconds`` (the inverse of :func:`estimate`)."""
    cost = COSTS[model]
    per_row = cost.seconds * width / REF_WIDTH * speed * cost.factor(classes)
    scale = (seconds - cost.overhead) / per_row
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


@dataclass(frozen=True)
class Plan:
    """What the budget gives one candidate: how many of its presets to search (the first
    ``search``), on how many fit rows per fold, and the lines saying why, if cut."""

    model: str
    search: int
    rows: int
    reasons: tuple[str, ...] = ()

    def action(self, fit_rows: int) -> Action | None:
        """The subsample, as the leaderboard marks it (None: every row)."""
        if self.rows >= fit_rows:
            return None
        return Action(self.model, "subsample", self.rows, self.reasons[0])


def cost(
    model: str,
    presets: Sequence[Preset],
    *,
    rows: int,
    width: int,
    cv: int,
    speed: float = 1.0,
    classes: int = 2,
) -> float:
    """Estimated core-seconds of cross-validating ``model`` with a search over ``presets``
    on ``rows`` fit rows per fold (``speed``: how much slower the machine runs than the
    estimates)."""
    single = estimate(model, rows=rows, width=width, speed=speed, classes=classes)
    return cv * single * relative_cost(tuple(presets), rows, COSTS[model].exponent)


def plan(
    candidates: Mapping[str, Sequence[Preset]],
    *,
    fit_rows: int,
    width: int,
    cv: int,
    room: float | None,
    budget: float | None = None,
    speed: float = 1.0,
    note: str = "",
    classes: int = 2,
) -> dict[str, Plan]:
    """Decide, for each candidate, how many presets to search and on how many rows.

    ``room`` is the core-seconds the comparison may take (None: no budget, everything in
    full). Deterministic: rows, columns, room and ``speed`` only, no clock (a cluster run
    plans like a local one; the comparison re-plans with a measured ``speed`` only when it
    falls behind). Nothing is ever skipped:

    1. the candidates whose cost is linear in the rows keep every row; the others need at
       least ``MIN_SUBSAMPLE_ROWS`` (when even that does not fit, a busy machine, every
       candidate gets a fair share and fewer rows);
    2. the linear families' searches, in ``SEARCH_PRIORITY`` order (gradient boosting
       first), get what is spare, up to ``SEARCH_SHARE`` of the room;
    3. the superlinear candidates share the rest fairly, on fewer rows where needed;
    4. room left over goes to the remaining searches, in the same order.
    """
    full = {m: Plan(m, len(p), fit_rows) for m, p in candidates.items()}
    if room is None:
        return full

    def price(m: str, k: int, rows: int) -> float:
        return cost(
            m, candidates[m][:k], rows=rows, width=width, cv=cv, speed=speed, classes=classes
        )

    budget_text = f"the {budget:g} s budget" if budget is not None else "the budget"
    suffix = f" ({note})" if note else ""
    search = dict.fromkeys(candidates, 1)
    rows = dict.fromkeys(candidates, fit_rows)
    reasons: dict[str, list[str]] = {m: [] for m in candidates}
    order = [m for m in SEARCH_PRIORITY if m in candidates and len(candidates[m]) > 1]

    def add_searches(limit: float, linear_only: bool = False) -> float:
        """Give searches (largest that fits first) while their extra cost fits ``limit``."""
        for m in order:
            if linear_only and COSTS[m].superlinear:
                continue  # its rows may be cut below: its search waits for what is left
            if search[m] > 1:
                continue
            base = price(m, 1, rows[m])
            for k in range(len(candidates[m]), 1, -1):
                extra = price(m, k, rows[m]) - base
                if extra <= limit:
                    search[m] = k
                    limit -= extra
                    break
        return limit

    if sum(price(m, len(p), fit_rows) for m, p in candidates.items()) <= room:
        return full
    totals = {m: price(m, 1, fit_rows) for m in candidates}
    fixed = sum(t for m, t in totals.items() if not COSTS[m].superlinear)
    cut = {m: t for m, t in totals.items() if COSTS[m].superlinear}
    floor = min(MIN_SUBSAMPLE_ROWS, fit_rows)
    if fixed + sum(price(m, 1, floor) for m in cut) > room or not cut:
        # Even the linear candidates do not fit on every row (a busy machine): share it all.
        cut, fixed = totals, 0.0
    else:
        # The linear families' searches first (they gain most), from what the candidates
        # leave on every row and the others on their smallest subsample.
        spare = room - fixed - sum(price(m, 1, floor) for m in cut)
        limit = min(SEARCH_SHARE * room, spare)
        fixed += limit - add_searches(limit, linear_only=True)
    share = _fair_share(cut, room - fixed)
    for m, total in cut.items():
        if total <= share:
            continue
        fewer = max(_rows_for(m, share / cv, width=width, speed=speed, classes=classes), floor)
        if fewer >= 0.9 * fit_rows:  # not worth a line: the estimate is not that precise
            continue
        rows[m] = fewer
        reasons[m].append(
            f"cross-validated on {fewer:,} of {fit_rows:,} rows per fold: {COSTS[m].why}; "
            f"all rows would take about {total:.0f} s, more than its share of "
            f"{budget_text}{suffix}"
        )
    spent = sum(price(m, search[m], rows[m]) for m in candidates)
    add_searches(room - spent)
    for m in order:
        planned = len(candidates[m])
        if search[m] < planned:
            reasons[m].append(
                f"searched {search[m]} of its {planned} presets: {budget_text} leaves no time "
                f"for more{suffix}"
            )
    return {m: Plan(m, search[m], rows[m], tuple(reasons[m])) for m in candidates}
