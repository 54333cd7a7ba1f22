"""What the training data looks like: a profile of each column, and example rows for the page."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.artifacts import Cell, Examples, FeatureSpread, HeldOutRow, Reference
from mlcontainer.core.drift import build_reference
from mlcontainer.core.schema import Feature, Schema

if TYPE_CHECKING:
    import pandas as pd

#: Held-out rows kept for the page's example button.
HELD_OUT_ROWS = 5
#: A numeric feature's usual range: from this percentile to its complement.
LOW_PERCENTILE = 5


@dataclass(frozen=True)
class ColumnProfile:
    """One feature column as read: its kind, how much is missing, how varied, a summary."""

    name: str
    kind: str
    missing: float
    distinct: int
    #: The median and range of a number, the most frequent value of a category.
    summary: str


def column_profiles(X: pd.DataFrame, schema: Schema) -> list[ColumnProfile]:
    """Profile every feature column of ``X`` (all rows, before the split)."""
    out = []
    for feature in schema.features:
        col = X[feature.name]
        present = col.dropna()
        out.append(
            ColumnProfile(
                name=feature.name,
                kind=feature.kind,
                missing=float(col.isna().mean()) if len(col) else 0.0,
                distinct=int(present.nunique()),
                summary=_summary(feature, present),
            )
        )
    return out


def _summary(feature: Feature, present: pd.Series) -> str:
    if present.empty:
        return "no values"
    if feature.kind == "numeric":
        values = present.to_numpy(dtype=float)
        return f"median {np.median(values):.4g}; from {values.min():.4g} to {values.max():.4g}"
    if feature.kind == "boolean":
        return f"true in {float(present.astype(bool).mean()):.0%} of rows"
    value, count = _most_frequent(present)
    return f"most frequent {value!r} ({count / len(present):.0%})"


def _most_frequent(present: pd.Series) -> tuple[Any, int]:
    """The most frequent value (the smallest of those tied, so the choice is stable)."""
    counts = present.value_counts()
    top = int(counts.max())
    return min((v for v, n in counts.items() if n == top), key=str), top


def examples(
    X_train: pd.DataFrame,
    X_test: pd.DataFrame,
    y_test: pd.Series,
    schema: Schema,
    *,
    rows: int = HELD_OUT_ROWS,
) -> Examples:
    """The typical training row (medians, most frequent values), each numeric feature's
    spread in the training split, and a few held-out test rows with their true targets:
    one of each class in turn for a classifier, spread over the target's range for a
    regressor."""
    typical: dict[str, Cell] = {}
    spreads: dict[str, FeatureSpread] = {}
    for feature in schema.features:
        present = X_train[feature.name].dropna()
        if present.empty:
            typical[feature.name] = None
        elif feature.kind == "numeric":
            values = present.to_numpy(dtype=float)
            low, median, high = np.percentile(values, [LOW_PERCENTILE, 50, 100 - LOW_PERCENTILE])
            typical[feature.name] = float(median)
            spreads[feature.name] = FeatureSpread(
                min=float(values.min()),
                low=float(low),
                median=float(median),
                high=float(high),
                max=float(values.max()),
            )
        else:
            typical[feature.name] = _cell(feature, _most_frequent(present)[0])
    held_out = [
        HeldOutRow(
            values={f.name: _cell(f, X_test[f.name].iloc[i]) for f in schema.features},
            target=_target(y_test.iloc[i], regression=schema.is_regression),
        )
        for i in _pick(y_test, regression=schema.is_regression, rows=rows)
    ]
    return Examples(typical=typical, held_out=held_out, spreads=spreads)


def drift_reference(X_train: pd.DataFrame, schema: Schema, predicted: Sequence[Any]) -> Reference:
    """The drift reference: the training split's columns, typed as the runtimes receive
    them (numbers with NaN, text with None), and the predictions made on the test split."""
    columns: dict[str, np.ndarray] = {}
    for feature in schema.features:
        col = X_train[feature.name]
        if feature.kind == "categorical":
            columns[feature.name] = np.array(
                [None if _cell(feature, v) is None else str(v) for v in col.tolist()],
                dtype=object,
            )
        else:
            columns[feature.name] = col.to_numpy(dtype=float, na_value=np.nan)
    return build_reference(schema, columns, predicted)


def _pick(y: pd.Series, *, regression: bool, rows: int) -> list[int]:
    """Positions of up to ``rows`` test rows: classes in turn, or target quantiles."""
    n = len(y)
    if n == 0:
        return []
    if regression:
        order = np.argsort(y.to_numpy(dtype=float), kind="stable")
        picks = [int(order[round(q * (n - 1))]) for q in np.linspace(0.1, 0.9, rows)]
        return list(dict.fromkeys(picks))
    by_class: dict[Any, list[int]] = {}
    for i, label in enumerate(y.tolist()):
        by_class.setdefault(label, []).append(i)
    queues = [by_class[c] for c in sorted(by_class, key=str)]
    out: list[int] = []
    depth = 0
    while len(out) < min(rows, n):
        out.extend(q[depth] for q in queues if depth < len(q))
        depth += 1
    return out[:rows]


def _cell(feature: Feature, value: Any) -> Cell:
    """A value as the predict API takes it: a number, a category, a boolean or None."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if feature.kind == "numeric":
        return float(value)
    if feature.kind == "boolean":
        return bool(value)
    return str(value)


def _target(value: Any, *, regression: bool) -> Cell:
    if regression:
        return float(value)
    plain = value.item() if isinstance(value, np.generic) else value
    return plain if isinstance(plain, int | str) else str(plain)
