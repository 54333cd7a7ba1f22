"""The decision layer of a binary classifier: calibrated probabilities, then a threshold.

Training tunes both out of fold and records them in the manifest (``decision``); every
runtime applies them here, after the model's own probabilities, so scikit-learn, ONNX,
``predict`` and every HTTP protocol give the same labels row for row.

* Calibration (optional): Platt scaling of the positive class's log-odds,
  ``p' = 1 / (1 + exp(-(a * logit(p) + b)))``; monotonic (``a > 0``), so it changes the
  probabilities, never their order.
* Threshold: the positive class when its (calibrated) probability is at least
  ``threshold``, the other class otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from mlcontainer.core.labels import label_array
from mlcontainer.core.schema import Label

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


def threshold_labels(
    proba: np.ndarray, classes: Sequence[Label], positive: int, threshold: float
) -> np.ndarray:
    """The positive class where its probability reaches ``threshold``, else the other."""
    labels = label_array(classes)
    chosen: np.ndarray = np.where(
        proba[:, positive] >= threshold, labels[positive], labels[1 - positive]
    )
    return chosen


def weighted_labels(
    proba: np.ndarray, classes: Sequence[Label], weights: Sequence[float]
) -> np.ndarray:
    """The class whose probability times its weight is largest (ties: the first class)."""
    labels = label_array(classes)
    chosen: np.ndarray = labels[np.argmax(proba * np.asarray(weights, dtype=float), axis=1)]
    return chosen
