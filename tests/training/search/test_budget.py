"""The time budget: every candidate is compared, on fewer rows or with a smaller search when
time is short; the plan is deterministic; a slow fit measured on the way is planned for."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from support import options

from mlcontainer.core.errors import ConfigError
from mlcontainer.training.data.dataset import load_dataset, prepare
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.search import selection
from mlcontainer.training.search.budget import (
    COSTS,
    CV_SHARE,
    MIN_SUBSAMPLE_ROWS,
    Plan,
    cost,
    feature_width,
    plan,
)
from mlcontainer.training.search.models import BASELINE, MODELS, models_for
from mlcontainer.training.search.selection import TrainingResult, train
from mlcontainer.training.search.tuning import presets_for

ADULT_FOLD_ROWS = 20_838
ADULT_WIDTH = 103
BUDGET = 60.0


def _presets(task: str = "classification") -> dict[str, Any]:
    return {m: presets_for(m, task) for m in models_for(task, None)}  # type: ignore[arg-type]


def _room(budget: float = BUDGET, workers: int = 2) -> float:
    return budget * CV_SHARE * workers


def _adult(room: float, **kw: Any) -> dict[str, Plan]:
    return plan(
        _presets(), fit_rows=ADULT_FOLD_ROWS, width=ADULT_WIDTH, cv=5, room=room, budget=BUDGET,
        **kw,
    )  # fmt: skip


def _planned_cost(plans: dict[str, Plan], presets: dict[str, Any], **kw: Any) -> float:
    return sum(
        cost(m, presets[m][: p.search], rows=p.rows, width=kw["width"], cv=kw["cv"],
             speed=kw.get("speed", 1.0))
        for m, p in plans.items()
    )  # fmt: skip


def test_every_candidate_has_a_cost() -> None:
    assert set(COSTS) == set(MODELS)


@pytest.mark.parametrize(
    "name", ["wine", "iris", "penguins", "breast_cancer", "digits", "diabetes"]
)
def test_builtin_datasets_search_every_preset_on_every_row_in_the_default_budget(
    name: str,
) -> None:
    ds = load_dataset(name)
    fold_rows = int(len(ds.y) * 0.8 * 0.8)
    presets = _presets(ds.schema.task)
    plans = plan(
        presets, fit_rows=fold_rows, width=feature_width(ds.schema), cv=5, room=_room(workers=1)
    )
    assert plans == {m: Plan(m, len(p), fold_rows) for m, p in presets.items()}


def test_adult_sized_data_cuts_superlinear_candidates_rows_keeps_every_candidate() -> None:
    plans = _adult(_room())
    assert set(plans) == set(_presets())  # nothing skipped
    for quadratic in ("svm", "k_nearest_neighbors"):
        assert MIN_SUBSAMPLE_ROWS <= plans[quadratic].rows < ADULT_FOLD_ROWS
        assert "60 s budget" in plans[quadratic].reasons[0]
        assert COSTS[quadratic].why in plans[quadratic].reasons[0]
        action = plans[quadratic].action(ADULT_FOLD_ROWS)
        assert action is not None
        assert action.kind == "subsample"
    for linear in ("logistic_regression", "hist_gradient_boosting", "naive_bayes", BASELINE):
        assert plans[linear].rows == ADULT_FOLD_ROWS
        assert plans[linear].action(ADULT_FOLD_ROWS) is None
    # Gradient boosting gains most from its search: it keeps it.
    assert plans["hist_gradient_boosting"].search >= 2


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_the_plan_fits_the_estimated_comparison_into_its_room(task: str) -> None:
    presets = _presets(task)
    for room in (_room(20), _room(60), _room(300)):
        plans = plan(presets, fit_rows=ADULT_FOLD_ROWS, width=ADULT_WIDTH, cv=5, room=room)
        spent = _planned_cost(plans, presets, width=ADULT_WIDTH, cv=5)
        # Within 5%: a cut to more than 90% of the rows is not made (not worth a line).
        assert spent <= room * 1.05


def test_the_plan_is_deterministic_and_uses_no_clock() -> None:
    assert _adult(_room()) == _adult(_room())


def test_more_workers_leave_more_rows() -> None:
    one, two = _adult(_room(workers=1)), _adult(_room(workers=2))
    assert two["svm"].rows > one["svm"].rows
    assert two["hist_gradient_boosting"].search >= one["hist_gradient_boosting"].search


def test_a_slower_machine_gets_fewer_rows_and_smaller_searches_never_fewer_candidates() -> None:
    quick, slow = _adult(_room()), _adult(_room(), speed=3.0, note="re-planned")
    assert set(slow) == set(quick)
    assert all(slow[m].rows <= quick[m].rows for m in quick)
    assert slow["hist_gradient_boosting"].search <= quick["hist_gradient_boosting"].search
    assert slow["svm"].rows < quick["svm"].rows
    assert any("re-planned" in r for p in slow.values() for r in p.reasons)


@pytest.mark.parametrize("budget", [1.0, 0.01])
def test_a_tiny_budget_keeps_every_candidate_on_the_smallest_fair_subsample(budget: float) -> None:
    plans = _adult(_room(budget))
    assert set(plans) == set(_presets())
    for p in plans.values():
        assert p.search == 1
        assert p.rows >= MIN_SUBSAMPLE_ROWS
    assert plans["svm"].rows == MIN_SUBSAMPLE_ROWS


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_a_bad_time_budget_is_refused(value: float) -> None:
    with pytest.raises(ConfigError, match="--time-budget"):
        TrainOptions(time_budget=value)


def test_zero_budget_means_none_and_plans_everything_in_full() -> None:
    assert TrainOptions(time_budget=0).time_budget is None
    plans = plan({"svm": presets_for("svm", "classification")}, fit_rows=10**6, width=100, cv=5,
                 room=None)  # fmt: skip
    assert plans == {"svm": Plan("svm", len(presets_for("svm", "classification")), 10**6)}


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


class FakeClock:
    """A clock that moves only when a fit says it took time."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@pytest.fixture
