"""Fit one candidate on one fold and score it; run many such fits in parallel, measured."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.decision import decide
from mlcontainer.core.schema import Schema
from mlcontainer.core.threads import one_native_thread
from mlcontainer.training.search.metrics import score_all, score_regression
from mlcontainer.training.search.models import build_pipeline, fit_ready
from mlcontainer.training.search.scheduler import clock
from mlcontainer.training.search.scheduler.costs import COSTS, estimate
from mlcontainer.training.search.scheduler.speed import Speed
from mlcontainer.training.search.split import subsample, target_scale
from mlcontainer.training.search.tuning import Preset

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
    #: Rows the fit used, and what the cost table estimated the part of its fit + predict
    #: that grows with the rows would take (seconds, before the measured speed).
    fit_rows: int = 0
    estimated: float = 0.0
    #: The validation rows' probabilities (a classifier's), for the decision layer, or
    #: predictions (a regressor's, one column), for the ensemble.
    proba: np.ndarray | None = None
    #: Not started: it would have ended after the comparison's deadline.
    not_started: bool = False
    #: What the scheduler forecast the fit + predict would take (at the measured speed).
    forecast: float = 0.0


@dataclass(frozen=True)
class FoldTask:
    """One fit to run: a candidate's preset on every fold, with its rows (None: all)."""

    model: str
    preset: Preset
    index: int
    rows: int | None


def fit_and_score(
    task: FoldTask,
    fold: int,
    schema: Schema,
    X: pd.DataFrame,
    y: np.ndarray,
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    random_state: int,
    *,
    estimated: float = 0.0,
    need: float = 0.0,
    stop_at: float = math.inf,
) -> FoldResult:
    """Fit ``task`` on the fold's training rows and score it on its validation rows, unless
    it would not end (``need`` seconds from now) by ``stop_at``: then it is not started."""
    name, preset, index = task.model, task.preset, task.index
    if clock.now() + need > stop_at:
        return FoldResult(name, fold, {}, 0.0, 0.0, len(val_idx), preset=index, not_started=True)
    if task.rows is not None:
        train_idx = subsample(train_idx, y, rows=task.rows, random_state=random_state + fold)
    scale = target_scale(y[train_idx], schema)
    pipeline = build_pipeline(name, schema, random_state=random_state, target_scale=scale)
    start = clock.now()
    proba = None
    try:
        if preset.params:
            pipeline.set_params(**{f"model__{k}": v for k, v in preset.resolved(scale).items()})
        with one_native_thread():
            fit_ready(pipeline, y[train_idx]).fit(X.iloc[train_idx], y[train_idx])
            fitted = clock.now()
            if schema.is_regression:
                values = np.asarray(pipeline.predict(X.iloc[val_idx]), dtype=float)
            else:
                proba = _aligned_proba(pipeline, X.iloc[val_idx], schema.classes)
            predicted = clock.now()
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
        preset=index, fit_rows=len(train_idx), estimated=estimated, proba=proba, forecast=need,
    )  # fmt: skip


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
class FoldRunner:
    """What the comparison needs while it runs: data, folds, where fits go, the speed
    measured so far and the clock reading no fit may end after."""

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
    #: Whether the fits run in this process (a cluster's workers read another clock).
    local: bool = True
    speed: Speed = field(default_factory=Speed)
    stop_at: float = math.inf

    @property
    def fold_rows(self) -> int:
        return len(self.folds[0][0])

    @property
    def classes(self) -> int:
        """The number of classes the costs are for (two for a regressor: one model)."""
        return 2 if self.schema.is_regression else len(self.schema.classes)

    def variable(self, name: str, rows: int) -> float:
        """The part of one fold's estimate that grows with ``rows``: what speed is judged on."""
        full = estimate(name, rows=rows, width=self.width, classes=self.classes)
        return full - COSTS[name].overhead

    def fits(self, tasks: list[FoldTask], *, folds: int | None = None) -> list[FoldResult]:
        """Run each task over every fold (or the first ``folds``), in parallel; a fit that
        would end after ``stop_at`` at the measured speed is not started."""
        from joblib import Parallel, delayed

        jobs: list[Any] = []
        stop_at = self.stop_at if self.local else math.inf
        for task in tasks:
            one = self.variable(task.model, task.rows or self.fold_rows) * task.preset.cost
            need = COSTS[task.model].overhead + one * self.speed.of(task.model)
            for k, (tr, va) in enumerate(self.folds[:folds]):
                args = (task, k, self.schema, self.X, self.y, tr, va, self.random_state)
                jobs.append(
                    delayed(fit_and_score)(*args, estimated=one, need=need, stop_at=stop_at)
                )
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
                if result.error is None and not result.not_started:
                    took = (
                        result.fit_seconds + result.predict_seconds - COSTS[result.model].overhead
                    )
                    self.speed.record(result.model, estimated=result.estimated, actual=took)
                if self.on_fold is not None:
                    self.on_fold(result.model, result.fold)
        return out
