"""Which reader a file's name asks for, and the file's bytes with its compression undone.

``train`` and ``predict`` accept the same files: CSV, Parquet, Excel (``.xlsx``), JSON (a
list of records) and JSON Lines (one record a line); CSV and JSON may be compressed with gzip
(``.gz``) or Zstandard (``.zst``, Python 3.14's ``compression.zstd``, or its backport
``backports.zstd`` before 3.14: ``mlcontainer[formats]``).
"""

from __future__ import annotations

import gzip
import io
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from mlcontainer.core.errors import MlcontainerError

Kind = Literal["csv", "parquet", "excel", "json", "jsonl"]
Compression = Literal["gzip", "zstd"]

#: File types by the suffix that names them.
KINDS: dict[str, Kind] = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".xlsx": "excel",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
#: Compressions by suffix, after the type's own: ``data.csv.gz``.
COMPRESSIONS: dict[str, Compression] = {".gz": "gzip", ".zst": "zstd"}
#: The types that may be compressed (Parquet and Excel compress themselves).
COMPRESSIBLE: tuple[Kind, ...] = ("csv", "json", "jsonl")
#: The valid file types, as an error message lists them.
VALID = (
    ".csv, .parquet, .pq, .xlsx, .json, .jsonl, .ndjson; .csv, .json and .jsonl also as .gz or .zst"
)

#: Builds the error an edge reports (``DatasetError`` for train, ``InputValidationError`` for
#: predict) from a message.
ErrorType = Callable[[str], MlcontainerError]


@dataclass(frozen=True)
class FileFormat:
    """A file's type and its compression (None: none)."""

    kind: Kind
    compression: Compression | None = None


def file_format(path: Path | str) -> FileFormat | None:
    """The format a file's name says it has, or None when no reader takes it."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    compression = COMPRESSIONS.get(suffixes[-1]) if suffixes else None
    if compression is not None:
        suffixes = suffixes[:-1]
    kind = KINDS.get(suffixes[-1]) if suffixes else None
    if kind is None or (compression is not None and kind not in COMPRESSIBLE):
        return None
    return FileFormat(kind, compression)


def type_name(path: Path | str) -> str:
    """The suffixes that name a file's type, as an error message shows them (``'.tar.gz'``)."""
    suffixes = Path(path).suffixes
    shown = (
        "".join(suffixes[-2:])
        if suffixes and suffixes[-1].lower() in COMPRESSIONS
        else (suffixes[-1] if suffixes else "(none)")
    )
    return repr(shown) if suffixes else shown


#: A file read as CSV.
CSV = FileFormat("csv")


def check_file(
    path: Path, error: ErrorType, *, what: str = "file", default: FileFormat | None = None
) -> FileFormat:
    """The format of an existing file; ``error`` says what is wrong.

    A name no reader takes is refused, or read as ``default`` when one is given.
    """
    found = file_format(path) or default
    if found is None:
        raise error(f"cannot read {path}: unsupported file type {type_name(path)}; valid: {VALID}")
    if not path.exists():
        raise error(f"{what} not found: {path}")
    if path.is_dir():
        raise error(f"cannot read {path}: it is a folder, not a file")
    return found


def open_bytes(path: Path, error: ErrorType, *, what: str = "file") -> IO[bytes]:
    """Open ``path`` for reading, decompressed as its name says.

    Bytes that are no valid gzip or Zstandard data raise ``error`` when they are read,
    naming the file, instead of the decompressor's own exception.
    """
    found = file_format(path)
    compression = found.compression if found is not None else None
    try:
        raw = path.open("rb")
    except FileNotFoundError:
        raise error(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise error(f"cannot read {path}: it is a folder, not a file") from None
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from None
    if compression is None:
        return raw
    if compression == "gzip":
        inner: Any = gzip.GzipFile(fileobj=raw, mode="rb")
        corrupt: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error)
    else:
        zstd = _zstd()
        if zstd is None:
            raw.close()
            raise error(
                f"cannot read {path}: Zstandard needs backports.zstd before Python 3.14 "
                "(install mlcontainer[formats])"
            )
        inner, corrupt = zstd.ZstdFile(raw, mode="rb"), (zstd.ZstdError, OSError, EOFError)
    what = "gzip" if compression == "gzip" else "Zstandard"
    return _Reader(
        _Decompressed(inner, corrupt, f"{path}: it is not valid {what} data", error), raw
    )


def _zstd() -> Any:
    """The Zstandard module (the standard library's from 3.14), or None when it is missing."""
    if sys.version_info >= (3, 14):
        from compression import zstd  # type: ignore[import-not-found, unused-ignore]

        return zstd
    try:
        from backports import zstd  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        return None
    return zstd


class _Reader(io.BufferedReader):
    """Decompressed bytes, buffered; ``tell()`` is how far into the compressed file reading
    got, which is what a progress display compares with the file's size."""

    def __init__(self, stream: _Decompressed, compressed: IO[bytes]) -> None:
        super().__init__(stream, 1 << 16)
        self._compressed = compressed

    def tell(self) -> int:
        return self._compressed.tell()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._compressed.close()


class _Decompressed(io.RawIOBase):
    """A decompressing stream whose corrupt data raises the edge's error, with the file's name."""

    def __init__(
        self,
        inner: IO[bytes],
        corrupt: tuple[type[BaseException], ...],
        what: str,
        error: ErrorType,
    ) -> None:
        self._inner = inner
        self._corrupt = corrupt
        self._what = what
        self._error = error

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        try:
            data = self._inner.read(len(buffer))
        except self._corrupt as exc:
            raise self._error(f"cannot read {self._what} ({exc})") from None
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()
