"""Load a dataset (built-in, file or checksummed URL) into features, target and input schema."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from mlcontainer.errors import DatasetError
from mlcontainer.schema import MAX_LISTED_CATEGORIES, Feature, Schema

if TYPE_CHECKING:
    from collections.abc import Sequence

DEFAULT_DATASET = "wine"
FILE_SUFFIXES = (".csv", ".parquet", ".pq")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: Cell values read as missing in CSV files (after surrounding spaces are stripped), unless
#: ``--na-values`` gives another list. ``?`` is UCI's marker; an empty cell is always missing.
DEFAULT_NA_VALUES: tuple[str, ...] = (
    "",
    "?",
    "NA",
    "N/A",
    "n/a",
    "NaN",
    "nan",
    "NULL",
    "null",
    "None",
    "#N/A",
)


@dataclass(frozen=True)
class Dataset:
    """Features and target ready for training, with where they came from."""

    name: str
    source: str
    X: pd.DataFrame
    y: pd.Series
    schema: Schema
    fingerprint: str
    dropped_rows: int = 0
    notes: tuple[str, ...] = field(default=())
    #: Suspicious feature columns (likely leaks, IDs, constants), one line each.
    warnings: tuple[str, ...] = field(default=())
    dropped_columns: tuple[str, ...] = field(default=())

    def summary(self) -> dict[str, Any]:
        """Return a short JSON description for the manifest and report."""
        counts = self.y.value_counts()
        return {
            "name": self.name,
            "source": self.source,
            "rows": len(self.X),
            "features": self.X.shape[1],
            "target": self.schema.target,
            "class_counts": {str(c): int(counts.get(c, 0)) for c in self.schema.classes},
            "fingerprint": self.fingerprint,
            "dropped_rows": self.dropped_rows,
            "dropped_columns": list(self.dropped_columns),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset shipped by an installed package: nothing is downloaded."""

    name: str
    description: str
    loader: Callable[[], tuple[pd.DataFrame, str]]


def _sklearn_frame(name: str) -> tuple[pd.DataFrame, str]:
    from sklearn import datasets

    loaders = {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
        "digits": datasets.load_digits,
    }
    bunch = loaders[name](as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    if name != "digits":  # digits' labels are the digits themselves
        names = [str(n) for n in bunch.target_names]
        frame["target"] = [names[i] for i in frame["target"]]
    return frame, "target"


def _penguins_frame() -> tuple[pd.DataFrame, str]:
    import palmerpenguins

    return palmerpenguins.load_penguins(), "species"


BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    "iris": BuiltinDataset(
        "iris",
        "Iris flowers: 150 rows, 4 numeric features, 3 species",
        lambda: _sklearn_frame("iris"),
    ),
    "wine": BuiltinDataset(
        "wine",
        "Wine cultivars: 178 rows, 13 numeric features, 3 classes",
        lambda: _sklearn_frame("wine"),
    ),
    "breast_cancer": BuiltinDataset(
        "breast_cancer",
        "Breast cancer Wisconsin: 569 rows, 30 numeric features, 2 classes",
        lambda: _sklearn_frame("breast_cancer"),
    ),
    "digits": BuiltinDataset(
        "digits",
        "Handwritten digits: 1797 rows, 64 pixel features, 10 classes",
        lambda: _sklearn_frame("digits"),
    ),
    "penguins": BuiltinDataset(
        "penguins",
        "Palmer penguins: 344 rows, numeric + categorical features with missing values, 3 species",
        _penguins_frame,
    ),
}


