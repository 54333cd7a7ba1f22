"""File types by name, and compressed files read back whole or refused with the file's name."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from mlcontainer.core.errors import DatasetError, InputValidationError
from mlcontainer.core.formats import CSV, FileFormat, check_file, file_format, open_bytes

zstd = pytest.importorskip("backports.zstd")  # compression.zstd from Python 3.14

ROWS = b"a,b\n" + b"".join(b"%d,x%d\n" % (i, i) for i in range(20_000))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("d.csv", FileFormat("csv")),
        ("D.CSV.GZ", FileFormat("csv", "gzip")),
        ("d.v2.csv.zst", FileFormat("csv", "zstd")),
        ("d.xlsx", FileFormat("excel")),
        ("d.json", FileFormat("json")),
        ("d.jsonl.gz", FileFormat("jsonl", "gzip")),
        ("d.ndjson", FileFormat("jsonl")),
        ("d.pq", FileFormat("parquet")),
        ("d.parquet.gz", None),  # Parquet compresses itself
        ("d.xlsx.zst", None),
        ("d.tar.gz", None),
        ("d.txt", None),
        ("d", None),
    ],
)
def test_file_format_reads_the_type_and_compression_from_the_name(
    name: str, expected: FileFormat | None
) -> None:
    assert file_format(name) == expected


def test_check_file_names_the_type_it_refuses_and_the_valid_ones(tmp_path: Path) -> None:
    path = tmp_path / "d.tar.gz"
    path.write_bytes(b"x")
    with pytest.raises(DatasetError, match=r"unsupported file type '\.tar\.gz'; valid: \.csv"):
        check_file(path, DatasetError)
    other = path.with_name("d.txt")
    other.write_bytes(b"a\n1\n")
    assert check_file(other, InputValidationError, default=CSV) == CSV  # predict reads it as CSV


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: None, "input file not found"),
        (lambda p: p.mkdir(), "it is a folder, not a file"),
    ],
)
def test_check_file_refuses_a_missing_file_or_a_folder(
    tmp_path: Path, make: object, message: str
) -> None:
    path = tmp_path / "d.csv"
    make(path)  # type: ignore[operator]
    with pytest.raises(InputValidationError, match=message):
        check_file(path, InputValidationError, what="input file")


@pytest.mark.parametrize(
    ("suffix", "compress"),
    [(".csv.gz", gzip.compress), (".csv.zst", zstd.compress), (".csv", bytes)],
)
def test_open_bytes_gives_back_the_uncompressed_bytes_line_by_line(
    tmp_path: Path, suffix: str, compress: object
) -> None:
    path = tmp_path / f"d{suffix}"
    path.write_bytes(compress(ROWS))  # type: ignore[operator]
    with open_bytes(path, DatasetError) as handle:
        first = handle.readline()
        rest = handle.read()
        # Progress compares tell() with the file's size: the compressed bytes read.
        assert handle.tell() == path.stat().st_size
    assert first + rest == ROWS


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("d.csv.gz", b"a,b\n1,2\n", "it is not valid gzip data"),
        ("d.csv.gz", gzip.compress(ROWS)[:-40], "it is not valid gzip data"),  # cut short
        ("d.csv.zst", b"a,b\n1,2\n", "it is not valid Zstandard data"),
        ("d.csv.zst", zstd.compress(ROWS)[:-40], "it is not valid Zstandard data"),
    ],
)
def test_bytes_that_do_not_decompress_name_the_file(
    tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with (
        pytest.raises(InputValidationError, match=rf"cannot read .*{name}: {message}"),
        open_bytes(path, InputValidationError) as handle,
    ):
        handle.read()
