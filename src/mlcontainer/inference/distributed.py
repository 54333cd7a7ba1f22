"""Predict a Parquet file or folder of partitions on a Dask cluster (the ``dask`` extra).

The client reads; the workers validate and predict; the client writes. Workers need not share
a file system with the client: each gets the model as bytes (``model.json`` and the one file
its runtime reads, verified against the manifest here and again when the worker loads them,
so a worker scores exactly the model this process loaded) and each partition's bytes. A
worker runs the same code as a local run (:func:`.batch.parquet_decoded`,
:func:`.batch.predict_chunk`) on the same chunks (chunks never span row groups), so the output
is the local output, row for row, in order.
"""

from __future__ import annotations

import functools
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcontainer.core.artifacts import MANIFEST_FILE, MODEL_FILE, verify_file
from mlcontainer.core.atomic import atomic_output
from mlcontainer.core.cluster import dask_client
from mlcontainer.core.errors import InputValidationError, MlcontainerError
from mlcontainer.inference import parquetreader
from mlcontainer.inference.batch import BatchResult, parquet_decoded, predict_chunk
from mlcontainer.inference.output import ParquetSink
from mlcontainer.inference.predictor import Predictor, load_predictor


@dataclass(frozen=True)
class Piece:
    """A cluster's unit of work: consecutive row groups of one partition file."""

    path: Path
    groups: tuple[int, ...]
    rows: int


@dataclass(frozen=True)
class PieceDone:
    """What the progress line says when a piece is written: which, and how far the run is."""

    piece: Piece
    index: int
    pieces: int
    rows_written: int


@dataclass(frozen=True, eq=False)
class ModelFiles:
    """The files a worker loads a model from, and the runtime to load it with."""

    files: dict[str, bytes]
    runtime: str
    #: The SHA-256 of the runtime's file: the worker keeps one loaded predictor per model.
    sha256: str

    def __hash__(self) -> int:
        return hash((self.sha256, self.runtime))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelFiles) and (other.sha256, other.runtime) == (
            self.sha256,
            self.runtime,
        )


def model_files(model_dir: Path, predictor: Predictor) -> ModelFiles:
    """Read the files a worker needs to load ``predictor``'s model, checked against it."""
    name = MODEL_FILE if predictor.runtime == "sklearn" else _onnx_file(predictor)
    data = verify_file(model_dir, predictor.manifest, name)
    manifest = (model_dir / MANIFEST_FILE).read_bytes()
    return ModelFiles({MANIFEST_FILE: manifest, name: data}, predictor.runtime, predictor.sha256)


def _onnx_file(predictor: Predictor) -> str:
    section = predictor.manifest.runtime
    onnx = section.verified_onnx() if section is not None else None
    if onnx is None:  # pragma: no cover - an ONNX predictor was loaded from this section
        raise MlcontainerError("the ONNX predictor's model has no verified ONNX file")
    return onnx.file


def plan(source: Path, chunk_rows: int) -> list[Piece]:
    """Split the input into pieces of whole row groups, at least ``chunk_rows`` rows each
    where a file has them, in the order a local run reads them."""
    pieces = []
    for path in parquetreader.partition_files(source):
        groups: list[int] = []
        rows = 0
        for group, size in enumerate(parquetreader.row_groups(path)):
            groups.append(group)
            rows += size
            if rows >= chunk_rows:
                pieces.append(Piece(path, tuple(groups), rows))
                groups, rows = [], 0
        if groups:
            pieces.append(Piece(path, tuple(groups), rows))
    return pieces


