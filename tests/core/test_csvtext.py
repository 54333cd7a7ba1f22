"""The shared CSV parser: the delimiter, rows with their lines, strict quoting, header names."""

from __future__ import annotations

import io

import pytest

from mlcontainer.core.csvtext import CsvError, iter_rows, sniff_delimiter, unique_names


@pytest.mark.parametrize(
    ("text", "delimiter"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1,5;2,5;3\n", ";"),  # decimal commas, semicolon separators
        ("a\tb\n1\t2\n", "\t"),
        ("a|b\n1|2\n", "|"),
        ("single\n1\n2\n", ","),
        ('"x, y";2\n"z, w";3\n', ";"),
    ],
)
def test_the_delimiter_is_the_one_that_splits_every_line_alike(text: str, delimiter: str) -> None:
    assert sniff_delimiter(text.splitlines(keepends=True)) == delimiter


def test_rows_carry_the_line_they_start_on_past_blank_lines_and_quoted_breaks() -> None:
    data = b'a,b\n\n1,"two\nlines"\n3,x\n\n\n4,y\n'
    rows = list(iter_rows(io.BytesIO(data)))
    assert rows == [
        (1, ["a", "b"]),
        (3, ["1", "two\nlines"]),
        (5, ["3", "x"]),
        (8, ["4", "y"]),
    ]


def test_an_unterminated_quote_is_refused_at_the_line_it_opens() -> None:
    data = b'a,b\n1,x\n2,"never closed\n3,y\n4,z\n'
    with pytest.raises(CsvError) as info:
        list(iter_rows(io.BytesIO(data)))
    assert info.value.line == 3
    assert "never closed" in info.value.describe()
    assert info.value.describe().startswith("line 3: ")


def test_text_after_a_closing_quote_is_refused_with_its_line() -> None:
    with pytest.raises(CsvError, match=r"text follows a closing quote") as info:
        list(iter_rows(io.BytesIO(b'a,b\n1,"x"y\n')))
    assert info.value.line == 2


def test_a_header_with_empty_and_repeated_names_is_named_and_reported() -> None:
    names, notes = unique_names([" id ", "", "x", "x", "x"])
    assert names == ["id", "column_2", "x", "x_2", "x_3"]
    assert notes == [
        "column 2 has no name in the header: it is called 'column_2'",
        "the header names 'x' more than once: column 4 is 'x_2'",
        "the header names 'x' more than once: column 5 is 'x_3'",
    ]


@pytest.mark.parametrize("ending", ["\n", "\r\n", "\r"])
@pytest.mark.parametrize("at", [2, 9_991, 20_000])
def test_a_byte_that_is_not_utf8_is_named_by_its_own_line(ending: str, at: int) -> None:
    lines = [f"{i},text{i % 7}{ending}".encode() for i in range(20_000)]
    lines[at - 1] = f"{at - 1},caf".encode() + b"\xe9" + ending.encode()  # Latin-1 for é
    with pytest.raises(CsvError) as info:
        list(iter_rows(io.BytesIO(b"".join(lines))))
    assert info.value.line == at
    assert "byte 0xe9" in info.value.message
    assert "character" in info.value.message


def test_a_bad_byte_inside_a_quoted_field_names_the_line_it_stands_on() -> None:
    data = b'a,b\n1,"two\nlin\xffes"\n3,x\n'
    with pytest.raises(CsvError) as info:
        list(iter_rows(io.BytesIO(data)))
    assert info.value.line == 3
