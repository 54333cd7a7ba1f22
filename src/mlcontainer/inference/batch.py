"""Predict a file of any size in chunks: bounded memory, progress, output complete or absent."""

from __future__ import annotations

import errno
import operator
import os
import queue
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import IO, Any, TypeVar

from mlcontainer.core.atomic import atomic_output
from mlcontainer.core.errors import ConfigError, InputValidationError
from mlcontainer.core.formats import file_format
from mlcontainer.core.threads import one_native_thread
from mlcontainer.inference import arrowreader, decoding, parquetreader, recordreader
from mlcontainer.inference.arrowreader import ArrowChunk
from mlcontainer.inference.csvreader import TextChunk, iter_csv_chunks, open_input
from mlcontainer.inference.layout import Resolver
from mlcontainer.inference.output import (
    OUTPUT_FORMATS,
    ParquetSink,
    prediction_table,
    require_pyarrow,
    write_predictions,
)
from mlcontainer.inference.predictor import Predictor
from mlcontainer.inference.types import Decoded, Prediction

#: Rows read, validated and predicted at a time: large enough for vectorised prediction,
#: small enough that memory stays flat whatever the file's size.
DEFAULT_CHUNK_ROWS = 50_000
CSV_READERS = ("auto", "arrow", "stdlib")
T = TypeVar("T")

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
    csv_reader: str = "auto",
    workers: int | None = None,
    header: bool | None = None,
    columns: Sequence[str] | None = None,
) -> BatchResult:
    """Validate and predict ``source`` chunk by chunk, writing each chunk's rows as it goes.

    A path ``output`` is written to a temporary file beside it and renamed into place only
    once every row has been predicted: an interrupted or failed run leaves no output file
    (and an existing one untouched). A stream ``output`` (stdout) receives rows as they come.

    The next chunk is read and validated on a second thread while others are predicted and
    written; with ONNX, ``workers`` chunks (default: one per core) are predicted at once, so
    load the predictor with ``threads=1``. ``csv_reader``: ``arrow`` (pyarrow's parser,
    :mod:`.arrowreader`), ``stdlib`` (Python's csv module) or ``auto`` (arrow when
    pyarrow is installed).
    """
    if fmt not in OUTPUT_FORMATS:
        raise InputValidationError(
            f"unknown output format {fmt!r}; valid: {', '.join(OUTPUT_FORMATS)}"
        )
    if fmt == "parquet":
        require_pyarrow("Parquet output")
        if not isinstance(output, Path):
            raise InputValidationError(
                "Parquet output is written to a file, not a stream: add --output OUT.parquet"
            )
    # ONNX sessions run concurrently (onnxruntime releases the GIL): one chunk per core.
    # scikit-learn holds the GIL and its thread limits are process-wide: one chunk at a time.
    workers = max(1, workers or (os.cpu_count() or 1)) if predictor.runtime == "onnx" else 1
    chunks = iter_decoded(
        predictor,
        source,
        chunk_rows=chunk_rows,
        csv_reader=csv_reader,
        header=header,
        columns=columns,
    )
    try:
        if isinstance(output, Path):
            try:
                with atomic_output(output) as sink:
                    return _stream(predictor, chunks, sink, fmt, on_progress, workers)
            except OSError as exc:
                raise InputValidationError(
                    f"cannot write to {output}: {exc.strerror or exc}"
                ) from None
        try:
            return _stream(predictor, chunks, output, fmt, on_progress, workers)
        except OSError as exc:  # stdout on a full disk, a closed pipe
            raise InputValidationError(
                f"cannot write the predictions: {exc.strerror or exc}"
            ) from None
    except MemoryError:
        raise InputValidationError(
            "out of memory while reading the input; predict it in smaller chunks "
            "(--chunk-size) or split its longest rows"
        ) from None
    finally:
        chunks.close()


def iter_decoded(
    predictor: Predictor,
    source: Path | IO[bytes],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    csv_reader: str = "auto",
    header: bool | None = None,
    columns: Sequence[str] | None = None,
) -> Generator[tuple[Decoded, int], None, None]:
    """Validate ``source`` chunk by chunk by the rules of :func:`predict_file` (the same
    readers, layouts and errors), yielding (chunk, input bytes read so far); read ahead on a
    second thread. Closing the generator stops the reading."""
    if chunk_rows < 1:
        raise InputValidationError(f"--chunk-size must be at least 1 row, got {chunk_rows}")
    if csv_reader not in CSV_READERS:
        raise ConfigError(f"unknown CSV reader {csv_reader!r}; valid: {', '.join(CSV_READERS)}")
    if csv_reader == "arrow" and not arrowreader.available():
        raise ConfigError(
            "the arrow CSV reader needs pyarrow (`uv pip install 'mlcontainer[parquet]'`)"
        )
    fast = csv_reader == "arrow" or (csv_reader == "auto" and arrowreader.available())
    resolve = predictor.resolver(header=header, columns=columns)
    return _prefetched(_chunks(predictor, source, chunk_rows, fast_csv=fast, resolve=resolve))


