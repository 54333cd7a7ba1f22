"""Where the cross-validation fan-out runs: local joblib workers or a Dask distributed cluster."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from mlcontainer.core.cluster import dask_client
from mlcontainer.core.errors import TrainingError


@dataclass(frozen=True)
class Fanout:
    """How joblib should run the fits: its ``n_jobs`` and how many run at once."""

    n_jobs: int
    workers: int
    where: str


def local_workers(jobs: int) -> int:
    """Return how many fits ``jobs`` runs at once on this machine (joblib's rule for -1)."""
    from joblib import cpu_count

    cores = int(cpu_count())
    return max(1, cores + 1 + jobs if jobs < 0 else min(jobs, cores))


@contextmanager
def fanout(scheduler: str | None, *, jobs: int, scatter: Sequence[Any] = ()) -> Iterator[Fanout]:
    """Run the ``joblib.Parallel`` calls inside on local workers or on a Dask cluster.

    On a cluster, ``scatter`` (the training data) is sent to every worker once instead of
    with every fit. Dask re-runs the fits of a lost worker elsewhere; if a fit keeps losing
    its workers, or the cluster goes away, the run fails with a TrainingError: it never
    returns a partial comparison as if it were whole.
    """
    if scheduler is None:
        yield Fanout(n_jobs=jobs, workers=local_workers(jobs), where="local")
        return
    from joblib import parallel_config

    with dask_client(scheduler, error=TrainingError) as client:
        threads = sum(client.nthreads().values())
        with (
            _cluster_errors(scheduler),
            parallel_config(backend="dask", client=client, scatter=list(scatter) or None),
        ):
            yield Fanout(n_jobs=-1, workers=max(threads, 1), where=scheduler)


@contextmanager
def _cluster_errors(scheduler: str) -> Iterator[None]:
    from concurrent.futures import CancelledError

    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError

    try:
        yield
    except KilledWorker as exc:
        raise TrainingError(
            f"a cross-validation fit kept losing its Dask worker ({exc.task}); the cluster at "
            f"{scheduler} retried it on other workers and gave up: check the workers' memory "
            "and logs, then run again"
        ) from None
    except CancelledError as exc:
        raise TrainingError(
            f"a Dask worker of {scheduler} was lost during the comparison and its fits could "
            f"not be recovered ({exc}); no result was kept: run again, or give the workers "
            "more memory"
        ) from None
    except (CommClosedError, OSError, TimeoutError) as exc:
        raise TrainingError(
            f"lost the connection to the Dask scheduler at {scheduler} during the comparison: "
            f"{exc}; no result was kept"
        ) from None
