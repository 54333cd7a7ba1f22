"""Tuning: the presets each family searches, successive halving's rounds and their cost, and
a search that gives the same configuration and the same model bytes for the same seed."""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcontainer.cli import main
from mlcontainer.core.artifacts import read_manifest
from mlcontainer.training.search.models import MODELS
from mlcontainer.training.search.tuning import (
    DEFAULT,
    FACTOR,
    MIN_ROUND_ROWS,
    PRESETS,
    SEARCH_PRIORITY,
    is_imbalanced,
    presets_for,
    relative_cost,
    schedule,
)

TUNED = ("hist_gradient_boosting", "random_forest", "extra_trees", "logistic_regression", "svm",
         "k_nearest_neighbors")  # fmt: skip


@pytest.mark.parametrize("model", TUNED)
def test_the_families_that_gain_from_tuning_search_several_presets_default_first(
    model: str,
) -> None:
    found = presets_for(model, "classification")
    assert found[0] == DEFAULT
    assert len(found) >= 3
    assert len({p.name for p in found}) == len(found)


def test_every_preset_names_a_real_parameter_of_its_model() -> None:
    from mlcontainer.training.data.dataset import load_dataset
    from mlcontainer.training.search.models import build_pipeline

    for (model, task), presets in PRESETS.items():
        schema = load_dataset("diabetes" if task == "regression" else "wine").schema
        step = build_pipeline(model, schema, random_state=0, target_scale=1.0).named_steps["model"]
        valid = step.get_params()
        for preset in presets:
            for key in preset.resolved(1.0):
                assert key in valid, f"{model} {preset.name}: {key}"


def test_balanced_presets_compete_only_where_classes_are_imbalanced() -> None:
    balanced = [p.name for p in presets_for("logistic_regression", "classification",
                                            imbalanced=True)]  # fmt: skip
    plain = [p.name for p in presets_for("logistic_regression", "classification")]
    assert any("balanced" in n for n in balanced)
    assert not any("balanced" in n for n in plain)
    assert is_imbalanced({"a": 90, "b": 10})
    assert not is_imbalanced({"a": 60, "b": 40})


def test_a_model_without_presets_runs_its_default_alone() -> None:
    assert presets_for("naive_bayes", "classification") == (DEFAULT,)
    assert set(SEARCH_PRIORITY) <= set(MODELS)


@pytest.mark.parametrize(("presets", "rows"), [(5, 20_000), (4, 6_000), (3, 1_500), (9, 100_000)])
def test_successive_halving_keeps_a_third_on_three_times_the_rows_ending_on_all(
    presets: int, rows: int
) -> None:
    rounds = schedule(presets, rows)
    assert rounds[0].presets == presets
    assert rounds[-1].presets == 1
    assert rounds[-1].rows == rows
    for before, after in itertools.pairwise(rounds):
        assert after.presets == -(-before.presets // FACTOR)
        assert after.rows > before.rows
    assert all(r.rows >= MIN_ROUND_ROWS for r in rounds)


def test_on_small_data_every_preset_is_fitted_once_on_every_row() -> None:
    rounds = schedule(4, 113)
    assert [(r.presets, r.rows) for r in rounds] == [(4, 113)]


def test_a_search_costs_less_than_fitting_every_preset_on_every_row() -> None:
    presets = presets_for("hist_gradient_boosting", "classification")
    full = sum(p.cost for p in presets)
    searched = relative_cost(presets, 20_000, 1.0)
    assert presets[0].cost <= searched < full
    assert relative_cost(presets[:1], 20_000, 1.0) == presets[0].cost


def _train(folder: Path, seed: int) -> None:
    result = CliRunner().invoke(
        main,
        ["train", "-d", "breast_cancer", "-o", str(folder), "--seed", str(seed), "--models",
         "hist_gradient_boosting,logistic_regression,k_nearest_neighbors", "--jobs", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output


def test_same_seed_gives_the_same_configuration_threshold_and_model_bytes(tmp_path: Path) -> None:
    _train(tmp_path / "a", 7)
    _train(tmp_path / "b", 7)
    a, b = read_manifest(tmp_path / "a"), read_manifest(tmp_path / "b")
    assert [(c.name, c.preset, c.params, c.threshold) for c in a.leaderboard] == [
        (c.name, c.preset, c.params, c.threshold) for c in b.leaderboard
    ]
    assert a.decision == b.decision
    assert a.selection.model == b.selection.model
    assert any(c.search for c in a.leaderboard)  # a search ran

    def digest(folder: Path) -> str:
        return hashlib.sha256((folder / "model.skops").read_bytes()).hexdigest()

    assert digest(tmp_path / "a") == digest(tmp_path / "b")
