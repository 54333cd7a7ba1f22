"""Metrics: the comparison's scores equal scikit-learn's, and the test split is scored once."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcontainer.core.decision import decide
from mlcontainer.core.errors import ConfigError
from mlcontainer.core.labels import label_array
from mlcontainer.training.search.metrics import (
    CLASSIFICATION_METRICS,
    DEFAULT_METRICS,
    REGRESSION_METRICS,
    check_metric,
    evaluate,
    json_floats,
    score_all,
    score_regression,
)
from mlcontainer.training.workflow import TrainOutcome


def test_check_metric_lists_the_valid_ones() -> None:
    assert check_metric("log_loss").greater_is_better is False
    with pytest.raises(ConfigError, match="unknown metric 'f2'; valid: accuracy, balanced"):
        check_metric("f2")


def test_a_metric_of_the_other_task_is_refused_naming_the_valid_ones() -> None:
    assert check_metric("rmse", "regression").greater_is_better is False
    assert check_metric("r2", "regression").greater_is_better is True
    with pytest.raises(ConfigError) as caught:
        check_metric("accuracy", "regression")
    assert str(caught.value) == (
        "--metric accuracy is a classification metric, and the task is regression; valid for "
        "regression: rmse, mae, r2, median_ae, mape"
    )
    with pytest.raises(ConfigError, match="valid for classification: accuracy, "):
        check_metric("rmse", "classification")


def test_each_task_selects_by_its_default_metric() -> None:
    assert DEFAULT_METRICS == {"classification": "f1_macro", "regression": "rmse"}
    assert set(REGRESSION_METRICS) == {"rmse", "mae", "r2", "median_ae", "mape"}


def test_perfect_regression_predictions_have_no_error_and_r2_one() -> None:
    truth = np.array([1.0, 2.5, -3.0, 10.0])
    assert score_regression(truth, truth) == {
        "rmse": 0.0,
        "mae": 0.0,
        "r2": 1.0,
        "median_ae": 0.0,
        "mape": 0.0,
    }


def test_mape_is_undefined_where_the_truth_holds_a_zero() -> None:
    scores = score_regression(np.array([0.0, 1.0, 2.0]), np.array([0.5, 1.0, 2.0]))
    assert math.isnan(scores["mape"])
    assert scores["mae"] == pytest.approx(0.5 / 3)
    assert json_floats(scores)["mape"] is None


def test_r2_is_undefined_for_a_constant_truth() -> None:
    scores = score_regression(np.array([3.0, 3.0, 3.0]), np.array([2.0, 3.0, 4.0]))
    assert math.isnan(scores["r2"])
    assert scores["rmse"] == pytest.approx(math.sqrt(2 / 3))


@settings(max_examples=60, deadline=None)
@given(
    pairs=st.lists(
        st.tuples(
            st.floats(-1e6, 1e6, allow_nan=False).filter(lambda v: abs(v) > 1e-3),
            st.floats(-1e6, 1e6, allow_nan=False),
        ),
        min_size=2,
        max_size=40,
    )
)
def test_score_regression_equals_scikit_learn(pairs: list[tuple[float, float]]) -> None:
    from sklearn import metrics as skm

    truth = np.array([t for t, _ in pairs])
    pred = np.array([p for _, p in pairs])
    ours = score_regression(truth, pred)
    assert ours["rmse"] == pytest.approx(skm.root_mean_squared_error(truth, pred), rel=1e-9)
    assert ours["mae"] == pytest.approx(skm.mean_absolute_error(truth, pred), rel=1e-9)
    assert ours["median_ae"] == pytest.approx(skm.median_absolute_error(truth, pred), rel=1e-9)
    assert ours["mape"] == pytest.approx(skm.mean_absolute_percentage_error(truth, pred), rel=1e-9)
    if np.ptp(truth) > 0:
        assert ours["r2"] == pytest.approx(skm.r2_score(truth, pred), rel=1e-6, abs=1e-9)


def test_perfect_predictions_score_one_and_no_log_loss() -> None:
    truth = ["a", "b", "c", "a"]
    proba = np.eye(3)[[0, 1, 2, 0]]
    scores = score_all(truth, truth, proba, ["a", "b", "c"])
    assert set(scores) == set(CLASSIFICATION_METRICS)
    for name, value in scores.items():
        expected = 0.0 if name in ("log_loss", "brier") else 1.0
        assert value == pytest.approx(expected, abs=1e-9), name


def test_auc_is_nan_when_a_class_is_absent_from_the_truth() -> None:
    proba = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    scores = score_all(["a", "b"], ["a", "b"], proba, ["a", "b", "c"])
    assert math.isnan(scores["roc_auc_ovr"])
    assert scores["balanced_accuracy"] == 1.0
    assert json_floats(scores)["roc_auc_ovr"] is None


def test_binary_auc_uses_the_second_class_probability() -> None:
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.2, 0.8]])
    scores = score_all([0, 1, 0, 1], [0, 1, 0, 1], proba, [0, 1])
    assert scores["roc_auc_ovr"] == 1.0


def test_evaluation_of_the_fixture_model(iris_outcome: TrainOutcome) -> None:
    ev = iris_outcome.evaluation
    assert ev.test_rows == 30
    assert np.asarray(ev.confusion_matrix).sum() == 30
    assert set(ev.per_class) == {"setosa", "versicolor", "virginica"}
    assert len(ev.samples) == 5
    for sample in ev.samples:
        assert sample["true"] in ev.per_class
        assert sample["predicted"] in ev.per_class
        assert 1 / 3 <= sample["probability"] <= 1.0
    assert 0.0 <= ev.metrics["accuracy"] <= 1.0
    assert ev.to_dict()["test_rows"] == 30


def test_evaluate_is_deterministic(iris_outcome: TrainOutcome) -> None:
    split = iris_outcome.result.split
    classes = iris_outcome.dataset.schema.classes
    again = evaluate(iris_outcome.result.pipeline, split.X_test, split.y_test, classes)
    assert again == iris_outcome.evaluation


def _sklearn_scores(
    truth: np.ndarray, pred: np.ndarray, proba: np.ndarray, labels: list[Any]
) -> dict[str, float]:
    """The reference: scikit-learn's own metric functions, one call per metric."""
    from sklearn import metrics as skm

    out = {"accuracy": skm.accuracy_score(truth, pred)}
    present = [c for c in labels if np.any(truth == c)]
    recalls = skm.recall_score(truth, pred, labels=present, average=None, zero_division=0)
    out["balanced_accuracy"] = float(np.mean(recalls))
    for avg in ("macro", "weighted"):
        # Macro over the classes present in the truth: an absent one is not a zero.
        p, r, f, _ = skm.precision_recall_fscore_support(
            truth, pred, labels=present, average=avg, zero_division=0
        )
        out[f"precision_{avg}"], out[f"recall_{avg}"], out[f"f1_{avg}"] = p, r, f
    if len(present) < len(labels):
        out["roc_auc_ovr"] = out["pr_auc"] = math.nan
    elif len(labels) == 2:
        out["roc_auc_ovr"] = skm.roc_auc_score(truth == labels[1], proba[:, 1])
        out["pr_auc"] = skm.average_precision_score(truth == labels[1], proba[:, 1])
    else:
        out["roc_auc_ovr"] = skm.roc_auc_score(truth, proba, multi_class="ovr", labels=labels)
        out["pr_auc"] = float(
            np.mean(
                [skm.average_precision_score(truth == c, proba[:, j]) for j, c in enumerate(labels)]
            )
        )
    out["log_loss"] = skm.log_loss(truth, proba, labels=labels)
    out["brier"] = skm.brier_score_loss(truth, proba, labels=labels, scale_by_half=True)
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_score_all_equals_scikit_learn(data: st.DataObject) -> None:
    k = data.draw(st.integers(2, 5))
    labels: list[Any] = data.draw(
        st.sampled_from([list(range(k)), [f"c{i}" for i in range(k)], list(range(10, 10 + k))])
    )
    n = data.draw(st.integers(2, 30))
    truth_idx = data.draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n))
    # Probabilities with ties (coarse grid) as trees and k-NN produce them.
    weights = data.draw(
        st.lists(st.lists(st.integers(1, 4), min_size=k, max_size=k), min_size=n, max_size=n)
    )
    proba = np.asarray(weights, dtype=float)
    proba /= proba.sum(axis=1, keepdims=True)
    truth = label_array([labels[i] for i in truth_idx])
    pred = decide(proba, labels, None).labels
    ours = score_all(truth, pred, proba, labels)
    reference = _sklearn_scores(truth, pred, proba, labels)
    for name in CLASSIFICATION_METRICS:
        if math.isnan(reference[name]):
            assert math.isnan(ours[name]), name
        else:
            assert ours[name] == pytest.approx(reference[name], abs=1e-9), name


def test_a_class_absent_from_the_test_rows_is_named_and_not_averaged_in_as_zero() -> None:
    from mlcontainer.training.data.dataset import load_dataset
    from mlcontainer.training.search.models import build_pipeline

    ds = load_dataset("iris")
    y = label_array(ds.y)
    pipeline = build_pipeline("logistic_regression", ds.schema, random_state=0).fit(ds.X, y)
    present = ds.y != "virginica"
    evaluation = evaluate(pipeline, ds.X[present], ds.y[present], ds.schema.classes)
    assert evaluation.warnings == [
        "class(es) 'virginica' have no rows in the test split: their precision, recall and F1 "
        "are left out of the macro averages, not counted as zero"
    ]
    # The mean over the two classes there (averaging in the absent one gave 2/3 of it).
    recalls = [evaluation.per_class[c]["recall"] for c in ("setosa", "versicolor")]
    assert evaluation.metrics["recall_macro"] == pytest.approx(np.mean(recalls))
    assert evaluation.metrics["recall_macro"] > 0.9
