"""Cross-validation on a real Dask cluster: a scheduler and two workers as separate processes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from support import Cluster, free_port, options, start_cluster

from mlcontainer.core.config import Settings, check_scheduler
from mlcontainer.core.errors import ConfigError, TrainingError
from mlcontainer.training.data.dataset import Dataset, load_dataset
from mlcontainer.training.search.selection import FoldCallback, TrainingResult, train

pytest.importorskip("distributed", reason="Dask is the optional extra mlcontainer[dask]")

MODELS = ("logistic_regression", "random_forest", "k_nearest_neighbors")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    started = start_cluster(17100)
    yield started
    started.stop()


@pytest.fixture(scope="module")
def penguins() -> Dataset:
    return load_dataset("penguins")


def _run(
    ds: Dataset, *, scheduler: str | None = None, on_fold: FoldCallback | None = None
) -> TrainingResult:
    chosen = options(
        models=MODELS, metric="f1_macro", cv=3, test_size=0.25, seed=7, scheduler=scheduler
    )
    return train(ds, chosen, on_fold=on_fold)


def _board(result: TrainingResult) -> list[tuple[str, dict[str, float]]]:
    return [(c.name, c.means) for c in result.leaderboard]


@pytest.fixture(scope="module")
def local_result(penguins: Dataset) -> TrainingResult:
    return _run(penguins)


@pytest.mark.slow
def test_cluster_run_gives_the_local_leaderboard_and_selection(
    cluster: Cluster, penguins: Dataset, local_result: TrainingResult
) -> None:
    remote = _run(penguins, scheduler=cluster.address)
    assert remote.where == cluster.address
    assert _board(remote) == _board(local_result)
    assert remote.selected == local_result.selected
    x = local_result.split.X_test
    assert (remote.pipeline.predict_proba(x) == local_result.pipeline.predict_proba(x)).all()


@pytest.mark.slow
def test_a_worker_killed_mid_run_gives_the_local_result_or_a_clear_error(
    penguins: Dataset, local_result: TrainingResult
) -> None:
    own = start_cluster(17300)
    killed: list[int] = []

    def kill_first_worker(_model: str, _fold: int) -> None:
        if not killed:
            victim = own.workers[0]
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            killed.append(victim.pid)

    remote: TrainingResult | TrainingError
    try:
        remote = _run(penguins, scheduler=own.address, on_fold=kill_first_worker)
    except TrainingError as exc:
        remote = exc
    finally:
        own.stop()
    assert killed
    if isinstance(remote, TrainingError):  # Dask could not recover the fits: said so, kept none
        assert f"a Dask worker of {own.address} was lost" in remote.message
        return
    # Dask re-ran the lost fits on the surviving worker: the same comparison as locally.
    assert _board(remote) == _board(local_result)
    assert remote.selected == local_result.selected


@pytest.mark.slow
def test_an_unreachable_scheduler_is_a_clear_error(penguins: Dataset) -> None:
    port = free_port(17900)  # nothing listens there
    with pytest.raises(
        ConfigError, match=f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}"
    ):
        _run(penguins, scheduler=f"tcp://127.0.0.1:{port}")


@pytest.mark.parametrize("bad", ["127.0.0.1:8786", "http://host:8786", "tcp://host", "tcp://"])
def test_scheduler_address_must_be_tcp_host_port(bad: str) -> None:
    with pytest.raises(ConfigError, match="tcp://HOST:PORT"):
        check_scheduler(bad)


def test_scheduler_comes_from_the_environment() -> None:
    env = {"MLCONTAINER_DASK_SCHEDULER": "tcp://10.0.0.5:8786"}
    assert Settings.from_env(env).dask_scheduler == "tcp://10.0.0.5:8786"
    with pytest.raises(ConfigError, match="tcp://HOST:PORT"):
        Settings.from_env({"MLCONTAINER_DASK_SCHEDULER": "10.0.0.5"})
