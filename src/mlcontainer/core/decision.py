"""The decision layer: how a classifier's probabilities become the labels it answers.

Training tunes it out of fold and records it in the manifest (``decision``); :func:`decide`
applies it, and is the only function that turns probabilities into served labels: every
runtime and every output (``predict`` CSV and JSON, each HTTP protocol, the page, and the
test-split metrics written at training) calls it, so they give the same label row for row.

* Binary: calibration (optional), Platt scaling of the positive class's log-odds,
  ``p' = 1 / (1 + exp(-(a * logit(p) + b)))``; monotonic (``a > 0``), so it changes the
  probabilities, never their order. Then the threshold: the positive class when its
  (calibrated) probability is at least ``threshold``, the other class otherwise.
* Several classes: a weight per class; the label with the largest weighted probability
  (the probabilities themselves unchanged).
* No decision (folders written before it, or nothing tuned): the most probable class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from mlcontainer.core.labels import label_array
from mlcontainer.core.schema import Label


class PlattScaling(Protocol):
    """The two coefficients of a Platt scaling (the manifest's ``Calibration``)."""

    @property
    def a(self) -> float: ...

    @property
    def b(self) -> float: ...


class Rule(Protocol):
    """A decision as the manifest records it (``Decision``): a positive class and a
    threshold, optionally calibrated, or one weight per class."""

    @property
    def positive_class(self) -> Label | None: ...

    @property
    def threshold(self) -> float | None: ...

    @property
    def calibration(self) -> PlattScaling | None: ...

    @property
    def class_weights(self) -> Sequence[float] | None: ...


@dataclass(frozen=True)
class Decided:
    """What :func:`decide` gives: the probabilities served and each row's label."""

    #: The probabilities the model answers (a calibrated binary model's, calibrated).
    probabilities: np.ndarray
    #: The position of each row's label in the class list (int64).
    positions: np.ndarray
    #: Each row's label (see :func:`~mlcontainer.core.labels.label_array` for the dtype).
    labels: np.ndarray


#: Probabilities are clipped this far from 0 and 1 before taking log-odds.
EPSILON = 1e-12


def logit(p: np.ndarray) -> np.ndarray:
    """The log-odds of probabilities (clipped to stay finite)."""
    q = np.clip(np.asarray(p, dtype=float), EPSILON, 1 - EPSILON)
    out: np.ndarray = np.log(q) - np.log1p(-q)
    return out


def calibrate(proba: np.ndarray, positive: int, a: float, b: float) -> np.ndarray:
    """Two-column probabilities with the positive class's Platt-scaled (rows sum to 1)."""
    p = 1.0 / (1.0 + np.exp(-(a * logit(proba[:, positive]) + b)))
    out = np.empty_like(proba, dtype=float)
    out[:, positive] = p
    out[:, 1 - positive] = 1.0 - p
    return out


def decide(proba: np.ndarray, classes: Sequence[Label], rule: Rule | None) -> Decided:
    """Apply ``rule`` (the manifest's decision; None: the most probable class) to a model's
    probabilities, one row per input row and one column per class, in ``classes`` order."""
    if rule is None:
        positions = np.argmax(proba, axis=1)
    elif rule.class_weights is not None:
        positions = _weighted(proba, rule.class_weights)
    else:
        if rule.positive_class is None or rule.threshold is None:
            raise ValueError("a decision has a positive class and a threshold, or class weights")
        positive = list(classes).index(rule.positive_class)
        if rule.calibration is not None:
            proba = calibrate(proba, positive, rule.calibration.a, rule.calibration.b)
        positions = _thresholded(proba, positive, rule.threshold)
    positions = positions.astype(np.int64, copy=False)
    return Decided(proba, positions, label_array(classes)[positions])


def threshold_labels(
    proba: np.ndarray, classes: Sequence[Label], positive: int, threshold: float
) -> np.ndarray:
    """The positive class where its probability reaches ``threshold``, else the other (a
    threshold being tuned; :func:`decide` applies the one chosen)."""
    chosen: np.ndarray = label_array(classes)[_thresholded(proba, positive, threshold)]
    return chosen


def weighted_labels(
    proba: np.ndarray, classes: Sequence[Label], weights: Sequence[float]
) -> np.ndarray:
    """The class whose probability times its weight is largest, ties to the first class
    (weights being tuned; :func:`decide` applies the ones chosen)."""
    chosen: np.ndarray = label_array(classes)[_weighted(proba, weights)]
    return chosen


def _thresholded(proba: np.ndarray, positive: int, threshold: float) -> np.ndarray:
    out: np.ndarray = np.where(proba[:, positive] >= threshold, positive, 1 - positive)
    return out


def _weighted(proba: np.ndarray, weights: Sequence[float]) -> np.ndarray:
    out: np.ndarray = np.argmax(proba * np.asarray(weights, dtype=float), axis=1)
    return out
