"""Cross-validate the candidates in the time the budget leaves them, strongest first."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

import numpy as np

from mlcontainer.core.schema import Schema
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.search.candidates import (
    CandidateResult,
    at_threshold,
    at_weights,
    preset_key,
    skipped,
    summarise,
    tunes_threshold,
    tunes_weights,
)
from mlcontainer.training.search.cluster import fanout
from mlcontainer.training.search.ensemble import ENSEMBLE
from mlcontainer.training.search.ensemble_candidate import alternatives, ensemble_candidate
from mlcontainer.training.search.folds import FoldCallback, FoldResult, FoldRunner, FoldTask
from mlcontainer.training.search.metrics import METRICS, TASK_METRICS, check_metric
from mlcontainer.training.search.models import BASELINE, MODELS
from mlcontainer.training.search.scheduler import clock
from mlcontainer.training.search.scheduler.clock import Deadline, seconds
from mlcontainer.training.search.scheduler.costs import feature_width
from mlcontainer.training.search.scheduler.order import comparison_order
from mlcontainer.training.search.scheduler.plan import Plan, cost, plan
from mlcontainer.training.search.scheduler.reserve import (
    REFIT_MOST,
    output_reserve,
    refit_estimate,
    refit_reserve,
)
from mlcontainer.training.search.split import Split, target_array
from mlcontainer.training.search.tuning import Preset, is_imbalanced, presets_for, schedule

if TYPE_CHECKING:
    from collections.abc import Callable

#: The remaining candidates are planned again when the fits run this much slower than the
#: cost table says (or faster than 1 / this), or what is left no longer fits the time left.
BEHIND = 1.25


def compare(
    split: Split,
    schema: Schema,
    options: TrainOptions,
    *,
    on_fold: FoldCallback | None = None,
    deadline: Deadline | None = None,
) -> list[CandidateResult]:
    """Cross-validate each candidate, searching its presets, on the training split; return
    them best first.

    With a ``deadline`` of a budget, the time kept for the output and for refitting whichever
    candidate wins on every training row is set aside first; a candidate whose refit alone
    would take more than ``REFIT_MOST`` of the budget is not compared (it could not be
    shipped). The others run strongest first (``scheduler.order``), planned into what is left
    (``scheduler.plan``), re-planned before each candidate with the speed the fits measured;
    a fit that would end after the comparison's time is not started. A scheduler runs the
    fits on a Dask cluster. A binary classifier's candidates are scored at their own
    out-of-fold threshold when the metric depends on one.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    task = schema.task
    models, metric, cv = options.candidates(task), options.metric_for(task), options.cv
    check_metric(metric, task)
    splitter = KFold if task == "regression" else StratifiedKFold
    folds = list(
        splitter(n_splits=cv, shuffle=True, random_state=options.seed).split(
            split.X_train, split.y_train
        )
    )
    y = target_array(split.y_train, schema)
    width = feature_width(schema)
    imbalanced = task == "classification" and is_imbalanced(
        {c: int(n) for c, n in zip(*np.unique(y, return_counts=True), strict=True)}
    )
    presets = {m: presets_for(m, task, imbalanced=imbalanced) for m in models}
    fold_rows = len(folds[0][0])
    classes = 2 if task == "regression" else len(schema.classes)
    metrics = TASK_METRICS[task]
    budget = deadline.budget if deadline is not None else None
    X = split.X_train
    # On a cluster every argument goes to every worker once (fold indices too: joblib would
    # otherwise put each on one worker, and losing that worker would lose the fits' inputs).
    shared = [X, y, schema, *(part for fold in folds for part in fold)]
    results: dict[str, CandidateResult] = {}
    with fanout(options.scheduler, jobs=options.jobs, scatter=shared) as where:
        run = FoldRunner(
            schema, X, y, folds, metric, options.seed, width, where.n_jobs, where.workers,
            on_fold, local=where.where == "local",
        )  # fmt: skip
        order = comparison_order(models)
        if deadline is None or budget is None:
            plans = plan(presets, fit_rows=fold_rows, width=width, cv=cv, room=None)
            for name in order:
                results[name] = search(run, name, presets[name], plans[name])
        else:
            output = output_reserve(budget)

            def refit(m: str) -> float:
                return refit_estimate(
                    m, rows=len(y), width=width, classes=classes, speed=run.speed.of(m),
                    preset_cost=max(p.cost for p in presets[m]),
                )  # fmt: skip

            # Judged on the budget, not on the time left: a run already late (a busy machine
            # slow to import) still compares its strongest candidate rather than none.
            room = max(budget - output, 0.0)
            for m in order:
                if m != BASELINE and refit(m) > REFIT_MOST * room:
                    results[m] = skipped(
                        m, metrics, f"not compared: its refit on all {len(y):,} training rows "
                        f"would take about {seconds(refit(m))}, more than half of the "
                        f"{seconds(room)} the {budget:g} s budget gives the work",
                    )  # fmt: skip
            contenders = [m for m in order if m not in results]

            def keep() -> float:
                return output + refit_reserve(refit(m) for m in contenders)

            run.stop_at = deadline.end - keep()
            left = max(run.stop_at - clock.now(), 0.0) * run.workers
            plans = plan(
                {m: presets[m] for m in contenders}, fit_rows=fold_rows, width=width, cv=cv,
                room=left, budget=budget, classes=classes,
            )  # fmt: skip
            for i, name in enumerate(contenders):
                # Until a model is ranked, its fits start whatever the clock says: a run late
                # from the start still ships a model (the quickest to refit, if need be).
                ranked = any(r.ranked for m, r in results.items() if m != BASELINE)
                run.stop_at = deadline.end - keep() if ranked else math.inf
                plans.update(_replan(run, contenders[i:], plans, presets, budget))
                if plans[name].skipped:
                    results[name] = skipped(name, metrics, plans[name].reasons[0])
                    continue
                results[name] = search(run, name, presets[name], plans[name])
    candidates = [results[name] for name in models]
    if tunes_threshold(run):
        # The baseline stays at 0.5: doing nothing, it is the bar the others must clear.
        candidates = [c if c.name == BASELINE else at_threshold(c, run) for c in candidates]
    elif tunes_weights(run):
        candidates = [c if c.name == BASELINE else at_weights(c, run) for c in candidates]
    ensemble = ensemble_candidate(candidates, run)
    if ensemble is not None:
        candidates.append(ensemble)
    return sorted(candidates, key=_ranking(metric))


