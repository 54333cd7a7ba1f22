"""How much slower than the cost table this machine (and each candidate) runs, measured on
the real fits."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Fits count toward the machine's speed only when the part of their estimate that grows with
#: the rows is at least this many seconds: shorter fits measure fixed costs and scheduling
#: noise (a probe of a few hundred rows read "3062x slower" where real work ran 3-6x slower,
#: issue 22). The speed is taken as 1 until fits estimated at ``MEASURED_ENOUGH`` seconds in
#: all were measured.
MEANINGFUL = 0.05
MEASURED_ENOUGH = 0.5
#: A candidate's own fits tell its speed once they took this long in all, whatever their
#: estimate (a k-NN estimated at milliseconds that took seconds is slow, not noisy).
TELLING = 0.5
#: The machine's speed is not believed below this (20x faster than the table says more
#: about one fit than about the machine).
FASTEST = 0.25


@dataclass
class Speed:
    """The fits measured so far: estimated and actual seconds (the part that grows with the
    rows), summed per candidate. Ratios are of sums, so the largest fits weigh most and a
    millisecond fit cannot swing them."""

    estimated: dict[str, float] = field(default_factory=dict)
    actual: dict[str, float] = field(default_factory=dict)
    #: The same, over the fits large enough to judge the machine by.
    meaningful: list[tuple[float, float]] = field(default_factory=list)

    def record(self, model: str, *, estimated: float, actual: float) -> None:
        """Count one fit of ``model`` that was estimated at ``estimated`` seconds."""
        actual = max(actual, 0.0)
        self.estimated[model] = self.estimated.get(model, 0.0) + max(estimated, 1e-9)
        self.actual[model] = self.actual.get(model, 0.0) + actual
        if estimated >= MEANINGFUL:
            self.meaningful.append((estimated, actual))

    @property
    def ratio(self) -> float:
        """How much slower than estimated the machine's fits ran (1: as estimated)."""
        total = sum(e for e, _ in self.meaningful)
        if total < MEASURED_ENOUGH:
            return 1.0
        return max(sum(a for _, a in self.meaningful) / total, FASTEST)

    def of(self, model: str) -> float:
        """How much slower than estimated ``model``'s own fits ran, once they tell (else the
        machine's speed)."""
        estimated, actual = self.estimated.get(model, 0.0), self.actual.get(model, 0.0)
        if estimated < MEANINGFUL and actual < TELLING:
            return self.ratio
        return max(actual / estimated, FASTEST)
