"""The time budget: which candidates are subsampled or skipped, and why; the test split stays."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from support import options

from mlcontainer.core.errors import ConfigError
from mlcontainer.training.budget import (
    COSTS,
    CV_SHARE,
    MIN_SUBSAMPLE_ROWS,
    estimate,
    feature_width,
    plan,
)
from mlcontainer.training.dataset import load_dataset, prepare
from mlcontainer.training.models import BASELINE, MODELS, models_for
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.selection import TrainingResult, compare, split_dataset, train

ADULT_FOLD_ROWS = 20_838
ADULT_WIDTH = 103
#: What a classification run compares by default (the baseline included).
CLASSIFIERS = models_for("classification", None)
REGRESSORS = models_for("regression", None)


def test_every_candidate_has_a_cost() -> None:
    assert set(COSTS) == set(MODELS)


@pytest.mark.parametrize("name", ["wine", "iris", "penguins", "breast_cancer", "digits"])
def test_builtin_datasets_are_never_cut_by_the_default_budget(name: str) -> None:
    ds = load_dataset(name)
    fold_rows = int(len(ds.y) * 0.8 * 0.8)
    assert (
        plan(CLASSIFIERS, fit_rows=fold_rows, width=feature_width(ds.schema), cv=5, budget=60) == {}
    )


def test_adult_sized_data_subsamples_quadratic_candidates_and_keeps_linear_ones() -> None:
    actions = plan(CLASSIFIERS, fit_rows=ADULT_FOLD_ROWS, width=ADULT_WIDTH, cv=5, budget=60)
    assert actions["svm"].kind == "subsample"
    assert MIN_SUBSAMPLE_ROWS <= actions["svm"].rows < ADULT_FOLD_ROWS
    for linear in ("logistic_regression", "hist_gradient_boosting", "naive_bayes", BASELINE):
        assert linear not in actions
    for action in actions.values():
        assert "60 s budget" in action.reason
        assert COSTS[action.model].why in action.reason


@pytest.mark.parametrize("candidates", [CLASSIFIERS, REGRESSORS], ids=["classifiers", "regressors"])
def test_the_plan_fits_the_estimated_comparison_into_the_budget(candidates: list[str]) -> None:
    budget = 60.0
    actions = plan(candidates, fit_rows=ADULT_FOLD_ROWS, width=ADULT_WIDTH, cv=5, budget=budget)
    total = 0.0
    for m in candidates:
        action = actions.get(m)
        if action is not None and action.kind == "skip":
            continue
        rows = action.rows if action is not None else ADULT_FOLD_ROWS
        total += 5 * estimate(m, rows=rows, width=ADULT_WIDTH)
    assert total <= budget * CV_SHARE * 1.01


def test_more_workers_leave_more_rows() -> None:
    one = plan(["svm", "logistic_regression"], fit_rows=ADULT_FOLD_ROWS, width=100, cv=5, budget=60)
    two = plan(
        ["svm", "logistic_regression"],
        fit_rows=ADULT_FOLD_ROWS,
        width=100,
        cv=5,
        budget=60,
        parallelism=2,
    )
    assert two["svm"].rows > one["svm"].rows


@pytest.mark.parametrize("budget", [1.0, 0.01])
def test_a_tiny_budget_skips_slow_candidates_but_never_all_of_them(budget: float) -> None:
    actions = plan(
        ["svm", "k_nearest_neighbors"], fit_rows=ADULT_FOLD_ROWS, width=100, cv=5, budget=budget
    )
    assert sorted(a.kind for a in actions.values()) == ["skip", "subsample"]
    assert actions["svm"].kind == "skip"  # the dearer one goes
    assert actions["svm"].reason.startswith("skipped: ")
    kept = actions["k_nearest_neighbors"]
    assert MIN_SUBSAMPLE_ROWS <= kept.rows < ADULT_FOLD_ROWS
    if budget < 0.1:  # no time at all: the smallest fair subsample
        assert kept.rows == MIN_SUBSAMPLE_ROWS


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_a_bad_time_budget_is_refused(value: float) -> None:
    with pytest.raises(ConfigError, match="--time-budget"):
        TrainOptions(time_budget=value)


def test_zero_budget_means_none() -> None:
    budget = TrainOptions(time_budget=0).time_budget
    assert budget is None
    assert plan(["svm"], fit_rows=10**6, width=100, cv=5, budget=budget) == {}


def _generated(n: int, *, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    label = np.where(x[:, 0] + 0.5 * x[:, 1] + rng.normal(scale=0.5, size=n) > 0, "up", "down")
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "d": x[:, 3], "label": label})


def _train(rows: int, models: tuple[str, ...], budget: float | None) -> TrainingResult:
    ds = prepare(_generated(rows), target="label", name="gen", source="generated")
    chosen = options(
        models=models, metric="accuracy", cv=3, test_size=0.25, random_state=0, time_budget=budget
    )
    return train(ds, chosen)


@pytest.mark.slow
def test_small_budget_on_generated_data_subsamples_svm_and_leaves_the_test_split_whole() -> None:
    # 0.5 s: the plan itself cuts the SVM (its estimate is ~0.47 s of 0.3 s of CV room), so
    # the outcome does not hang on the clock (at 1 s only a slow machine's guard cut it).
    result = _train(8_000, ("naive_bayes", "svm"), 0.5)
    board = {c.name: c for c in result.leaderboard}
    assert board["naive_bayes"].budget is None
    svm = board["svm"].budget
    assert svm is not None
    assert svm.kind in ("subsample", "skip")
    assert any(line.startswith("svm: ") for line in result.budget_lines)
    assert len(result.split.X_test) == 2_000
    assert len(result.split.X_train) + len(result.split.X_test) == 8_000
    if result.selected == "svm":
        assert result.fit_rows < len(result.split.X_train)
    else:
        assert result.fit_rows == len(result.split.X_train)


@pytest.mark.parametrize(
    ("models", "exempt"),
    [
        (("random_forest", "naive_bayes", "decision_tree"), {"naive_bayes"}),
        (("logistic_regression", "svm", "hist_gradient_boosting"), None),
        (("random_forest", "decision_tree", "k_nearest_neighbors"), "cheapest"),
    ],
)
def test_folds_that_would_start_after_the_budget_are_skipped_except_linear_ones(
    models: tuple[str, ...], exempt: set[str] | str | None
) -> None:
    ds = prepare(_generated(600), target="label", name="gen", source="generated")
    split = split_dataset(ds, test_size=0.25, cv=3, random_state=0)
    if exempt is None:
        exempt = {m for m in models if not COSTS[m].superlinear}
    elif exempt == "cheapest":  # no linear candidate: the cheapest one stands in
        fold_rows = len(split.y_train) * 2 // 3
        width = feature_width(ds.schema)
        exempt = {min(models, key=lambda m: estimate(m, rows=fold_rows, width=width))}
    exempt = {*exempt, BASELINE}  # added to every comparison, and nearly free
    board = compare(
        split,
        ds.schema,
        options(models=models, metric="accuracy", cv=3, random_state=0, time_budget=10),
        started=time.time() - 3600,  # the budget ran out an hour ago
    )
    by_name = {c.name: c for c in board}
    assert {c.name for c in board if c.ranked} == exempt
    for late in set(models) - exempt:
        assert by_name[late].budget is not None
        assert "budget ran out before 3 of its 3 folds" in by_name[late].budget.reason


def test_without_a_budget_nothing_is_marked() -> None:
    result = _train(300, ("naive_bayes", "decision_tree"), None)
    assert all(c.budget is None for c in result.leaderboard)
    assert result.budget_lines == ()


def test_train_cli_refuses_a_negative_time_budget(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mlcontainer.cli import main

    result = CliRunner().invoke(main, ["train", "--time-budget", "-5", "-o", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert "--time-budget must be a number of seconds >= 0" in result.output
    assert not (tmp_path / "m").exists()
