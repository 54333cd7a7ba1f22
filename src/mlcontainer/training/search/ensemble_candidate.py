"""The ensemble as a candidate: the compared candidates and their presets as members, and
the selected ensemble as one more row of the leaderboard (see :mod:`ensemble`)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mlcontainer.training.search.candidates import (
    CandidateResult,
    mean,
    std,
    tunes_threshold,
    tunes_weights,
)
from mlcontainer.training.search.ensemble import ENSEMBLE, Member, select
from mlcontainer.training.search.folds import FoldResult, FoldRunner
from mlcontainer.training.search.metrics import TASK_METRICS
from mlcontainer.training.search.models import BASELINE
from mlcontainer.training.search.tuning import Preset


def alternatives(
    run: FoldRunner,
    name: str,
    searched: tuple[Preset, ...],
    by_preset: Mapping[int, list[FoldResult]],
    best: int,
) -> tuple[Member, ...]:
    """The presets besides the survivor that the last round fitted on every fold, as
    ensemble members."""
    out = []
    for i, folds in by_preset.items():
        if i == best or len(folds) != len(run.folds) or any(f.error for f in folds):
            continue
        parts = [(run.folds[f.fold][1], f.proba) for f in folds if f.proba is not None]
        if len(parts) != len(folds):
            continue
        oof = np.zeros((len(run.y), parts[0][1].shape[1]))
        for val, proba in parts:
            oof[val] = proba
        seconds = float(np.mean([f.fit_seconds for f in folds]))
        out.append(Member(name, searched[i], oof, seconds, folds[0].fit_rows))
    return tuple(out)


def ensemble_candidate(
    candidates: list[CandidateResult], run: FoldRunner
) -> CandidateResult | None:
    """The greedy ensemble of the ranked models and their presets, as a candidate scored
    cross-fitted; None when it would hold one model."""
    ranked = [c for c in candidates if c.ranked and c.name != BASELINE and c.oof is not None]
    members = [
        Member(c.name, c.preset, c.oof, c.fit_seconds, c.fit_rows or run.fold_rows)
        for c in ranked
        if c.oof is not None  # for mypy: ranked holds only such
    ] + [m for c in ranked for m in c.alternatives]
    chosen = select(
        members, run.y, [val for _, val in run.folds], metric=run.metric,
        classes=run.schema.classes, threshold=tunes_threshold(run),
        class_weights=tunes_weights(run), random_state=run.random_state,
    )  # fmt: skip
    if chosen is None:
        return None
    metrics = TASK_METRICS[run.schema.task]
    used = {m.model for m in chosen.blend.members}
    return CandidateResult(
        ENSEMBLE,
        means={m: mean([f[m] for f in chosen.fold_scores]) for m in metrics},
        stds={m: std([f[m] for f in chosen.fold_scores]) for m in metrics},
        fit_seconds=sum(m.fit_seconds for m in chosen.blend.members),
        predict_ms_per_row=sum(c.predict_ms_per_row for c in ranked if c.name in used),
        threshold=chosen.threshold, weights=chosen.weights,
        fold_scores=tuple(f[run.metric] for f in chosen.fold_scores),
        oof=chosen.oof, fold_of=ranked[0].fold_of, blend=chosen.blend,
    )  # fmt: skip
