"""The binary decision layer decided out of fold: the threshold that maximises the metric,
and Platt calibration kept only where it helps."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

from mlcontainer.core.decision import calibrate
from mlcontainer.training.search.decision import (
    THRESHOLD_METRICS,
    calibrated_threshold,
    fit_calibration,
    tune_threshold,
)

SKLEARN = {
    "accuracy": accuracy_score,
    "balanced_accuracy": balanced_accuracy_score,
    "f1_macro": lambda y, p: f1_score(y, p, average="macro", zero_division=0),
    "f1_weighted": lambda y, p: f1_score(y, p, average="weighted", zero_division=0),
}


def _score(metric: str, positive: np.ndarray, p: np.ndarray, t: float) -> float:
    return float(SKLEARN[metric](positive, p >= t))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 20), st.booleans()), min_size=2, max_size=40),
    st.sampled_from(THRESHOLD_METRICS),
)
def test_the_tuned_threshold_scores_as_sklearn_says_and_no_threshold_scores_better(
    rows: list[tuple[int, bool]], metric: str
) -> None:
    p = np.array([r[0] / 20 for r in rows])
    positive = np.array([r[1] for r in rows])
    assume(positive.any() and not positive.all())  # out-of-fold data always hold both
    tuned = tune_threshold(p, positive, metric)
    assert tuned.score == pytest.approx(_score(metric, positive, p, tuned.threshold), abs=1e-12)
    assert tuned.score_at_half == pytest.approx(_score(metric, positive, p, 0.5), abs=1e-12)
    # Every labelling a threshold can make: at each distinct value, and above them all.
    for t in [*np.unique(p), 1.01]:
        assert _score(metric, positive, p, t) <= tuned.score + 1e-12


def test_a_flat_optimum_keeps_half() -> None:
    p = np.array([0.1, 0.2, 0.8, 0.9])
    positive = np.array([False, False, True, True])
    assert tune_threshold(p, positive, "f1_macro").threshold == 0.5


def test_rare_positives_get_a_lower_threshold_for_macro_f1() -> None:
    rng = np.random.default_rng(0)
    z = rng.normal(size=5_000)
    positive = rng.random(5_000) < 1 / (1 + np.exp(-(2 * z - 3.5)))
    p = 1 / (1 + np.exp(-(2 * z - 3.5)))  # the true probabilities
    tuned = tune_threshold(p, positive, "f1_macro")
    assert tuned.threshold < 0.45
    assert tuned.score > tuned.score_at_half + 0.01


def _folds(n: int) -> np.ndarray:
    return np.arange(n) % 5


def test_calibration_is_kept_for_overconfident_probabilities_and_shrinks_them() -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(size=4_000)
    positive = rng.random(4_000) < 1 / (1 + np.exp(-z))
    overconfident = 1 / (1 + np.exp(-4 * z))
    fit = fit_calibration(overconfident, positive, _folds(4_000))
    assert fit is not None
    assert fit.helps
    assert fit.a == pytest.approx(0.25, abs=0.05)
    assert fit.brier_after < fit.brier_before


def test_calibration_is_left_out_where_probabilities_are_already_right() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=4_000)
    p = 1 / (1 + np.exp(-z))
    positive = rng.random(4_000) < p
    fit = fit_calibration(p, positive, _folds(4_000))
    assert fit is not None
    assert not fit.helps


def test_calibration_is_none_when_a_fold_holds_one_class_only() -> None:
    p = np.linspace(0.01, 0.99, 10)
    positive = np.array([True] * 5 + [False] * 5)
    assert fit_calibration(p, positive, np.array([0] * 5 + [1] * 5)) is None


def test_the_threshold_moved_to_calibrated_probabilities_gives_the_same_labels() -> None:
    p = np.linspace(0.001, 0.999, 999)
    two = np.column_stack([1 - p, p])
    a, b, t = 0.6, -0.4, 0.37
    moved = calibrated_threshold(t, a, b)
    assert np.array_equal(calibrate(two, 1, a, b)[:, 1] >= moved, p >= t)


def test_a_kept_calibration_is_written_as_the_manifest_section() -> None:
    from dataclasses import asdict

    from mlcontainer.core.artifacts import Calibration

    rng = np.random.default_rng(3)
    z = rng.normal(size=2_000)
    positive = rng.random(2_000) < 1 / (1 + np.exp(-z))
    fit = fit_calibration(1 / (1 + np.exp(-3 * z)), positive, _folds(2_000))
    assert fit is not None
    section = Calibration(**asdict(fit))
    assert (section.method, section.a, section.brier_after) == ("sigmoid", fit.a, fit.brier_after)


# --- several classes: class weights ---------------------------------------------------------


def _three_classes(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities of a model that under-predicts the rare classes 1 and 2."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(3, size=n, p=[0.8, 0.15, 0.05])
    logits = rng.normal(size=(n, 3)) + 1.5 * np.eye(3)[truth] + np.array([2.5, 0.0, 0.0])
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return proba, truth


@pytest.mark.parametrize("metric", THRESHOLD_METRICS)
def test_the_label_score_is_the_metric_the_comparison_computes(metric: str) -> None:
    from mlcontainer.training.search.decision import _label_score
    from mlcontainer.training.search.metrics import score_all

    proba, truth = _three_classes(500, 4)
    pred = np.argmax(proba * np.array([1.0, 2.0, 3.0]), axis=1)
    assert _label_score(truth, pred, 3, metric) == pytest.approx(
        score_all(truth, pred, proba, [0, 1, 2])[metric], abs=1e-12
    )


def test_class_weights_raise_macro_f1_where_rare_classes_are_under_predicted() -> None:
    from mlcontainer.training.search.decision import (
        _label_score,
        cross_fitted_weights,
        tune_weights,
    )

    proba, truth = _three_classes(3_000, 5)
    folds = [np.flatnonzero(np.arange(3_000) % 5 == k) for k in range(5)]
    tuned = cross_fitted_weights(proba, truth, folds, "f1_macro")
    assert tuned.helps
    assert np.mean(tuned.weighted) > np.mean(tuned.plain) + 0.02
    w = np.asarray(tuned.weights)
    assert w[1] > w[0]
    assert w[2] > w[0]
    # On fresh rows of the same model the weights still help.
    fresh, fresh_truth = _three_classes(3_000, 6)
    plain = _label_score(fresh_truth, np.argmax(fresh, axis=1), 3, "f1_macro")
    weighted = _label_score(fresh_truth, np.argmax(fresh * w, axis=1), 3, "f1_macro")
    assert weighted > plain
    assert tune_weights(proba, truth, "f1_macro")[0].tolist() == list(tuned.weights)


def test_class_weights_are_left_out_where_argmax_is_already_best() -> None:
    from mlcontainer.training.search.decision import cross_fitted_weights

    rng = np.random.default_rng(7)
    truth = rng.choice(3, size=900)
    proba = np.full((900, 3), 0.1)
    proba[np.arange(900), truth] = 0.8  # every row right at argmax
    folds = [np.flatnonzero(np.arange(900) % 3 == k) for k in range(3)]
    tuned = cross_fitted_weights(proba, truth, folds, "f1_macro")
    assert not tuned.helps
    assert tuned.weights == (1.0, 1.0, 1.0)
