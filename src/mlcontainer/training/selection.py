"""Split, cross-validate the candidates, select the best and fit it. Pure: no I/O."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.errors import TrainingError
from mlcontainer.core.labels import label_array, labels_from_proba
from mlcontainer.core.schema import Schema
from mlcontainer.core.threads import one_native_thread
from mlcontainer.training.budget import COSTS, GUARD_SHARE, Action, estimate, feature_width, plan
from mlcontainer.training.cluster import fanout
from mlcontainer.training.dataset import Dataset
from mlcontainer.training.metrics import (
    METRICS,
    TASK_METRICS,
    check_metric,
    score_all,
    score_regression,
)
from mlcontainer.training.models import BASELINE, MODELS, build_pipeline, fit_ready
from mlcontainer.training.options import TrainOptions

if TYPE_CHECKING:
    import pandas as pd

#: Called in the parent process after each (model, fold) fit finishes.
FoldCallback = Callable[[str, int], None]


@dataclass(frozen=True)
class FoldResult:
    """One candidate fitted on one fold's training part and scored on its validation part."""

    model: str
    fold: int
    scores: dict[str, float]
    fit_seconds: float
    predict_seconds: float
    rows: int
    error: str | None = None
    #: True when the time budget ran out before this fold started: it was not run.
    late: bool = False


@dataclass(frozen=True)
class CandidateResult:
    """A candidate's cross-validated scores (mean and standard deviation over the folds)."""

    name: str
    means: dict[str, float]
    stds: dict[str, float]
    fit_seconds: float
    predict_ms_per_row: float
    error: str | None = None
    #: What the time budget did to this candidate (subsampled or skipped), if anything.
    budget: Action | None = None
    #: The selection metric on each fold, in fold order (empty when the folds did not run).
    fold_scores: tuple[float, ...] = ()

    @property
    def ranked(self) -> bool:
        """Whether the candidate has scores to rank (it neither failed nor was skipped)."""
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
            "fold_scores": [clean(x) for x in self.fold_scores],
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
    deadline: float | None = None,
) -> FoldResult:
    if deadline is not None and time.time() > deadline:
        return FoldResult(name, fold, {}, 0.0, 0.0, len(val_idx), late=True)
    if fit_rows is not None:
        train_idx = subsample(train_idx, y, rows=fit_rows, random_state=random_state + fold)
    pipeline = build_pipeline(
        name, schema, random_state=random_state, target_scale=target_scale(y[train_idx], schema)
    )
    start = time.perf_counter()
    try:
        with one_native_thread():
            fit_ready(pipeline, y[train_idx]).fit(X.iloc[train_idx], y[train_idx])
            fitted = time.perf_counter()
            if schema.is_regression:
                values = np.asarray(pipeline.predict(X.iloc[val_idx]), dtype=float)
            else:
                proba = _aligned_proba(pipeline, X.iloc[val_idx], schema.classes)
            predicted = time.perf_counter()
    except (ValueError, np.linalg.LinAlgError) as exc:
        return FoldResult(name, fold, {}, 0.0, 0.0, len(val_idx), error=str(exc).split("\n")[0])
    if schema.is_regression:
        scores = score_regression(y[val_idx], values)
    else:
        scores = score_all(
            y[val_idx], labels_from_proba(proba, schema.classes), proba, schema.classes
        )
    return FoldResult(name, fold, scores, fitted - start, predicted - fitted, len(val_idx))


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


