"""Read rows to predict from a Parquet file, in chunks (needs pyarrow: ``mlcontainer[parquet]``).

Text columns come out as text cells (parsed by the cell rules like CSV text), typed columns
(numbers, booleans) as Python values (checked like JSON values).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcontainer.core.errors import InputValidationError


@dataclass(frozen=True)
class ParquetChunk:
    """Cells per column, the columns that are typed (not text), the names, rows, bytes read."""

    cells: dict[str, list[Any]]
    typed: list[str]
    names: list[str]
    rows: int
    bytes_read: int


def iter_chunks(path: Path, chunk_rows: int) -> Iterator[ParquetChunk]:
    """Yield the rows of a Parquet file in chunks of up to ``chunk_rows``, with clear errors."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputValidationError(
            f"cannot read {path}: Parquet needs pyarrow (`uv pip install 'mlcontainer[parquet]'`)"
        ) from None
    import pyarrow.lib
    import pyarrow.types as pat

    try:
        parquet = pq.ParquetFile(path)
        total_rows = max(parquet.metadata.num_rows, 1)
        size = path.stat().st_size
        done = 0
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            done += batch.num_rows
            names = [str(n).strip() for n in batch.schema.names]
            cells: dict[str, list[Any]] = {}
            typed: list[str] = []
            for name, column in zip(names, batch.columns, strict=True):
                if name in cells:
                    continue  # a duplicated name: the first column counts
                values = (
                    column.cast(column.type.value_type)
                    if pat.is_dictionary(column.type)
                    else column
                )
                if not (pat.is_string(values.type) or pat.is_large_string(values.type)):
                    typed.append(name)
                cells[name] = values.to_pylist()
            yield ParquetChunk(cells, typed, names, batch.num_rows, size * done // total_rows)
    except FileNotFoundError:
        raise InputValidationError(f"input file not found: {path}") from None
    except pyarrow.lib.ArrowException as exc:
        raise InputValidationError(
            f"cannot read {path}: not a valid Parquet file ({exc})"
        ) from None
