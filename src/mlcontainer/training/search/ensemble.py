"""Select a weighted ensemble of the compared models from their out-of-fold predictions.

Every candidate (and every preset its search fitted on whole folds) left out-of-fold
probabilities (a classifier's) or predictions (a regressor's, one column): each training row
predicted by the fold model that did not see it. Greedy ensemble selection with replacement
(Caruana et al. 2004, the source of AutoGluon's ``WeightedEnsemble``) adds, ``ROUNDS`` times,
the member whose addition makes the running average score best on those rows, and keeps the
best prefix; a member's weight is the share of the kept rounds it was added in. The first
round adds the best single member, so on the rows it was selected on the ensemble scores at
least as well as every member. No model is fitted here.

Its score is cross-fitted, so an ensemble is never ranked on weights fitted to the rows that
score it: each fold's rows are blended with weights selected on the other folds' rows, and
labelled by a decision (a binary threshold, or class weights) tuned on those other rows too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mlcontainer.core.decision import decide, threshold_labels, weighted_labels
from mlcontainer.core.schema import Label
from mlcontainer.training.search.decision import (
    Threshold,
    Weights,
    cross_fitted_weights,
    tune_threshold,
    tune_weights,
)
from mlcontainer.training.search.metrics import (
    METRICS,
    score_all,
    score_positions,
    score_regression,
)
from mlcontainer.training.search.tuning import Preset

#: The ensemble's name on the leaderboard and in the manifest.
ENSEMBLE = "ensemble"
#: Rounds of greedy selection (AutoGluon's default is 25 as well).
ROUNDS = 25
#: The weights are selected on at most this many rows (a seeded sample; the scores use every
#: row): each round scores every member's blend, and on Adult's 26 000 rows with twelve
#: members the six selections (one per fold, and the final one) took 14-22 s at load 12.
GREEDY_ROWS = 8_000


@dataclass(frozen=True)
class Member:
    """One compared model (a candidate with one preset) and what its folds left."""

    model: str
    preset: Preset
    #: Out-of-fold probabilities (rows x classes) or predictions (rows x 1).
    oof: np.ndarray = field(repr=False, compare=False)
    #: Mean seconds of one fold's fit, and the rows it was fitted on (for the refit's cost).
    fit_seconds: float = 0.0
    fit_rows: int = 0

    @property
    def label(self) -> str:
        """The member as the report names it: the model, and its preset unless the default."""
        return self.model if self.preset.name == "default" else f"{self.model} ({self.preset.name})"


@dataclass(frozen=True)
class Blend:
    """The members the selection kept, with their weights (positive, summing to 1)."""

    members: tuple[Member, ...]
    weights: tuple[float, ...]

    def predict(self, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        """The weighted average of the members' out-of-fold outputs on ``rows``."""
        return blend([m.oof[rows] for m in self.members], np.asarray(self.weights))

    def describe(self) -> str:
        """The ensemble in words, with its members and weights."""
        parts = ", ".join(
            f"{m.label} {w:.2f}" for m, w in zip(self.members, self.weights, strict=True)
        )
        return f"Weighted ensemble (greedy selection, soft voting) of {parts}"

    def to_list(self) -> list[dict[str, object]]:
        """The members and weights as the manifest and the report show them."""
        return [
            {"model": m.model, "preset": m.preset.name, "weight": round(w, 6)}
            for m, w in zip(self.members, self.weights, strict=True)
        ]


@dataclass(frozen=True)
class Selected:
    """The ensemble over all training rows, and its cross-fitted scores."""

    blend: Blend
    #: The blend's out-of-fold outputs with the final weights (the decision layer's input).
    oof: np.ndarray = field(repr=False)
    #: Every metric on each fold, cross-fitted (weights and decision from the other folds).
    fold_scores: tuple[dict[str, float], ...]
    #: A binary classifier's threshold tuned on ``oof`` (when the metric depends on one).
    threshold: Threshold | None = None
    #: Several classes: class weights tuned out of fold, kept only when they help.
    weights: Weights | None = None


def blend(outputs: Sequence[np.ndarray], weights: np.ndarray) -> np.ndarray:
    """The weighted average of several models' outputs (the soft vote)."""
    total = np.zeros_like(outputs[0], dtype=float)
    for out, w in zip(outputs, weights, strict=True):
        total += w * out
    result: np.ndarray = total / float(np.sum(weights))
    return result


def greedy_counts(
    outputs: Sequence[np.ndarray],
    objective: Callable[[np.ndarray], float],
    *,
    rounds: int = ROUNDS,
    random_state: int,
) -> np.ndarray:
    """How many times each of ``outputs`` is in the ensemble: ``rounds`` greedy additions
    (with replacement) of the output that maximises ``objective`` of the running average,
    cut back to the best prefix (the earliest, on a tie). Ties between outputs are broken by
    a generator seeded with ``random_state``: the same inputs give the same counts."""
    rng = np.random.default_rng(random_state)
    counts = np.zeros(len(outputs), dtype=np.intp)
    total = np.zeros_like(outputs[0], dtype=float)
    best_score, best_counts = -math.inf, counts.copy()
    for r in range(1, rounds + 1):
        scores = np.array([_finite(objective((total + out) / r)) for out in outputs])
        top = float(np.max(scores))
        tied = np.flatnonzero(scores >= top - 1e-12)
        pick = int(tied[0] if len(tied) == 1 else rng.choice(tied))
        counts[pick] += 1
        total += outputs[pick]
        if top > best_score + 1e-12:
            best_score, best_counts = top, counts.copy()
    return best_counts


