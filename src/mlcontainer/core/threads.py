"""Native thread pools: OpenMP and BLAS on one thread where parallelism comes from elsewhere."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def one_native_thread() -> Iterator[None]:
    """Run OpenMP and BLAS code on one thread: parallelism comes from ``--jobs`` instead.

    On a shared, busy machine, HistGradientBoosting's OpenMP threads spin-wait for each other
    and a 0.1 s fit can take 15 s (measured on wine here); one thread per fit avoids that.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield
