"""Read CSV chunks with pyarrow's C++ parser, where pyarrow is installed (``mlcontainer[parquet]``).

Batch prediction of a large CSV spends most of its time turning text into Python objects with
the stdlib ``csv`` module. pyarrow parses a chunk into columns in C++, and the columns become
typed NumPy arrays without a Python object per cell (a categorical column touches Python once
per distinct value). About 15x less time per row here.

The stdlib reader (:func:`mlcontainer.inference.csvreader.csv_text_chunks`) stays the reference, and
this one may only be faster, never different (the model gets the same columns, a bad file the
same error; only with several problems spread over chunks that blank lines cut differently
may another one be named first):

* a chunk holding a quote character, and everything after it, goes to the stdlib reader
  (quoting rules, and quoted line breaks that would cross a chunk boundary);
* a chunk pyarrow refuses (rows of another width, bytes that are not UTF-8) is parsed by the
  stdlib reader too, so its rows get the same padding or the same error;
* cells are converted with the same rules: a number pyarrow cannot read is read by Python's
  ``float()`` with the same messages, categories and booleans are stripped and matched in
  Python, once per distinct value.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import itertools
import math
from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.csvtext import MAX_LINE, Row
from mlcontainer.core.errors import InputValidationError, Problems
from mlcontainer.core.recipe import CellRules
from mlcontainer.core.schema import Feature, Schema
from mlcontainer.inference.coercion import (
    PLAIN,
    bool_from_text,
    coerce_text,
    report_non_finite,
    report_not_bool,
)
from mlcontainer.inference.csvreader import TextChunk, csv_text_chunks, header_layout
from mlcontainer.inference.decoding import check_columns, positions
from mlcontainer.inference.layout import Resolver
from mlcontainer.inference.types import Decoded

if TYPE_CHECKING:
    import pyarrow as pa

#: What a numeric cell may carry around its number and pyarrow strips (Python strips more;
#: a cell with other white space goes to ``float()``).
_BLANKS = " \t"


@dataclass(frozen=True)
class ArrowChunk:
    """Rows of a CSV chunk as pyarrow text columns, in the layout's column order."""

    header: list[str]
    table: pa.Table
    #: The file line each row starts on.
    lines: Sequence[int]
    notes: list[str] = field(default_factory=list)

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)


def available() -> bool:
    """Whether pyarrow is installed (this reader's only dependency beyond NumPy)."""
    return importlib.util.find_spec("pyarrow") is not None


_BOM = b"\xef\xbb\xbf"


def iter_chunks(
    handle: IO[bytes],
    *,
    chunk_rows: int,
    delimiter: str = ",",
    resolve: Resolver = header_layout,
) -> Generator[ArrowChunk | TextChunk, None, None]:
    """Yield the CSV in ``handle`` as chunks of up to ``chunk_rows`` rows (see the module doc).

    Each chunk is an :class:`ArrowChunk` or, where the stdlib reader took over, a
    :class:`~mlcontainer.inference.csvreader.TextChunk`. The layout's notes come with the first.
    """
    chunks = _chunks(handle, chunk_rows, delimiter, resolve)
    try:
        first = next(chunks, None)
        if first is None:
            return
        yield first
        yield from chunks
    finally:
        chunks.close()


def _chunks(
    handle: IO[bytes], chunk_rows: int, delimiter: str, resolve: Resolver
) -> Generator[ArrowChunk | TextChunk, None, None]:
    import pyarrow as pa
    import pyarrow.csv as pcsv

    consumed: list[bytes] = []
    first: Row | None = None
    while raw := handle.readline(MAX_LINE + 1):
        consumed.append(raw)
        if b'"' in raw or (len(raw) > MAX_LINE and not raw.endswith((b"\n", b"\r"))):
            break  # the stdlib reader says what is wrong, on which line
        try:
            text = raw.decode("utf-8-sig" if len(consumed) == 1 else "utf-8")
            cells = next(csv.reader([text], delimiter=delimiter, skipinitialspace=True), [])
        except (UnicodeDecodeError, csv.Error):
            break
        if cells:
            first = Row(len(consumed), cells)
            break
    if first is None:  # a quoted or undecodable first row, or none: the stdlib reader decides
        yield from csv_text_chunks(
            _Prefixed.reader(b"".join(consumed), handle),
            chunk_rows=chunk_rows,
            delimiter=delimiter,
            resolve=resolve,
        )
        return
    layout = resolve(first)
    notes = [layout.note] if layout.note else []
    pending = [consumed[-1].removeprefix(_BOM)] if layout.first_is_data else []
    line = first.line if layout.first_is_data else first.line + 1
    names = [f"{j}" for j in range(len(layout.names))]
    read = pcsv.ReadOptions(column_names=names, use_threads=True)
    parse = pcsv.ParseOptions(
        delimiter=delimiter, quote_char=False, escape_char=False, ignore_empty_lines=True
    )
    convert = pcsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        null_values=[],
    )
    while lines := pending + list(itertools.islice(handle, chunk_rows - len(pending))):
        pending = []
        data = b"".join(lines)
        if b'"' in data:  # quoting: the stdlib reader takes this chunk and the rest
            rest = csv_text_chunks(
                _Prefixed.reader(data, handle),
                chunk_rows=chunk_rows,
                delimiter=delimiter,
                layout=layout,
                first_line=line,
            )
            yield from _with_notes(rest, notes)
            return
        try:
            table = pcsv.read_csv(
                pa.py_buffer(data), read_options=read, parse_options=parse, convert_options=convert
            )
        except pa.ArrowInvalid:  # a short or long row, or not UTF-8: as the stdlib reader says
            rest = csv_text_chunks(
                io.BytesIO(data),
                chunk_rows=len(lines),
                delimiter=delimiter,
                layout=layout,
                first_line=line,
            )
            for chunk in _with_notes(rest, notes):
                notes = []
                yield chunk
        else:
            if table.num_rows:
                yield ArrowChunk(layout.names, table, _row_lines(data, lines, line), notes)
                notes = []
        line += len(lines)
    if notes:  # a header line alone, or only blank lines after it: the notes still count
        yield TextChunk(layout.names, [], [], notes)


