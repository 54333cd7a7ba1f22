"""Read rows to predict from a Parquet file or a folder of partitions, in chunks (needs
pyarrow: ``mlcontainer[parquet]``).

Text columns come out as text cells (parsed by the cell rules like CSV text), typed columns
(numbers, booleans) as Python values (checked like JSON values). Chunks never span two row
groups: a row group is the unit a cluster scores (:mod:`.distributed`), and a chunk starts at
the same row whether a file is read here or on a worker, so both give the same predictions.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcontainer.core.errors import InputValidationError

#: The names a folder's Parquet partitions have.
PARTITION_SUFFIXES = (".parquet", ".pq")


@dataclass(frozen=True)
class ParquetChunk:
    """Cells per column, the columns that are typed (not text), the names, rows, bytes read,
    and the file row (counted from 0) of the chunk's first row."""

    cells: dict[str, list[Any]]
    typed: list[str]
    names: list[str]
    rows: int
    bytes_read: int
    first_row: int = 0


def partition_files(path: Path) -> list[Path]:
    """The Parquet files of an input: the file itself, or a folder's partitions by name.

    A folder's partitions are its ``*.parquet`` and ``*.pq`` files, read in the order of their
    sorted names; names starting with ``.`` or ``_`` (``_SUCCESS``, ``.part.crc``) are the
    markers Spark and Hive write beside them and are skipped. Subfolders are not read.
    """
    if not path.is_dir():
        return [path]
    files = sorted(
        p
        for p in path.iterdir()
        if p.suffix.lower() in PARTITION_SUFFIXES
        and not p.name.startswith((".", "_"))
        and p.is_file()
    )
    if not files:
        raise InputValidationError(
            f"cannot read {path}: the folder holds no Parquet partitions (files named *.parquet "
            "or *.pq); a folder input is read as Parquet partitions"
        )
    return files


def row_groups(path: Path) -> list[int]:
    """The number of rows of each of a Parquet file's row groups, read from its footer."""
    with _errors(str(path)):
        metadata = _parquet_module().ParquetFile(path).metadata
        return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def iter_chunks(
    source: Path | bytes,
    chunk_rows: int,
    *,
    name: str | None = None,
    groups: Sequence[int] | None = None,
) -> Iterator[ParquetChunk]:
    """Yield the rows of a Parquet file (a path, or its bytes sent to a worker) in chunks of
    up to ``chunk_rows``, row group by row group (all, or the ``groups`` given)."""
    name = name or str(source)
    pq = _parquet_module(name)
    with _errors(name):
        parquet = pq.ParquetFile(source if isinstance(source, Path) else io.BytesIO(source))
        metadata = parquet.metadata
        total_rows = max(metadata.num_rows, 1)
        size = source.stat().st_size if isinstance(source, Path) else len(source)
        starts = [0]
        for i in range(metadata.num_row_groups):
            starts.append(starts[-1] + metadata.row_group(i).num_rows)
        for group in range(metadata.num_row_groups) if groups is None else groups:
            done = starts[group]
            for batch in parquet.iter_batches(batch_size=chunk_rows, row_groups=[group]):
                first, done = done, done + batch.num_rows
                yield chunk_of(batch, first_row=first, bytes_read=size * done // total_rows)


def chunk_of(batch: Any, *, first_row: int = 0, bytes_read: int = 0) -> ParquetChunk:
    """Turn an Arrow record batch into cells: text columns as text, typed ones as values."""
    import pyarrow.types as pat

    names = [str(n).strip() for n in batch.schema.names]
    cells: dict[str, list[Any]] = {}
    typed: list[str] = []
    for name, column in zip(names, batch.columns, strict=True):
        if name in cells:
            continue  # a duplicated name: the first column counts
        values = column.cast(column.type.value_type) if pat.is_dictionary(column.type) else column
        if not (pat.is_string(values.type) or pat.is_large_string(values.type)):
            typed.append(name)
        cells[name] = values.to_pylist()
    return ParquetChunk(cells, typed, names, batch.num_rows, bytes_read, first_row=first_row)


def _parquet_module(name: str = "Parquet") -> Any:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputValidationError(
            f"cannot read {name}: Parquet needs pyarrow (`uv pip install 'mlcontainer[parquet]'`)"
        ) from None
    return pq


@contextmanager
def _errors(name: str) -> Iterator[None]:
    """Turn a missing or broken Parquet file into a clear InputValidationError naming it."""
    import pyarrow.lib

    try:
        yield
    except FileNotFoundError:
        raise InputValidationError(f"input file not found: {name}") from None
    except pyarrow.lib.ArrowException as exc:
        raise InputValidationError(
            f"cannot read {name}: not a valid Parquet file ({exc})"
        ) from None
