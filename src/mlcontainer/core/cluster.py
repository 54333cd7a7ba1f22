"""Connect to a Dask distributed scheduler (the ``dask`` extra), with errors that say what to do.

Training fans its cross-validation out on a cluster, and ``predict`` its partitions: both
connect here. Dask is imported only when a scheduler is given.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from mlcontainer.core.errors import ConfigError, MlcontainerError

#: Seconds to reach the scheduler, and to wait for a first worker, before giving up.
CONNECT_TIMEOUT = 10


@contextmanager
def dask_client(scheduler: str, *, error: type[MlcontainerError]) -> Iterator[Any]:
    """Yield a ``distributed.Client`` of ``scheduler`` once it has a worker; close it after.

    A missing Dask or an unreachable scheduler is a ConfigError; a scheduler without workers
    is an ``error`` (the caller's kind: the run cannot go on).
    """
    try:
        import distributed
    except ImportError:
        raise ConfigError(
            f"the Dask scheduler {scheduler} needs Dask: install it with "
            "`uv pip install 'mlcontainer[dask]'` (or `uv sync --extra dask`)",
            setting="dask_scheduler",
        ) from None
    client_class: Any = distributed.Client  # untyped library: keep its objects as Any
    try:
        client: Any = client_class(scheduler, timeout=CONNECT_TIMEOUT, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {scheduler}: {exc}", setting="dask_scheduler"
        ) from None
    try:
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except TimeoutError:
            raise error(
                f"the Dask scheduler at {scheduler} has no workers (waited "
                f"{CONNECT_TIMEOUT} s); start some with `dask worker {scheduler}`"
            ) from None
        yield client
    finally:
        client.close()