def slow_knn(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Every fit takes 0.02 s + 0.05 s per 1 000 rows of fake time, except k-NN's: 1e-6 s x
    rows² (9 s on 3 000 rows: its family's estimate says milliseconds)."""
    fake = FakeClock()
    real: Callable[..., Any] = selection.fit_ready

    def fit_ready(pipeline: Any, y: Any) -> Any:
        ready = real(pipeline, y)
        slow = type(pipeline[-1]).__name__.startswith("KNeighbors")

        class Timed:
            def fit(self, X: Any, y: Any) -> Any:
                out = ready.fit(X, y)
                n = len(X)
                fake.advance(1e-6 * n * n if slow else 0.02 + 0.05 * n / 1000)
                return out

        return Timed()

    monkeypatch.setattr(selection, "clock", fake)
    monkeypatch.setattr(selection, "fit_ready", fit_ready)
    return fake


def test_a_candidate_far_slower_than_its_estimate_is_subsampled_not_dropped(
    slow_knn: FakeClock,
) -> None:
    start, budget = slow_knn(), 20.0
    result = _train(6_000, ("naive_bayes", "logistic_regression", "k_nearest_neighbors"), budget)
    assert all(c.ranked for c in result.leaderboard)  # every candidate compared
    knn = next(c for c in result.leaderboard if c.name == "k_nearest_neighbors")
    assert knn.budget is not None
    assert knn.budget.kind == "subsample"
    assert knn.budget.rows < 3_000
    assert "slower than estimated" in knn.budget.reason
    assert any(line.startswith("k_nearest_neighbors: ") for line in result.budget_lines)
    assert slow_knn() - start <= budget * 1.05
    assert len(result.split.X_test) == 1_500  # the test split is never cut


def test_on_time_the_fake_clock_changes_nothing(slow_knn: FakeClock) -> None:
    result = _train(6_000, ("naive_bayes", "logistic_regression"), 60.0)
    assert all(c.budget is None for c in result.leaderboard)
    assert result.budget_lines == ()


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