def compare(
    split: Split,
    schema: Schema,
    options: TrainOptions,
    *,
    on_fold: FoldCallback | None = None,
    started: float | None = None,
) -> list[CandidateResult]:
    """Cross-validate each candidate on the training split; return them best first.

    With a time budget (seconds, counted from ``started``, a ``time.time()``), candidates
    whose cost grows faster than the rows are subsampled or skipped per :func:`budget.plan`,
    and folds that would start after the budget's guard share are not run (their candidate
    is reported as skipped). A scheduler runs the fits on a Dask cluster.
    """
    from joblib import Parallel, delayed
    from sklearn.model_selection import KFold, StratifiedKFold

    task = schema.task
    models, metric, cv = options.candidates(task), options.metric_for(task), options.cv
    random_state, time_budget = options.seed, options.time_budget
    spec = check_metric(metric, task)
    splitter = KFold if task == "regression" else StratifiedKFold
    folds = list(
        splitter(n_splits=cv, shuffle=True, random_state=random_state).split(
            split.X_train, split.y_train
        )
    )
    y = target_array(split.y_train, schema)
    fold_rows = len(folds[0][0])
    width = feature_width(schema)
    # Candidates whose cost is linear in the rows (never cut by the plan) run first, cheapest
    # first, and ignore the guard: a run on a machine far slower than estimated still ends
    # with them fully cross-validated. Without any, the cheapest candidate plays that part
    # (the baseline, always exempt, is no model to select).
    by_cost = sorted(
        models, key=lambda m: (COSTS[m].superlinear, estimate(m, rows=fold_rows, width=width))
    )
    real = [m for m in by_cost if m != BASELINE]
    exempt = {m for m in real if not COSTS[m].superlinear} or set(real[:1])
    exempt |= {BASELINE} & set(models)
    deadline = None
    if time_budget is not None:
        deadline = (started or time.time()) + time_budget * GUARD_SHARE
    X = split.X_train
    # On a cluster every argument goes to every worker once (fold indices too: joblib would
    # otherwise put each on one worker, and losing that worker would lose the fits' inputs).
    shared = [X, y, schema, *(part for fold in folds for part in fold)]
    with fanout(options.scheduler, jobs=options.jobs, scatter=shared) as where:
        actions = plan(
            models,
            fit_rows=fold_rows,
            width=width,
            cv=cv,
            budget=time_budget,
            parallelism=where.workers,
        )
        tasks = (
            delayed(_fit_and_score)(
                name,
                k,
                schema,
                X,
                y,
                tr,
                va,
                random_state,
                actions[name].rows if name in actions else None,
                None if name in exempt else deadline,
            )
            for name in by_cost
            if name not in actions or actions[name].kind != "skip"
            for k, (tr, va) in enumerate(folds)
        )
        results: list[FoldResult] = []
        # Threads, not processes, unless a backend is configured (the Dask cluster, or one
        # a caller sets with joblib.parallel_config): a loky worker re-imports scikit-learn
        # and pandas (~3 s of CPU each, measured) and is sent the data with every fit, while
        # tree building and NumPy release the GIL. The outer limit holds BLAS, whose thread
        # count is process-wide, at one; each fit still limits its own thread's OpenMP.
        parallel = Parallel(n_jobs=where.n_jobs, prefer="threads", return_as="generator")
        with one_native_thread():
            for result in parallel(tasks):
                results.append(result)
                if on_fold is not None:
                    on_fold(result.model, result.fold)
    candidates = [
        _summarise(
            name,
            [r for r in results if r.model == name],
            actions.get(name),
            time_budget,
            cv,
            TASK_METRICS[task],
            metric,
        )
        for name in models
    ]
    order = {name: i for i, name in enumerate(MODELS)}

    def rank(c: CandidateResult) -> tuple[int, float, float, int]:
        if not c.ranked:
            return (1, 0.0, 0.0, order[c.name])
        mean = c.means[metric]
        key = -mean if spec.greater_is_better else mean
        # Ties (to 12 digits) go to the steadier model, then to registry order: deterministic.
        return (
            0,
            round(key, 12) if not math.isnan(key) else math.inf,
            round(c.stds[metric], 12),
            order[c.name],
        )

    return sorted(candidates, key=rank)


def _summarise(
    name: str,
    folds: list[FoldResult],
    action: Action | None,
    time_budget: float | None,
    cv: int,
    metrics: Mapping[str, Any],
    metric: str,
) -> CandidateResult:
    nan = dict.fromkeys(metrics, math.nan)
    if action is not None and action.kind == "skip":
        return CandidateResult(name, nan, dict(nan), 0.0, 0.0, budget=action)
    late = sum(f.late for f in folds)
    if late:
        skipped = Action(
            name,
            "skip",
            0,
            f"skipped: the {time_budget:g} s budget ran out before {late} of its {cv} folds "
            "started (the machine was slower than estimated)",
        )
        return CandidateResult(name, nan, dict(nan), 0.0, 0.0, budget=skipped)
    errors = [f.error for f in folds if f.error]
    if errors:
        return CandidateResult(name, nan, dict(nan), 0.0, 0.0, error=errors[0], budget=action)
    means = {k: _mean([f.scores[k] for f in folds]) for k in metrics}
    stds = {k: _std([f.scores[k] for f in folds]) for k in metrics}
    fit = float(np.mean([f.fit_seconds for f in folds]))
    per_row = sum(f.predict_seconds for f in folds) / max(1, sum(f.rows for f in folds))
    by_fold = tuple(f.scores[metric] for f in sorted(folds, key=lambda f: f.fold))
    return CandidateResult(
        name, means, stds, fit, per_row * 1000, budget=action, fold_scores=by_fold
    )


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
    """Compare the candidates, then fit the best on the training split (as subsampled in CV).

    The test split is never subsampled nor seen before the selected model is evaluated.
    """
    started = time.time() if started is None else started
    cv, random_state = options.cv, options.seed
    split = split_dataset(dataset, test_size=options.test_size, cv=cv, random_state=random_state)
    leaderboard = compare(split, dataset.schema, options, on_fold=on_fold, started=started)
    best, warnings = _select(leaderboard, options.metric_for(dataset.schema.task))
    if not best.ranked:
        reasons = "; ".join(
            f"{c.name}: {c.error or (c.budget.reason if c.budget else '')}" for c in leaderboard
        )
        raise TrainingError(f"every candidate model failed to train: {reasons}")
    y_train = target_array(split.y_train, dataset.schema)
    rows = np.arange(len(y_train))
    if best.budget is not None:  # fit on as large a share of the rows as each CV fold had
        share = best.budget.rows / math.ceil(len(y_train) * (cv - 1) / cv)
        rows = subsample(rows, y_train, rows=round(share * len(y_train)), random_state=random_state)
    scale = target_scale(y_train[rows], dataset.schema)
    pipeline = build_pipeline(
        best.name, dataset.schema, random_state=random_state, target_scale=scale
    )
    with one_native_thread():
        fit_ready(pipeline, y_train[rows]).fit(split.X_train.iloc[rows], y_train[rows])
    return TrainingResult(
        selected=best.name,
        pipeline=pipeline,
        leaderboard=leaderboard,
        split=split,
        metric=options.metric_for(dataset.schema.task),
        cv=cv,
        seed=random_state,
        test_size=options.test_size,
        budget_lines=tuple(f"{c.name}: {c.budget.reason}" for c in leaderboard if c.budget),
        time_budget=options.time_budget,
        fit_rows=len(rows),
        where=options.scheduler or "local",
        warnings=warnings,
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
