"""Tune a binary classifier's decision layer out of fold: the threshold, and calibration.

Both are decided on out-of-fold probabilities: each training row's probability comes from the
fold model that did not see it (the comparison's own folds, no extra fits), as scikit-learn's
``TunedThresholdClassifierCV`` and ``CalibratedClassifierCV(ensemble=False)`` decide them.
The test split is not used. The runtimes apply the result through
:mod:`mlcontainer.core.decision`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mlcontainer.core.decision import calibrate, logit

#: Selection metrics a threshold changes and can be tuned for. (The probability metrics do
#: not depend on it; precision or recall alone would be maximised by a degenerate threshold.)
THRESHOLD_METRICS = ("accuracy", "balanced_accuracy", "f1_macro", "f1_weighted")
#: Calibration is kept only if it lowers the cross-fitted out-of-fold Brier score by this
#: share at least (and does not raise the log loss).
MIN_CALIBRATION_GAIN = 0.02


@dataclass(frozen=True)
class Threshold:
    """The tuned threshold and the out-of-fold score at it and at 0.5."""

    threshold: float
    score: float
    score_at_half: float


def _scores(p: np.ndarray, positive: np.ndarray, thresholds: np.ndarray, metric: str) -> np.ndarray:
    """The metric for "positive when p >= t", for every t in ``thresholds`` at once."""
    order = np.sort(p)
    n, n_pos = len(p), int(positive.sum())
    n_neg = n - n_pos
    # Rows predicted positive at t: those with p >= t; positives among them likewise.
    predicted = n - np.searchsorted(order, thresholds, side="left")
    tp = n_pos - np.searchsorted(np.sort(p[positive]), thresholds, side="left")
    fp = predicted - tp
    fn, tn = n_pos - tp, n_neg - fp
    out: np.ndarray
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "accuracy":
            out = (tp + tn) / n
            return out
        recall_pos = np.where(n_pos > 0, tp / max(n_pos, 1), 0.0)
        recall_neg = np.where(n_neg > 0, tn / max(n_neg, 1), 0.0)
        if metric == "balanced_accuracy":
            out = (recall_pos + recall_neg) / 2
            return out
        f1_pos = np.where(2 * tp + fp + fn > 0, 2 * tp / (2 * tp + fp + fn), 0.0)
        f1_neg = np.where(2 * tn + fn + fp > 0, 2 * tn / (2 * tn + fn + fp), 0.0)
        if metric == "f1_macro":
            out = (f1_pos + f1_neg) / 2
            return out
        if metric == "f1_weighted":
            out = (n_pos * f1_pos + n_neg * f1_neg) / n
            return out
    raise ValueError(f"no threshold tuning for {metric!r}")


def tune_threshold(p: np.ndarray, positive: np.ndarray, metric: str) -> Threshold:
    """The threshold on the positive class's probability that maximises ``metric``.

    Every labelling a threshold can make is tried once: each candidate threshold is the
    midpoint between two consecutive distinct probabilities. Ties go to the threshold
    nearest 0.5 (the default decision), so a flat optimum changes nothing.
    """
    values = np.unique(p)
    # Above every probability (none positive): past 1 itself when a probability is 1.
    top = (values[-1] + 1) / 2 if values[-1] < 1 else np.nextafter(1.0, 2.0)
    cuts = np.r_[values[0] / 2, (values[:-1] + values[1:]) / 2, top, 0.5]
    scores = _scores(p, positive, cuts, metric)
    best = float(np.max(scores))
    near = np.flatnonzero(np.isclose(scores, best, rtol=0, atol=1e-12))
    pick = near[np.argmin(np.abs(cuts[near] - 0.5))]
    return Threshold(float(cuts[pick]), float(scores[pick]), float(scores[-1]))


@dataclass(frozen=True)
class PlattFit:
    """Platt scaling parameters and the cross-fitted out-of-fold scores they gave."""

    a: float
    b: float
    brier_before: float
    brier_after: float
    log_loss_before: float
    log_loss_after: float

    @property
    def helps(self) -> bool:
        """Whether calibrating is worth it: a clearly lower Brier score, no worse log loss."""
        return (
            self.a > 0
            and self.brier_after <= self.brier_before * (1 - MIN_CALIBRATION_GAIN)
            and self.log_loss_after <= self.log_loss_before
        )


def _platt(z: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e6, max_iter=1000).fit(z.reshape(-1, 1), positive)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def _brier(p: np.ndarray, positive: np.ndarray) -> float:
    return float(np.mean((p - positive) ** 2))


def _log_loss(p: np.ndarray, positive: np.ndarray) -> float:
    q = np.clip(p, 1e-15, 1 - 1e-15)
    return float(-np.mean(np.where(positive, np.log(q), np.log1p(-q))))


def fit_calibration(p: np.ndarray, positive: np.ndarray, fold_of: np.ndarray) -> PlattFit | None:
    """Platt scaling fitted on all out-of-fold probabilities, judged cross-fitted: each fold's
    rows calibrated by a fit on the other folds' rows. None when a fold lacks a class."""
    z = logit(p)
    cross = np.empty_like(p, dtype=float)
    for fold in np.unique(fold_of):
        inside = fold_of == fold
        rest = positive[~inside]
        if rest.all() or not rest.any():
            return None
        a, b = _platt(z[~inside], rest)
        cross[inside] = 1 / (1 + np.exp(-(a * z[inside] + b)))
    if positive.all() or not positive.any():
        return None
    a, b = _platt(z, positive)
    if not (math.isfinite(a) and math.isfinite(b)):
        return None
    return PlattFit(
        a,
        b,
        _brier(p, positive),
        _brier(cross, positive),
        _log_loss(p, positive),
        _log_loss(cross, positive),
    )


