"""CSV as text: the delimiter, rows with the file line each starts on, and column names.

The one CSV parser every part shares (training reads its file with it, prediction and the
server read rows with it; pyarrow's reader must agree with it). Blank lines are skipped,
spaces after a delimiter ignored, and quoting is strict: a quote that is never closed, or
text after a closing quote, is an error naming the line the field started on, never a
field that silently swallows the rest of the file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import IO, NamedTuple

#: Delimiters a file may use, in order of preference when the evidence is equal.
DELIMITERS = (",", ";", "\t", "|")
#: Lines read to tell the delimiter and whether the first row is a header.
SAMPLE_LINES = 50


class CsvError(ValueError):
    """A CSV file that cannot be parsed: what is wrong and the line it happened on."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line

    def describe(self) -> str:
        """``line 4: a quoted field ...`` (or the message alone)."""
        return f"line {self.line}: {self.message}" if self.line is not None else self.message


class Row(NamedTuple):
    """One row of a CSV file: the line it starts on (counted from 1) and its cells."""

    line: int
    cells: list[str]


def sniff_delimiter(lines: Sequence[str]) -> str:
    """Return the delimiter of the sample ``lines``: the candidate that splits every line into
    the same number (> 1) of fields; a comma when no candidate does."""
    sample = [line for line in lines if line.strip()]
    if not sample:
        return ","
    best, best_score = ",", 0.0
    for delimiter in DELIMITERS:
        try:
            widths = [len(r) for r in csv.reader(sample, delimiter=delimiter) if r]
        except csv.Error:
            continue
        if not widths or max(widths) < 2:
            continue
        common = max(set(widths), key=widths.count)
        score = widths.count(common) / len(widths) + (0.001 if delimiter == "," else 0.0)
        if score > best_score:
            best, best_score = delimiter, score
    return best


#: The longest line read (in characters): a 1 GiB file of one line took 7.3 GiB of memory
#: before Python gave up; the widest real rows are a few hundred kilobytes.
MAX_LINE = 16 * 1024 * 1024


def _bounded_lines(text: IO[str], first_line: int) -> Iterator[str]:
    """The lines of ``text``, refusing one longer than :data:`MAX_LINE` before reading it all,
    and one holding a byte that is not UTF-8 (``text`` decodes with ``surrogateescape``)."""
    number = first_line
    while line := text.readline(MAX_LINE + 1):
        if len(line) > MAX_LINE and not line.endswith(("\n", "\r")):
            raise CsvError(
                f"the line is longer than {MAX_LINE} characters; split the input into rows",
                line=number,
            )
        if not line.isascii():
            _check_utf8(line, number)
        yield line
        number += 1


def _check_utf8(line: str, number: int) -> None:
    """Refuse a line decoded with ``surrogateescape`` that holds an undecodable byte.

    Decoding strictly would fail on the block of text read ahead, lines before the row being
    parsed; checking each line names the line the byte is on.
    """
    try:
        line.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = ord(line[exc.start]) - 0xDC00  # surrogateescape keeps byte b as U+DC00 + b
        raise CsvError(
            f"it is not UTF-8 text: byte 0x{byte:02x} at character {exc.start + 1} of the "
            "line; save the file as UTF-8 (Latin-1 and Windows-1252 files are not)",
            line=number,
        ) from None


def iter_rows(
    handle: IO[bytes], *, delimiter: str = ",", first_line: int = 1, bom: bool = True
) -> Iterator[tuple[int, list[str]]]:
    """Yield the non-blank rows of a CSV byte stream as ``(line it starts on, cells)``.

    Plain tuples, not :class:`Row`: a named tuple's constructor cost a third of the reader's
    time on a million rows; ``Row(*pair)`` where the names help.

    ``first_line`` is the file line the stream starts at (the rest of a file whose earlier
    lines were read already); ``bom`` strips a UTF-8 byte-order mark (only at a file's start).
    Raises :class:`CsvError` for bytes that are not UTF-8 (naming the line they are on) and
    for malformed quoting.
    """
    text = io.TextIOWrapper(
        handle, encoding="utf-8-sig" if bom else "utf-8", errors="surrogateescape", newline=""
    )
    lines = _bounded_lines(text, first_line)
    reader = csv.reader(lines, delimiter=delimiter, skipinitialspace=True, strict=True)
    offset = first_line - 1
    last = 0  # the line the previous row (blank ones too) ended on
    try:
        for cells in reader:
            if cells:
                yield last + 1 + offset, cells
            last = reader.line_num
    except csv.Error as exc:
        raise CsvError(_quoting(str(exc)), line=last + 1 + offset) from None
    finally:
        text.detach()


def _quoting(message: str) -> str:
    if "unexpected end of data" in message or "EOF" in message:
        return (
            "a quoted field starts on this line and is never closed (the file ends inside "
            "it); close the quote or remove it"
        )
    if "expected after" in message:
        return (
            f"text follows a closing quote ({message}); a quoted field must end at a "
            "delimiter or the end of the line"
        )
    return message


def given_names(columns: Sequence[str], first: Row) -> list[str]:
    """The names given for a file's columns (``--columns``), one per column of its first row."""
    names = [c.strip() for c in columns]
    if len(names) != len(first.cells):
        raise CsvError(
            f"--columns gives {len(names)} names, but the input has {len(first.cells)} "
            f"columns (line {first.line}); give one name per column"
        )
    return unique_names(names)[0]


def positional_names(width: int) -> list[str]:
    """Names for the columns of a file without a header line: ``column_1`` ... (from 1)."""
    return [f"column_{j + 1}" for j in range(width)]


def unique_names(cells: Sequence[str]) -> tuple[list[str], list[str]]:
    """Column names from a header row, and one note per name that had to change.

    Names are stripped; an empty name becomes ``column_N`` (its position, from 1); a repeated
    name gets ``_2``, ``_3`` ... in the order it repeats. The same header always gives the
    same names, so a file read for prediction maps onto the training columns.
    """
    names: list[str] = []
    notes: list[str] = []
    seen: set[str] = set()
    for j, cell in enumerate(cells):
        name = str(cell).strip()
        if not name:
            name = f"column_{j + 1}"
            notes.append(f"column {j + 1} has no name in the header: it is called {name!r}")
        base, k = name, 1
        while name in seen:
            k += 1
            name = f"{base}_{k}"
        if name != base:
            notes.append(f"the header names {base!r} more than once: column {j + 1} is {name!r}")
        seen.add(name)
        names.append(name)
    return names, notes
