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

import itertools
from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

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
    #: The cut points as Python floats, for :meth:`assign_one`.
    edge_list: tuple[float, ...] = ()
    #: What each bin holds, for people: ``<= 36.6``, ``36.6 - 38.7``, a category, ``missing``.
    display: tuple[str, ...] = ()
    #: A numeric feature's reference quantiles and the training share at or below each.
    quantiles: np.ndarray = field(default_factory=lambda: np.empty(0))
    cdf: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def missing_bin(self) -> int:
        """The position of the ``missing`` bin (always the last)."""
        return len(self.labels) - 1

    @property
    def unseen_bin(self) -> int | None:
        """The position of the ``unseen`` bin, or None for a numeric feature."""
        return len(self.labels) - 2 if self.kind == "categorical" else None

    @property
    def fallback_bin(self) -> int:
        """Where a category not in the lookup goes: ``unseen`` if it can tell, else ``other``."""
        other = len(self.labels) - 3
        return other + 1 if self.knows_unseen else other

    def assign(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value: float64 with NaN for missing, or text with None."""
        if self.kind != "categorical":
            numbers = np.asarray(values, dtype=float)
            out = np.searchsorted(self.edges, numbers, side="left")
            out[np.isnan(numbers)] = self.missing_bin
            return out.astype(np.int16)
        return np.fromiter((self.assign_one(v) for v in values), dtype=np.int16, count=len(values))

    def assign_one(self, value: float | str | None) -> int:
        """The bin of one value, without NumPy: what :meth:`assign` gives it (a few rows'
        worth of NumPy calls cost more than the prediction's whole budget)."""
        if self.kind == "categorical":
            if value is None:
                return self.missing_bin
            return self.lookup.get(value, self.fallback_bin)  # type: ignore[arg-type]
        if value != value:  # NaN  # noqa: PLR0124
            return self.missing_bin
        return bisect_left(self.edge_list, cast("float", value))


@dataclass(frozen=True)
class PredictionBins:
    """The prediction's bins: one per class, or a regressor's decile bins of its values."""

    kind: str
    edges: np.ndarray
    labels: tuple[str, ...]
    expected: np.ndarray

    def assign(self, *, positions: np.ndarray | None, values: Sequence[Any]) -> np.ndarray:
        """The bin of each prediction: a classifier's class position, or a value's bin."""
        if self.kind == "classes":
            if positions is None:
                raise ValueError("a classifier's prediction has class positions")
            return np.asarray(positions, dtype=np.int16)
        out = np.searchsorted(self.edges, np.asarray(values, dtype=float), side="left")
        return out.astype(np.int16)

    def assign_few(self, *, positions: np.ndarray | None, values: Sequence[Any]) -> list[int]:
        """:meth:`assign` without NumPy, for a few rows."""
        if self.kind == "classes":
            if positions is None:
                raise ValueError("a classifier's prediction has class positions")
            return [int(p) for p in positions.tolist()]
        edges = self.edges.tolist()
        return [bisect_left(edges, float(v)) for v in values]


@dataclass(frozen=True)
class DriftProfile:
    """The reference compiled for a schema: every feature's bins, then the prediction's."""

    features: tuple[FeatureBins, ...]
    prediction: PredictionBins | None
    #: Rows of the training split the reference was made from.
    rows: int = 0

    def assign(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """Each row's bin per feature: an int16 array of rows x features, schema order."""
        return np.stack([f.assign(columns[f.name]) for f in self.features], axis=1)

    def assign_few(self, columns: Mapping[str, np.ndarray]) -> list[list[int]]:
        """:meth:`assign` without NumPy, row by row: faster for a few rows."""
        values = [(f, columns[f.name].tolist()) for f in self.features]
        rows = len(values[0][1]) if values else 0
        return [[f.assign_one(col[i]) for f, col in values] for i in range(rows)]

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
    return DriftProfile(tuple(features), prediction, reference.rows)


def _compile_feature(feature: Feature, ref: FeatureReference) -> FeatureBins:
    if feature.kind == "categorical":
        kept = {c: i for i, c in enumerate(ref.categories)}
        known = feature.categories
        lookup = dict(kept)
        for category in known or ():
            lookup.setdefault(category, len(kept))  # seen in training, not kept: other
        labels = (*(str(i) for i in range(len(kept))), OTHER, UNSEEN, MISSING)
        display = (*ref.categories, OTHER, UNSEEN, MISSING)
        edges = np.empty(0)
    else:
        edges = np.asarray(ref.edges, dtype=float)
        lookup, known = {}, None
        labels = (*(str(i) for i in range(len(edges) + 1)), MISSING)
        display = (*_ranges(ref.edges), MISSING)
    _check_shares(ref.shares, len(labels), f"feature {feature.name!r}")
    kind = "categorical" if feature.kind == "categorical" else "numeric"
    return FeatureBins(
        feature.name,
        kind,
        edges,
        lookup,
        labels,
        np.asarray(ref.shares),
        known is not None,
        tuple(float(e) for e in edges),
        display,
        np.asarray(ref.quantiles, dtype=float),
        np.asarray(ref.cdf, dtype=float),
    )


def _ranges(edges: Sequence[float]) -> list[str]:
    if not edges:
        return ["any value"]
    inner = [f"{a:.4g} - {b:.4g}" for a, b in itertools.pairwise(edges)]
    return [f"<= {edges[0]:.4g}", *inner, f"> {edges[-1]:.4g}"]


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
        # Rounded as stored, before anything is counted against them: a batch is compared
        # with the stored values (0.0506801 cut 0.05068011873 otherwise).
        quantiles = [_round(float(q)) for q in np.quantile(present, QUANTILES)]
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
        quantiles=quantiles,
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


@dataclass
class Tally:
    """A batch reduced to counts: per bin (features, then the prediction), and per numeric
    feature its present values and those at or below each reference quantile."""

    counts: np.ndarray
    below: np.ndarray
    present: np.ndarray
    rows: int = 0

    @classmethod
    def empty(cls, profile: DriftProfile) -> Tally:
        """No rows yet, shaped for ``profile``."""
        width = len(profile.features)
        return cls(
            counts=np.zeros((width + 1, profile.widest), dtype=np.int64),
            below=np.zeros((width, len(QUANTILES)), dtype=np.int64),
            present=np.zeros(width, dtype=np.int64),
        )

    def add(
        self,
        profile: DriftProfile,
        columns: Mapping[str, np.ndarray],
        *,
        positions: np.ndarray | None,
        values: Sequence[Any],
    ) -> None:
        """Count a chunk of rows and their predictions (memory: the chunk's, never more)."""
        bins = profile.assign(columns)
        width = profile.widest
        for i, feature in enumerate(profile.features):
            self.counts[i] += np.bincount(bins[:, i], minlength=width)
            if feature.quantiles.size:
                numbers = np.asarray(columns[feature.name], dtype=float)
                numbers = np.sort(numbers[~np.isnan(numbers)])
                self.present[i] += numbers.size
                self.below[i] += np.searchsorted(numbers, feature.quantiles, side="right")
        if profile.prediction is not None:
            predicted = profile.prediction.assign(positions=positions, values=values)
            self.counts[-1] += np.bincount(predicted, minlength=width)
        self.rows += len(bins)


@dataclass(frozen=True)
class FeatureDrift:
    """How one feature (or the prediction) of a batch compares with the reference."""

    name: str
    psi: float
    #: Shares of the batch's rows per bin, the reference's, and what the bins hold.
    shares: np.ndarray
    expected: np.ndarray
    display: tuple[str, ...]
    missing: float
    unseen: float | None
    #: ``KS`` (numbers: the largest gap between the two distribution functions, read at the
    #: reference's 21 quantiles) or ``chi-square`` (categories, booleans, classes).
    test: str
    statistic: float
    p_value: float


def compare(profile: DriftProfile, tally: Tally) -> list[FeatureDrift]:
    """Every feature's drift, largest PSI first, then the prediction's (if recorded)."""
    out = []
    for i, feature in enumerate(profile.features):
        counts = tally.counts[i, : len(feature.labels)]
        total = max(int(counts.sum()), 1)
        if feature.quantiles.size and tally.present[i]:
            test, (stat, p) = "KS", _ks(feature, tally, i, profile.rows)
        else:
            test, (stat, p) = "chi-square", _chi_square(feature.expected, counts, profile.rows)
        unseen = feature.unseen_bin
        out.append(
            FeatureDrift(
                name=feature.name,
                psi=psi(feature.expected, counts),
                shares=counts / total,
                expected=feature.expected,
                display=feature.display,
                missing=float(counts[feature.missing_bin]) / total,
                unseen=float(counts[unseen]) / total
                if unseen is not None and feature.knows_unseen
                else None,
                test=test,
                statistic=stat,
                p_value=p,
            )
        )
    out.sort(key=lambda d: -d.psi if d.psi == d.psi else 0.0)
    pred = profile.prediction
    if pred is not None:
        counts = tally.counts[-1, : len(pred.labels)]
        stat, p = _chi_square(pred.expected, counts, profile.rows)
        display = pred.labels if pred.kind == "classes" else tuple(_ranges(pred.edges.tolist()))
        out.append(
            FeatureDrift(
                name=PREDICTION,
                psi=psi(pred.expected, counts),
                shares=counts / max(int(counts.sum()), 1),
                expected=pred.expected,
                display=display,
                missing=0.0,
                unseen=None,
                test="chi-square",
                statistic=stat,
                p_value=p,
            )
        )
    return out


#: The name the prediction's row takes in :func:`compare`'s answer.
PREDICTION = "(prediction)"


def _ks(feature: FeatureBins, tally: Tally, i: int, reference_rows: int) -> tuple[float, float]:
    from scipy.stats import kstwobign

    batch_cdf = tally.below[i] / tally.present[i]
    stat = float(np.max(np.abs(batch_cdf - feature.cdf)))
    n = float(tally.present[i])
    m = max(reference_rows * (1.0 - float(feature.expected[-1])), 1.0)
    return stat, float(kstwobign.sf(stat * np.sqrt(n * m / (n + m))))


def _chi_square(
    expected: np.ndarray, counts: np.ndarray, reference_rows: int
) -> tuple[float, float]:
    from scipy.stats import chi2_contingency

    table = np.vstack([np.asarray(expected) * max(reference_rows, 1), counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or counts.sum() == 0:
        return 0.0, 1.0
    stat, p, *_ = chi2_contingency(table)
    return float(stat), float(p)