def predict_on_cluster(
    predictor: Predictor,
    model_dir: Path,
    source: Path,
    *,
    output: Path,
    scheduler: str,
    chunk_rows: int,
    on_piece: Callable[[PieceDone], None] | None = None,
) -> BatchResult:
    """Predict the Parquet ``source`` (a file or a folder of partitions) on the Dask cluster
    at ``scheduler`` and write ``output`` (Parquet) as a local run would: all or nothing.

    At most two pieces per worker thread are in flight, so the client holds a bounded part of
    the input and output whatever their size. A piece that fails stops the run: its error
    names the partition file and the row (counted from 1), and no output is written.
    """
    pieces = plan(source, chunk_rows)
    model = model_files(model_dir, predictor)
    result = BatchResult()
    with dask_client(scheduler, error=MlcontainerError) as client, _cluster_errors(scheduler):
        depth = 2 * max(1, sum(client.nthreads().values()))
        shared = client.scatter(model, broadcast=True, hash=False)
        try:
            with atomic_output(output) as handle:
                sink = ParquetSink(handle)
                try:
                    for index, (tables, warnings, rows) in enumerate(
                        _in_order(client, pieces, shared, chunk_rows, depth)
                    ):
                        if index == 0:
                            result.warnings = warnings
                        for table in tables:
                            sink.write(table)
                        result.rows += rows
                        if on_piece is not None:
                            on_piece(PieceDone(pieces[index], index + 1, len(pieces), result.rows))
                    if result.rows == 0:
                        raise InputValidationError(
                            "no rows to predict: the input is empty (a header, no rows)"
                        )
                finally:
                    sink.close()
        except OSError as exc:
            from distributed.comm.core import CommClosedError

            if isinstance(exc, CommClosedError):  # an OSError too: the cluster's, not the disk's
                raise
            raise InputValidationError(f"cannot write to {output}: {exc.strerror or exc}") from None
    return result


def _in_order(
    client: Any, pieces: list[Piece], model: Any, chunk_rows: int, depth: int
) -> Iterator[tuple[list[Any], list[str], int]]:
    """Submit the pieces, at most ``depth`` at a time, and yield their results in order."""
    pending: deque[Any] = deque()
    files: dict[Path, Any] = {}  # each partition's bytes, sent to the cluster once
    upcoming = iter(pieces)
    try:
        while True:
            while len(pending) < depth and (piece := next(upcoming, None)) is not None:
                if piece.path not in files:
                    files = {piece.path: client.scatter(piece.path.read_bytes(), hash=False)}
                pending.append(
                    client.submit(
                        score_piece,
                        model,
                        files[piece.path],
                        str(piece.path),
                        piece.groups,
                        chunk_rows,
                        pure=False,
                    )
                )
            if not pending:
                return
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def score_piece(
    model: ModelFiles, data: bytes, name: str, groups: tuple[int, ...], chunk_rows: int
) -> tuple[list[Any], list[str], int]:
    """On a worker: validate and predict a piece's rows as a local run does; return its
    prediction tables (one per chunk), the first chunk's warnings and the rows."""
    predictor = _loaded(model)
    parts = parquetreader.iter_chunks(data, chunk_rows, name=name, groups=groups)
    tables: list[Any] = []
    warnings: list[str] = []
    rows = 0
    for decoded, _ in parquet_decoded(predictor, parts, name):
        if not tables:
            warnings = decoded.warnings
        tables.append(predict_chunk(predictor, decoded, "parquet", 0))
        rows += decoded.rows
    return tables, warnings, rows


@functools.lru_cache(maxsize=2)
def _loaded(model: ModelFiles) -> Predictor:
    """Load the model once per worker process (and model): verified as any load is."""
    with tempfile.TemporaryDirectory(prefix="mlcontainer-model-") as folder:
        for name, data in model.files.items():
            (Path(folder) / name).write_bytes(data)
        # Every file is read into memory while loading: the folder can go at once.
        return load_predictor(Path(folder), model.runtime, threads=1)


@contextmanager
def _cluster_errors(scheduler: str) -> Iterator[None]:
    """Turn a lost worker or scheduler into one clear error; no output is kept."""
    from concurrent.futures import CancelledError

    from distributed import KilledWorker
    from distributed.comm.core import CommClosedError

    try:
        yield
    except MlcontainerError:
        raise
    except KilledWorker as exc:
        raise MlcontainerError(
            f"a partition kept losing its Dask worker ({exc.task}); the cluster at {scheduler} "
            "retried it and gave up: check the workers' memory and logs; no output was written"
        ) from None
    except (CancelledError, CommClosedError, OSError, TimeoutError) as exc:
        raise MlcontainerError(
            f"lost the Dask cluster at {scheduler} during the prediction ({exc}); "
            "no output was written"
        ) from None
