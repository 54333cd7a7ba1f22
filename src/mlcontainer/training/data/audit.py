"""Warn about feature columns that should not be features: likely leaks, IDs and constants."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from mlcontainer.core.schema import Schema

#: A column whose values alone give the target for this share of rows is a likely leak...
LEAK_ACCURACY = 0.99
#: ...provided it removes at least this share of the majority-class baseline's errors.
LEAK_ERROR_REDUCTION = 0.9
#: At most this many value groups (quantile bins for numbers) per column in the leak check,
#: and at least this many rows per group on average, so a column is not rewarded for
#: splitting the rows into tiny groups that each happen to hold one class.
MAX_GROUPS = 20
MIN_ROWS_PER_GROUP = 25
#: A text column with distinct values in at least this share of rows is ID-like.
ID_LIKE_SHARE = 0.95
#: Whole numbers distinct in this share of rows, numbered in order or within a range about
#: as wide as the rows are many (at most ``ID_SPAN_PER_ROW`` values per row), are ID-like.
NUMBERED_ID_SHARE = 0.9
ID_SPAN_PER_ROW = 1.5
#: Columns checked for ID-likeness need this many rows: on 5 rows everything is unique.
MIN_ROWS = 20


def column_warnings(X: pd.DataFrame, y: pd.Series, schema: Schema) -> list[str]:
    """Return one warning per suspicious feature column, naming it and what to do about it."""
    n = len(X)
    if n == 0:
        return []
    warnings: list[str] = []
    regression = schema.is_regression
    codes = pd.factorize(y)[0] if not regression else np.zeros(n, dtype=int)
    baseline = float(np.bincount(codes).max()) / n if not regression else 0.0
    for feature in schema.features:
        col = X[feature.name]
        distinct = int(col.nunique(dropna=False))
        if distinct <= 1:
            value = col.iloc[0]
            shown = "missing" if pd.isna(value) else repr(_plain(value))
            warnings.append(
                f"column {feature.name!r} is constant ({shown} in every row): it carries no "
                f"information; drop it with --drop {feature.name}"
            )
        elif (
            n >= MIN_ROWS
            and feature.date_format is None  # a date per row is a time, not a name
            and _id_like(col, categorical=feature.kind == "categorical")
        ):
            warnings.append(
                f"column {feature.name!r} looks like an ID ({distinct} distinct values in {n} "
                f"rows): it names rows rather than describing them; drop it with "
                f"--drop {feature.name}"
            )
        elif regression:
            explained = _single_column_r2(
                col, y.to_numpy(dtype=float), numeric=feature.kind != "categorical"
            )
            if explained >= LEAK_ACCURACY:
                warnings.append(
                    f"column {feature.name!r} alone explains {explained:.1%} of the variance of "
                    f"the target {schema.target!r}: a likely leak (a restatement of the target, "
                    f"or known only after it); drop it with --drop {feature.name}"
                )
        elif baseline < LEAK_ACCURACY:
            accuracy = _single_column_accuracy(col, codes, numeric=feature.kind != "categorical")
            reduction = (accuracy - baseline) / (1 - baseline)
            if accuracy >= LEAK_ACCURACY and reduction >= LEAK_ERROR_REDUCTION:
                warnings.append(
                    f"column {feature.name!r} alone predicts the target {schema.target!r} for "
                    f"{accuracy:.1%} of rows: a likely leak (a restatement of the target, or "
                    f"known only after it); drop it with --drop {feature.name}"
                )
    return warnings


def _plain(value: object) -> object:
    return value.item() if isinstance(value, np.generic) else value


def _id_like(col: pd.Series, *, categorical: bool) -> bool:
    values = col.dropna()
    if len(values) < len(col):
        return False
    distinct = values.nunique()
    if categorical:
        return distinct >= ID_LIKE_SHARE * len(col)
    # A measured quantity can be unique per row too; only whole numbers count as IDs: unique
    # in every row, or nearly unique (a few repeats) and numbered like IDs are, in order or
    # packed into a range about as wide as the rows are many.
    numbers = values.to_numpy(dtype=float)
    if not np.all(numbers == np.round(numbers)):
        return False
    if distinct == len(col):
        return True
    span = float(numbers.max() - numbers.min()) + 1
    numbered = values.is_monotonic_increasing or values.is_monotonic_decreasing
    return distinct >= NUMBERED_ID_SHARE * len(col) and (
        numbered or span <= ID_SPAN_PER_ROW * len(col)
    )


def _groups(col: pd.Series, *, numeric: bool) -> np.ndarray:
    """Group numbers (in up to ``MAX_GROUPS`` quantile bins of ``MIN_ROWS_PER_GROUP`` rows at
    least) or categories (the largest groups; the rest share one): one code per row."""
    n = len(col)
    groups_max = max(2, min(MAX_GROUPS, n // MIN_ROWS_PER_GROUP))
    if numeric and col.nunique() > groups_max:
        col = pd.qcut(col, q=groups_max, duplicates="drop", labels=False)
    keys, _ = pd.factorize(col, use_na_sentinel=False)
    sizes = np.bincount(keys)
    if len(sizes) > groups_max:  # keep the largest groups; the rest share one
        keep = np.argsort(-sizes, kind="stable")[: groups_max - 1]
        remap = np.full(len(sizes), groups_max - 1)
        remap[keep] = np.arange(len(keep))
        keys = remap[keys]
    return np.asarray(keys)


def _single_column_r2(col: pd.Series, y: np.ndarray, *, numeric: bool) -> float:
    """The share of the target's variance that the column's groups' means explain."""
    keys = _groups(col, numeric=numeric)
    total = float(np.sum((y - y.mean()) ** 2))
    if total == 0:
        return 0.0
    means = np.bincount(keys, weights=y) / np.bincount(keys)
    return 1.0 - float(np.sum((y - means[keys]) ** 2)) / total


def _single_column_accuracy(col: pd.Series, codes: np.ndarray, *, numeric: bool) -> float:
    """Return the accuracy of predicting each group's majority class from this column alone."""
    n = len(col)
    keys = _groups(col, numeric=numeric)
    n_classes = int(codes.max()) + 1
    table = np.bincount(keys * n_classes + codes, minlength=(int(keys.max()) + 1) * n_classes)
    return float(table.reshape(-1, n_classes).max(axis=1).sum()) / n
