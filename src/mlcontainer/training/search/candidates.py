"""A candidate's cross-validated result: its folds summarised, scored at its own threshold
or class weights when the metric depends on them."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mlcontainer.core.decision import threshold_labels, weighted_labels
from mlcontainer.training.search.decision import (
    MAX_WEIGHT_WORK,
    THRESHOLD_METRICS,
    Threshold,
    Weights,
    cross_fitted_weights,
    tune_threshold,
)
from mlcontainer.training.search.ensemble import Blend, Member
from mlcontainer.training.search.folds import FoldResult, FoldRunner
from mlcontainer.training.search.metrics import TASK_METRICS, score_all
from mlcontainer.training.search.scheduler.costs import COSTS
from mlcontainer.training.search.scheduler.plan import Action, Plan
from mlcontainer.training.search.split import target_scale
from mlcontainer.training.search.tuning import DEFAULT, Preset


@dataclass(frozen=True)
class CandidateResult:
    """A candidate's cross-validated scores (mean and standard deviation over the folds) with
    the preset its search kept."""

    name: str
    means: dict[str, float]
    stds: dict[str, float]
    fit_seconds: float
    predict_ms_per_row: float
    error: str | None = None
    #: What the time budget did to this candidate (subsampled), if anything.
    budget: Action | None = None
    preset: Preset = DEFAULT
    params: dict[str, Any] = field(default_factory=dict)
    #: How the preset was found, in one line (None: not searched).
    search: str | None = None
    #: A binary classifier's threshold, tuned out of fold; the scores are at it.
    threshold: Threshold | None = None
    #: Several classes: the class weights tuned out of fold (its scores are cross-fitted).
    weights: Weights | None = None
    #: The selection metric on each fold (the strip plot of the report).
    fold_scores: tuple[float, ...] = ()
    #: Mean seconds of one fold's fit + predict: the cost table's estimate (at speed 1), the
    #: scheduler's forecast (at the speed measured when it started) and the actual time.
    timing: tuple[float, float, float] = (0.0, 0.0, 0.0)
    #: Rows each fold's fit used (fewer than a fold's if subsampled).
    fit_rows: int = 0
    #: Out-of-fold probabilities of the training rows (a classifier's; a regressor's
    #: predictions, one column), in row order.
    oof: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: The fold each training row was validated in.
    fold_of: np.ndarray | None = field(default=None, repr=False, compare=False)
    #: The ensemble's members and weights (only the ensemble has them).
    blend: Blend | None = field(default=None, compare=False)
    #: The other presets the search fitted on whole folds, for the ensemble to choose from.
    alternatives: tuple[Member, ...] = field(default=(), repr=False, compare=False)

    @property
    def ranked(self) -> bool:
        """Whether the candidate has scores to rank (it did not fail)."""
        return self.error is None and (self.budget is None or self.budget.kind != "skip")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form kept in the manifest's leaderboard."""

        def clean(x: float) -> float | None:
            return None if math.isnan(x) else x

        return {
            "name": self.name,
            "scores": {
                k: {"mean": clean(self.means[k]), "std": clean(self.stds[k])} for k in self.means
            },
            "fit_seconds": round(self.fit_seconds, 4),
            "predict_ms_per_row": round(self.predict_ms_per_row, 5),
            "error": self.error,
            "budget": self.budget.to_dict() if self.budget is not None else None,
            "preset": self.preset.name,
            "params": self.params,
            "search": self.search,
            "threshold": round(self.threshold.threshold, 6) if self.threshold else None,
            "class_weights": [round(w, 4) for w in self.weights.weights] if self.weights else None,
            "fold_scores": [clean(x) for x in self.fold_scores],
            "timing": {
                "estimated_fold_seconds": round(self.timing[0], 4),
                "forecast_fold_seconds": round(self.timing[1], 4),
                "fold_seconds": round(self.timing[2], 4),
            },
            **({"members": self.blend.to_list()} if self.blend is not None else {}),
        }


def summarise(
    name: str,
    folds: list[FoldResult],
    planned: Plan,
    run: FoldRunner,
    preset: Preset,
    search: str | None,
    metrics: Mapping[str, Any],
) -> CandidateResult:
    """The candidate's folds summarised: mean and spread of each metric, timings and its
    out-of-fold probabilities; skipped if a fold was not started (the deadline)."""
    nan = dict.fromkeys(metrics, math.nan)
    action = planned.action(run.fold_rows)
    params = preset.shown(target_scale(run.y, run.schema))
    if any(f.not_started for f in folds):
        return skipped(
            name, metrics, "not finished: its folds would have ended after the time the "
            "comparison has (the refit of the selected model and the report are kept)",
        )  # fmt: skip
    errors = [f.error for f in folds if f.error]
    if errors:
        return CandidateResult(
            name, nan, dict(nan), 0.0, 0.0, error=errors[0], budget=action, preset=preset,
            params=params, search=search,
        )  # fmt: skip
    folds = sorted(folds, key=lambda f: f.fold)
    means = {k: mean([f.scores[k] for f in folds]) for k in metrics}
    stds = {k: std([f.scores[k] for f in folds]) for k in metrics}
    fit = float(np.mean([f.fit_seconds for f in folds]))
    per_row = sum(f.predict_seconds for f in folds) / max(1, sum(f.rows for f in folds))
    oof = fold_of = None
    if folds[0].proba is not None:
        oof = np.zeros((len(run.y), folds[0].proba.shape[1]))
        fold_of = np.zeros(len(run.y), dtype=np.intp)
        for f in folds:
            _, val = run.folds[f.fold]
            assert f.proba is not None
            oof[val], fold_of[val] = f.proba, f.fold
    fixed = COSTS[name].overhead
    timing = (
        float(np.mean([fixed + f.estimated for f in folds])),
        float(np.mean([f.forecast for f in folds])),
        float(np.mean([f.fit_seconds + f.predict_seconds for f in folds])),
    )
    return CandidateResult(
        name, means, stds, fit, per_row * 1000, budget=action, preset=preset, params=params,
        search=search, fold_scores=tuple(f.scores[run.metric] for f in folds), oof=oof,
        fold_of=fold_of, timing=timing, fit_rows=folds[0].fit_rows,
    )  # fmt: skip


