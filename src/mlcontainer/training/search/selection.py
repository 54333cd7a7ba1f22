"""Split, cross-validate the candidates, select the best and fit it. Pure: no I/O."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.artifacts import Calibration, Decision
from mlcontainer.core.decision import decide, threshold_labels, weighted_labels
from mlcontainer.core.errors import TrainingError
from mlcontainer.core.labels import label_array
from mlcontainer.core.schema import Schema
from mlcontainer.core.threads import one_native_thread
from mlcontainer.training.data.dataset import Dataset
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.search.budget import (
    BEHIND,
    COSTS,
    CV_SHARE,
    MEASURED_ENOUGH,
    MIN_SUBSAMPLE_ROWS,
    PROBE_FRACTION,
    PROBE_ROWS,
    RESERVE_SHARE,
    Action,
    Plan,
    cost,
    estimate,
    feature_width,
    plan,
)
from mlcontainer.training.search.cluster import fanout
from mlcontainer.training.search.decision import (
    MAX_WEIGHT_WORK,
    THRESHOLD_METRICS,
    Threshold,
    Weights,
    calibrated_threshold,
    cross_fitted_weights,
    fit_calibration,
    tune_threshold,
)
from mlcontainer.training.search.ensemble import ENSEMBLE, Blend, Member, select
from mlcontainer.training.search.ensemble_model import (
    ensemble_pipeline,
    refit_seconds,
    rows_within,
)
from mlcontainer.training.search.metrics import (
    METRICS,
    TASK_METRICS,
    check_metric,
    score_all,
    score_regression,
)
from mlcontainer.training.search.models import BASELINE, MODELS, build_pipeline, fit_ready
from mlcontainer.training.search.tuning import DEFAULT, Preset, is_imbalanced, presets_for, schedule

if TYPE_CHECKING:
    import pandas as pd

#: Called in the parent process after each (model, fold) fit finishes.
FoldCallback = Callable[[str, int], None]


@dataclass(frozen=True)
class FoldResult:
    """One candidate (one preset) fitted on one fold's training part, scored on its
    validation part."""

    model: str
    fold: int
    scores: dict[str, float]
    fit_seconds: float
    predict_seconds: float
    rows: int
    error: str | None = None
    preset: int = 0
    #: Rows the fit used, and what the budget estimated it would take (core-seconds).
    fit_rows: int = 0
    estimated: float = 0.0
    #: The validation rows' probabilities (a classifier's), for the decision layer, or
    #: predictions (a regressor's, one column), for the ensemble.
    proba: np.ndarray | None = None


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
            **({"members": self.blend.to_list()} if self.blend is not None else {}),
        }


@dataclass(frozen=True)
class Split:
    """The stratified train/test split; the test part is used once, by the selected model."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


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
    #: Rows the selected pipeline was fitted on (fewer than the training split if subsampled).
    fit_rows: int = 0
    where: str = "local"
    #: Said when the baseline was selected, or beat the model selected.
    warnings: tuple[str, ...] = ()
    #: A binary classifier's calibration and threshold, decided out of fold.
    decision: Decision | None = None
    #: The preset the selected model's search kept, and its parameters.
    preset: str = "default"
    params: dict[str, Any] = field(default_factory=dict)
    #: The ensemble's members and weights, when the ensemble was selected.
    blend: Blend | None = None


