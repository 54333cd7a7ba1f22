"""Predict a file of any size in chunks: bounded memory, progress, output complete or absent."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pandas as pd

from mlcontainer.artifacts import current_umask
from mlcontainer.errors import InputValidationError
from mlcontainer.prediction import write_predictions
from mlcontainer.training import one_native_thread

if TYPE_CHECKING:
    from mlcontainer.prediction import Predictor

#: Rows read, validated and predicted at a time: large enough for vectorised prediction,
#: small enough that memory stays flat whatever the file's size.
DEFAULT_CHUNK_ROWS = 50_000
OUTPUT_FORMATS = ("csv", "json")
PARQUET_SUFFIXES = (".parquet", ".pq")

#: Called after each chunk with the rows predicted so far and the input bytes read so far.
ProgressCallback = Callable[[int, int], None]


@dataclass
class BatchResult:
    """How many rows were predicted, and the input warnings (e.g. ignored columns)."""

    rows: int = 0
    warnings: list[str] = field(default_factory=list)


def predict_file(
    predictor: Predictor,
    source: Path | IO[bytes],
    *,
    output: Path | IO[bytes],
    fmt: str,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    on_progress: ProgressCallback | None = None,
) -> BatchResult:
    """Validate and predict ``source`` chunk by chunk, writing each chunk's rows as it goes.

    A path ``output`` is written to a temporary file beside it and renamed into place only
    once every row has been predicted: an interrupted or failed run leaves no output file
    (and an existing one untouched). A stream ``output`` (stdout) receives rows as they come.
    """
    if fmt not in OUTPUT_FORMATS:
        raise InputValidationError(f"unknown output format {fmt!r}; valid: csv, json")
    if chunk_rows < 1:
        raise InputValidationError(f"--chunk-size must be at least 1 row, got {chunk_rows}")
    if isinstance(output, Path):
        with _atomic_output(output) as sink:
            return _stream(predictor, source, sink, fmt, chunk_rows, on_progress)
    return _stream(predictor, source, output, fmt, chunk_rows, on_progress)


def _stream(
    predictor: Predictor,
    source: Path | IO[bytes],
    sink: IO[bytes],
    fmt: str,
    chunk_rows: int,
    on_progress: ProgressCallback | None,
) -> BatchResult:
    result = BatchResult()
    for chunk, bytes_read in _chunks(source, chunk_rows):
        try:
            frame, warnings = predictor.frame_from_table(chunk)
        except InputValidationError as exc:
            raise _shifted(exc, result.rows) from None
        if result.rows == 0:
            result.warnings = warnings
        with one_native_thread():  # as in training: spinning OpenMP threads on a busy machine
            prediction = predictor.predict_frame(frame)
        payload = write_predictions(prediction, fmt)
        sink.write(_piece(payload, fmt, first=result.rows == 0))
        result.rows += len(frame)
        if on_progress is not None:
            on_progress(result.rows, bytes_read)
    if result.rows == 0:
        raise InputValidationError("no rows to predict: the input is empty (a header, no rows)")
    if fmt == "json":
        sink.write(b"]\n")
    sink.flush()
    return result


def _piece(payload: bytes, fmt: str, *, first: bool) -> bytes:
    """Turn one chunk's complete CSV/JSON document into its part of the whole output."""
    if fmt == "csv":
        return payload if first else payload.split(b"\n", 1)[1]
    inner = payload.strip()[1:-1]  # the records between "[" and "]"
    return (b"[" if first else b", ") + inner


def _chunks(source: Path | IO[bytes], chunk_rows: int) -> Iterator[tuple[pd.DataFrame, int]]:
    """Yield (rows as text, input bytes read so far) for a CSV path or stream, or Parquet."""
    if isinstance(source, Path) and source.suffix.lower() in PARQUET_SUFFIXES:
        yield from _parquet_chunks(source, chunk_rows)
        return
    try:
        handle: IO[bytes] = source.open("rb") if isinstance(source, Path) else source
    except FileNotFoundError:
        raise InputValidationError(f"input file not found: {source}") from None
    except OSError as exc:
        raise InputValidationError(f"cannot read {source}: {exc.strerror or exc}") from None
    try:
        for chunk in _csv_chunks(handle, chunk_rows):
            yield chunk, _position(handle)
    finally:
        if isinstance(source, Path):
            handle.close()


def _csv_chunks(handle: IO[bytes], chunk_rows: int) -> Iterator[pd.DataFrame]:
    """Yield the CSV's rows as text, ``chunk_rows`` at a time, with clear parse errors."""
    try:
        with pd.read_csv(
            handle, dtype=str, keep_default_na=False, skipinitialspace=True, chunksize=chunk_rows
        ) as reader:
            yield from reader
    except pd.errors.EmptyDataError:
        raise InputValidationError(
            "the input is empty: expected a CSV header line and rows"
        ) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InputValidationError(f"cannot parse the input CSV: {str(exc).strip()}") from None


def _position(handle: IO[bytes]) -> int:
    try:
        return handle.tell()
    except OSError:  # a pipe: no position to report
        return 0


def _parquet_chunks(path: Path, chunk_rows: int) -> Iterator[tuple[pd.DataFrame, int]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise InputValidationError(
            f"cannot read {path}: Parquet needs pyarrow (`uv pip install 'mlcontainer[parquet]'`)"
        ) from None
    import pyarrow.lib

    try:
        parquet = pq.ParquetFile(path)
        total_rows = max(parquet.metadata.num_rows, 1)
        size = path.stat().st_size
        done = 0
        for batch in parquet.iter_batches(batch_size=chunk_rows):
            done += batch.num_rows
            yield batch.to_pandas(), size * done // total_rows
    except FileNotFoundError:
        raise InputValidationError(f"input file not found: {path}") from None
    except pyarrow.lib.ArrowException as exc:
        raise InputValidationError(
            f"cannot read {path}: not a valid Parquet file ({exc})"
        ) from None


def _shifted(exc: InputValidationError, offset: int) -> InputValidationError:
    """Renumber a chunk's row errors so rows count from the start of the file."""
    if offset == 0:
        return exc
    details = [
        {**d, "row": d["row"] + offset if d.get("row") is not None else None} for d in exc.details
    ]
    first = details[0] if details else None
    if first is None or first.get("row") is None:
        return InputValidationError(exc.message, details=details)
    where = f"column {first['column']!r}, " if first.get("column") is not None else ""
    more = f" (and {len(details) - 1} more problem(s) in rows after it)" if len(details) > 1 else ""
    return InputValidationError(
        f"{where}row {first['row']}: {first['message']}{more}", details=details
    )


@contextmanager
def _atomic_output(path: Path) -> Iterator[IO[bytes]]:
    """Yield a temporary file beside ``path``; rename it onto ``path`` only on success.

    Its name (``.NAME.XXXX.partial``) never looks like the finished file, even if the process
    is killed before the cleanup below can run.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    except OSError as exc:
        raise InputValidationError(f"cannot write to {path}: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
