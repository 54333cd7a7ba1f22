"""The one decision function: calibration then threshold (binary), class weights (several
classes), or the most probable class, first on ties."""

from __future__ import annotations

import numpy as np
import pytest

from mlcontainer.core.artifacts import Calibration, Decision
from mlcontainer.core.decision import calibrate, decide, logit, threshold_labels


def _two(p: list[float]) -> np.ndarray:
    q = np.asarray(p, dtype=float)
    return np.column_stack([1 - q, q])


def test_identity_calibration_changes_nothing_and_rows_sum_to_one() -> None:
    proba = _two([0.01, 0.3, 0.5, 0.9])
    np.testing.assert_allclose(calibrate(proba, 1, 1.0, 0.0), proba, atol=1e-12)
    shrunk = calibrate(proba, 1, 0.5, 0.2)
    np.testing.assert_allclose(shrunk.sum(axis=1), 1.0)
    assert np.all(np.diff(shrunk[:, 1]) > 0)  # order kept


def test_calibration_of_the_first_class_as_positive() -> None:
    proba = _two([0.2, 0.7])[:, ::-1]  # the positive class is column 0
    out = calibrate(proba, 0, 1.0, 1.0)
    expected = 1 / (1 + np.exp(-(logit(proba[:, 0]) + 1.0)))
    np.testing.assert_allclose(out[:, 0], expected)
    np.testing.assert_allclose(out[:, 1], 1 - expected)


def test_certain_probabilities_stay_finite() -> None:
    out = calibrate(_two([0.0, 1.0]), 1, 2.0, 0.0)
    assert np.isfinite(out).all()
    assert out[0, 1] < 1e-12 < out[1, 1]


def test_threshold_labels_take_the_positive_class_at_or_above_the_threshold() -> None:
    labels = threshold_labels(_two([0.2, 0.3, 0.31, 0.9]), ["no", "yes"], 1, 0.3)
    assert labels.tolist() == ["no", "yes", "yes", "yes"]


@pytest.mark.parametrize("calibrated", [False, True])
def test_a_decision_applies_calibration_then_its_threshold(calibrated: bool) -> None:
    calibration = Calibration(
        a=0.5, b=0.0, brier_before=0.2, brier_after=0.1, log_loss_before=0.6, log_loss_after=0.5
    ) if calibrated else None  # fmt: skip
    decision = Decision(positive_class=1, threshold=0.4, metric="f1_macro", calibration=calibration)
    raw = _two([0.3, 0.38, 0.45, 0.8])
    decided = decide(raw, [0, 1], decision)
    expected = calibrate(raw, 1, 0.5, 0.0) if calibrated else raw
    np.testing.assert_allclose(decided.probabilities, expected)
    assert decided.labels.tolist() == (expected[:, 1] >= 0.4).astype(int).tolist()
    assert decided.positions.tolist() == decided.labels.tolist()


def test_class_weights_pick_the_largest_weighted_probability_and_keep_probabilities() -> None:
    decision = Decision(metric="f1_macro", class_weights=[1.0, 3.0, 1.0])
    proba = np.array([[0.6, 0.3, 0.1], [0.7, 0.2, 0.1], [0.1, 0.15, 0.75]])
    decided = decide(proba, ["a", "b", "c"], decision)
    np.testing.assert_array_equal(decided.probabilities, proba)
    assert decided.labels.tolist() == ["b", "a", "c"]
    assert decided.positions.tolist() == [1, 0, 2]


def test_without_a_decision_the_most_probable_class_first_on_ties() -> None:
    decided = decide(np.array([[0.5, 0.5], [0.2, 0.8], [0.4, 0.6]]), ["a", "b"], None)
    assert decided.labels.tolist() == ["a", "b", "b"]
    assert decided.positions.dtype == np.int64


def test_the_positive_class_may_be_the_first_and_labels_may_be_numbers() -> None:
    decision = Decision(positive_class=3, threshold=0.3, metric="f1_macro")
    decided = decide(_two([0.2, 0.6, 0.75]), [3, 7], decision)  # column 0 is class 3
    assert decided.labels.tolist() == [3, 3, 7]
    assert decided.labels.dtype == np.int64


@pytest.mark.parametrize(
    "fields",
    [{}, {"positive_class": 1, "threshold": 0.4, "class_weights": [1.0, 2.0]},
     {"positive_class": 1}],
)  # fmt: skip
def test_a_decision_is_a_threshold_or_class_weights_not_both_nor_neither(
    fields: dict[str, object],
) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="a positive class and a threshold, or class"):
        Decision(metric="f1_macro", **fields)  # type: ignore[arg-type]
