"""Batch prediction on a real Dask cluster: a scheduler and two workers as separate processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from support import Cluster, start_cluster

from mlcontainer.cli import main
from mlcontainer.core.errors import InputValidationError
from mlcontainer.inference.batch import predict_file
from mlcontainer.inference.distributed import PieceDone, plan, predict_on_cluster
from mlcontainer.inference.predictor import Predictor, load_predictor
from mlcontainer.training.data.dataset import load_dataset

pytest.importorskip("distributed", reason="Dask is the optional extra mlcontainer[dask]")


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    started = start_cluster(17500)
    yield started
    started.stop()


def _penguin_partitions(folder: Path, sizes: tuple[int, ...]) -> Path:
    """Penguins rows (text and numbers, some missing) as partitions with row groups of 7."""
    rows = load_dataset("penguins").X.sample(sum(sizes), replace=True, random_state=3)
    folder.mkdir()
    bounds = np.cumsum((0, *sizes))
    for i in range(len(sizes)):
        part = rows.iloc[bounds[i] : bounds[i + 1]]
        part.to_parquet(folder / f"part-{i:05d}.parquet", index=False, row_group_size=7)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["onnx", "sklearn"])
def test_cluster_predict_writes_the_local_output_row_for_row(
    cluster: Cluster, penguins_model_dir: Path, tmp_path: Path, runtime: str
) -> None:
    predictor = load_predictor(penguins_model_dir, runtime, threads=1)
    folder = _penguin_partitions(tmp_path / "in", (40, 23, 61))
    local, remote = tmp_path / "local.parquet", tmp_path / "remote.parquet"
    predict_file(predictor, folder, output=local, fmt="parquet", chunk_rows=5)
    seen: list[PieceDone] = []
    result = predict_on_cluster(
        predictor,
        penguins_model_dir,
        folder,
        output=remote,
        scheduler=cluster.address,
        chunk_rows=5,
        on_piece=seen.append,
    )
    assert result.rows == 124
    assert pq.read_table(remote).equals(pq.read_table(local))
    # One row group per chunk of 5 rows, chunks cut at the same rows as locally.
    assert pq.ParquetFile(remote).metadata.num_row_groups == 35
    assert [d.index for d in seen] == list(range(1, len(plan(folder, 5)) + 1))
    assert seen[-1].rows_written == 124


@pytest.mark.slow
def test_a_failing_partition_names_its_file_and_row_and_nothing_is_written(
    cluster: Cluster, iris_model_dir: Path, iris_predictor: Predictor, tmp_path: Path
) -> None:
    rng = np.random.default_rng(1)
    names = iris_predictor.schema.names
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        frame = pd.DataFrame(rng.uniform(1, 7, size=(30, 4)).round(1), columns=names)
        frame[names[1]] = frame[names[1]].astype(str)
        if i == 2:
            frame.loc[24, names[1]] = "wide"  # row 25 of the third partition
        frame.to_parquet(folder / f"part-{i}.parquet", index=False, row_group_size=10)
    out = tmp_path / "out.parquet"
    with pytest.raises(InputValidationError) as info:
        predict_on_cluster(
            iris_predictor,
            iris_model_dir,
            folder,
            output=out,
            scheduler=cluster.address,
            chunk_rows=4,
        )
    assert info.value.message.startswith(
        f"in {folder / 'part-2.parquet'} (rows counted from 1): column {names[1]!r}, row 25: "
    )
    assert info.value.problems[0].row == 25
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in"]


@pytest.mark.slow
def test_predict_command_on_a_scheduler_reports_each_piece(
    cluster: Cluster, penguins_model_dir: Path, tmp_path: Path
) -> None:
    folder = _penguin_partitions(tmp_path / "in", (30, 30))
    out = tmp_path / "out.parquet"
    args = ["predict", "--model", penguins_model_dir, "-i", folder, "-o", out, "--chunk-size", "10"]
    result = CliRunner().invoke(main, [str(a) for a in [*args, "--scheduler", cluster.address]])
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "scored 1/6: part-00000.parquet (14 rows); 14 rows written"
    assert lines[-1] == f"Wrote 60 predictions to {out} (on {cluster.address})"
    assert len(pd.read_parquet(out)) == 60


def test_the_cluster_reads_parquet_only(penguins_model_dir: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    load_dataset("penguins").X.head(3).to_csv(source, index=False)
    out = tmp_path / "out.parquet"
    args = ["predict", "--model", penguins_model_dir, "-i", source, "-o", out]
    result = CliRunner().invoke(main, [str(a) for a in [*args, "--scheduler", "tcp://h:1"]])
    assert result.exit_code == 1
    assert "--scheduler scores a Parquet file or a folder of Parquet partitions" in result.stderr


def test_pieces_are_whole_row_groups_of_at_least_a_chunk(tmp_path: Path) -> None:
    folder = _penguin_partitions(tmp_path / "in", (40, 23))
    pieces = plan(folder, 10)
    # Row groups of 7: 40 rows = 7+7 | 7+7 | 7+5 ; 23 rows = 7+7 | 7+2.
    assert [(p.path.name, p.groups, p.rows) for p in pieces] == [
        ("part-00000.parquet", (0, 1), 14),
        ("part-00000.parquet", (2, 3), 14),
        ("part-00000.parquet", (4, 5), 12),
        ("part-00001.parquet", (0, 1), 14),
        ("part-00001.parquet", (2, 3), 9),
    ]