def skipped(name: str, metrics: Mapping[str, Any], reason: str) -> CandidateResult:
    """A candidate the budget did not compare, with the reason in one line."""
    nan = dict.fromkeys(metrics, math.nan)
    return CandidateResult(name, nan, dict(nan), 0.0, 0.0, budget=Action(name, "skip", 0, reason))


def preset_key(
    by_preset: Mapping[int, list[FoldResult]], run: FoldRunner, spec: Any, i: int
) -> tuple[bool, float, int]:
    """Rank presets: those that fit, best mean first; ties to the earlier preset. A binary
    classifier's presets are compared at their own out-of-fold threshold (as the candidates
    are) when the metric depends on one."""
    folds = by_preset[i]
    if any(f.error or f.not_started for f in folds):
        return (True, 0.0, i)
    if tunes_threshold(run) and all(f.proba is not None for f in folds):
        oof = np.zeros((len(run.y), 2))
        for f in folds:
            assert f.proba is not None
            oof[run.folds[f.fold][1]] = f.proba
        mean = tune_threshold(oof[:, 1], run.y == run.schema.classes[1], run.metric).score
    else:
        mean = float(np.mean([f.scores[run.metric] for f in folds]))
    return (False, -mean if spec.greater_is_better else mean, i)


def tunes_threshold(run: FoldRunner) -> bool:
    """Whether a threshold is tuned: two classes, and a metric that depends on it."""
    return len(run.schema.classes) == 2 and run.metric in THRESHOLD_METRICS


def at_threshold(candidate: CandidateResult, run: FoldRunner) -> CandidateResult:
    """The candidate scored at its own out-of-fold threshold for the selection metric (every
    label metric of every fold at it; the probability metrics do not change)."""
    if not candidate.ranked or candidate.oof is None or candidate.fold_of is None:
        return candidate
    classes = run.schema.classes
    positive = run.y == classes[1]
    tuned = tune_threshold(candidate.oof[:, 1], positive, run.metric)
    oof = candidate.oof
    labels = [threshold_labels(oof[val], classes, 1, tuned.threshold) for _, val in run.folds]
    return _rescored(candidate, run, labels, threshold=tuned)


def tunes_weights(run: FoldRunner) -> bool:
    """Whether class weights are tuned: several classes, a metric that depends on the labels,
    and rows x classes² small enough for the search to cost little."""
    k = len(run.schema.classes)
    return k > 2 and run.metric in THRESHOLD_METRICS and len(run.y) * k * k <= MAX_WEIGHT_WORK


def at_weights(candidate: CandidateResult, run: FoldRunner) -> CandidateResult:
    """The candidate with class weights tuned out of fold, if they help: its label metrics
    cross-fitted (each fold labelled with weights tuned on the other folds' rows), so a
    candidate is not ranked on weights fitted to the rows that score it."""
    if not candidate.ranked or candidate.oof is None:
        return candidate
    classes = list(run.schema.classes)
    position = {c: i for i, c in enumerate(classes)}
    truth = np.fromiter((position[v] for v in run.y.tolist()), np.intp, len(run.y))
    tuned = cross_fitted_weights(candidate.oof, truth, [val for _, val in run.folds], run.metric)
    if not tuned.helps:
        return candidate
    oof = candidate.oof
    labels = [weighted_labels(oof[val], classes, w) for (_, val), w in
              zip(run.folds, tuned.fold_weights, strict=True)]  # fmt: skip
    return _rescored(candidate, run, labels, weights=tuned)


def _rescored(
    candidate: CandidateResult, run: FoldRunner, labels: list[np.ndarray], **changes: Any
) -> CandidateResult:
    """The candidate with every metric of every fold computed again from its out-of-fold
    probabilities and ``labels`` (one array per fold, as the decision layer labels them)."""
    assert candidate.oof is not None
    classes = run.schema.classes
    per_fold = [
        score_all(run.y[val], fold_labels, candidate.oof[val], classes)
        for (_, val), fold_labels in zip(run.folds, labels, strict=True)
    ]
    metrics = TASK_METRICS["classification"]
    return replace(
        candidate,
        means={m: mean([f[m] for f in per_fold]) for m in metrics},
        stds={m: std([f[m] for f in per_fold]) for m in metrics},
        fold_scores=tuple(f[run.metric] for f in per_fold),
        **changes,
    )


def mean(values: list[float]) -> float:
    """The mean, NaN if any value is (MAPE on a fold with a zero target)."""
    return float(np.mean(values))


def std(values: list[float]) -> float:
    return float(np.std(values))
