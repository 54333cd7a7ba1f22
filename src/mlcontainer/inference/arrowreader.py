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
from collections.abc import Generator
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.errors import Problems
from mlcontainer.core.schema import Feature, Schema
from mlcontainer.inference.coercion import (
    bool_from_text,
    coerce_text,
    report_non_finite,
    report_not_bool,
)
from mlcontainer.inference.csvreader import TextChunk, csv_text_chunks
from mlcontainer.inference.decoding import check_columns, positions
from mlcontainer.inference.types import Decoded

if TYPE_CHECKING:
    import pyarrow as pa

#: What a numeric cell may carry around its number and pyarrow strips (Python strips more;
#: a cell with other white space goes to ``float()``).
_BLANKS = " \t"


@dataclass(frozen=True)
class ArrowChunk:
    """Rows of a CSV chunk as pyarrow text columns, in header order."""

    header: list[str]
    table: pa.Table

    @property
    def num_rows(self) -> int:
        return int(self.table.num_rows)


def available() -> bool:
    """Whether pyarrow is installed (this reader's only dependency beyond NumPy)."""
    return importlib.util.find_spec("pyarrow") is not None


def iter_chunks(
    handle: IO[bytes], *, chunk_rows: int
) -> Generator[ArrowChunk | TextChunk, None, None]:
    """Yield the CSV in ``handle`` as chunks of up to ``chunk_rows`` rows (see the module doc).

    Each chunk is an :class:`ArrowChunk` or, where the stdlib reader took over, a
    ``(header, text rows)`` pair as :func:`~mlcontainer.inference.csvreader.csv_text_chunks`
    yields.
    """
    import pyarrow as pa
    import pyarrow.csv as pcsv

    consumed: list[bytes] = []
    header: list[str] | None = None
    for raw in handle:
        consumed.append(raw)
        if b'"' in raw:
            break
        try:
            text = raw.decode("utf-8-sig" if len(consumed) == 1 else "utf-8")
        except UnicodeDecodeError:
            break
        row = next(csv.reader([text], skipinitialspace=True, strict=False), [])
        if row:
            header = row
            break
    if header is None:  # a quoted or undecodable header, or none: the stdlib reader decides
        yield from csv_text_chunks(
            _Prefixed.reader(b"".join(consumed), handle), chunk_rows=chunk_rows
        )
        return
    line = len(consumed) + 1
    names = [f"{j}" for j in range(len(header))]
    read = pcsv.ReadOptions(column_names=names, use_threads=True)
    parse = pcsv.ParseOptions(quote_char=False, escape_char=False, ignore_empty_lines=True)
    convert = pcsv.ConvertOptions(
        column_types=dict.fromkeys(names, pa.string()),
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        null_values=[],
    )
    while lines := list(itertools.islice(handle, chunk_rows)):
        data = b"".join(lines)
        if b'"' in data:  # quoting: the stdlib reader takes this chunk and the rest
            yield from csv_text_chunks(
                _Prefixed.reader(data, handle),
                chunk_rows=chunk_rows,
                header=header,
                first_line=line,
            )
            return
        try:
            table = pcsv.read_csv(
                pa.py_buffer(data), read_options=read, parse_options=parse, convert_options=convert
            )
        except pa.ArrowInvalid:  # a short or long row, or not UTF-8: as the stdlib reader says
            yield from csv_text_chunks(
                io.BytesIO(data), chunk_rows=len(lines), header=header, first_line=line
            )
        else:
            if table.num_rows:
                yield ArrowChunk(header, table)
        line += len(lines)


def decode(schema: Schema, chunk: ArrowChunk) -> Decoded:
    """Validate a chunk's text columns into typed columns (as :func:`.decoding.from_text`)."""
    names, position = positions(chunk.header)
    warnings = check_columns(schema, names, chunk.num_rows)
    problems = Problems()
    columns = {
        f.name: coerce(f, chunk.table.column(position[f.name]), problems) for f in schema.features
    }
    problems.raise_if_any()
    return Decoded(columns, chunk.num_rows, warnings)


def coerce(feature: Feature, column: pa.ChunkedArray, problems: Problems) -> np.ndarray:
    """Validate one text column into the typed array the stdlib path makes of the same cells.

    Only compute functions on arrays and NumPy views of Arrow buffers: pyarrow imports pandas
    (when installed) the first time it converts a Python scalar or calls ``to_numpy``, which
    would cost the batch run half a second and the memory of the training stack.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    cells = column.combine_chunks()
    if feature.kind == "numeric":
        trimmed = pc.utf8_trim(cells, _BLANKS)
        empty_mask = pc.invert(pc.cast(pc.utf8_length(trimmed), pa.bool_()))
        try:
            numbers = pc.cast(
                pc.if_else(empty_mask, pa.nulls(len(trimmed), pa.string()), trimmed), pa.float64()
            )
        except pa.ArrowInvalid:  # a cell pyarrow cannot read: Python reads them all and says why
            return coerce_text(feature, cells.to_pylist(), problems)
        parsed = _buffer(numbers, np.float64).copy()
        empty = _buffer(pc.utf8_length(trimmed), np.int32) == 0
        parsed[empty] = math.nan
        rows = np.flatnonzero(~np.isfinite(parsed) & ~empty).tolist()
        if rows:  # "nan" or "inf" written out, or a number beyond float range: errors
            texts = cells.to_pylist()
            report_non_finite(feature, parsed, rows, [texts[r] for r in rows], problems)
        return parsed
    encoded = pc.dictionary_encode(cells)
    distinct: list[str] = encoded.dictionary.to_pylist()
    codes = _buffer(encoded.indices, np.int32)
    if feature.kind == "categorical":
        lookup = np.empty(len(distinct), dtype=object)
        lookup[:] = [text.strip() or None for text in distinct]
        out: np.ndarray = lookup[codes]
        return out
    flags = [bool_from_text(text) for text in distinct]
    for row in np.flatnonzero(np.isin(codes, [i for i, f in enumerate(flags) if f is None])):
        report_not_bool(feature, int(row), distinct[codes[row]], problems)
    values = np.asarray([math.nan if f is None else f for f in flags], dtype=np.float64)
    result: np.ndarray = values[codes]
    return result


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
