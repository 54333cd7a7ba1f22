"""A dataset ready for training: typed features, class labels, the input schema, a fingerprint."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlcontainer.core.errors import DatasetError
from mlcontainer.core.schema import MAX_LISTED_CATEGORIES, Feature, Schema
from mlcontainer.training.audit import column_warnings
from mlcontainer.training.intake import read_table
from mlcontainer.training.options import DEFAULT_NA_VALUES
from mlcontainer.training.sources import (
    BUILTIN_DATASETS,
    FILE_SUFFIXES,
    download,
    looks_like_path,
    verify_sha256,
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


def prepare(
    frame: pd.DataFrame, *, target: str, name: str, source: str, drop: Sequence[str] = ()
) -> Dataset:
    """Split a table into typed features and a class target, and derive its input schema."""
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
