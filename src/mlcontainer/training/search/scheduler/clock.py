"""The clock the time budget is kept by, and the deadline it sets."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass


def now() -> float:
    """Seconds on a monotonic clock; tests replace this function with a fake clock."""
    return time.perf_counter()


def seconds(value: float) -> str:
    """Seconds as the console says them: never negative, a tenth below 10 s."""
    value = max(value, 0.0)
    return f"{value:.1f} s" if value < 10 else f"{value:.0f} s"


@dataclass(frozen=True)
class Deadline:
    """When the run must end: ``budget`` seconds after ``start`` (no budget: never)."""

    start: float
    budget: float | None

    @property
    def end(self) -> float:
        """The clock reading at which the run must have ended (infinite without a budget)."""
        return math.inf if self.budget is None else self.start + self.budget

    def left(self, keep: float = 0.0) -> float:
        """Seconds left before the end, ``keep`` seconds kept aside; never negative."""
        return max(self.end - keep - now(), 0.0)

    def elapsed(self) -> float:
        """Seconds since the start."""
        return max(now() - self.start, 0.0)