def load_dataset(
    spec: str,
    *,
    target: str | None = None,
    sha256: str | None = None,
    cache_dir: Path | None = None,
    progressbar: Any = False,
    na_values: Sequence[str] = DEFAULT_NA_VALUES,
    drop: Sequence[str] = (),
) -> Dataset:
    """Load a built-in dataset by name, a local CSV/Parquet file, or an http(s) URL."""
    if spec in BUILTIN_DATASETS:
        if sha256 is not None:
            raise DatasetError(
                f"--sha256 applies to a downloaded or local file, not to the built-in dataset "
                f"{spec!r} (it ships inside an installed package): drop --sha256"
            )
        frame, default_target = BUILTIN_DATASETS[spec].loader()
        return prepare(
            frame,
            target=target or default_target,
            name=spec,
            source=f"builtin:{spec}",
            drop=drop,
        )
    if spec.startswith(("http://", "https://")):
        path = download(spec, sha256=sha256, cache_dir=cache_dir, progressbar=progressbar)
        source = spec
    elif looks_like_path(spec):
        path = Path(spec)
        source = str(path)
        if sha256 is not None:
            verify_sha256(path, sha256)
    else:
        raise DatasetError(
            f"unknown dataset {spec!r}: valid built-in names are {', '.join(BUILTIN_DATASETS)}; "
            f"or give a path to a {'/'.join(FILE_SUFFIXES)} file or an http(s) URL"
        )
    frame = read_table(path, na_values=na_values)
    if target is None:
        raise DatasetError(
            f"--target is required for {source}: name the column to predict; "
            f"columns: {_list(frame.columns)}"
        )
    return prepare(frame, target=target, name=path.stem, source=source, drop=drop)


def looks_like_path(spec: str) -> bool:
    """Tell whether a dataset argument names a file rather than a built-in dataset."""
    return "/" in spec or "\\" in spec or spec.lower().endswith(FILE_SUFFIXES)