def split_dataset(dataset: Dataset, *, test_size: float, cv: int, random_state: int) -> Split:
    """Split (stratified by class for a classifier), refusing data too small for the split
    or the CV folds."""
    from sklearn.model_selection import train_test_split

    if dataset.schema.is_regression:
        n_test = math.ceil(test_size * len(dataset.y))
        n_train = len(dataset.y) - n_test
        if n_test < 1 or n_train < cv:
            raise TrainingError(
                f"--test-size {test_size} and --cv {cv} need at least {cv} training rows and "
                f"1 test row; the target {dataset.schema.target!r} has {len(dataset.y)} rows"
            )
        parts = train_test_split(
            dataset.X, dataset.y, test_size=test_size, random_state=random_state
        )
        return Split(*parts)
    counts = dataset.y.value_counts()
    n_classes = len(counts)
    too_few = {str(c): int(n) for c, n in counts.items() if n < 2}
    if too_few:
        raise TrainingError(
            f"too few rows for a stratified test split: class(es) {_fmt_counts(too_few)} of "
            f"target {dataset.schema.target!r}; every class needs at least 2 rows"
        )
    n_test = math.ceil(test_size * len(dataset.y))
    if n_test < n_classes or len(dataset.y) - n_test < n_classes:
        raise TrainingError(
            f"--test-size {test_size} gives {n_test} test rows of {len(dataset.y)} for "
            f"{n_classes} classes; each side of the split needs a row of every class"
        )
    X_train, X_test, y_train, y_test = train_test_split(
        dataset.X, dataset.y, test_size=test_size, stratify=dataset.y, random_state=random_state
    )
    train_counts = y_train.value_counts()
    short = {str(c): int(n) for c, n in train_counts.items() if n < cv}
    if short:
        smallest = min(short.values())
        fix = f"--cv {smallest} works" if smallest >= 2 else "add rows of that class"
        raise TrainingError(
            f"too few rows for {cv}-fold cross-validation: class(es) {_fmt_counts(short)} in the "
            f"training split; every class needs at least {cv} rows: {fix} (or leave such "
            "classes out with a higher --min-class-rows)"
        )
    return Split(X_train, X_test, y_train, y_test)


def _fmt_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{c!r} ({n} rows)" for c, n in counts.items())


def _fit_and_score(
    name: str,
    fold: int,
    schema: Schema,
    X: pd.DataFrame,
    y: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    random_state: int,
    fit_rows: int | None = None,
    preset: Preset = DEFAULT,
    index: int = 0,
    estimated: float = 0.0,
) -> FoldResult:
    if fit_rows is not None:
        train_idx = subsample(train_idx, y, rows=fit_rows, random_state=random_state + fold)
    scale = target_scale(y[train_idx], schema)
    pipeline = build_pipeline(name, schema, random_state=random_state, target_scale=scale)
    start = clock()
    proba = None
    try:
        if preset.params:
            pipeline.set_params(**{f"model__{k}": v for k, v in preset.resolved(scale).items()})
        with one_native_thread():
            fit_ready(pipeline, y[train_idx]).fit(X.iloc[train_idx], y[train_idx])
            fitted = clock()
            if schema.is_regression:
                values = np.asarray(pipeline.predict(X.iloc[val_idx]), dtype=float)
            else:
                proba = _aligned_proba(pipeline, X.iloc[val_idx], schema.classes)
            predicted = clock()
    except (ValueError, np.linalg.LinAlgError) as exc:
        return FoldResult(
            name, fold, {}, 0.0, 0.0, len(val_idx), error=str(exc).split("\n")[0], preset=index
        )
    if schema.is_regression:
        scores = score_regression(y[val_idx], values)
        proba = values[:, None]  # kept for the ensemble
    else:
        assert proba is not None
        plain = decide(proba, schema.classes, None).labels  # the decision is tuned later
        scores = score_all(y[val_idx], plain, proba, schema.classes)
    return FoldResult(
        name, fold, scores, fitted - start, predicted - fitted, len(val_idx),
        preset=index, fit_rows=len(train_idx), estimated=estimated, proba=proba,
    )  # fmt: skip


#: The clock the comparison keeps its budget by (seconds); tests replace it with a fake one.
clock: Callable[[], float] = time.perf_counter


def target_scale(y: np.ndarray, schema: Schema) -> float:
    """The spread of a regression target (its standard deviation), 1 for a classifier."""
    if not schema.is_regression or len(y) < 2:
        return 1.0
    return float(np.std(np.asarray(y, dtype=float)))


