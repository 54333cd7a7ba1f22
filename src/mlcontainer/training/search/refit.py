"""Select the best candidate whose refit on every training row fits the time left, and fit
it: the train step of the search. The test split is never seen before the model is chosen."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from mlcontainer.core.artifacts import Calibration, Decision
from mlcontainer.core.errors import TrainingError
from mlcontainer.core.schema import Schema
from mlcontainer.core.threads import one_native_thread
from mlcontainer.training.data.dataset import Dataset
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.search.candidates import CandidateResult
from mlcontainer.training.search.compare import compare
from mlcontainer.training.search.decision import calibrated_threshold, fit_calibration
from mlcontainer.training.search.ensemble import Blend
from mlcontainer.training.search.ensemble_model import ensemble_pipeline, refit_seconds
from mlcontainer.training.search.folds import FoldCallback
from mlcontainer.training.search.metrics import METRICS
from mlcontainer.training.search.models import BASELINE, build_pipeline, fit_ready
from mlcontainer.training.search.scheduler import clock
from mlcontainer.training.search.scheduler.clock import Deadline, seconds
from mlcontainer.training.search.scheduler.reserve import measured_refit, output_reserve
from mlcontainer.training.search.split import Split, split_dataset, target_array, target_scale


@dataclass(frozen=True)
class TrainingResult:
    """The comparison, the selected model's name and its pipeline fitted on the training split."""

    selected: str
    pipeline: Any
    leaderboard: list[CandidateResult]
    split: Split
    metric: str
    cv: int
    seed: int
    test_size: float
    #: One line per candidate the time budget subsampled or skipped, saying what and why.
    budget_lines: tuple[str, ...] = ()
    time_budget: float | None = None
    #: Rows the selected pipeline was fitted on: every training row.
    fit_rows: int = 0
    where: str = "local"
    #: Said when the baseline was selected, or beat the model selected.
    warnings: tuple[str, ...] = ()
    #: A binary classifier's calibration and threshold, decided out of fold.
    decision: Decision | None = None
    #: The preset the selected model's search kept, and its parameters.
    preset: str = "default"
    params: dict[str, Any] = field(default_factory=dict)
    #: The refit's seconds: as forecast before it started (from the candidate's folds), and
    #: as it took.
    refit_seconds: tuple[float, float] = (0.0, 0.0)
    #: The ensemble's members and weights, when the ensemble was selected.
    blend: Blend | None = None


def train(
    dataset: Dataset,
    options: TrainOptions,
    *,
    on_fold: FoldCallback | None = None,
    started: float | None = None,
) -> TrainingResult:
    """Compare the candidates, pick the best whose refit on every training row fits the time
    left, decide a binary classifier's calibration and threshold out of fold, then fit it on
    every training row.

    ``started`` is when the budget started (a :func:`clock.now` reading; now if None).
    """
    started = clock.now() if started is None else started
    deadline = Deadline(started, options.time_budget)
    cv, random_state = options.cv, options.seed
    schema = dataset.schema
    split = split_dataset(dataset, test_size=options.test_size, cv=cv, random_state=random_state)
    leaderboard = compare(split, schema, options, on_fold=on_fold, deadline=deadline)
    metric = options.metric_for(schema.task)
    best, warnings = _select(leaderboard, metric)
    if not best.ranked:
        reasons = "; ".join(
            f"{c.name}: {c.error or (c.budget.reason if c.budget else '')}" for c in leaderboard
        )
        raise TrainingError(f"every candidate model failed to train: {reasons}")
    y_train = target_array(split.y_train, schema)
    lines = [f"{c.name}: {line}" for c in leaderboard for line in _budget_lines(c)]
    chosen, forecast, line = _affordable(leaderboard, best, rows=len(y_train), deadline=deadline)
    if line:
        lines.append(line)
    decision = _decision(chosen, y_train, schema, metric)
    scale = target_scale(y_train, schema)
    pipeline = _unfitted(chosen, schema, y_train, random_state=random_state, scale=scale)
    start = clock.now()
    with one_native_thread():
        fit_ready(pipeline, y_train).fit(split.X_train, y_train)
    took = clock.now() - start
    return TrainingResult(
        selected=chosen.name,
        pipeline=pipeline,
        leaderboard=leaderboard,
        split=split,
        metric=metric,
        cv=cv,
        seed=random_state,
        test_size=options.test_size,
        budget_lines=tuple(lines),
        time_budget=options.time_budget,
        fit_rows=len(y_train),
        where=options.scheduler or "local",
        warnings=warnings,
        decision=decision,
        preset=chosen.preset.name,
        params=chosen.params,
        refit_seconds=(forecast, took),
        blend=chosen.blend,
    )