def _write_all(sink: IO[bytes], data: bytes) -> None:
    """Write every byte: a buffered stdout on a full disk returns a short count, no error."""
    view = memoryview(data)
    while view:
        written = sink.write(view)
        if not written:
            raise OSError(errno.ENOSPC, "the output takes no more bytes (is the disk full?)")
        view = view[written:]


def _stream(
    predictor: Predictor,
    chunks: Iterator[tuple[Decoded, int]],
    sink: IO[bytes],
    fmt: str,
    on_progress: ProgressCallback | None,
    workers: int,
) -> BatchResult:
    """Predict and render up to ``workers`` chunks at once; write them in input order."""
    result = BatchResult()
    pending: deque[tuple[Future[Any], Decoded, int]] = deque()
    closing = b""
    parquet = ParquetSink(sink) if fmt == "parquet" else None

    def write_oldest() -> None:
        nonlocal closing
        future, decoded, bytes_read = pending.popleft()
        payload = future.result()
        n_rows = decoded.rows
        if result.rows == 0:
            result.warnings = decoded.warnings
        if parquet is not None:
            parquet.write(payload)
        else:
            piece, closing = _piece(payload, fmt, first=result.rows == 0)
            _write_all(sink, piece)
        result.rows += n_rows
        if on_progress is not None:
            on_progress(result.rows, bytes_read)

    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="mlcontainer-predict") as pool:
            try:
                start = 0
                for decoded, bytes_read in chunks:
                    job = pool.submit(predict_chunk, predictor, decoded, fmt, start)
                    pending.append((job, decoded, bytes_read))
                    start += decoded.rows
                    if len(pending) >= workers:
                        write_oldest()
                while pending:
                    write_oldest()
            finally:
                for future, *_ in pending:
                    future.cancel()
        if result.rows == 0:
            raise InputValidationError("no rows to predict: the input is empty (a header, no rows)")
    finally:
        if parquet is not None:  # after a failure too: its file is removed, never published
            parquet.close()
    _write_all(sink, closing)
    sink.flush()
    return result


def predict_chunk(predictor: Predictor, decoded: Decoded, fmt: str, start: int) -> Any:
    """Predict one chunk and render it (bytes; a pyarrow Table for Parquet)."""
    prediction = score_chunk(predictor, decoded, start)
    return prediction_table(prediction) if fmt == "parquet" else write_predictions(prediction, fmt)


def score_chunk(predictor: Predictor, decoded: Decoded, start: int) -> Prediction:
    """Predict one chunk of a file that starts at row ``start``; errors name file lines
    (Parquet: the file and its rows counted from 1)."""
    try:
        with _native_threads(predictor):
            return predictor.predict(decoded)
    except InputValidationError as exc:
        if decoded.lines is not None or decoded.origin is not None:
            raise  # already named by file line, or by file and row
        raise exc.renumbered(partial(operator.add, start)) from None


@contextmanager
def _native_threads(predictor: Predictor) -> Iterator[None]:
    """One OpenMP/BLAS thread for scikit-learn (as in training); ONNX sets its own threads."""
    if predictor.runtime != "sklearn":
        yield
        return
    # As in training: spinning OpenMP threads on a busy machine cost more than they give.
    with one_native_thread():
        yield


def _piece(payload: bytes, fmt: str, *, first: bool) -> tuple[bytes, bytes]:
    """Turn one chunk's complete CSV/JSON document into its part of the whole output, and
    the bytes that close the whole (JSON's ``]``: a list of records, or a regressor's
    ``{"predictions": [...]}``)."""
    if fmt == "csv":
        return (payload if first else payload.split(b"\n", 1)[1]), b""
    opening, closing = payload.index(b"[") + 1, payload.rindex(b"]")
    inner = payload[opening:closing]  # the items between the list's brackets
    return (payload[:opening] + inner if first else b", " + inner), payload[closing:]