def _ranking(metric: str) -> Callable[[CandidateResult], tuple[int, float, float, int]]:
    """The leaderboard's order: ranked candidates best first, ties to the steadier model, then
    to registry order (deterministic); the failed and skipped last."""
    order_of = {name: i for i, name in enumerate((*MODELS, ENSEMBLE))}
    spec = METRICS[metric]

    def rank(c: CandidateResult) -> tuple[int, float, float, int]:
        if not c.ranked:
            return (1, 0.0, 0.0, order_of[c.name])
        mean = c.means[metric]
        key = -mean if spec.greater_is_better else mean
        return (
            0,
            round(key, 12) if not math.isnan(key) else math.inf,
            # The ensemble must beat the best single model, not tie with it.
            math.inf if c.blend is not None else round(c.stds[metric], 12),
            order_of[c.name],
        )

    return rank


def _replan(
    run: FoldRunner,
    remaining: list[str],
    plans: dict[str, Plan],
    presets: Mapping[str, tuple[Preset, ...]],
    budget: float,
) -> dict[str, Plan]:
    """The remaining candidates' plans, again with the measured speed and the time left,
    when the fits run off the estimates and what is left no longer fits (else unchanged: a
    run on time keeps its deterministic plan)."""
    speed = run.speed.ratio
    left = max(run.stop_at - clock.now(), 0.0) * run.workers
    planned = sum(
        cost(
            m,
            presets[m][: plans[m].search],
            rows=plans[m].rows,
            width=run.width,
            cv=len(run.folds),
            speed=speed,
            classes=run.classes,
        )
        for m in remaining
        if not plans[m].skipped
    )
    if planned <= left:
        return {}
    note = (
        f"re-planned: the fits ran {speed:.1f}x slower than estimated"
        if speed >= BEHIND
        else "re-planned with the time left"
    )
    return plan(
        {m: presets[m] for m in remaining}, fit_rows=run.fold_rows, width=run.width,
        cv=len(run.folds), room=left, budget=budget, speed=speed, note=note,
        classes=run.classes,
    )  # fmt: skip


def search(
    run: FoldRunner, name: str, presets: tuple[Preset, ...], planned: Plan
) -> CandidateResult:
    """Cross-validate ``name``'s first ``planned.search`` presets by successive halving and
    summarise the survivor's folds."""
    spec = METRICS[run.metric]
    searched = presets[: planned.search]
    rounds = schedule(len(searched), planned.rows)
    ranking = list(range(len(searched)))
    by_preset: dict[int, list[FoldResult]] = {}
    for r in rounds:
        rows = r.rows if r.rows < run.fold_rows else None
        tasks = [FoldTask(name, searched[i], i, rows) for i in ranking[: r.presets]]
        results = run.fits(tasks)
        by_preset = {i: [f for f in results if f.preset == i] for i in ranking[: r.presets]}
        ranking = sorted(ranking[: r.presets], key=partial(preset_key, by_preset, run, spec))
    best = ranking[0]
    line = None
    if len(searched) > 1:
        steps = " → ".join(f"{r.presets} on {r.rows:,} rows" for r in rounds)
        line = (
            f"{len(searched)} presets by successive halving ({steps} per fold): "
            f"{searched[best].name}"
        )
        if planned.search < len(presets):
            line += f" ({planned.search} of its {len(presets)} presets: the budget)"
    summary = summarise(
        name, by_preset[best], planned, run, searched[best], line, TASK_METRICS[run.schema.task]
    )
    return replace(summary, alternatives=alternatives(run, name, searched, by_preset, best))
