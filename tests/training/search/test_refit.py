"""Selecting and refitting under a time budget, on a fake clock with deliberately slow
candidates: a fit that would overrun is not started, the selected model is refitted on
every training row, and the next candidate is taken when the winner's refit would not fit."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from support import options

from mlcontainer.training.data.dataset import prepare
from mlcontainer.training.search import folds, refit
from mlcontainer.training.search.candidates import CandidateResult
from mlcontainer.training.search.refit import TrainingResult, train
from mlcontainer.training.search.scheduler import clock
from mlcontainer.training.search.scheduler.clock import Deadline


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
    return train(ds, chosen, started=clock.now())


class FakeClock:
    """A clock that moves only when a fit says it took time."""

    def __init__(self) -> None:
        self.now = 1_000.0
        self._lock = threading.Lock()
        #: Seconds each model family takes to fit ``n`` rows (by its estimator's class name).
        self.costs: dict[str, Callable[[int], float]] = {}

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds

    def cost(self, estimator: str, n: int) -> float:
        for prefix, seconds in self.costs.items():
            if estimator.startswith(prefix):
                return seconds(n)
        return 0.02 + 0.05 * n / 1000


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Every fit takes 0.02 s + 0.05 s per 1 000 rows of fake time unless ``fake.costs``
    says otherwise for its estimator; the fold fits and the refit alike."""
    fake = FakeClock()
    real: Callable[..., Any] = folds.fit_ready

    def fit_ready(pipeline: Any, y: Any) -> Any:
        ready = real(pipeline, y)
        name = type(pipeline[-1]).__name__

        class Timed:
            def fit(self, X: Any, y: Any) -> Any:
                out = ready.fit(X, y)
                fake.advance(fake.cost(name, len(X)))
                return out

        return Timed()

    monkeypatch.setattr(clock, "now", fake)
    monkeypatch.setattr(folds, "fit_ready", fit_ready)
    monkeypatch.setattr(refit, "fit_ready", fit_ready)
    return fake


def _board(result: TrainingResult, name: str) -> Any:
    return next(c for c in result.leaderboard if c.name == name)


def test_a_fold_that_would_overrun_is_not_started(fake: FakeClock) -> None:
    # k-NN is estimated at milliseconds; here it takes 1e-6 s x rows² (9 s on 3 000 rows).
    fake.costs["KNeighbors"] = lambda n: 1e-6 * n * n
    start, budget = fake(), 20.0
    result = _train(6_000, ("naive_bayes", "logistic_regression", "k_nearest_neighbors"), budget)
    knn = _board(result, "k_nearest_neighbors")
    assert not knn.ranked
    assert knn.budget is not None
    assert knn.budget.kind == "skip"
    assert any(line.startswith("k_nearest_neighbors: not finished") for line in result.budget_lines)
    # One k-NN fold ran (9 s), the next was not started: the run keeps its budget.
    assert fake() - start <= budget * 1.1
    assert result.selected in ("naive_bayes", "logistic_regression")
    assert result.fit_rows == 4_500  # every training row


def test_the_selected_model_is_refitted_on_every_training_row_under_a_tight_budget(
    fake: FakeClock,
) -> None:
    result = _train(6_000, ("naive_bayes", "logistic_regression"), 8.0)
    assert result.fit_rows == len(result.split.X_train) == 4_500
    assert all(c.budget is None for c in result.leaderboard)
    forecast, took = result.refit_seconds
    assert took == pytest.approx(0.02 + 0.05 * 4.5)
    assert forecast > 0


def _ranked(name: str, fit_seconds: float, score: float) -> CandidateResult:
    return CandidateResult(
        name, {"accuracy": score}, {"accuracy": 0.0}, fit_seconds, 0.01, fit_rows=1_000
    )


def test_the_next_candidate_is_selected_when_the_winners_refit_would_not_fit(
    fake: FakeClock,
) -> None:
    # Its folds took 20 s on 1 000 rows: on 4 500, about 90 s; 14 s are left of 60 s once
    # the output's 6 s are kept.
    slow, quick = _ranked("logistic_regression", 20.0, 0.9), _ranked("naive_bayes", 0.2, 0.8)
    deadline = Deadline(start=fake() - 40.0, budget=60.0)
    chosen, forecast, line = refit._affordable([slow, quick], slow, rows=4_500, deadline=deadline)
    assert chosen is quick
    assert forecast == pytest.approx(0.02 + 0.18 * 4.5)
    assert line == (
        "logistic_regression: its refit on all 4,500 training rows would take about 90 s, more "
        "than the 14 s the 60 s budget leaves: selected naive_bayes, the next best whose refit "
        "fits"
    )
    # Past the deadline: no message says negative seconds; the quickest refit is taken.
    late = Deadline(start=fake() - 100.0, budget=60.0)
    chosen, _, line = refit._affordable([slow, quick], slow, rows=4_500, deadline=late)
    assert chosen is quick
    assert line is not None
    assert "the 0.0 s the 60 s budget leaves" in line
    assert " -" not in line
    # On time, the winner is kept.
    roomy = Deadline(start=fake(), budget=600.0)
    assert refit._affordable([slow, quick], slow, rows=4_500, deadline=roomy)[0] is slow


def test_on_time_the_fake_clock_changes_nothing(fake: FakeClock) -> None:
    result = _train(6_000, ("naive_bayes", "logistic_regression"), 60.0)
    assert all(c.budget is None for c in result.leaderboard)
    assert result.budget_lines == ()


def test_the_leaderboard_records_estimate_forecast_and_actual_fold_seconds(
    fake: FakeClock,
) -> None:
    result = _train(3_000, ("naive_bayes",), 60.0)
    timing = _board(result, "naive_bayes").to_dict()["timing"]
    assert set(timing) == {"estimated_fold_seconds", "forecast_fold_seconds", "fold_seconds"}
    assert timing["fold_seconds"] == pytest.approx(0.02 + 0.05 * 1.5, abs=1e-3)
    assert timing["estimated_fold_seconds"] > 0


def test_without_a_budget_nothing_is_marked() -> None:
    result = _train(300, ("naive_bayes", "decision_tree"), None)
    assert all(c.budget is None for c in result.leaderboard)
    assert result.budget_lines == ()
    assert result.fit_rows == 225