def _with_notes(chunks: Iterator[TextChunk], notes: list[str]) -> Generator[TextChunk, None, None]:
    for i, chunk in enumerate(chunks):
        yield replace(chunk, notes=notes + chunk.notes) if i == 0 and notes else chunk


def _row_lines(data: bytes, raw: list[bytes], start: int) -> Sequence[int]:
    """The line each non-blank raw line starts on (pyarrow skips blank lines, as csv does)."""
    if not (data.startswith((b"\n", b"\r")) or b"\n\n" in data or b"\n\r" in data):
        return range(start, start + len(raw))  # no blank line: looked for in C, not per line
    blank = [i for i, b in enumerate(raw) if not b.strip(b"\r\n")]
    skip = set(blank)
    return [start + i for i in range(len(raw)) if i not in skip]


def decode(
    schema: Schema,
    chunk: ArrowChunk,
    rules: CellRules = PLAIN,
    ignored: Mapping[str, str] | None = None,
) -> Decoded:
    """Validate a chunk's text columns into typed columns (as :func:`.decoding.from_text`)."""
    try:
        names, position = positions(chunk.header)
        warnings = check_columns(schema, names, chunk.num_rows, ignored)
        problems = Problems()
        columns = {
            f.name: coerce(f, chunk.table.column(position[f.name]), problems, rules)
            for f in schema.features
        }
        problems.raise_if_any()
    except InputValidationError as exc:
        raise exc.at_lines(chunk.lines) from None
    return Decoded(columns, chunk.num_rows, [*chunk.notes, *warnings], lines=chunk.lines)


def coerce(
    feature: Feature, column: pa.ChunkedArray, problems: Problems, rules: CellRules = PLAIN
) -> np.ndarray:
    """Validate one text column into the typed array the stdlib path makes of the same cells.

    Only compute functions on arrays and NumPy views of Arrow buffers: pyarrow imports pandas
    (when installed) the first time it converts a Python scalar or calls ``to_numpy``, which
    would cost the batch run half a second and the memory of the training stack.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = column.combine_chunks()
    if feature.kind == "numeric":
        if feature.name in rules.unquote:  # quoted numbers: Python unwraps and reads them
            return coerce_text(feature, cells.to_pylist(), problems, rules)
        trimmed = pc.utf8_trim(cells, _BLANKS)
        missing = pc.invert(pc.cast(pc.utf8_length(trimmed), pa.bool_()))  # no Python scalar
        markers = sorted(rules.markers - {""})
        if markers:
            missing = pc.or_(missing, pc.is_in(trimmed, value_set=_strings(markers)))
        try:
            numbers = pc.cast(
                pc.if_else(missing, pa.nulls(len(trimmed), pa.string()), trimmed), pa.float64()
            )
        except pa.ArrowInvalid:  # a cell pyarrow cannot read: Python reads them all and says why
            return coerce_text(feature, cells.to_pylist(), problems, rules)
        parsed = _buffer(numbers, np.float64).copy()
        empty = _buffer(pc.cast(missing, pa.int8()), np.int8) != 0
        parsed[empty] = math.nan
        rows = np.flatnonzero(~np.isfinite(parsed) & ~empty).tolist()
        if rows:  # "nan" or "inf" written out, or a number beyond float range: errors
            texts = cells.to_pylist()
            report_non_finite(feature, parsed, rows, [texts[r] for r in rows], problems, rules)
        return parsed
    encoded = pc.dictionary_encode(cells)
    distinct: list[str] = encoded.dictionary.to_pylist()
    codes = _buffer(encoded.indices, np.int32)
    if feature.kind == "categorical":
        lookup = np.empty(len(distinct), dtype=object)
        lookup[:] = rules.texts(feature.name, distinct)
        out: np.ndarray = lookup[codes]
        return out
    flags = [bool_from_text(rules.text(feature.name, text)) for text in distinct]
    for row in np.flatnonzero(np.isin(codes, [i for i, f in enumerate(flags) if f is None])):
        report_not_bool(feature, int(row), distinct[codes[row]], problems)
    values = np.asarray([math.nan if f is None else f for f in flags], dtype=np.float64)
    result: np.ndarray = values[codes]
    return result


def _strings(values: Sequence[str]) -> pa.Array:
    """An Arrow string array built from its buffers: ``pa.array`` on Python strings would make
    pyarrow import pandas (see :func:`coerce`)."""
    import pyarrow as pa

    encoded = [v.encode() for v in values]
    offsets = np.cumsum([0, *map(len, encoded)]).astype(np.int32)
    buffers = [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(values), buffers)


def _buffer(array: pa.Array, dtype: type[np.generic]) -> np.ndarray:
    """The values of a fixed-width Arrow array as a read-only NumPy view (nulls not masked)."""
    width = np.dtype(dtype).itemsize
    data = array.buffers()[1]
    return np.frombuffer(data, dtype=dtype, count=len(array), offset=array.offset * width)


class _Prefixed(io.RawIOBase):
    """Bytes already read, then the rest of a stream: hands a file back to the stdlib reader."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix = memoryview(prefix)
        self._rest = rest

    @classmethod
    def reader(cls, prefix: bytes, rest: IO[bytes]) -> IO[bytes]:
        return io.BufferedReader(cls(prefix, rest))

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)