def subsample(idx: np.ndarray, y: np.ndarray, *, rows: int, random_state: int) -> np.ndarray:
    """Return ``rows`` of the positions ``idx``, stratified by class when every class can be."""
    from sklearn.model_selection import train_test_split

    if rows >= len(idx):
        return idx
    try:
        if y.dtype.kind == "f":  # a regression target: nothing to stratify on
            raise ValueError("continuous target")
        kept, _ = train_test_split(idx, train_size=rows, stratify=y[idx], random_state=random_state)
    except ValueError:  # a class too rare to stratify on, or a number: a plain random sample
        kept, _ = train_test_split(idx, train_size=rows, random_state=random_state)
    return np.sort(np.asarray(kept))


def _aligned_proba(pipeline: Any, X: pd.DataFrame, classes: Sequence[Any]) -> np.ndarray:
    """Return probabilities with one column per class of the dataset, in schema order."""
    proba = np.asarray(pipeline.predict_proba(X), dtype=float)
    fitted = list(pipeline.classes_)
    if fitted == list(classes):
        return proba
    out = np.zeros((proba.shape[0], len(classes)))
    for j, c in enumerate(fitted):
        out[:, list(classes).index(c)] = proba[:, j]
    return out


@dataclass
class _Run:
    """What the comparison needs while it runs: data, folds, where fits go, the budget."""

    schema: Schema
    X: pd.DataFrame
    y: np.ndarray
    folds: list[tuple[np.ndarray, np.ndarray]]
    metric: str
    random_state: int
    width: int
    n_jobs: int
    workers: int
    on_fold: FoldCallback | None
    #: Per candidate: core-seconds its fits took, and what the estimates said they would
    #: (the part that grows with the rows, both).
    spent: dict[str, float] = field(default_factory=dict)
    estimated: dict[str, float] = field(default_factory=dict)

    @property
    def fold_rows(self) -> int:
        return len(self.folds[0][0])

    @property
    def classes(self) -> int:
        """The number of classes the costs are for (two for a regressor: one model)."""
        return 2 if self.schema.is_regression else len(self.schema.classes)

    @property
    def speed(self) -> float:
        """How much slower than the estimates the fits ran so far: the median over the
        candidates measured (one family's estimate being off does not make the machine look
        slow), 1 until ``MEASURED_ENOUGH`` core-seconds ran."""
        if sum(self.spent.values()) < MEASURED_ENOUGH:
            return 1.0
        ratios = [self.spent[m] / e for m, e in self.estimated.items() if e > 0]
        return float(np.median(ratios)) if ratios else 1.0

    def fits(self, tasks: list[Any], *, folds: int | None = None) -> list[FoldResult]:
        """Run ``(model, preset, index, fit_rows)`` over every fold (or the first
        ``folds``), in parallel."""
        from joblib import Parallel, delayed

        jobs: list[Any] = []
        for name, preset, index, rows in tasks:
            # The part of the estimate that grows with the rows: what the speed is judged on.
            fixed = COSTS[name].overhead
            size = rows or self.fold_rows
            one = estimate(name, rows=size, width=self.width, classes=self.classes) - fixed
            for k, (tr, va) in enumerate(self.folds[:folds]):
                args = (name, k, self.schema, self.X, self.y, tr, va, self.random_state)
                jobs.append(delayed(_fit_and_score)(*args, rows, preset, index, one * preset.cost))
        # Threads, not processes, unless a backend is configured (the Dask cluster, or one a
        # caller sets with joblib.parallel_config): a loky worker re-imports scikit-learn and
        # pandas (~3 s of CPU each, measured) and is sent the data with every fit, while tree
        # building and NumPy release the GIL. The outer limit holds BLAS, whose thread count
        # is process-wide, at one; each fit still limits its own thread's OpenMP.
        parallel = Parallel(n_jobs=self.n_jobs, prefer="threads", return_as="generator")
        out: list[FoldResult] = []
        with one_native_thread():
            for result in parallel(jobs):
                out.append(result)
                if result.error is None:
                    fixed = COSTS[result.model].overhead
                    took = result.fit_seconds + result.predict_seconds - fixed
                    m = result.model
                    self.spent[m] = self.spent.get(m, 0.0) + max(took, 0.0)
                    self.estimated[m] = self.estimated.get(m, 0.0) + result.estimated
                if self.on_fold is not None:
                    self.on_fold(result.model, result.fold)
        return out


