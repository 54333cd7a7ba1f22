"""The plan: linear-cost candidates keep every row, the superlinear ones share what is left
on fewer rows or are skipped, searches get what is spare; deterministic, no clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlcontainer.core.errors import ConfigError
from mlcontainer.training.data.dataset import load_dataset
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.search.models import BASELINE, MODELS, models_for
from mlcontainer.training.search.scheduler.costs import COSTS, feature_width
from mlcontainer.training.search.scheduler.plan import MIN_SUBSAMPLE_ROWS, Plan, cost, plan
from mlcontainer.training.search.tuning import presets_for

ADULT_FOLD_ROWS = 20_838
ADULT_WIDTH = 103
BUDGET = 60.0


def _presets(task: str = "classification") -> dict[str, Any]:
    return {m: presets_for(m, task) for m in models_for(task, None)}  # type: ignore[arg-type]


#: The comparison's share of a budget once the output and the refit are kept (about).
CV_SHARE = 0.6


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
def test_the_plan_fits_the_estimated_comparison_into_its_room_linear_ones_on_every_row(
    task: str,
) -> None:
    presets = _presets(task)
    linear = sum(
        cost(m, p[:1], rows=ADULT_FOLD_ROWS, width=ADULT_WIDTH, cv=5)
        for m, p in presets.items()
        if not COSTS[m].superlinear
    )
    for room in (_room(20), _room(60), _room(300)):
        plans = plan(presets, fit_rows=ADULT_FOLD_ROWS, width=ADULT_WIDTH, cv=5, room=room)
        spent = _planned_cost(
            {m: p for m, p in plans.items() if not p.skipped}, presets, width=ADULT_WIDTH, cv=5
        )
        # Within 5%: a cut to more than 90% of the rows is not made (not worth a line). The
        # linear candidates keep every row even when they alone overrun the room: the
        # comparison runs the strongest first and does not start what would end late.
        assert spent <= max(room, linear) * 1.05
        for m, p in plans.items():
            if not COSTS[m].superlinear:
                assert p.rows == ADULT_FOLD_ROWS


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
def test_a_tiny_budget_keeps_the_linear_candidates_on_every_row_and_skips_the_others(
    budget: float,
) -> None:
    plans = _adult(_room(budget))
    assert set(plans) == set(_presets())
    for m, p in plans.items():
        assert p.search == 1
        if COSTS[m].superlinear:
            assert p.skipped
            action = p.action(ADULT_FOLD_ROWS)
            assert action is not None
            assert action.kind == "skip"
            assert action.reason.startswith("not compared: ")
            assert COSTS[m].why in action.reason
            assert " -" not in action.reason  # never negative seconds
        else:
            assert p.rows == ADULT_FOLD_ROWS


@pytest.mark.parametrize("value", [-1.0, float("nan"), float("inf")])
def test_a_bad_time_budget_is_refused(value: float) -> None:
    with pytest.raises(ConfigError, match="--time-budget"):
        TrainOptions(time_budget=value)


def test_zero_budget_means_none_and_plans_everything_in_full() -> None:
    assert TrainOptions(time_budget=0).time_budget is None
    plans = plan({"svm": presets_for("svm", "classification")}, fit_rows=10**6, width=100, cv=5,
                 room=None)  # fmt: skip
    assert plans == {"svm": Plan("svm", len(presets_for("svm", "classification")), 10**6)}


def test_train_cli_refuses_a_negative_time_budget(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from mlcontainer.cli import main

    result = CliRunner().invoke(main, ["train", "--time-budget", "-5", "-o", str(tmp_path / "m")])
    assert result.exit_code == 1
    assert "--time-budget must be a number of seconds >= 0" in result.output
    assert not (tmp_path / "m").exists()