def download(
    url: str, *, sha256: str | None, cache_dir: Path | None, progressbar: Any = False
) -> Path:
    """Download ``url`` once into ``cache_dir`` and verify its SHA-256; a bad file is not kept."""
    if not sha256:
        raise DatasetError(
            f"--sha256 is required for a URL dataset ({url}): give the file's SHA-256 "
            "(e.g. from `sha256sum FILE`) so a changed or tampered download is refused"
        )
    digest = _check_sha256(sha256)
    import pooch
    import requests

    folder = cache_dir or Path(pooch.os_cache("mlcontainer"))
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "dataset"
    try:
        fetched = pooch.retrieve(
            url,
            known_hash=f"sha256:{digest}",
            fname=f"{digest[:12]}-{name}",
            path=folder,
            progressbar=progressbar,
        )
    except ValueError as exc:  # pooch's hash mismatch; it has already deleted the download
        raise DatasetError(f"download of {url} was refused: {exc}".replace("\n", " ")) from None
    except requests.RequestException as exc:
        raise DatasetError(f"could not download {url}: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"could not save the download of {url} in {folder}: {exc}") from None
    return Path(fetched)


def _check_sha256(sha256: str) -> str:
    digest = sha256.strip().lower().removeprefix("sha256:")
    if not _SHA256.match(digest):
        raise DatasetError(f"--sha256 must be 64 hexadecimal characters, got {sha256!r}")
    return digest


def verify_sha256(path: Path, sha256: str) -> None:
    """Refuse a local file whose SHA-256 differs from the one given."""
    expected = _check_sha256(sha256)
    actual = file_sha256(path)
    if actual != expected:
        raise DatasetError(f"{path} has SHA-256 {actual}, expected {expected}")


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise DatasetError(f"dataset file not found: {path}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()


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
        raise DatasetError(f"cannot read {path}: {_first_line(exc)}") from None
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


def prepare(
    frame: pd.DataFrame, *, target: str, name: str, source: str, drop: Sequence[str] = ()
) -> Dataset:
    """Split a table into typed features and a class target, and derive its input schema."""
    from mlcontainer.audit import column_warnings

    frame = frame.rename(columns=str)
    if target not in frame.columns:
        raise DatasetError(
            f"target column {target!r} is not in {source}; columns: {_list(frame.columns)}"
        )
    frame = _drop_columns(frame, drop, target=target, source=source)
    missing_target = frame[target].isna()
    dropped = int(missing_target.sum())
    notes: list[str] = []
    if dropped:
        notes.append(f"dropped {dropped} rows with no value in target column {target!r}")
        frame = frame.loc[~missing_target]
    if frame.empty:
        raise DatasetError(f"target column {target!r} of {source} has no values")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DatasetError(f"{source} has no feature columns besides the target {target!r}")
    y = _to_labels(frame[target], target=target, source=source)
    X, schema_features = _type_features(features, source=source)
    classes = tuple(sorted(y.unique().tolist()))
    if len(classes) < 2:
        raise DatasetError(
            f"target column {target!r} of {source} has a single class ({classes[0]!r}); "
            "a classifier needs at least two"
        )
    X = X.reset_index(drop=True)
    y = y.reset_index(drop=True).rename(target)
    schema = Schema(features=tuple(schema_features), target=target, classes=classes)
    return Dataset(
        warnings=tuple(column_warnings(X, y, schema)),
        dropped_columns=tuple(dict.fromkeys(drop)),
        name=name,
        source=source,
        X=X,
        y=y,
        schema=schema,
        fingerprint=fingerprint(X, y),
        dropped_rows=dropped,
        notes=tuple(notes),
    )


def _drop_columns(
    frame: pd.DataFrame, drop: Sequence[str], *, target: str, source: str
) -> pd.DataFrame:
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        raise DatasetError(
            f"--drop names column(s) {_list(unknown)} that {source} does not have; "
            f"columns: {_list(frame.columns)}"
        )
    if target in drop:
        raise DatasetError(f"--drop names the target column {target!r}; it cannot be dropped")
    return frame.drop(columns=list(dict.fromkeys(drop)))


def _to_labels(column: pd.Series, *, target: str, source: str) -> pd.Series:
    """Return class labels as Python ints (integral numbers) or strings (anything else)."""
    if pd.api.types.is_bool_dtype(column):
        return column.map(lambda v: str(bool(v)).lower()).astype(object)
    if pd.api.types.is_numeric_dtype(column):
        values = column.to_numpy(dtype=float)
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            raise DatasetError(
                f"target column {target!r} of {source} holds non-integer numbers "
                f"({column.nunique()} distinct values): mlcontainer trains classifiers, so the "
                "target must be class labels (text or whole numbers)"
            )
        return pd.Series(values.astype(np.int64), index=column.index, dtype=object).map(int)
    return column.map(lambda v: str(v).strip()).astype(object)


def _type_features(features: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, list[Feature]]:
    columns: dict[str, pd.Series] = {}
    schema: list[Feature] = []
    for name in features.columns:
        col = features[name]
        nullable = bool(col.isna().any())
        if pd.api.types.is_bool_dtype(col):
            columns[name] = col.astype(float)
            schema.append(Feature(name, "boolean", nullable=nullable))
        elif pd.api.types.is_numeric_dtype(col):
            values = col.astype(float)
            if np.isinf(values.to_numpy()).any():
                raise DatasetError(f"column {name!r} of {source} holds infinite values")
            columns[name] = values
            schema.append(Feature(name, "numeric", nullable=nullable))
        elif (
            pd.api.types.is_object_dtype(col)
            or pd.api.types.is_string_dtype(col)
            or isinstance(col.dtype, pd.CategoricalDtype)
        ):
            text = col.astype(object).where(col.notna(), np.nan)
            text = text.map(lambda v: v if isinstance(v, float) else str(v).strip())
            columns[name] = text
            seen = sorted(set(text.dropna()))
            cats = tuple(seen) if len(seen) <= MAX_LISTED_CATEGORIES else None
            schema.append(Feature(name, "categorical", categories=cats, nullable=nullable))
        else:
            raise DatasetError(
                f"column {name!r} of {source} has type {col.dtype}, which mlcontainer cannot use; "
                "valid column types: numbers, booleans, text"
            )
    return pd.DataFrame(columns, index=features.index), schema


def fingerprint(X: pd.DataFrame, y: pd.Series) -> str:
    """Return a SHA-256 of the data's content (values and column names), not of its file."""
    digest = hashlib.sha256()
    digest.update("\x1f".join(X.columns).encode())
    digest.update(pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes())
    digest.update(pd.util.hash_pandas_object(y.astype(str), index=False).to_numpy().tobytes())
    return digest.hexdigest()


def _list(values: Sequence[Any] | pd.Index) -> str:
    return ", ".join(repr(str(v)) for v in values)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
