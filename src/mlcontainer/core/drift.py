"""Data drift: the training reference profile, how a row falls into its bins, and the PSI.

One module owns the statistics, so training (which records the reference), the server
(which keeps a window of recent rows) and ``mlcontainer drift`` (which compares a batch)
compute them the same way. Every feature has a fixed list of bins, in order:

- a numeric or boolean feature: the value bins cut at the training split's deciles
  (at most :data:`MAX_BINS`; fewer where values tie), then ``missing``;
- a categorical feature: its :data:`MAX_CATEGORIES` most frequent training categories,
  ``other`` (a category seen in training beyond those), ``unseen`` (a category the model
  never saw: the training split's share is 0) and ``missing``.

A window or a batch is reduced to one count per bin (never its raw values, so memory and
label sets are bounded whatever the values), and compared with the reference's shares by
the population stability index (:func:`psi`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mlcontainer.core.artifacts import FeatureReference, PredictionReference, Reference
from mlcontainer.core.schema import Feature, Label, Schema

#: Value bins of a numeric feature: cut at the deciles of the training split.
MAX_BINS = 10
#: Categories of a categorical feature kept by name; the rest share the ``other`` bin.
MAX_CATEGORIES = 20
#: Quantiles recorded per numeric feature (0 %, 5 %, ... 100 %): the deciles cut its bins,
#: and the batch report's Kolmogorov-Smirnov statistic is read at all of them.
QUANTILES = tuple(round(i * 0.05, 2) for i in range(21))
#: A bin share below this counts as this in the PSI, so an empty bin gives a finite term.
SHARE_FLOOR = 1e-4
MISSING, OTHER, UNSEEN = "missing", "other", "unseen"
#: Decimal digits kept of a share or a quantile in the manifest.
_DIGITS = 6


def psi(expected: np.ndarray, counts: np.ndarray) -> float:
    """The population stability index of ``counts`` against the ``expected`` shares.

    ``sum((o - e) * ln(o / e))`` over the bins, each share floored at :data:`SHARE_FLOOR`;
    NaN when there are no counts. Common reading: below 0.1 stable, 0.1-0.25 a shift worth a
    look, above 0.25 a real change.
    """
    total = float(counts.sum())
    if total <= 0:
        return float("nan")
    observed = np.maximum(counts / total, SHARE_FLOOR)
    wanted = np.maximum(np.asarray(expected, dtype=float), SHARE_FLOOR)
    return float(np.sum((observed - wanted) * np.log(observed / wanted)))


@dataclass(frozen=True)
class FeatureBins:
    """One feature's bins, compiled from the reference for fast assignment."""

    name: str
    kind: str
    #: A numeric feature's cut points (a value ``v`` falls in bin ``searchsorted(edges, v)``).
    edges: np.ndarray
    #: A categorical feature's bin per known category (kept ones and ``other`` ones).
    lookup: Mapping[str, int]
    #: The bins' names, in order (``0``..``9``, or category positions, then the special ones).
    labels: tuple[str, ...]
    #: The training split's share of each bin.
    expected: np.ndarray
    #: Whether a category the model never saw can be told apart (the schema lists them).
    knows_unseen: bool

    @property
    def missing_bin(self) -> int:
        """The position of the ``missing`` bin (always the last)."""
        return len(self.labels) - 1

    @property
    def unseen_bin(self) -> int | None:
        """The position of the ``unseen`` bin, or None for a numeric feature."""
        return len(self.labels) - 2 if self.kind == "categorical" else None

    def assign(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value: float64 with NaN for missing, or text with None."""
        if self.kind != "categorical":
            numbers = np.asarray(values, dtype=float)
            out = np.searchsorted(self.edges, numbers, side="left")
            out[np.isnan(numbers)] = self.missing_bin
            return out.astype(np.int16)
        other = len(self.labels) - 3
        fallback = other + 1 if self.knows_unseen else other
        get = self.lookup.get
        missing = self.missing_bin
        return np.fromiter(
            (missing if v is None else get(v, fallback) for v in values),
            dtype=np.int16,
            count=len(values),
        )


@dataclass(frozen=True)
class PredictionBins:
    """The prediction's bins: one per class, or a regressor's decile bins of its values."""

    kind: str
    edges: np.ndarray
    labels: tuple[str, ...]
    expected: np.ndarray

    def assign(self, *, positions: np.ndarray | None, values: Sequence[float]) -> np.ndarray:
        """The bin of each prediction: a classifier's class position, or a value's bin."""
        if self.kind == "classes":
            if positions is None:
                raise ValueError("a classifier's prediction has class positions")
            return np.asarray(positions, dtype=np.int16)
        out = np.searchsorted(self.edges, np.asarray(values, dtype=float), side="left")
        return out.astype(np.int16)


@dataclass(frozen=True)
class DriftProfile:
    """The reference compiled for a schema: every feature's bins, then the prediction's."""

    features: tuple[FeatureBins, ...]
    prediction: PredictionBins | None

    def assign(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Each row's bin per feature: an int16 array of rows x features, schema order."""
        return np.stack([f.assign(columns[f.name]) for f in self.features], axis=1)

    @property
    def widest(self) -> int:
        """The most bins any feature (or the prediction) has."""
        sizes = [len(f.labels) for f in self.features]
        if self.prediction is not None:
            sizes.append(len(self.prediction.labels))
        return max(sizes)


def compile_profile(reference: Reference, schema: Schema) -> DriftProfile:
    """Compile a manifest's reference for ``schema``; ``ValueError`` if they disagree."""
    features = []
    for feature in schema.features:
        ref = reference.features.get(feature.name)
        if ref is None:
            raise ValueError(f"the drift reference has no feature {feature.name!r}")
        features.append(_compile_feature(feature, ref))
    pred = reference.prediction
    prediction = None
    if pred is not None:
        edges = np.asarray(pred.edges, dtype=float)
        if pred.kind == "classes":
            labels = tuple(str(c) for c in schema.classes)
        else:
            labels = tuple(str(i) for i in range(len(edges) + 1))
        _check_shares(pred.shares, len(labels), "the prediction")
        prediction = PredictionBins(pred.kind, edges, labels, np.asarray(pred.shares))
    return DriftProfile(tuple(features), prediction)


def _compile_feature(feature: Feature, ref: FeatureReference) -> FeatureBins:
    if feature.kind == "categorical":
        kept = {c: i for i, c in enumerate(ref.categories)}
        known = feature.categories
        lookup = dict(kept)
        for category in known or ():
            lookup.setdefault(category, len(kept))  # seen in training, not kept: other
        labels = (*(str(i) for i in range(len(kept))), OTHER, UNSEEN, MISSING)
        edges = np.empty(0)
    else:
        edges = np.asarray(ref.edges, dtype=float)
        lookup, known = {}, None
        labels = (*(str(i) for i in range(len(edges) + 1)), MISSING)
    _check_shares(ref.shares, len(labels), f"feature {feature.name!r}")
    kind = "categorical" if feature.kind == "categorical" else "numeric"
    return FeatureBins(
        feature.name, kind, edges, lookup, labels, np.asarray(ref.shares), known is not None
    )


def _check_shares(shares: Sequence[float], bins: int, what: str) -> None:
    if len(shares) != bins:
        raise ValueError(f"the drift reference of {what} has {len(shares)} shares for {bins} bins")


def feature_reference(feature: Feature, values: np.ndarray) -> FeatureReference:
    """Profile one training column: float64 with NaN (numeric, boolean), or text with None."""
    if feature.kind == "categorical":
        return _categorical_reference(values)
    numbers = np.asarray(values, dtype=float)
    present = numbers[~np.isnan(numbers)]
    if feature.kind == "boolean":
        edges: list[float] = [0.5]
        quantiles: list[float] = []
    elif present.size:
        quantiles = [float(q) for q in np.quantile(present, QUANTILES)]
        edges = sorted({_round(q) for q in quantiles[2:-2:2]})  # the deciles 10 % .. 90 %
    else:
        edges, quantiles = [], []
    cut = np.asarray(edges, dtype=float)
    bins = np.searchsorted(cut, numbers, side="left")
    bins[np.isnan(numbers)] = len(edges) + 1
    counts = np.bincount(bins, minlength=len(edges) + 2)
    cdf = [float(np.mean(present <= q)) for q in quantiles] if present.size else []
    return FeatureReference(
        kind="bins",
        edges=edges,
        quantiles=[_round(q) for q in quantiles],
        cdf=[_round(c) for c in cdf],
        shares=_shares(counts),
    )


def _categorical_reference(values: np.ndarray) -> FeatureReference:
    present = [v for v in values.tolist() if v is not None]
    found, counts = np.unique(np.asarray(present, dtype=object), return_counts=True)
    order = sorted(range(len(found)), key=lambda i: (-counts[i], str(found[i])))
    kept = [str(found[i]) for i in order[:MAX_CATEGORIES]]
    rest = int(sum(counts[i] for i in order[MAX_CATEGORIES:]))
    missing = len(values) - len(present)
    row = [int(counts[i]) for i in order[:MAX_CATEGORIES]] + [rest, 0, missing]
    return FeatureReference(
        kind="categories", categories=kept, shares=_shares(np.asarray(row, dtype=float))
    )


def prediction_reference(
    classes: Sequence[Label], predicted: Sequence[Label] | Sequence[float]
) -> PredictionReference:
    """Profile the predictions the model made on held-out rows: class shares, or a
    regressor's decile bins (``classes`` empty)."""
    if classes:
        position: dict[object, int] = {c: i for i, c in enumerate(classes)}
        counts = np.bincount([position[p] for p in predicted], minlength=len(classes))
        return PredictionReference(kind="classes", shares=_shares(counts), rows=len(predicted))
    numbers = np.asarray(predicted, dtype=float)
    deciles = np.quantile(numbers, QUANTILES[2:-2:2]) if numbers.size else []
    edges = sorted({_round(float(q)) for q in deciles})
    counts = np.bincount(
        np.searchsorted(np.asarray(edges), numbers, side="left"), minlength=len(edges) + 1
    )
    return PredictionReference(kind="bins", edges=edges, shares=_shares(counts), rows=len(numbers))


def build_reference(
    schema: Schema,
    columns: Mapping[str, np.ndarray],
    predicted: Sequence[Label] | Sequence[float],
) -> Reference:
    """The reference profile of a training split's ``columns`` and the predictions made on
    held-out rows (``predicted``: labels, or a regressor's numbers)."""
    rows = len(next(iter(columns.values()))) if columns else 0
    return Reference(
        rows=rows,
        features={f.name: feature_reference(f, columns[f.name]) for f in schema.features},
        prediction=prediction_reference(schema.classes, predicted) if len(predicted) else None,
    )


def _shares(counts: np.ndarray) -> list[float]:
    total = float(np.sum(counts))
    return [_round(float(c) / total) if total else 0.0 for c in counts]


def _round(value: float) -> float:
    return float(f"{value:.{_DIGITS}g}")