def compare(
    split: Split,
    schema: Schema,
    options: TrainOptions,
    *,
    on_fold: FoldCallback | None = None,
    started: float | None = None,
) -> list[CandidateResult]:
    """Cross-validate each candidate, searching its presets, on the training split; return
    them best first.

    With a time budget (seconds, counted from ``started``, a :data:`clock` reading) the
    comparison gets ``CV_SHARE`` of it: :func:`budget.plan` decides each candidate's search
    and rows up front, deterministically; before each candidate the comparison checks the
    fits' measured speed against the estimates and, when what is left would not fit, plans
    it again with that speed: later candidates search less or use fewer rows, never none.
    A scheduler runs the fits on a Dask cluster. A binary classifier's candidates are scored
    at their own out-of-fold threshold when the metric depends on one.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    task = schema.task
    models, metric, cv = options.candidates(task), options.metric_for(task), options.cv
    random_state, time_budget = options.seed, options.time_budget
    check_metric(metric, task)
    splitter = KFold if task == "regression" else StratifiedKFold
    folds = list(
        splitter(n_splits=cv, shuffle=True, random_state=random_state).split(
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
    # Cheapest first, those whose cost is linear in the rows before the others: a machine far
    # slower than estimated has measured its speed on them before the costly ones start.
    classes = 2 if task == "regression" else len(schema.classes)
    order = sorted(
        models,
        key=lambda m: (
            COSTS[m].superlinear,
            estimate(m, rows=fold_rows, width=width, classes=classes),
        ),
    )
    X = split.X_train
    # On a cluster every argument goes to every worker once (fold indices too: joblib would
    # otherwise put each on one worker, and losing that worker would lose the fits' inputs).
    shared = [X, y, schema, *(part for fold in folds for part in fold)]
    results: dict[str, CandidateResult] = {}
    with fanout(options.scheduler, jobs=options.jobs, scatter=shared) as where:
        run = _Run(
            schema, X, y, folds, metric, random_state, width, where.n_jobs, where.workers, on_fold
        )
        deadline = None
        plans = plan(presets, fit_rows=fold_rows, width=width, cv=cv, room=None, classes=classes)
        if time_budget is not None:
            start = clock() if started is None else started
            deadline = start + time_budget * CV_SHARE
            # From the budget alone, not the clock: the same data plan the same on any machine.
            room = time_budget * CV_SHARE * where.workers
            plans = plan(
                presets, fit_rows=fold_rows, width=width, cv=cv, room=room, budget=time_budget,
                classes=classes,
            )  # fmt: skip
        for i, name in enumerate(order):
            if deadline is not None and time_budget is not None:
                if i > 0:
                    plans.update(_replan(run, order[i:], plans, presets, deadline, time_budget))
                plans[name] = _probe(run, name, order[i:], plans, presets, deadline, time_budget)
            results[name] = _search(run, name, presets[name], plans[name])
    candidates = [results[name] for name in models]
    if _tunes_threshold(run):
        # The baseline stays at 0.5: doing nothing, it is the bar the others must clear.
        candidates = [c if c.name == BASELINE else _at_threshold(c, run) for c in candidates]
    elif _tunes_weights(run):
        candidates = [c if c.name == BASELINE else _at_weights(c, run) for c in candidates]
    ensemble = _ensemble(candidates, run)
    if ensemble is not None:
        candidates.append(ensemble)
    order_of = {name: i for i, name in enumerate((*MODELS, ENSEMBLE))}
    spec = METRICS[metric]

    def rank(c: CandidateResult) -> tuple[int, float, float, int]:
        if not c.ranked:
            return (1, 0.0, 0.0, order_of[c.name])
        mean = c.means[metric]
        key = -mean if spec.greater_is_better else mean
        # Ties (to 12 digits) go to the steadier model, then to registry order: deterministic.
        # The ensemble must beat the best single model, not tie with it.
        return (
            0,
            round(key, 12) if not math.isnan(key) else math.inf,
            math.inf if c.blend is not None else round(c.stds[metric], 12),
            order_of[c.name],
        )

    return sorted(candidates, key=rank)


def _replan(
    run: _Run,
    remaining: list[str],
    plans: dict[str, Plan],
    presets: Mapping[str, tuple[Preset, ...]],
    deadline: float,
    budget: float,
) -> dict[str, Plan]:
    """The remaining candidates' plans, again with the measured speed, if the fits run slower
    than estimated and what is left no longer fits the time left (else unchanged: a run on
    time keeps its deterministic plan)."""
    speed = run.speed
    left = max(deadline - clock(), 0.0) * run.workers
    planned = sum(
        cost(
            m,
            presets[m][: plans[m].search],
            rows=plans[m].rows,
            width=run.width,
            cv=len(run.folds),
            speed=max(speed, 1.0),
            classes=run.classes,
        )
        for m in remaining
    )
    if speed <= BEHIND or planned <= left:
        return {}
    return plan(
        {m: presets[m] for m in remaining},
        fit_rows=run.fold_rows,
        width=run.width,
        cv=len(run.folds),
        room=left,
        budget=budget,
        speed=max(speed, 1.0),
        note=f"re-planned: the fits ran {speed:.1f}x slower than estimated",
        classes=run.classes,
    )


def _probe(
    run: _Run,
    name: str,
    remaining: list[str],
    plans: dict[str, Plan],
    presets: Mapping[str, tuple[Preset, ...]],
    deadline: float,
    budget: float,
) -> Plan:
    """Measure ``name`` on one small fit before its folds start, and give it fewer presets
    or rows if it would take more than its share of the time left at that speed.

    The estimates are per family; one candidate can still be far slower on these data than
    its family's estimate (or than the machine's measured speed): without the probe, its
    folds alone could use up the budget. The probe's scores are not used.
    """
    planned = plans[name]
    probe_rows = max(PROBE_ROWS, planned.rows // PROBE_FRACTION)
    if name == BASELINE or probe_rows * 2 > planned.rows:
        return planned  # nothing to learn, or small enough to run as planned
    (result,) = run.fits([(name, presets[name][0], 0, probe_rows)], folds=1)
    if result.error is not None or result.estimated <= 0:
        return planned
    took = max(result.fit_seconds + result.predict_seconds - COSTS[name].overhead, 0.0)
    speed = took / result.estimated
    cv = len(run.folds)

    def price(m: str, at: float) -> float:
        p = plans[m]
        return cost(
            m, presets[m][: p.search], rows=p.rows, width=run.width, cv=cv, speed=at,
            classes=run.classes,
        )  # fmt: skip

    others = sum(price(m, max(run.speed, 1.0)) for m in remaining if m != name)
    mine = price(name, max(speed, 1.0))
    left = max(deadline - clock(), 0.0) * run.workers
    share = left * mine / max(mine + others, 1e-9)
    if speed <= BEHIND or mine <= share:
        return planned
    again = plan(
        {name: presets[name]},
        fit_rows=run.fold_rows,
        width=run.width,
        cv=cv,
        room=share,
        budget=budget,
        speed=speed,
        note=f"a probe fit ran {speed:.1f}x slower than estimated",
        classes=run.classes,
    )
    return again[name]


def _search(run: _Run, name: str, presets: tuple[Preset, ...], planned: Plan) -> CandidateResult:
    """Cross-validate ``name``'s first ``planned.search`` presets by successive halving and
    summarise the survivor's folds."""
    spec = METRICS[run.metric]
    searched = presets[: planned.search]
    rounds = schedule(len(searched), planned.rows)
    ranking = list(range(len(searched)))
    by_preset: dict[int, list[FoldResult]] = {}
    for r in rounds:
        rows = r.rows if r.rows < run.fold_rows else None
        results = run.fits([(name, searched[i], i, rows) for i in ranking[: r.presets]])
        by_preset = {i: [f for f in results if f.preset == i] for i in ranking[: r.presets]}
        ranking = sorted(ranking[: r.presets], key=partial(_preset_key, by_preset, run, spec))
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
    summary = _summarise(
        name, by_preset[best], planned, run, searched[best], line, TASK_METRICS[run.schema.task]
    )
    return replace(summary, alternatives=_alternatives(run, name, searched, by_preset, best))


