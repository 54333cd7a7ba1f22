"""Permutation importance of the original columns on the test split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlcontainer.core.labels import label_array
from mlcontainer.core.schema import Feature, Schema
from mlcontainer.training.data.dataset import load_dataset
from mlcontainer.training.report.importance import TOP, permutation_importances
from mlcontainer.training.search.models import build_pipeline


def test_the_column_the_target_depends_on_ranks_first_and_noise_near_zero() -> None:
    rng = np.random.default_rng(0)
    n = 400
    X = pd.DataFrame({"noise": rng.normal(size=n), "signal": rng.normal(size=n)})
    X["colour"] = np.where(rng.random(n) > 0.5, "red", "blue")  # one-hot encoded: one column
    schema = Schema(
        features=(
            Feature("noise", "numeric", nullable=False),
            Feature("signal", "numeric", nullable=False),
            Feature("colour", "categorical", nullable=False, categories=("blue", "red")),
        ),
        target="y",
        task="classification",
        classes=("neg", "pos"),
    )
    y = pd.Series(np.where(X["signal"] > 0, "pos", "neg"))
    pipeline = build_pipeline("logistic_regression", schema, random_state=0)
    pipeline.fit(X, label_array(y))
    got = permutation_importances(pipeline, X, y, schema, metric="accuracy", random_state=0)
    assert got.columns[0].column == "signal"
    assert {c.column for c in got.columns} == {"noise", "signal", "colour"}
    assert got.columns[0].mean > 0.3
    assert all(abs(c.mean) < 0.05 for c in got.columns[1:])
    assert (got.metric, got.rows, got.total) == ("accuracy", n, 3)


def test_a_wide_table_keeps_the_top_columns_and_a_slow_model_shuffles_fewer_rows() -> None:
    ds = load_dataset("breast_cancer")  # 30 columns
    pipeline = build_pipeline("k_nearest_neighbors", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    got = permutation_importances(
        pipeline, ds.X, ds.y, ds.schema, metric="f1_macro", random_state=0, seconds=0.05
    )
    assert len(got.columns) == TOP
    assert got.total == 30
    assert 100 <= got.rows < len(ds.X)  # cut to the time limit, never below 100 rows


def test_a_regressor_is_scored_as_a_greater_is_better_drop() -> None:
    ds = load_dataset("diabetes")
    pipeline = build_pipeline("ridge", ds.schema, random_state=0)
    pipeline.fit(ds.X, np.asarray(ds.y, dtype=float))
    got = permutation_importances(pipeline, ds.X, ds.y, ds.schema, metric="rmse", random_state=0)
    assert got.metric == "rmse"
    assert got.columns[0].mean > 0  # shuffling the best column raises the error
    assert got.columns[0].column in {"bmi", "s5"}
    means = [c.mean for c in got.columns]
    assert means == sorted(means, reverse=True)
    assert pytest.approx(got.columns[0].mean, rel=1e-9) == max(means)
