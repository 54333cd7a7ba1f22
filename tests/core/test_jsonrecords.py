"""JSON lists and JSON Lines read record by record, each with the line it starts on."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcontainer.core import jsonrecords
from mlcontainer.core.errors import DatasetError
from mlcontainer.core.jsonrecords import columns_of, iter_records

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8),
)
records = st.lists(st.dictionaries(st.text(min_size=1, max_size=4), scalars, max_size=4))


def _read(data: bytes, *, lines: bool = False) -> list[tuple[int, dict[str, object]]]:
    return list(iter_records(io.BytesIO(data), lines=lines, name="f", error=DatasetError))


@settings(max_examples=60, deadline=None)
@given(rows=records, indent=st.sampled_from([None, 0, 2]), block=st.integers(1, 64))
def test_a_json_list_streams_the_records_json_load_reads(
    rows: list[dict[str, object]], indent: int | None, block: int
) -> None:
    text = json.dumps(rows, indent=indent)
    old, jsonrecords.BLOCK_CHARS = jsonrecords.BLOCK_CHARS, block  # records cut across blocks
    try:
        read = _read(text.encode())
    finally:
        jsonrecords.BLOCK_CHARS = old
    assert [r for _, r in read] == json.loads(text)
    # Each record's line is the line its opening brace is on.
    lines = text.splitlines()
    for line, _ in read:
        assert lines[line - 1].lstrip(" [,").startswith("{")


def test_json_lines_skip_blank_lines_and_count_them() -> None:
    data = b'{"a": 1}\n\n{"a": 2, "b": "x"}\n'
    assert _read(data, lines=True) == [(1, {"a": 1}), (3, {"a": 2, "b": "x"})]


def test_columns_of_lists_names_in_order_and_fills_the_absent_with_none() -> None:
    names, values = columns_of([{"a": 1}, {"b": "x", "a": 2}])
    assert names == ["a", "b"]
    assert values == {"a": [1, 2], "b": [None, "x"]}


@pytest.mark.parametrize(
    ("data", "lines", "message"),
    [
        (b"", False, "the file is empty"),
        (b'{"a": 1}', False, r"line 1: a \.json file must hold a list of records.*name it \.jsonl"),
        (b'[{"a": 1},\n\n {"a": }]', False, r"line 3: not valid JSON \(Expecting value\)"),
        (b'[{"a": 1},\n 5]', False, "line 2: expected a record .*got a number"),
        (b'[\n{"a": {"b": 1}}]', False, "line 2: column 'a' holds an object; a value must be"),
        (b'[{"a": 1}', False, r"expected ',' or '\]' after record 1|not closed"),
        (b'[{"a": 1},', False, r"the list is not closed with '\]'"),
        (b'[{"a": 1}]\n{"b": 2}', False, r"line 2: unexpected text after the list's closing"),
        (b'[{"a": "\xe9"}]', False, "it is not UTF-8 text"),
        (b'{"a": 1}\n{"a": [1]}\n', True, "line 2: column 'a' holds a list"),
        (b'{"a": 1}\n{"a": \n', True, r"line 2: not valid JSON .*one JSON object a line"),
        (b"[1, 2]\n", True, "line 1: expected a record"),
    ],
)
def test_a_bad_file_is_refused_naming_the_line(data: bytes, lines: bool, message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        _read(data, lines=lines)