def _alternatives(
    run: _Run,
    name: str,
    searched: tuple[Preset, ...],
    by_preset: Mapping[int, list[FoldResult]],
    best: int,
) -> tuple[Member, ...]:
    """The presets besides the survivor that the last round fitted on every fold, as
    ensemble members."""
    out = []
    for i, folds in by_preset.items():
        if i == best or len(folds) != len(run.folds) or any(f.proba is None for f in folds):
            continue
        parts = [(run.folds[f.fold][1], f.proba) for f in folds if f.proba is not None]
        oof = np.zeros((len(run.y), parts[0][1].shape[1]))
        for val, proba in parts:
            oof[val] = proba
        seconds = float(np.mean([f.fit_seconds for f in folds]))
        out.append(Member(name, searched[i], oof, seconds, folds[0].fit_rows))
    return tuple(out)


def _ensemble(candidates: list[CandidateResult], run: _Run) -> CandidateResult | None:
    """The greedy ensemble of the ranked models and their presets, as a candidate scored
    cross-fitted (see :mod:`ensemble`); None when it would hold one model."""
    ranked = [c for c in candidates if c.ranked and c.name != BASELINE and c.oof is not None]
    members = [
        Member(c.name, c.preset, c.oof, c.fit_seconds, c.budget.rows if c.budget else run.fold_rows)
        for c in ranked
        if c.oof is not None  # for mypy: ranked holds only such
    ] + [m for c in ranked for m in c.alternatives]
    chosen = select(
        members, run.y, [val for _, val in run.folds], metric=run.metric,
        classes=run.schema.classes, threshold=_tunes_threshold(run),
        class_weights=_tunes_weights(run), random_state=run.random_state,
    )  # fmt: skip
    if chosen is None:
        return None
    metrics = TASK_METRICS[run.schema.task]
    used = chosen.blend.members
    return CandidateResult(
        ENSEMBLE,
        means={m: _mean([f[m] for f in chosen.fold_scores]) for m in metrics},
        stds={m: _std([f[m] for f in chosen.fold_scores]) for m in metrics},
        fit_seconds=sum(m.fit_seconds for m in used),
        predict_ms_per_row=sum(
            c.predict_ms_per_row for c in ranked if c.name in {m.model for m in used}
        ),
        threshold=chosen.threshold, weights=chosen.weights,
        fold_scores=tuple(f[run.metric] for f in chosen.fold_scores),
        oof=chosen.oof, fold_of=ranked[0].fold_of, blend=chosen.blend,
    )  # fmt: skip


