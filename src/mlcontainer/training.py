"""Split, cross-validate the candidates, select the best and fit it. Pure: no I/O."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.errors import ConfigError, TrainingError
from mlcontainer.evaluation import METRICS, check_metric, label_array, labels_from_proba, score_all
from mlcontainer.models import MODELS, build_pipeline

if TYPE_CHECKING:
    import pandas as pd

    from mlcontainer.data import Dataset
    from mlcontainer.schema import Schema

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


@dataclass(frozen=True)
class CandidateResult:
    """A candidate's cross-validated scores (mean and standard deviation over the folds)."""

    name: str
    means: dict[str, float]
    stds: dict[str, float]
    fit_seconds: float
    predict_ms_per_row: float
    error: str | None = None

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


def split_dataset(dataset: Dataset, *, test_size: float, cv: int, random_state: int) -> Split:
    """Split stratified by class, refusing data too small for the split or the CV folds."""
    from sklearn.model_selection import train_test_split

    if not 0 < test_size < 1:
        raise ConfigError(f"--test-size must be between 0 and 1 (exclusive), got {test_size}")
    if cv < 2:
        raise ConfigError(f"--cv must be at least 2, got {cv}")
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
        raise TrainingError(
            f"too few rows for {cv}-fold cross-validation: class(es) {_fmt_counts(short)} in the "
            f"training split; every class needs at least {cv} rows. Lower --cv or add rows"
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
) -> FoldResult:
    pipeline = build_pipeline(name, schema, random_state=random_state)
    start = time.perf_counter()
    try:
        pipeline.fit(X.iloc[train_idx], y[train_idx])
        fitted = time.perf_counter()
        proba = _aligned_proba(pipeline, X.iloc[val_idx], schema.classes)
        predicted = time.perf_counter()
    except (ValueError, np.linalg.LinAlgError) as exc:
        return FoldResult(name, fold, {}, 0.0, 0.0, len(val_idx), error=str(exc).split("\n")[0])
    pred = labels_from_proba(proba, schema.classes)
    scores = score_all(y[val_idx], pred, proba, schema.classes)
    return FoldResult(name, fold, scores, fitted - start, predicted - fitted, len(val_idx))


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
    *,
    models: Sequence[str],
    metric: str,
    cv: int,
    random_state: int,
    jobs: int = 1,
    on_fold: FoldCallback | None = None,
) -> list[CandidateResult]:
    """Cross-validate each candidate on the training split; return them best first."""
    from joblib import Parallel, delayed
    from sklearn.model_selection import StratifiedKFold

    spec = check_metric(metric)
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise ConfigError(f"unknown or no models {unknown}; valid: {', '.join(MODELS)}")
    folds = list(
        StratifiedKFold(n_splits=cv, shuffle=True, random_state=random_state).split(
            split.X_train, split.y_train
        )
    )
    y = label_array(split.y_train)
    tasks = (
        delayed(_fit_and_score)(name, k, schema, split.X_train, y, tr, va, random_state)
        for name in models
        for k, (tr, va) in enumerate(folds)
    )
    results: list[FoldResult] = []
    for result in Parallel(n_jobs=jobs, return_as="generator")(tasks):
        results.append(result)
        if on_fold is not None:
            on_fold(result.model, result.fold)
    candidates = [_summarise(name, [r for r in results if r.model == name]) for name in models]
    order = {name: i for i, name in enumerate(MODELS)}

    def rank(c: CandidateResult) -> tuple[int, float, float, int]:
        if c.error is not None:
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


def _summarise(name: str, folds: list[FoldResult]) -> CandidateResult:
    errors = [f.error for f in folds if f.error]
    if errors:
        nan = dict.fromkeys(METRICS, math.nan)
        return CandidateResult(name, nan, dict(nan), 0.0, 0.0, error=errors[0])
    means = {k: float(np.mean([f.scores[k] for f in folds])) for k in METRICS}
    stds = {k: float(np.std([f.scores[k] for f in folds])) for k in METRICS}
    fit = float(np.mean([f.fit_seconds for f in folds]))
    per_row = sum(f.predict_seconds for f in folds) / max(1, sum(f.rows for f in folds))
    return CandidateResult(name, means, stds, fit, per_row * 1000)


def train(
    dataset: Dataset,
    *,
    models: Sequence[str],
    metric: str,
    cv: int,
    test_size: float,
    random_state: int,
    jobs: int = 1,
    on_fold: FoldCallback | None = None,
) -> TrainingResult:
    """Compare the candidates, then fit the best on the whole training split."""
    check_metric(metric)
    split = split_dataset(dataset, test_size=test_size, cv=cv, random_state=random_state)
    leaderboard = compare(
        split,
        dataset.schema,
        models=models,
        metric=metric,
        cv=cv,
        random_state=random_state,
        jobs=jobs,
        on_fold=on_fold,
    )
    best = leaderboard[0]
    if best.error is not None:
        reasons = "; ".join(f"{c.name}: {c.error}" for c in leaderboard)
        raise TrainingError(f"every candidate model failed to train: {reasons}")
    pipeline = build_pipeline(best.name, dataset.schema, random_state=random_state)
    pipeline.fit(split.X_train, label_array(split.y_train))
    return TrainingResult(
        selected=best.name,
        pipeline=pipeline,
        leaderboard=leaderboard,
        split=split,
        metric=metric,
        cv=cv,
        seed=random_state,
        test_size=test_size,
    )