def _affordable(
    leaderboard: list[CandidateResult], best: CandidateResult, *, rows: int, deadline: Deadline
) -> tuple[CandidateResult, float, str | None]:
    """The best candidate whose refit on all ``rows`` rows (forecast from its own folds'
    fit time) ends before the time kept for the output; the line saying so when it is not
    ``best``. When none would, the quickest to refit, with a line saying the run overruns."""

    def need(c: CandidateResult) -> float:
        if c.blend is not None:
            return refit_seconds(c.blend, rows)
        if c.fit_rows <= 0:
            return 0.0
        return measured_refit(c.name, fold_seconds=c.fit_seconds, fold_rows=c.fit_rows, rows=rows)

    if deadline.budget is None or best.name == BASELINE:
        return best, need(best), None
    left = deadline.left(output_reserve(deadline.budget))
    ranked = [c for c in leaderboard if c.ranked and c.name != BASELINE]
    ranked = [best, *(c for c in ranked if c is not best)]
    chosen = next((c for c in ranked if need(c) <= left), None)
    first = (
        f"{best.name}: its refit on all {rows:,} training rows would take about "
        f"{seconds(need(best))}, more than the {seconds(left)} the {deadline.budget:g} s "
        "budget leaves"
    )
    if chosen is None:
        chosen = min(ranked, key=need)
        return (
            chosen,
            need(chosen),
            (
                f"{first}; no candidate's refit fits: {chosen.name}, the quickest, is refitted on "
                "every row and the run ends late"
            ),
        )
    if chosen is best:
        return best, need(best), None
    return chosen, need(chosen), f"{first}: selected {chosen.name}, the next best whose refit fits"


def _unfitted(
    chosen: CandidateResult, schema: Schema, y: np.ndarray, *, random_state: int, scale: float
) -> Any:
    """The selected model's pipeline with its preset (an ensemble's: its soft vote), unfitted."""
    if chosen.blend is not None:
        return ensemble_pipeline(chosen.blend, schema, y, random_state=random_state,
                                 target_scale=scale)  # fmt: skip
    pipeline = build_pipeline(chosen.name, schema, random_state=random_state, target_scale=scale)
    if chosen.preset.params:
        pipeline.set_params(**{f"model__{k}": v for k, v in chosen.preset.resolved(scale).items()})
    return pipeline


def _budget_lines(candidate: CandidateResult) -> list[str]:
    lines = [candidate.budget.reason] if candidate.budget is not None else []
    if candidate.search and "the budget" in candidate.search:
        lines.append(candidate.search)
    return lines


def _decision(best: CandidateResult, y: np.ndarray, schema: Schema, metric: str) -> Decision | None:
    """A binary classifier's calibration (kept if it helps out of fold) and threshold (tuned
    for ``metric`` out of fold): None when neither changes anything."""
    if best.weights is not None:  # several classes: tuned while ranking, kept as they helped
        return Decision(
            metric=metric,
            score_at_half=float(np.mean(best.weights.plain)),
            score_at_threshold=float(np.mean(best.weights.weighted)),
            class_weights=list(best.weights.weights),
        )
    if len(schema.classes) != 2 or best.oof is None or best.fold_of is None:
        return None
    positive_class = schema.classes[1]
    positive = y == positive_class
    p = best.oof[:, 1]
    fit = fit_calibration(p, positive, best.fold_of)
    calibration = None
    if fit is not None and fit.helps:
        calibration = Calibration(**asdict(fit))
    tuned = best.threshold
    if tuned is None and calibration is None:
        return None
    threshold = tuned.threshold if tuned is not None else 0.5
    if calibration is not None:
        threshold = calibrated_threshold(threshold, calibration.a, calibration.b)
    return Decision(
        positive_class=positive_class,
        threshold=threshold,  # unrounded: a rounded one could label a row differently
        metric=metric if tuned is not None else "none",
        score_at_half=tuned.score_at_half if tuned is not None else None,
        score_at_threshold=tuned.score if tuned is not None else None,
        calibration=calibration,
    )


def _select(
    leaderboard: list[CandidateResult], metric: str
) -> tuple[CandidateResult, tuple[str, ...]]:
    """The best ranked model, never the baseline unless every model failed; and warnings
    when the baseline had to be taken or scored better than the model selected."""
    baseline = next((c for c in leaderboard if c.name == BASELINE), None)
    models = [c for c in leaderboard if c.name != BASELINE]
    best = next((c for c in models if c.ranked), None)
    if best is None:
        if baseline is None or not baseline.ranked:
            return leaderboard[0], ()
        return baseline, (
            "every candidate model failed or was skipped, so the baseline was selected: it "
            "ignores the features (see the leaderboard for each candidate's reason)",
        )
    if (
        baseline is None
        or not baseline.ranked
        or leaderboard.index(baseline) > leaderboard.index(best)
    ):
        return best, ()
    label = METRICS[metric].label
    return best, (
        f"the selected {best.name} scored worse than the baseline, which ignores the features, "
        f"in cross-validation ({label} {best.means[metric]:.4g} against "
        f"{baseline.means[metric]:.4g}): the features may not predict the target",
    )
