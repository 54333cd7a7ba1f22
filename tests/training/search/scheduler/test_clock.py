"""The deadline: seconds left never negative, unbounded without a budget."""

from __future__ import annotations

import math

import pytest

from mlcontainer.training.search.scheduler import clock
from mlcontainer.training.search.scheduler.clock import Deadline, seconds


def test_the_time_left_is_never_negative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: 130.0)
    deadline = Deadline(start=100.0, budget=20.0)
    assert deadline.end == 120.0
    assert deadline.left() == 0.0
    assert deadline.left(keep=5.0) == 0.0
    assert deadline.elapsed() == 30.0


def test_without_a_budget_the_deadline_never_comes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "now", lambda: 1e9)
    assert Deadline(start=0.0, budget=None).left(keep=100.0) == math.inf


@pytest.mark.parametrize(("value", "text"), [(-20.0, "0.0 s"), (3.14, "3.1 s"), (42.4, "42 s")])
def test_seconds_are_said_without_a_sign(value: float, text: str) -> None:
    assert seconds(value) == text