def _preset_key(
    by_preset: Mapping[int, list[FoldResult]], run: _Run, spec: Any, i: int
) -> tuple[bool, float, int]:
    """Rank presets: those that fit, best mean first; ties to the earlier preset. A binary
    classifier's presets are compared at their own out-of-fold threshold (as the candidates
    are) when the metric depends on one."""
    folds = by_preset[i]
    if any(f.error for f in folds):
        return (True, 0.0, i)
    if _tunes_threshold(run) and all(f.proba is not None for f in folds):
        oof = np.zeros((len(run.y), 2))
        for f in folds:
            assert f.proba is not None
            oof[run.folds[f.fold][1]] = f.proba
        mean = tune_threshold(oof[:, 1], run.y == run.schema.classes[1], run.metric).score
    else:
        mean = float(np.mean([f.scores[run.metric] for f in folds]))
    return (False, -mean if spec.greater_is_better else mean, i)


def _tunes_weights(run: _Run) -> bool:
    """Whether class weights are tuned: several classes, a metric that depends on the labels,
    and rows x classes² small enough for the search to cost little."""
    k = len(run.schema.classes)
    return k > 2 and run.metric in THRESHOLD_METRICS and len(run.y) * k * k <= MAX_WEIGHT_WORK


def _at_weights(candidate: CandidateResult, run: _Run) -> CandidateResult:
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
    candidate: CandidateResult, run: _Run, labels: list[np.ndarray], **changes: Any
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
        means={m: _mean([f[m] for f in per_fold]) for m in metrics},
        stds={m: _std([f[m] for f in per_fold]) for m in metrics},
        fold_scores=tuple(f[run.metric] for f in per_fold),
        **changes,
    )


