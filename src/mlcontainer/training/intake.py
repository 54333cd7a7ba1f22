"""Read a CSV or Parquet file into a clean frame: stripped text, missing markers, numeric text."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from mlcontainer.core.errors import DatasetError
from mlcontainer.training.options import DEFAULT_NA_VALUES
from mlcontainer.training.sources import FILE_SUFFIXES


def read_table(path: Path, *, na_values: Sequence[str] = DEFAULT_NA_VALUES) -> pd.DataFrame:
    """Read a CSV or Parquet file with a clear error for every way it can fail.

    Spaces around values and column names are stripped, ``na_values`` (matched after
    stripping) become missing, and a text column whose values are then all numbers is numeric.
    """
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise DatasetError(
            f"cannot read {path}: unsupported file type {suffix or '(none)'!r}; "
            f"valid: {', '.join(FILE_SUFFIXES)}"
        )
    if not path.exists():
        raise DatasetError(f"dataset file not found: {path}")
    if path.is_dir():
        raise DatasetError(f"cannot read {path}: it is a folder, not a file")
    try:
        if suffix == ".csv":
            frame = pd.read_csv(
                path, skipinitialspace=True, na_values=list(na_values), keep_default_na=False
            )
        else:
            frame = _read_parquet(path)
    except pd.errors.EmptyDataError:
        raise DatasetError(f"cannot read {path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise DatasetError(f"cannot read {path}: {first_line(exc)}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    if frame.empty:
        raise DatasetError(f"cannot use {path}: it has a header but no data rows")
    return clean_text(frame, na_values=na_values)


def clean_text(frame: pd.DataFrame, *, na_values: Sequence[str]) -> pd.DataFrame:
    """Strip text cells and column names, blank out missing markers, and retype numeric text."""
    missing = {*na_values, ""}
    out = frame.rename(columns=lambda c: str(c).strip())
    for name in out.columns:
        col = out[name]
        if not (pd.api.types.is_object_dtype(col) or pd.api.types.is_string_dtype(col)):
            continue
        text = col.astype(object).map(lambda v: v.strip() if isinstance(v, str) else v)
        text = text.where(~text.isin(missing) & text.notna(), np.nan)
        numbers = pd.to_numeric(text, errors="coerce")
        if text.notna().any() and numbers.notna().sum() == text.notna().sum():
            out[name] = numbers
        else:
            out[name] = text
    return out


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        import pyarrow
    except ImportError:
        raise DatasetError(
            f"cannot read {path}: Parquet needs pyarrow; install it with "
            "`uv pip install 'mlcontainer[parquet]'` or use a CSV file"
        ) from None
    import pyarrow.lib

    try:
        return pd.read_parquet(path)
    except pyarrow.lib.ArrowException as exc:
        raise DatasetError(f"cannot read {path}: not a valid Parquet file ({exc})") from None


def first_line(exc: BaseException) -> str:
    """The first line of an exception's text (its type's name if it has none)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
