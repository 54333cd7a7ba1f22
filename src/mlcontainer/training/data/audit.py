"""Find feature columns that should not be features: likely leaks, IDs and constants.

Leaks and IDs are left out of training by default (``--keep`` keeps one); a constant is only
named. A regression target's leak is a column that alone explains it (its groups' means,
:data:`LEAK_ACCURACY` of the variance), follows it in rank almost perfectly (a restatement in
other units, a logarithm: Spearman's rho >= :data:`LEAK_RANK`), or is a share of it: between
:data:`SHARE_FLOOR` and 1 times the target in nearly every row, with a share that does not
grow or shrink with the target (log-log slope within :data:`SHARE_SLOPE` of 1, and within
two standard errors of it), as
car_crashes' ``alcohol`` is its ``total`` times the share of drunk drivers. That last test
does not need the column to predict the target well alone (a share from 0.1 to 0.4 correlates
weakly with its total): it is there because such a column is written from the target, and a
model that uses it learns the bookkeeping, not the world. The slope keeps out a quantity that
merely happens to be smaller than the target (a car's curb weight against its price in dollars
shrinks as a share of the price the dearer the car; a taxi's distance, against a fare of a
fixed charge plus a rate, is a share that shrinks too: its slope is 1.22 +- 0.04).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

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
#: Whole numbers distinct in ``NUMBERED_ID_SHARE`` of rows however they are numbered (a
#: hospital number: 284 distinct in 300 rows, over millions) are ID-like when their groups
#: (quantile bins) explain at most this share of the target, adjusted for chance: a
#: measured quantity (a price in dollars) that is nearly unique too tells about the target.
ID_SIGNAL = 0.05
#: Columns checked for ID-likeness or leaks need this many rows: on 5 rows everything is
#: unique, and a column can match the target by chance.
MIN_ROWS = 20
#: A number that follows a regression target's ranks this closely is a restatement of it.
LEAK_RANK = 0.99
#: A column between this share of the target and the target itself (both positive) in
#: ``LEAK_ACCURACY`` of the rows, whose log rises with the target's log at a slope within
#: ``SHARE_SLOPE`` of 1 and within two standard errors of it, is the target times a share.
SHARE_FLOOR = 0.05
SHARE_SLOPE = 0.25


@dataclass(frozen=True)
class Finding:
    """One suspicious column: what it looks like, why (a clause), and whether it is left out."""

    column: str
    kind: Literal["leak", "id", "constant"]
    why: str

    @property
    def leaves_out(self) -> bool:
        """Whether training leaves the column out unless it is kept (leaks and IDs)."""
        return self.kind != "constant"

    def line(self, *, kept: bool) -> str:
        """The one line ``train`` prints: what was done with the column, and the option."""
        name = self.column
        if not self.leaves_out:
            return f"column {name!r} {self.why}; drop it with --drop {name}"
        if kept:
            return f"column {name!r} {self.why}; kept, as --keep {name} asks"
        return f"left out column {name!r}: it {self.why}; --keep {name} keeps it"


def audit_columns(X: pd.DataFrame, y: pd.Series, schema: Schema) -> list[Finding]:
    """Return one finding per suspicious feature column, in schema order."""
    n = len(X)
    if n == 0:
        return []
    findings: list[Finding] = []
    regression = schema.is_regression
    codes = pd.factorize(y)[0] if not regression else np.zeros(n, dtype=int)
    baseline = float(np.bincount(codes).max()) / n if not regression else 0.0
    for feature in schema.features:
        col = X[feature.name]
        numeric = feature.kind != "categorical"
        distinct = int(col.nunique(dropna=False))
        if distinct <= 1:
            value = col.iloc[0]
            shown = "missing" if pd.isna(value) else repr(_plain(value))
            findings.append(
                Finding(
                    feature.name,
                    "constant",
                    f"is constant ({shown} in every row): it carries no information",
                )
            )
        elif (
            n >= MIN_ROWS
            and feature.date_format is None  # a date per row is a time, not a name
            and (
                _id_like(col, categorical=not numeric)
                or (
                    numeric and _near_unique_whole(col) and _signal(col, y, regression) <= ID_SIGNAL
                )
            )
        ):
            findings.append(
                Finding(
                    feature.name,
                    "id",
                    f"looks like an ID ({distinct} distinct values in {n} rows): it names "
                    "rows rather than describing them",
                )
            )
        elif n < MIN_ROWS:
            continue  # on a handful of rows a column can match the target by chance
        elif regression:
            why = _regression_leak(col, y.to_numpy(dtype=float), numeric=numeric)
            if why is not None:
                findings.append(
                    Finding(
                        feature.name,
                        "leak",
                        f"{why} the target {schema.target!r}: a likely leak (a restatement "
                        "of the target, or known only after it)",
                    )
                )
        elif baseline < LEAK_ACCURACY:
            accuracy = _single_column_accuracy(col, codes, numeric=numeric)
            reduction = (accuracy - baseline) / (1 - baseline)
            if accuracy >= LEAK_ACCURACY and reduction >= LEAK_ERROR_REDUCTION:
                findings.append(
                    Finding(
                        feature.name,
                        "leak",
                        f"alone predicts the target {schema.target!r} for {accuracy:.1%} of "
                        "rows: a likely leak (a restatement of the target, or known only "
                        "after it)",
                    )
                )
    return findings


def _regression_leak(col: pd.Series, y: np.ndarray, *, numeric: bool) -> str | None:
    """How the column restates a numeric target (a clause ending before "the target"), or
    ``None`` when it does not."""
    explained = _single_column_r2(col, y, numeric=numeric)
    if explained >= LEAK_ACCURACY:
        return f"alone explains {explained:.1%} of the variance of"
    if not numeric:
        return None
    x = col.to_numpy(dtype=float)
    present = ~np.isnan(x)
    if present.sum() < MIN_ROWS:
        return None
    x, t = x[present], y[present]
    rho = _rank_correlation(x, t)
    if rho >= LEAK_RANK:
        return f"follows the ranks of (Spearman's rho {rho:.3f})"
    return _share_of(x, t)


def _share_of(x: np.ndarray, t: np.ndarray) -> str | None:
    """ "is a share (...) of" when ``x`` is the target ``t`` times a share (see the module)."""
    positive = (x > 0) & (t > 0)
    share = np.divide(x, t, out=np.zeros_like(x), where=positive)
    inside = positive & (share >= SHARE_FLOOR) & (share <= 1)
    if inside.mean() < LEAK_ACCURACY or np.ptp(np.log(t[inside])) == 0:
        return None
    lt, lx = np.log(t[inside]), np.log(x[inside])
    slope, intercept = (float(v) for v in np.polyfit(lt, lx, 1))
    residual = lx - (intercept + slope * lt)
    error = float(np.sqrt(residual.var(ddof=2) / np.sum((lt - lt.mean()) ** 2)))
    if abs(slope - 1) <= min(SHARE_SLOPE, 2 * error):
        low, high = np.quantile(share[inside], [0.01, 0.99])
        return f"is a share ({low:.2f} to {high:.2f}) of"
    return None


def _rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rho (ties ranked by their mean rank); 0 for a constant column."""
    rx = pd.Series(x).rank().to_numpy()
    ry = pd.Series(y).rank().to_numpy()
    if rx.std() == 0 or ry.std() == 0:
        return 0.0
    return float(np.corrcoef(rx, ry)[0, 1])


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


def _near_unique_whole(col: pd.Series) -> bool:
    """Whole numbers (missing allowed) distinct in ``NUMBERED_ID_SHARE`` of the rows."""
    values = col.dropna().to_numpy(dtype=float)
    whole = len(values) > 0 and bool(np.all(values == np.round(values)))
    return whole and len(np.unique(values)) >= NUMBERED_ID_SHARE * len(col)


def _signal(col: pd.Series, y: pd.Series, regression: bool) -> float:
    """The share of the target (a number, or each class's indicator) that the column's
    groups' means explain, adjusted for the groups' count (about 0 for noise)."""
    keys = _groups(col, numeric=True)
    if regression:
        targets = y.to_numpy(dtype=float)[:, None]
    else:
        codes = pd.factorize(y)[0]
        targets = np.eye(int(codes.max()) + 1)[codes]
    n, groups = len(keys), int(keys.max()) + 1
    if n <= groups:
        return 0.0
    sizes = np.bincount(keys, minlength=groups)[:, None]
    sums = np.zeros((groups, targets.shape[1]))
    np.add.at(sums, keys, targets)
    residual = float(np.sum((targets - (sums / np.maximum(sizes, 1))[keys]) ** 2))
    total = float(np.sum((targets - targets.mean(axis=0)) ** 2))
    if total == 0:
        return 0.0
    return 1 - (residual / (n - groups)) / (total / (n - 1))


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