def _chunks(
    predictor: Predictor,
    source: Path | IO[bytes],
    chunk_rows: int,
    *,
    fast_csv: bool,
    resolve: Resolver,
) -> Iterator[tuple[Decoded, int]]:
    """Yield (validated chunk, input bytes read so far), chunk by chunk.

    Validation errors name file lines (Parquet: the file, and rows counted from 1). A folder
    is read as Parquet partitions, in the order of their sorted names.
    """
    schema, rules, ignored = predictor.schema, predictor.rules, predictor.ignored
    found = file_format(source) if isinstance(source, Path) else None
    if isinstance(source, Path) and found is not None and found.kind in recordreader.KINDS:
        yield from recordreader.iter_decoded(
            source,
            found.kind,
            schema=schema,
            rules=rules,
            ignored=ignored,
            resolve=resolve,
            chunk_rows=chunk_rows,
        )
        return
    if isinstance(source, Path) and (source.is_dir() or (found and found.kind == "parquet")):
        read = 0  # the bytes of the partitions before this one
        for path in parquetreader.partition_files(source):
            parts = parquetreader.iter_chunks(path, chunk_rows)
            for decoded, bytes_read in parquet_decoded(predictor, parts, str(path)):
                yield decoded, read + bytes_read
            read += path.stat().st_size
        return
    # Any other name is read as CSV (stdin, a pipe, a .txt), compressed as its name says.
    handle = open_input(source)
    delimiter = predictor.recipe.delimiter
    chunks: Generator[ArrowChunk | TextChunk, None, None] = (
        arrowreader.iter_chunks(handle, chunk_rows=chunk_rows, delimiter=delimiter, resolve=resolve)
        if fast_csv
        else iter_csv_chunks(handle, chunk_rows=chunk_rows, delimiter=delimiter, resolve=resolve)
    )
    notes: list[str] = []
    try:
        for chunk in chunks:
            if isinstance(chunk, ArrowChunk):
                decoded = arrowreader.decode(schema, chunk, rules, ignored)
            else:
                notes += chunk.notes
                if not chunk.rows:
                    continue
                decoded = decoding.from_text(
                    schema, chunk.names, chunk.rows, rules, ignored, lines=chunk.lines
                )
                decoded = replace(decoded, warnings=[*notes, *decoded.warnings])
            notes = []
            yield decoded, _position(handle)
    finally:
        chunks.close()  # now, while the file is open, not whenever it is garbage-collected
        if isinstance(source, Path):
            handle.close()


def parquet_decoded(
    predictor: Predictor, parts: Iterator[parquetreader.ParquetChunk], name: str
) -> Iterator[tuple[Decoded, int]]:
    """Validate the chunks of the Parquet file ``name``; errors name it and its rows, counted
    from 1 (Parquet has no lines). Run here and on the workers of a cluster alike."""
    schema, rules, ignored = predictor.schema, predictor.rules, predictor.ignored
    for part in parts:
        origin = (name, part.first_row)
        try:
            warnings = decoding.check_columns(schema, part.names, part.rows, ignored)
            columns = decoding.from_cells(schema, part.cells, typed=part.typed, rules=rules)
        except InputValidationError as exc:
            raise exc.in_file(name, first=part.first_row) from None
        yield Decoded(columns, part.rows, warnings, origin=origin), part.bytes_read


def predict_table(predictor: Predictor, table: Any, *, name: str = "the batch") -> Any:
    """Validate and predict an Arrow table (a Spark or Dask batch) by the Parquet rules, one
    record batch at a time; return the predictions as :func:`.output.prediction_table` does.
    Errors name ``name`` and its rows counted from 1."""
    import pyarrow as pa

    def parts() -> Iterator[parquetreader.ParquetChunk]:
        first = 0
        for batch in table.to_batches():
            yield parquetreader.chunk_of(batch, first_row=first)
            first += batch.num_rows

    tables = [
        predict_chunk(predictor, decoded, "parquet", 0)
        for decoded, _ in parquet_decoded(predictor, parts(), name)
        if decoded.rows
    ]
    if not tables:
        raise InputValidationError(f"no rows to predict: {name} is empty")
    return pa.concat_tables(tables)


def _prefetched(items: Iterator[T], depth: int = 1) -> Generator[T, None, None]:
    """Run ``items`` on a background thread, at most ``depth`` items ahead of the consumer.

    Reading and validating the next chunk (pyarrow and NumPy release the GIL for most of it)
    then overlaps with predicting this one (onnxruntime releases it too) and writing it. An
    exception in ``items`` is raised here, in order; closing this generator stops the thread.
    """
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _offer(ready, ("item", item), stop):
                    return
            _offer(ready, ("end", None), stop)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            _offer(ready, ("error", exc), stop)
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="mlcontainer-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while worker.is_alive():
            with suppress(queue.Empty):
                ready.get_nowait()  # unblock a producer waiting to put
            worker.join(timeout=0.05)


def _offer(
    ready: queue.Queue[tuple[str, Any]], item: tuple[str, Any], stop: threading.Event
) -> bool:
    """Put ``item`` once there is room; False if the consumer stopped first."""
    while not stop.is_set():
        try:
            ready.put(item, timeout=0.05)
        except queue.Full:
            continue
        return True
    return False


def _position(handle: IO[bytes]) -> int:
    try:
        return handle.tell()
    except OSError:  # a pipe: no position to report
        return 0
