"""Read CSV with Python's csv module: the reference reader, chunk by chunk, with clear errors.

Blank lines are skipped and spaces after a delimiter ignored (as ``pandas.read_csv`` did);
the first non-blank row is the header. :mod:`.arrowreader` must give the same rows and errors.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import IO

from mlcontainer.core.errors import InputValidationError

#: A (header, text rows) pair: one chunk of a CSV file.
TextChunk = tuple[list[str], list[list[str]]]


def read_csv_text(source: Path | IO[bytes] | bytes) -> TextChunk:
    """Read a whole CSV (path, byte stream or bytes) into a header and rows of text cells."""
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    rows: list[list[str]] = []
    header: list[str] | None = None
    for chunk_header, chunk in iter_csv_chunks(source, chunk_rows=1 << 30):
        header = chunk_header
        rows.extend(chunk)
    if header is None:
        raise InputValidationError("the input is empty: expected a CSV header line and rows")
    return header, rows


def iter_csv_chunks(
    source: Path | IO[bytes], *, chunk_rows: int
) -> Generator[TextChunk, None, None]:
    """Yield (header, up to ``chunk_rows`` text rows) from a CSV, with clear errors.

    A header-only CSV yields one empty chunk; an empty input raises.
    """
    handle = open_input(source)
    try:
        yield from csv_text_chunks(handle, chunk_rows=chunk_rows)
    finally:
        if isinstance(source, Path):
            handle.close()


def csv_text_chunks(
    handle: IO[bytes],
    *,
    chunk_rows: int,
    header: list[str] | None = None,
    first_line: int = 1,
) -> Iterator[TextChunk]:
    """The chunks of :func:`iter_csv_chunks`, from an open byte stream.

    With ``header`` given, ``handle`` holds only data rows (the rest of a file whose
    ``first_line - 1`` lines were read already), and no empty chunk is yielded.
    """
    text = io.TextIOWrapper(handle, encoding="utf-8-sig" if header is None else "utf-8", newline="")
    reader = csv.reader(text, skipinitialspace=True, strict=False)
    try:
        if header is None:
            header = next((r for r in reader if r), None)
            if header is None:
                raise InputValidationError(
                    "the input is empty: expected a CSV header line and rows"
                )
            yielded = False
        else:
            yielded = True
        chunk: list[list[str]] = []
        for row in reader:
            if not row:
                continue
            chunk.append(row)
            if len(chunk) >= chunk_rows:
                yield header, chunk
                yielded = True
                chunk = []
        if chunk or not yielded:
            yield header, chunk
    except UnicodeDecodeError as exc:
        raise InputValidationError(
            f"cannot parse the input CSV: it is not UTF-8 text ({exc.reason} at byte "
            f"{exc.start} of a block)"
        ) from None
    except csv.Error as exc:
        raise InputValidationError(
            f"cannot parse the input CSV: {exc} (line {reader.line_num + first_line - 1})"
        ) from None
    finally:
        text.detach()


def open_input(source: Path | IO[bytes]) -> IO[bytes]:
    """Open a path for reading bytes (a stream is returned as is), with clear errors."""
    if not isinstance(source, Path):
        return source
    try:
        return source.open("rb")
    except FileNotFoundError:
        raise InputValidationError(f"input file not found: {source}") from None
    except IsADirectoryError:
        raise InputValidationError(f"cannot read {source}: it is a folder") from None
    except OSError as exc:
        raise InputValidationError(f"cannot read {source}: {exc.strerror or exc}") from None
