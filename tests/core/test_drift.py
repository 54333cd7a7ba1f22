"""The drift statistics: reference profiles, bin assignment and the PSI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlcontainer.core.artifacts import Reference
from mlcontainer.core.drift import (
    MAX_BINS,
    MAX_CATEGORIES,
    build_reference,
    compile_profile,
    feature_reference,
    psi,
)
from mlcontainer.core.schema import Feature, Schema

SCHEMA = Schema(
    features=(
        Feature("x", "numeric", nullable=True),
        Feature("flag", "boolean"),
        Feature("colour", "categorical", categories=("blue", "green", "red")),
    ),
    target="y",
    classes=("a", "b"),
)


def _columns(rng: np.random.Generator, n: int, *, shift: float = 0.0) -> dict[str, np.ndarray]:
    x = rng.normal(loc=shift, size=n)
    x[rng.random(n) < 0.05] = np.nan
    return {
        "x": x,
        "flag": (rng.random(n) < 0.3).astype(float),
        "colour": np.array(
            rng.choice(["blue", "green", "red"], size=n, p=[0.5, 0.3, 0.2]), dtype=object
        ),
    }


def _counts(profile_bins: np.ndarray, width: int) -> np.ndarray:
    return np.bincount(profile_bins, minlength=width)


def test_reference_records_bounded_bins_and_shares_that_sum_to_one() -> None:
    rng = np.random.default_rng(0)
    ref = build_reference(SCHEMA, _columns(rng, 5_000), ["a"] * 30 + ["b"] * 70)
    x = ref.features["x"]
    assert len(x.edges) == MAX_BINS - 1
    assert len(x.shares) == MAX_BINS + 1
    assert x.shares[-1] == pytest.approx(0.05, abs=0.01)
    assert sum(x.shares) == pytest.approx(1.0, abs=1e-5)
    assert ref.features["flag"].edges == [0.5]
    colour = ref.features["colour"]
    assert colour.categories == ["blue", "green", "red"]  # most frequent first
    assert colour.shares[-3:] == [0.0, 0.0, 0.0]  # other, unseen, missing
    assert ref.prediction is not None
    assert ref.prediction.shares == [0.3, 0.7]


def test_categorical_reference_keeps_the_most_frequent_and_counts_the_rest_as_other() -> None:
    values = np.array(
        [f"c{i}" for i in range(200) for _ in range(200 - i)] + [None] * 10, dtype=object
    )
    ref = feature_reference(Feature("c", "categorical"), values)
    assert ref.categories == [f"c{i}" for i in range(MAX_CATEGORIES)]
    total = len(values)
    assert ref.shares[MAX_CATEGORIES] == pytest.approx(
        sum(200 - i for i in range(MAX_CATEGORIES, 200)) / total, abs=1e-5
    )
    assert ref.shares[-1] == pytest.approx(10 / total, abs=1e-5)


def test_psi_is_near_zero_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(1)
    ref = build_reference(SCHEMA, _columns(rng, 20_000), ["a", "b"])
    profile = compile_profile(ref, SCHEMA)
    same = profile.assign(_columns(rng, 5_000))
    moved = profile.assign(_columns(rng, 5_000, shift=1.5))
    for i, feature in enumerate(profile.features):
        width = len(feature.labels)
        assert psi(feature.expected, _counts(same[:, i], width)) < 0.02
    x = profile.features[0]
    assert psi(x.expected, _counts(moved[:, 0], len(x.labels))) > 0.5
    assert psi(x.expected, np.zeros(len(x.labels))) != psi(x.expected, np.zeros(len(x.labels)))


def test_categories_fall_in_kept_other_unseen_and_missing_bins() -> None:
    schema = Schema(
        features=(Feature("c", "categorical", categories=tuple(f"k{i}" for i in range(25))),),
        target="y",
        classes=("a", "b"),
    )
    values = np.array([f"k{i}" for i in range(25) for _ in range(30 - i)], dtype=object)
    profile = compile_profile(build_reference(schema, {"c": values}, ["a"]), schema)
    bins = profile.features[0].assign(np.array(["k0", "k24", "never", None], dtype=object))
    labels = profile.features[0].labels
    assert [labels[b] for b in bins] == ["0", "other", "unseen", "missing"]


def test_unlisted_categories_count_as_other_when_the_schema_does_not_list_them() -> None:
    schema = Schema(features=(Feature("c", "categorical"),), target="y", classes=("a", "b"))
    values = np.array(["a", "b"] * 10, dtype=object)
    profile = compile_profile(build_reference(schema, {"c": values}, ["a"]), schema)
    feature = profile.features[0]
    assert not feature.knows_unseen
    assert feature.labels[feature.assign(np.array(["zzz"], dtype=object))[0]] == "other"


def test_numeric_bins_put_missing_values_last() -> None:
    profile = compile_profile(
        build_reference(SCHEMA, _columns(np.random.default_rng(2), 1_000), ["a"]), SCHEMA
    )
    x = profile.features[0]
    bins = x.assign(np.array([-1e9, np.nan, 1e9]))
    assert bins.tolist() == [0, x.missing_bin, x.missing_bin - 1]


def test_regression_prediction_reference_uses_decile_bins() -> None:
    schema = Schema(features=(Feature("x", "numeric"),), target="y", classes=(), task="regression")
    rng = np.random.default_rng(3)
    ref = build_reference(schema, {"x": rng.normal(size=100)}, rng.normal(size=1_000).tolist())
    assert ref.prediction is not None
    assert ref.prediction.kind == "bins"
    assert len(ref.prediction.edges) == 9
    profile = compile_profile(ref, schema)
    assert profile.prediction is not None
    assert profile.prediction.assign(positions=None, values=[-100.0, 100.0]).tolist() == [0, 9]


def test_reference_survives_the_manifest_json_round_trip() -> None:
    ref = build_reference(SCHEMA, _columns(np.random.default_rng(4), 500), ["a", "b"])
    again = Reference.model_validate(json.loads(json.dumps(ref.model_dump(mode="json"))))
    assert again == ref


def test_compile_refuses_a_reference_of_other_features() -> None:
    ref = build_reference(SCHEMA, _columns(np.random.default_rng(5), 100), ["a"])
    other = Schema(features=(Feature("z", "numeric"),), target="y", classes=("a", "b"))
    with pytest.raises(ValueError, match="no feature 'z'"):
        compile_profile(ref, other)


def test_assigning_a_few_rows_in_python_gives_the_numpy_bins() -> None:
    rng = np.random.default_rng(6)
    ref = build_reference(SCHEMA, _columns(rng, 2_000), ["a", "b"])
    profile = compile_profile(ref, SCHEMA)
    columns = _columns(rng, 300, shift=0.5)
    x = profile.features[0]
    columns["x"][:9] = x.edges  # values on the cut points themselves
    columns["colour"][:3] = ["never", None, "red"]
    assert profile.assign_few(columns) == profile.assign(columns).tolist()


def test_a_batch_like_the_training_data_has_no_ks_gap_even_on_tied_values() -> None:
    from mlcontainer.core.drift import Tally, compare

    schema = Schema(features=(Feature("s", "numeric"),), target="y", classes=("a", "b"))
    # Two values with more digits than the manifest keeps, as scaled data has.
    values = np.where(np.arange(1_000) % 2 == 0, 0.0506801187398187, -0.044641636506989)
    profile = compile_profile(build_reference(schema, {"s": values}, ["a"]), schema)
    tally = Tally.empty(profile)
    tally.add(profile, {"s": values}, positions=np.zeros(1_000, dtype=int), values=[])
    (drift, _prediction) = compare(profile, tally)
    assert drift.psi == pytest.approx(0, abs=1e-9)
    assert drift.statistic == pytest.approx(0, abs=1e-6)
    assert drift.p_value == pytest.approx(1)
