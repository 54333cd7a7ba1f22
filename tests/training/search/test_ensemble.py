"""Greedy ensemble selection on synthetic out-of-fold matrices (no model is fitted)."""

from __future__ import annotations

import numpy as np
import pytest

from mlcontainer.training.search import ensemble
from mlcontainer.training.search.ensemble import (
    ROUNDS,
    Member,
    blend,
    greedy_counts,
    select,
)
from mlcontainer.training.search.metrics import score_all, score_regression
from mlcontainer.training.search.tuning import DEFAULT, Preset

CLASSES = ("no", "yes")


def _folds(n: int, k: int = 5) -> list[np.ndarray]:
    order = np.random.default_rng(0).permutation(n)
    return [np.sort(part) for part in np.array_split(order, k)]


def _complementary(n: int = 600, *, seed: int = 1) -> tuple[np.ndarray, list[Member]]:
    """Two models that each see half the signal (the target needs both) and a useless one."""
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = np.where(a + b + 0.3 * rng.normal(size=n) > 0, "yes", "no").astype(object)

    def proba(z: np.ndarray) -> np.ndarray:
        p = 1 / (1 + np.exp(-1.5 * z))
        return np.column_stack([1 - p, p])

    members = [
        Member("random_forest", DEFAULT, proba(a)),
        Member("logistic_regression", DEFAULT, proba(b)),
        Member("naive_bayes", DEFAULT, proba(rng.normal(size=n))),
    ]
    return y, members


def _score(y: np.ndarray, p: np.ndarray, metric: str) -> float:
    labels = np.where(p[:, 1] >= 0.5, "yes", "no")
    return score_all(y, labels, p, CLASSES)[metric]


def test_greedy_weights_the_complementary_models_and_drops_the_useless_one() -> None:
    y, members = _complementary()
    chosen = select(
        members, y, _folds(len(y)), metric="roc_auc_ovr", classes=CLASSES,
        threshold=False, class_weights=False, random_state=0,
    )  # fmt: skip
    assert chosen is not None
    models = [m.model for m in chosen.blend.members]
    assert models == ["random_forest", "logistic_regression"]
    assert sum(chosen.blend.weights) == pytest.approx(1.0)
    assert all(0.3 < w < 0.7 for w in chosen.blend.weights)


def test_ensemble_scores_at_least_the_best_single_member_on_the_out_of_fold_rows() -> None:
    for seed in range(3):
        y, members = _complementary(seed=seed)
        for metric in ("roc_auc_ovr", "log_loss", "accuracy"):
            chosen = select(
                members, y, _folds(len(y)), metric=metric, classes=CLASSES,
                threshold=False, class_weights=False, random_state=seed,
            )  # fmt: skip
            singles = [_score(y, m.oof, metric) for m in members]
            if chosen is None:  # one member kept: the best single model itself
                continue
            sign = -1 if metric == "log_loss" else 1
            assert sign * _score(y, chosen.oof, metric) >= sign * max(
                singles, key=lambda s: sign * s
            )


def test_selection_is_deterministic_for_a_seed_and_ties_follow_it() -> None:
    y, members = _complementary()
    twins = [*members, Member("extra_trees", DEFAULT, members[0].oof.copy())]
    runs = [
        select(
            twins,
            y,
            _folds(len(y)),
            metric="roc_auc_ovr",
            classes=CLASSES,
            threshold=False,
            class_weights=False,
            random_state=7,
        )
        for _ in range(2)
    ]
    assert runs[0] is not None
    assert runs[1] is not None
    assert runs[0].blend.weights == runs[1].blend.weights
    assert [m.model for m in runs[0].blend.members] == [m.model for m in runs[1].blend.members]
    assert runs[0].fold_scores == runs[1].fold_scores


def test_greedy_counts_add_up_to_the_best_prefix_of_the_rounds() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(size=200)
    outputs = [(truth + rng.normal(scale=s, size=200))[:, None] for s in (0.5, 0.6, 3.0)]
    counts = greedy_counts(outputs, lambda p: -float(np.mean((p[:, 0] - truth) ** 2)),
                           random_state=0)  # fmt: skip
    assert 2 <= counts.sum() <= ROUNDS
    assert counts[2] == 0
    assert counts[0] >= counts[1] > 0


def test_a_single_good_model_makes_no_ensemble() -> None:
    rng = np.random.default_rng(4)
    y = rng.normal(size=300)
    exact = Member("ridge", DEFAULT, y[:, None].copy())
    noisy = Member("k_nearest_neighbors", DEFAULT, (y + rng.normal(size=300))[:, None])
    chosen = select(
        [exact, noisy], y, _folds(300), metric="rmse", classes=(), threshold=False,
        class_weights=False, random_state=0,
    )  # fmt: skip
    assert chosen is None


def test_regression_ensemble_is_scored_cross_fitted_and_beats_each_member() -> None:
    rng = np.random.default_rng(5)
    n = 500
    a, b = rng.normal(size=n), rng.normal(size=n)
    y = a + b
    members = [
        Member("random_forest", DEFAULT, (a + 0.8 * b + rng.normal(scale=0.3, size=n))[:, None]),
        Member("ridge", Preset("alpha=10"), (0.8 * a + b + rng.normal(scale=0.3, size=n))[:, None]),
    ]
    folds = _folds(n)
    chosen = select(
        members, y, folds, metric="rmse", classes=(), threshold=False, class_weights=False,
        random_state=0,
    )  # fmt: skip
    assert chosen is not None
    assert len(chosen.fold_scores) == len(folds)
    crossed = float(np.mean([f["rmse"] for f in chosen.fold_scores]))
    singles = [
        np.mean([score_regression(y[v], m.oof[v, 0])["rmse"] for v in folds]) for m in members
    ]
    assert crossed < min(singles)
    expected = blend([m.oof for m in chosen.blend.members], np.asarray(chosen.blend.weights))
    np.testing.assert_allclose(chosen.oof, expected)
    assert chosen.blend.to_list()[1]["preset"] == "alpha=10"


def test_binary_threshold_is_tuned_for_the_ensemble() -> None:
    y, members = _complementary()
    chosen = select(
        members, y, _folds(len(y)), metric="f1_macro", classes=CLASSES, threshold=True,
        class_weights=False, random_state=0,
    )  # fmt: skip
    assert chosen is not None
    assert chosen.threshold is not None
    assert chosen.threshold.score >= chosen.threshold.score_at_half


def test_weights_are_selected_on_a_seeded_sample_of_many_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    y, members = _complementary(n=900)
    monkeypatch.setattr(ensemble, "GREEDY_ROWS", 200)

    def run() -> ensemble.Selected | None:
        return select(members, y, _folds(len(y)), metric="roc_auc_ovr", classes=CLASSES,
                      threshold=False, class_weights=False, random_state=3)  # fmt: skip

    first, second = run(), run()
    assert first is not None
    assert second is not None
    assert first.blend.weights == second.blend.weights
    assert first.fold_scores == second.fold_scores
    kept = dict(zip((m.model for m in first.blend.members), first.blend.weights, strict=True))
    assert kept["random_forest"] + kept["logistic_regression"] > 0.8  # 200 rows are noisier
    assert first.oof.shape == (900, 2)  # every row blended, not only the sample