def _tunes_threshold(run: _Run) -> bool:
    """Whether a threshold is tuned: two classes, and a metric that depends on it."""
    return len(run.schema.classes) == 2 and run.metric in THRESHOLD_METRICS


def _summarise(
    name: str,
    folds: list[FoldResult],
    planned: Plan,
    run: _Run,
    preset: Preset,
    search: str | None,
    metrics: Mapping[str, Any],
) -> CandidateResult:
    nan = dict.fromkeys(metrics, math.nan)
    action = planned.action(run.fold_rows)
    params = preset.shown(target_scale(run.y, run.schema))
    errors = [f.error for f in folds if f.error]
    if errors:
        return CandidateResult(
            name, nan, dict(nan), 0.0, 0.0, error=errors[0], budget=action, preset=preset,
            params=params, search=search,
        )  # fmt: skip
    folds = sorted(folds, key=lambda f: f.fold)
    means = {k: _mean([f.scores[k] for f in folds]) for k in metrics}
    stds = {k: _std([f.scores[k] for f in folds]) for k in metrics}
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
    return CandidateResult(
        name, means, stds, fit, per_row * 1000, budget=action, preset=preset, params=params,
        search=search, fold_scores=tuple(f.scores[run.metric] for f in folds), oof=oof,
        fold_of=fold_of,
    )  # fmt: skip


def _at_threshold(candidate: CandidateResult, run: _Run) -> CandidateResult:
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


def _mean(values: list[float]) -> float:
    """The mean, NaN if any value is (MAPE on a fold with a zero target)."""
    return float(np.mean(values))


def _std(values: list[float]) -> float:
    return float(np.std(values))


def target_array(y: pd.Series, schema: Schema) -> np.ndarray:
    """The target as scikit-learn fits it: float64 numbers, or class labels."""
    if schema.is_regression:
        return np.asarray(y, dtype=np.float64)
    return label_array(y)


