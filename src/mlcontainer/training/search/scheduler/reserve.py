"""What the budget keeps back: the refit of the selected model on every training row, and
the evaluation, export, report and saving after it."""

from __future__ import annotations

from collections.abc import Iterable

from mlcontainer.training.search.scheduler.costs import COSTS, estimate

#: Kept for evaluating, exporting (ONNX and its check), the report (permutation importance,
#: plots) and saving: this share of the budget, at least ``OUTPUT_SECONDS`` and at most
#: ``OUTPUT_MOST`` of it. Measured on Adult and diamonds at load 1-3: 2-6 s.
OUTPUT_SHARE = 0.1
OUTPUT_SECONDS = 3.0
OUTPUT_MOST = 0.25
#: A candidate whose refit on every row would take more than this share of the budget (what
#: the output leaves) cannot win: its comparison would be time spent on a model never shipped.
REFIT_MOST = 0.5


def output_reserve(budget: float) -> float:
    """Seconds kept at the end of a ``budget`` for evaluation, export, report and saving."""
    return min(max(OUTPUT_SHARE * budget, OUTPUT_SECONDS), OUTPUT_MOST * budget)


def refit_estimate(
    model: str, *, rows: int, width: int, classes: int, speed: float, preset_cost: float = 1.0
) -> float:
    """Estimated seconds of fitting ``model`` once on ``rows`` rows at the measured ``speed``."""
    fixed = COSTS[model].overhead
    variable = estimate(model, rows=rows, width=width, classes=classes) - fixed
    return fixed + variable * speed * preset_cost


def measured_refit(model: str, *, fold_seconds: float, fold_rows: int, rows: int) -> float:
    """Seconds of refitting ``model`` on ``rows`` rows, from its folds' measured fit time on
    ``fold_rows`` rows each, grown as the family's cost grows."""
    fixed = min(COSTS[model].overhead, fold_seconds)
    grown = float((rows / max(fold_rows, 1)) ** COSTS[model].exponent)
    return fixed + (fold_seconds - fixed) * grown


def refit_reserve(refits: Iterable[float]) -> float:
    """Seconds kept for the refit: the dearest of the refits of the candidates that can win
    (only one is refitted, but which one is not known before they are compared)."""
    return max(refits, default=0.0)
