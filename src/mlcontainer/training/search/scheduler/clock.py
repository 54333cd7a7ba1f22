"""The clock the time budget is kept by, and the deadline it sets."""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path


def now() -> float:
    """Seconds on a monotonic clock; tests replace this function with a fake clock."""
    return time.perf_counter()


def process_age() -> float:
    """Seconds since this process started (imports included), 0 where ``/proc`` cannot tell.

    A user's budget counts from the command they typed, not from when the training code
    was imported (1-5 s on a busy machine, measured).
    """
    try:
        stat = Path("/proc/self/stat").read_text()
        # Fields after the command name (which may hold spaces) start at field 3; the start
        # time (field 22) is in clock ticks since boot.
        ticks = int(stat.rsplit(")", 1)[1].split()[19])
        boot = time.clock_gettime(time.CLOCK_BOOTTIME)
        return max(boot - ticks / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


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
