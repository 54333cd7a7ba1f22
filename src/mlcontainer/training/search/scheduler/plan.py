"""Plan a comparison into the room it has: each candidate's search and rows, or a skip."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from mlcontainer.training.search.scheduler.clock import seconds
from mlcontainer.training.search.scheduler.costs import COSTS, estimate, rows_for
from mlcontainer.training.search.tuning import SEARCH_PRIORITY, Preset, relative_cost

#: Share of the comparison's room the planned searches may take before rows are cut.
SEARCH_SHARE = 0.35
#: A subsample smaller than this compares unfairly with candidates fitted on every row.
MIN_SUBSAMPLE_ROWS = 1_000


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
    ``search``), on how many fit rows per fold (0: skipped), and the lines saying why."""

    model: str
    search: int
    rows: int
    reasons: tuple[str, ...] = ()

    @property
    def skipped(self) -> bool:
        """Whether the candidate is not compared at all."""
        return self.rows == 0

    def action(self, fit_rows: int) -> Action | None:
        """The cut, as the leaderboard marks it (None: every row)."""
        if self.skipped:
            return Action(self.model, "skip", 0, self.reasons[0])
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
    full). Deterministic: rows, columns, room and ``speed`` only, no clock.

    1. the candidates whose cost is linear in the rows keep every row, always (the
       comparison runs the strongest first and does not start what would overrun);
    2. their searches, in ``SEARCH_PRIORITY`` order (gradient boosting first), get what is
       spare, up to ``SEARCH_SHARE`` of the room;
    3. the superlinear candidates (SVM, k-NN, the trees) share what the linear ones leave,
       on fewer rows where needed (``MIN_SUBSAMPLE_ROWS`` at least); one that does not fit
       even there is skipped: screened only when there is time to spare;
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
            if search[m] > 1 or rows[m] == 0:
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
    linear = sum(t for m, t in totals.items() if not COSTS[m].superlinear)
    cut = {m: t for m, t in totals.items() if COSTS[m].superlinear}
    floor = min(MIN_SUBSAMPLE_ROWS, fit_rows)
    spare = max(room - linear, 0.0)
    least = {m: price(m, 1, floor) for m in cut}
    # The superlinear candidates that do not fit even on the smallest subsample are skipped,
    # the dearest first, until the others fit what the linear ones leave.
    for m in sorted(cut, key=lambda m: -least[m]):
        if sum(least[k] for k in cut) <= spare:
            break
        rows[m] = 0
        reasons[m].append(
            f"not compared: {COSTS[m].why}; even {floor:,} rows per fold would take about "
            f"{seconds(least[m])}, more than {budget_text} leaves after the stronger "
            f"candidates{suffix}"
        )
        del cut[m]
    limit = min(SEARCH_SHARE * room, max(spare - sum(least[k] for k in cut), 0.0))
    fixed = linear + limit - add_searches(limit, linear_only=True)
    share = _fair_share(cut, room - fixed)
    for m, total in cut.items():
        if total <= share:
            continue
        fewer = max(rows_for(m, share / cv, width=width, speed=speed, classes=classes), floor)
        if fewer >= 0.9 * fit_rows:  # not worth a line: the estimate is not that precise
            continue
        rows[m] = fewer
        reasons[m].append(
            f"cross-validated on {fewer:,} of {fit_rows:,} rows per fold: {COSTS[m].why}; "
            f"all rows would take about {seconds(total)}, more than its share of "
            f"{budget_text}{suffix}"
        )
    spent = sum(price(m, search[m], rows[m]) for m in candidates if rows[m])
    add_searches(room - spent)
    for m in order:
        planned = len(candidates[m])
        if rows[m] and search[m] < planned:
            reasons[m].append(
                f"searched {search[m]} of its {planned} presets: {budget_text} leaves no time "
                f"for more{suffix}"
            )
    return {m: Plan(m, search[m], rows[m], tuple(reasons[m])) for m in candidates}
