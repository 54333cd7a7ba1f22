"""Predict a file of any size in chunks: bounded memory, progress, output complete or absent."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from mlcontainer.artifacts import current_umask
from mlcontainer.errors import InputValidationError
from mlcontainer.prediction import iter_csv_chunks, open_input, write_predictions

if TYPE_CHECKING:
    from mlcontainer.prediction import Columns, Predictor

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
    for columns, warnings, n_rows, bytes_read in _chunks(predictor, source, chunk_rows, result):
        if result.rows == 0:
            result.warnings = warnings
        with _native_threads(predictor):
            prediction = predictor.predict_columns(columns)
        payload = write_predictions(prediction, fmt)
        sink.write(_piece(payload, fmt, first=result.rows == 0))
        result.rows += n_rows
        if on_progress is not None:
            on_progress(result.rows, bytes_read)
    if result.rows == 0:
        raise InputValidationError("no rows to predict: the input is empty (a header, no rows)")
    if fmt == "json":
        sink.write(b"]\n")
    sink.flush()
    return result


@contextmanager
def _native_threads(predictor: Predictor) -> Iterator[None]:
    """One OpenMP/BLAS thread for scikit-learn (as in training); ONNX sets its own threads."""
    if predictor.runtime != "sklearn":
        yield
        return
    from threadpoolctl import threadpool_limits

    # As in training: spinning OpenMP threads on a busy machine cost more than they give.
    with threadpool_limits(limits=1):
        yield


def _piece(payload: bytes, fmt: str, *, first: bool) -> bytes:
    """Turn one chunk's complete CSV/JSON document into its part of the whole output."""
    if fmt == "csv":
        return payload if first else payload.split(b"\n", 1)[1]
    inner = payload.strip()[1:-1]  # the records between "[" and "]"
    return (b"[" if first else b", ") + inner


def _chunks(
    predictor: Predictor, source: Path | IO[bytes], chunk_rows: int, done: BatchResult
) -> Iterator[tuple[Columns, list[str], int, int]]:
    """Yield (validated columns, warnings, rows, input bytes read so far), chunk by chunk.

    Validation errors name rows counted from the start of the file, not of the chunk.
    """
    if isinstance(source, Path) and source.suffix.lower() in PARQUET_SUFFIXES:
        for cells, typed, names, n_rows, bytes_read in _parquet_chunks(source, chunk_rows):
            try:
                warnings = predictor.check_columns(names, n_rows)
                columns = predictor.columns_from_cells(cells, typed=typed)
            except InputValidationError as exc:
                raise _shifted(exc, done.rows) from None
            yield columns, warnings, n_rows, bytes_read
        return
    handle = open_input(source)
    try:
        for header, rows in iter_csv_chunks(handle, chunk_rows=chunk_rows):
            if not rows and done.rows == 0:
                break  # a header and no rows: refused below
            try:
                columns, warnings = predictor.columns_from_text(header, rows)
            except InputValidationError as exc:
                raise _shifted(exc, done.rows) from None
            yield columns, warnings, len(rows), _position(handle)
    finally:
        if isinstance(source, Path):
            handle.close()


def _position(handle: IO[bytes]) -> int:
    try:
        return handle.tell()
    except OSError:  # a pipe: no position to report
        return 0


def _parquet_chunks(
    path: Path, chunk_rows: int
) -> Iterator[tuple[dict[str, list[Any]], list[str], list[str], int, int]]:
    """Yield (cells per column, typed columns, column names, rows, bytes read) from Parquet."""
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
            yield cells, typed, names, batch.num_rows, size * done // total_rows
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