def _finite(x: float) -> float:
    return x if math.isfinite(x) else -math.inf


def select(
    members: Sequence[Member],
    y: np.ndarray,
    folds: Sequence[np.ndarray],
    *,
    metric: str,
    classes: Sequence[Label],
    threshold: bool,
    class_weights: bool,
    random_state: int,
    rounds: int = ROUNDS,
) -> Selected | None:
    """Select the ensemble of ``members`` for ``metric`` and score it cross-fitted over
    ``folds`` (each fold's validation rows). ``threshold`` / ``class_weights``: whether the
    decision layer tunes a binary threshold or class weights for this metric (as it does for
    every candidate). None when the selection keeps a single member: that is no ensemble."""
    if len(members) < 2:
        return None
    outputs = [m.oof for m in members]

    def counts_on(rows: np.ndarray) -> np.ndarray:
        if len(rows) > GREEDY_ROWS:
            sample = np.random.default_rng(random_state).choice(rows, GREEDY_ROWS, replace=False)
            rows = np.sort(sample)
        objective = _objective(y[rows], metric, classes, threshold=threshold)
        return greedy_counts(
            [o[rows] for o in outputs], objective, rounds=rounds, random_state=random_state
        )

    counts = counts_on(np.arange(len(y)))
    if np.count_nonzero(counts) < 2:
        return None
    kept = np.flatnonzero(counts)
    weights = counts[kept] / counts[kept].sum()
    final = Blend(tuple(members[int(i)] for i in kept), tuple(float(w) for w in weights))
    cross = np.zeros_like(outputs[0], dtype=float)
    rests = []
    for val in folds:
        rest = np.ones(len(y), dtype=bool)
        rest[val] = False
        rests.append(rest)
        c = counts_on(np.flatnonzero(rest))
        cross[val] = blend([o[val] for o in outputs], c.astype(float))
    oof = final.predict()
    if not classes:  # a regressor: no decision layer
        scores = tuple(score_regression(y[val], cross[val, 0]) for val in folds)
        return Selected(final, oof, scores)
    labels = [decide(cross[val], classes, None).labels for val in folds]
    tuned_threshold = tuned_weights = None
    if threshold:
        positive = y == classes[1]
        labels = [
            threshold_labels(cross[val], classes, 1, _threshold(cross, positive, rest, metric))
            for val, rest in zip(folds, rests, strict=True)
        ]
        tuned_threshold = tune_threshold(oof[:, 1], positive, metric)
    elif class_weights:
        position = {c: i for i, c in enumerate(classes)}
        truth = np.fromiter((position[v] for v in y.tolist()), np.intp, len(y))
        crossed = cross_fitted_weights(cross, truth, list(folds), metric)
        if crossed.helps:
            labels = [
                weighted_labels(cross[val], classes, w)
                for val, w in zip(folds, crossed.fold_weights, strict=True)
            ]
            tuned_weights = _final_weights(crossed, oof, truth, metric)
    scores = tuple(
        score_all(y[val], fold_labels, cross[val], classes)
        for val, fold_labels in zip(folds, labels, strict=True)
    )
    return Selected(final, oof, scores, tuned_threshold, tuned_weights)


def _threshold(cross: np.ndarray, positive: np.ndarray, rest: np.ndarray, metric: str) -> float:
    """The threshold tuned on the other folds' blended rows."""
    return tune_threshold(cross[rest, 1], positive[rest], metric).threshold


def _final_weights(crossed: Weights, oof: np.ndarray, truth: np.ndarray, metric: str) -> Weights:
    """The cross-fitted judgement with the weights the model keeps tuned on the final blend."""
    weights, _ = tune_weights(oof, truth, metric)
    return Weights(
        tuple(float(w) for w in weights), crossed.plain, crossed.weighted, crossed.fold_weights
    )


def _objective(
    y: np.ndarray, metric: str, classes: Sequence[Label], *, threshold: bool
) -> Callable[[np.ndarray], float]:
    """``metric`` of a blend on these rows, signed so that greater is better; a binary
    classifier's at its own tuned threshold when the decision layer tunes one."""
    sign = 1.0 if METRICS[metric].greater_is_better else -1.0
    if not classes:
        return lambda p: sign * score_regression(y, p[:, 0])[metric]
    if threshold:
        positive = y == classes[1]
        return lambda p: tune_threshold(p[:, 1], positive, metric).score
    position = {c: i for i, c in enumerate(classes)}
    truth = np.fromiter((position[v] for v in y.tolist()), np.intp, len(y))
    k = len(classes)

    def score(p: np.ndarray) -> float:
        pred = decide(p, classes, None).positions
        return sign * score_positions(truth, pred, p, k, only=metric)[metric]

    return score
