"""Read the records of a JSON file (a list of objects) or a JSON Lines file (one a line).

Both are streamed: a JSON list is decoded record by record from blocks of text, so memory
holds one block and the records not yet taken, whatever the file's size. Each record comes
with the line it starts on (counted from 1), and every refusal names that line: text that
is not JSON, a record that is no object, a value that is a list or an object.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Generator, Iterable, Iterator
from typing import IO, Any

from mlcontainer.core.formats import ErrorType

#: A record: column name -> number, text, true/false or null.
Record = dict[str, Any]
#: Characters of text decoded at a time from a JSON list.
BLOCK_CHARS = 1 << 20
_SPACE = re.compile(r"[ \t\n\r]*")
_SCALARS = (str, int, float, bool, type(None))


def iter_records(
    handle: IO[bytes], *, lines: bool, name: str, error: ErrorType
) -> Generator[tuple[int, Record], None, None]:
    """Yield ``(line, record)`` from a JSON list (``lines=False``) or JSON Lines file.

    ``name`` is the file as messages name it; ``error`` builds the edge's error.
    """
    text = io.TextIOWrapper(handle, encoding="utf-8-sig", newline="")
    values = _json_lines(text, name, error) if lines else _json_list(text, name, error)
    try:
        for line, value in values:
            yield line, _record(value, line, name, error)
    except UnicodeDecodeError as exc:
        raise error(f"cannot read {name}: it is not UTF-8 text ({exc.reason})") from None
    finally:
        text.detach()  # the caller closes the file


def columns_of(records: Iterable[Record]) -> tuple[list[str], dict[str, list[Any]]]:
    """The column names (in the order they first appear) and each column's values; a record
    without a column has ``None`` (missing) there."""
    rows = list(records)
    names = list(dict.fromkeys(key for record in rows for key in record))
    return names, {n: [record.get(n) for record in rows] for n in names}


def _record(value: Any, line: int, name: str, error: ErrorType) -> Record:
    if not isinstance(value, dict):
        raise error(
            f"cannot read {name}: line {line}: expected a record (an object of column "
            f'values, {{"column": value, ...}}), got {_kind(value)}'
        )
    for key, cell in value.items():
        if not isinstance(cell, _SCALARS):
            raise error(
                f"cannot read {name}: line {line}: column {key!r} holds {_kind(cell)}; a value "
                "must be a number, text, true/false or null"
            )
    return value


def _kind(value: Any) -> str:
    kinds = {dict: "an object", list: "a list", str: "text", bool: "true/false"}
    return kinds.get(type(value), "null" if value is None else "a number")


def _json_lines(text: IO[str], name: str, error: ErrorType) -> Iterator[tuple[int, Any]]:
    for number, raw in enumerate(text, start=1):
        if not raw.strip():
            continue  # blank lines (a trailing one, above all) hold no record
        try:
            yield number, json.loads(raw)
        except json.JSONDecodeError as exc:
            raise error(
                f"cannot read {name}: line {number}: not valid JSON ({exc.msg}, column "
                f"{exc.colno}); a .jsonl file holds one JSON object a line"
            ) from None


class _ListReader:
    """Decodes the items of one JSON list from text read in blocks, counting lines."""

    def __init__(self, text: IO[str], name: str, error: ErrorType) -> None:
        self._text = text
        self._name = name
        self._error = error
        self.buffer = ""
        self.pos = 0
        self.line = 1
        self.ended = False

    def more(self) -> bool:
        """Read another block after what is not yet consumed; False at the end of the file."""
        block = "" if self.ended else self._text.read(BLOCK_CHARS)
        self.ended = not block
        self.buffer, self.pos = self.buffer[self.pos :] + block, 0
        return bool(block)

    def skip_space(self) -> str:
        """Skip white space; return the next character ("" at the end of the file)."""
        while True:
            end = _SPACE.match(self.buffer, self.pos).end()  # type: ignore[union-attr]
            self.line += self.buffer.count("\n", self.pos, end)
            self.pos = end
            if self.pos < len(self.buffer) or not self.more():
                return self.buffer[self.pos : self.pos + 1]

    def fail(self, message: str, line: int | None = None) -> Exception:
        return self._error(f"cannot read {self._name}: line {line or self.line}: {message}")

    def value(self) -> Any:
        """Decode the value at the current position (reading more text while it is cut)."""
        decoder = json.JSONDecoder()
        while True:
            try:
                value, end = decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                if self.more():
                    continue
                line = self.line + self.buffer.count("\n", self.pos, exc.pos)
                raise self.fail(f"not valid JSON ({exc.msg})", line) from None
            if end == len(self.buffer) and self.more():
                continue  # a number cut at the block's end: decode it whole
            self.line += self.buffer.count("\n", self.pos, end)
            self.pos = end
            return value


def _json_list(text: IO[str], name: str, error: ErrorType) -> Iterator[tuple[int, Any]]:
    reader = _ListReader(text, name, error)
    reader.more()
    first = reader.skip_space()
    if not first:
        raise error(f"cannot read {name}: the file is empty")
    if first != "[":
        hint = "; a file of one object a line is JSON Lines: name it .jsonl" if first == "{" else ""
        raise reader.fail(
            'a .json file must hold a list of records, [{"column": value, ...}, ...]' + hint
        )
    reader.pos += 1
    count = 0
    while True:
        char = reader.skip_space()
        if not char:
            raise reader.fail("the list is not closed with ']'")
        if char == "]":
            break
        if count:
            if char != ",":
                raise reader.fail(f"expected ',' or ']' after record {count}, got {char!r}")
            reader.pos += 1
            if not reader.skip_space():
                raise reader.fail("the list is not closed with ']'")
        line = reader.line
        yield line, reader.value()
        count += 1
    reader.pos += 1
    if reader.skip_space():
        raise reader.fail("unexpected text after the list's closing ']'")
