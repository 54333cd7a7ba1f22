"""The column profile and the example rows the page's form is filled with."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlcontainer.core.schema import Feature, Schema
from mlcontainer.training.data.profile import column_profiles, examples


def _schema(task: str = "classification") -> Schema:
    return Schema(
        features=(
            Feature("size", "numeric", nullable=True),
            Feature("colour", "categorical", nullable=True, categories=("blue", "red")),
            Feature("flag", "boolean", nullable=False),
        ),
        target="y",
        task=task,  # type: ignore[arg-type]
        classes=("a", "b") if task == "classification" else (),
    )


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "size": [1.0, 2.0, np.nan, 4.0, 100.0],
            "colour": ["red", "blue", "red", None, "blue"],
            "flag": [True, False, True, True, False],
        }
    )


def test_each_column_gets_its_kind_missing_share_and_distinct_values() -> None:
    size, colour, flag = column_profiles(_frame(), _schema())
    assert (size.kind, size.missing, size.distinct) == ("numeric", 0.2, 4)
    assert size.summary == "median 3; from 1 to 100"
    assert (colour.kind, colour.missing, colour.distinct) == ("categorical", 0.2, 2)
    assert colour.summary == "most frequent 'blue' (50%)"  # a tie: the smallest, stably
    assert flag.summary == "true in 60% of rows"


def test_the_typical_row_is_the_median_and_the_most_frequent_values() -> None:
    X = _frame()
    y = pd.Series(["a", "a", "b", "b", "a"])
    got = examples(X, X, y, _schema())
    assert got.typical == {"size": 3.0, "colour": "blue", "flag": True}
    spread = got.spreads["size"]
    assert (spread.min, spread.median, spread.max) == (1.0, 3.0, 100.0)
    assert spread.min <= spread.low <= spread.median <= spread.high <= spread.max
    assert set(got.spreads) == {"size"}  # numbers only


def test_held_out_rows_take_the_classes_in_turn_and_keep_missing_values_as_null() -> None:
    X = _frame()
    y = pd.Series(["a", "a", "b", "b", "a"])
    got = examples(X, X, y, _schema(), rows=3)
    assert [r.target for r in got.held_out] == ["a", "b", "a"]
    assert got.held_out[1].values == {"size": None, "colour": "red", "flag": True}


def test_a_regressors_held_out_rows_spread_over_the_targets_range() -> None:
    n = 50
    X = pd.DataFrame({"size": np.arange(n, dtype=float), "colour": ["red"] * n, "flag": [True] * n})
    y = pd.Series(np.arange(n, dtype=float) * 10)
    got = examples(X, X, y, _schema("regression"), rows=5)
    targets = [r.target for r in got.held_out]
    assert targets == sorted(targets)
    assert targets[0] < 100  # near the 10th percentile...
    assert targets[-1] > 400  # ...and the 90th


def test_drift_reference_types_training_columns_as_the_runtimes_receive_them() -> None:
    from mlcontainer.training.data.profile import drift_reference

    ref = drift_reference(_frame(), _schema(), ["a", "b", "b"])
    assert ref.rows == 5
    colour = ref.features["colour"]
    assert colour.categories == ["blue", "red"]
    assert colour.shares == [0.4, 0.4, 0.0, 0.0, 0.2]  # blue, red, other, unseen, missing
    assert ref.features["size"].shares[-1] == 0.2  # one of five missing
    assert ref.features["flag"].shares == [0.4, 0.6, 0.0]  # false, true, missing
    assert ref.prediction is not None
    assert ref.prediction.shares == [0.333333, 0.666667]