def calibrated_threshold(threshold: float, a: float, b: float) -> float:
    """The threshold on calibrated probabilities that makes the same labels (``a > 0``)."""
    two = np.array([[1 - threshold, threshold]])
    return float(calibrate(two, 1, a, b)[0, 1])


#: The weights a class's probability may get, searched one class at a time (1 included).
WEIGHT_GRID = np.geomspace(0.25, 4.0, 13)
#: Passes over the classes.
WEIGHT_ROUNDS = 2
#: Class weights are tuned where rows x classes² is at most this (the search labels every
#: row once per trial: 26 000 rows of 7 classes take about a second per candidate).
MAX_WEIGHT_WORK = 2_000_000


def _label_score(truth: np.ndarray, pred: np.ndarray, k: int, metric: str) -> float:
    """``metric`` of predicted class positions, as :func:`metrics.score_all` computes it
    (macro averages over the classes present in the truth)."""
    cm = np.bincount(truth * k + pred, minlength=k * k).reshape(k, k).astype(float)
    tp, support, predicted = np.diag(cm), cm.sum(axis=1), cm.sum(axis=0)
    if metric == "accuracy":
        return float(tp.sum() / cm.sum())
    present = support > 0
    if metric == "balanced_accuracy":
        recall = np.divide(tp, support, out=np.zeros_like(tp), where=present)
        return float(recall[present].mean())
    den = support + predicted
    f1 = np.divide(2 * tp, den, out=np.zeros_like(tp), where=den > 0)
    if metric == "f1_macro":
        return float(f1[present].mean())
    if metric == "f1_weighted":
        return float((f1 * support).sum() / support.sum())
    raise ValueError(f"no class weights for {metric!r}")


def tune_weights(proba: np.ndarray, truth: np.ndarray, metric: str) -> tuple[np.ndarray, float]:
    """Per-class weights on the probabilities (the label is the argmax of their product)
    that maximise ``metric`` on these rows, by coordinate ascent over :data:`WEIGHT_GRID`;
    the multiclass counterpart of a binary threshold. Deterministic; a change is kept only
    if it scores strictly better. ``truth`` holds class positions."""
    k = proba.shape[1]
    weights = np.ones(k)
    best = _label_score(truth, np.argmax(proba, axis=1), k, metric)
    for _ in range(WEIGHT_ROUNDS):
        for c in range(k):
            for w in WEIGHT_GRID:
                trial = weights.copy()
                trial[c] = w
                score = _label_score(truth, np.argmax(proba * trial, axis=1), k, metric)
                if score > best + 1e-12:
                    best, weights = score, trial
    return weights, best


@dataclass(frozen=True)
class Weights:
    """Class weights tuned out of fold, and the cross-fitted score per fold without and with
    them (each fold weighted by weights tuned on the other folds)."""

    weights: tuple[float, ...]
    plain: tuple[float, ...]
    weighted: tuple[float, ...]
    #: The weights each fold was labelled with (tuned on the other folds).
    fold_weights: tuple[tuple[float, ...], ...]

    @property
    def helps(self) -> bool:
        """Whether weighting is worth it: a higher cross-fitted mean score."""
        return float(np.mean(self.weighted)) > float(np.mean(self.plain)) + 1e-12


def cross_fitted_weights(
    proba: np.ndarray, truth: np.ndarray, folds: list[np.ndarray], metric: str
) -> Weights:
    """Weights tuned on all out-of-fold rows, judged as they would do on unseen rows: each
    fold's rows (``folds``: their indices) labelled with weights tuned on the others."""
    k = proba.shape[1]
    plain, weighted, per_fold = [], [], []
    for val in folds:
        rest = np.ones(len(truth), dtype=bool)
        rest[val] = False
        w, _ = tune_weights(proba[rest], truth[rest], metric)
        plain.append(_label_score(truth[val], np.argmax(proba[val], axis=1), k, metric))
        weighted.append(_label_score(truth[val], np.argmax(proba[val] * w, axis=1), k, metric))
        per_fold.append(tuple(float(x) for x in w))
    weights, _ = tune_weights(proba, truth, metric)
    return Weights(tuple(float(w) for w in weights), tuple(plain), tuple(weighted), tuple(per_fold))
