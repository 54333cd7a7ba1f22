"""The train/test split, subsamples of it, and the target as scikit-learn fits it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mlcontainer.core.errors import TrainingError
from mlcontainer.core.labels import label_array
from mlcontainer.core.schema import Schema
from mlcontainer.training.data.dataset import Dataset

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class Split:
    """The stratified train/test split; the test part is used once, by the selected model."""

    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series


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


def target_scale(y: np.ndarray, schema: Schema) -> float:
    """The spread of a regression target (its standard deviation), 1 for a classifier."""
    if not schema.is_regression or len(y) < 2:
        return 1.0
    return float(np.std(np.asarray(y, dtype=float)))


def target_array(y: pd.Series, schema: Schema) -> np.ndarray:
    """The target as scikit-learn fits it: float64 numbers, or class labels."""
    if schema.is_regression:
        return np.asarray(y, dtype=np.float64)
    return label_array(y)