def train(
    dataset: Dataset,
    options: TrainOptions,
    *,
    on_fold: FoldCallback | None = None,
    started: float | None = None,
) -> TrainingResult:
    """Compare the candidates, decide a binary classifier's calibration and threshold out of
    fold, then fit the best on the training split (as subsampled in CV, and fewer rows still
    if the refit would not end within the budget).

    The test split is never subsampled nor seen before the selected model is evaluated.
    """
    started = clock() if started is None else started
    cv, random_state = options.cv, options.seed
    schema = dataset.schema
    split = split_dataset(dataset, test_size=options.test_size, cv=cv, random_state=random_state)
    leaderboard = compare(split, schema, options, on_fold=on_fold, started=started)
    metric = options.metric_for(schema.task)
    best, warnings = _select(leaderboard, metric)
    if not best.ranked:
        reasons = "; ".join(
            f"{c.name}: {c.error or (c.budget.reason if c.budget else '')}" for c in leaderboard
        )
        raise TrainingError(f"every candidate model failed to train: {reasons}")
    y_train = target_array(split.y_train, schema)
    lines = [f"{c.name}: {line}" for c in leaderboard for line in _budget_lines(c)]
    ensemble_share = 1.0
    if best.blend is not None and options.time_budget is not None:
        left = started + options.time_budget * (1 - RESERVE_SHARE) - clock()
        fewer, why = _ensemble_rows(best.blend, left, len(y_train), options.time_budget)
        if fewer is None:  # not even on the rows it was compared on: the best single model
            best, warnings = _select([c for c in leaderboard if c.blend is None], metric)
            lines.append(f"{ENSEMBLE}: not refitted: {why}; {best.name} was selected")
        elif fewer < len(y_train):
            ensemble_share = fewer / len(y_train)
            lines.append(f"{ENSEMBLE}: refitted on {fewer:,} of {len(y_train):,} rows: {why}")
    decision = _decision(best, y_train, schema, metric)
    rows = np.arange(len(y_train))
    fold_rows = math.ceil(len(y_train) * (cv - 1) / cv)
    share = best.budget.rows / fold_rows if best.budget is not None else ensemble_share
    if options.time_budget is not None and best.blend is None:
        # The refit must end by the budget's refit share; its cost is the fold fits' measured
        # time, grown with the rows as the candidate's cost grows.
        left = started + options.time_budget * (1 - RESERVE_SHARE) - clock()
        per_fold = best.fit_seconds
        exponent = COSTS[best.name].exponent
        fitted_rows = best.budget.rows if best.budget else fold_rows
        need = per_fold * (share * len(y_train) / max(fitted_rows, 1)) ** exponent
        if per_fold > 0 and need > max(left, 0.0):
            fit = max(left, 0.0) / per_fold
            fewer = max(
                int(fitted_rows * fit ** (1 / exponent)), min(MIN_SUBSAMPLE_ROWS, len(rows))
            )
            if fewer < share * len(y_train):
                share = fewer / len(y_train)
                lines.append(
                    f"{best.name}: refitted on {fewer:,} of {len(y_train):,} training rows: all "
                    f"would take about {need:.0f} s, more than the {left:.0f} s the "
                    f"{options.time_budget:g} s budget leaves"
                )
    if share < 1.0:  # fit on as large a share of the rows as each CV fold had (or fewer)
        rows = subsample(rows, y_train, rows=round(share * len(y_train)), random_state=random_state)
    scale = target_scale(y_train[rows], schema)
    pipeline = _unfitted(best, schema, y_train[rows], random_state=random_state, scale=scale)
    with one_native_thread():
        fit_ready(pipeline, y_train[rows]).fit(split.X_train.iloc[rows], y_train[rows])
    return TrainingResult(
        selected=best.name,
        pipeline=pipeline,
        leaderboard=leaderboard,
        split=split,
        metric=metric,
        cv=cv,
        seed=random_state,
        test_size=options.test_size,
        budget_lines=tuple(lines),
        time_budget=options.time_budget,
        fit_rows=len(rows),
        where=options.scheduler or "local",
        warnings=warnings,
        decision=decision,
        preset=best.preset.name,
        params=best.params,
        blend=best.blend,
    )


def _unfitted(
    best: CandidateResult, schema: Schema, y: np.ndarray, *, random_state: int, scale: float
) -> Any:
    """The selected model's pipeline with its preset (an ensemble's: its soft vote), unfitted."""
    if best.blend is not None:
        return ensemble_pipeline(best.blend, schema, y, random_state=random_state,
                                 target_scale=scale)  # fmt: skip
    pipeline = build_pipeline(best.name, schema, random_state=random_state, target_scale=scale)
    if best.preset.params:
        params = best.preset.resolved(scale)
        pipeline.set_params(**{f"model__{k}": v for k, v in params.items()})
    return pipeline


def _ensemble_rows(blend: Blend, left: float, rows: int, budget: float) -> tuple[int | None, str]:
    """The rows the ensemble's members can be refitted on in the ``left`` seconds (None: too
    few), and why not all ``rows``."""
    need = refit_seconds(blend, rows)
    why = (
        f"its {len(blend.members)} members would take about {need:.0f} s on all {rows:,} "
        f"training rows, more than the {max(left, 0):.0f} s the {budget:g} s budget leaves"
    )
    return (rows_within(blend, left, rows) if need > left else rows), why


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
