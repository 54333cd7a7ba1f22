"""Read CSV to predict with Python's csv module: the reference reader, chunk by chunk.

Rows come from the shared parser (:func:`mlcontainer.core.csvtext.iter_rows`: blank lines
skipped, strict quoting, the line each row starts on); the first row is laid out by a
:data:`~mlcontainer.inference.layout.Resolver` (a header line, or data of the training
file's columns). :mod:`.arrowreader` must give the same rows and errors.
"""

from __future__ import annotations

import io
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mlcontainer.core.csvtext import CsvError, Row, iter_rows, unique_names
from mlcontainer.core.errors import InputValidationError
from mlcontainer.core.formats import open_bytes
from mlcontainer.inference.layout import Layout, Resolver


@dataclass(frozen=True)
class TextChunk:
    """Rows of a CSV as text cells, their column names and the line each row starts on."""

    names: list[str]
    rows: list[list[str]]
    lines: Sequence[int]
    #: What the layout said about the input (no header line), on the first chunk only.
    notes: list[str] = field(default_factory=list)


def header_layout(first: Row) -> Layout:
    """The layout of an input whose first row is always a header line."""
    return Layout(unique_names(first.cells)[0], first_is_data=False)


def read_csv_text(
    source: Path | IO[bytes] | bytes, *, delimiter: str = ",", resolve: Resolver = header_layout
) -> TextChunk:
    """Read a whole CSV (path, byte stream or bytes) into names and rows of text cells."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    chunks = list(iter_csv_chunks(source, chunk_rows=1 << 30, delimiter=delimiter, resolve=resolve))
    if len(chunks) == 1:
        return chunks[0]
    return TextChunk(
        chunks[0].names,
        [r for c in chunks for r in c.rows],
        [n for c in chunks for n in c.lines],
        chunks[0].notes,
    )


def iter_csv_chunks(
    source: Path | IO[bytes],
    *,
    chunk_rows: int,
    delimiter: str = ",",
    resolve: Resolver = header_layout,
) -> Generator[TextChunk, None, None]:
    """Yield up to ``chunk_rows`` rows at a time from a CSV, with clear errors.

    A header-only CSV yields one empty chunk; an empty input raises.
    """
    handle = open_input(source)
    try:
        yield from csv_text_chunks(
            handle, chunk_rows=chunk_rows, delimiter=delimiter, resolve=resolve
        )
    finally:
        if isinstance(source, Path):
            handle.close()


def csv_text_chunks(
    handle: IO[bytes],
    *,
    chunk_rows: int,
    delimiter: str = ",",
    resolve: Resolver = header_layout,
    layout: Layout | None = None,
    first_line: int = 1,
) -> Iterator[TextChunk]:
    """The chunks of :func:`iter_csv_chunks`, from an open byte stream.

    With ``layout`` given, ``handle`` holds only data rows (the rest of a file whose
    ``first_line - 1`` lines were read already), and no empty chunk is yielded.
    """
    rows = iter_rows(handle, delimiter=delimiter, first_line=first_line, bom=layout is None)
    try:
        chunk: list[list[str]] = []
        lines: list[int] = []
        notes: list[str] = []
        yielded = layout is not None
        if layout is None:
            pair = next(rows, None)
            if pair is None:
                raise InputValidationError(
                    "the input is empty: expected a CSV header line and rows"
                )
            first = Row(*pair)
            layout = resolve(first)
            notes = [layout.note] if layout.note else []
            if layout.first_is_data:
                chunk, lines = [first.cells], [first.line]
        for line, cells in rows:
            chunk.append(cells)
            lines.append(line)
            if len(chunk) >= chunk_rows:
                yield TextChunk(layout.names, chunk, lines, notes)
                yielded, chunk, lines, notes = True, [], [], []
        if chunk or not yielded:
            yield TextChunk(layout.names, chunk, lines, notes)
    except CsvError as exc:
        raise InputValidationError(f"cannot parse the input CSV: {exc.describe()}") from None


def open_input(source: Path | IO[bytes]) -> IO[bytes]:
    """Open a path for reading bytes, decompressed as its name says (a stream is returned as
    is), with clear errors."""
    if not isinstance(source, Path):
        return source
    return open_bytes(source, InputValidationError, what="input file")
