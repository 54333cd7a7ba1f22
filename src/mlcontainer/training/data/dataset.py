"""A dataset ready for training: typed features, class labels, the input schema, a fingerprint."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from mlcontainer.core.cells import DEFAULT_NA_VALUES
from mlcontainer.core.dates import detect_format
from mlcontainer.core.errors import DatasetError
from mlcontainer.core.recipe import IntakeRecipe
from mlcontainer.core.schema import MAX_LISTED_CATEGORIES, Feature, Schema, Task
from mlcontainer.core.suggest import did_you_mean
from mlcontainer.training.data.audit import Finding, audit_columns
from mlcontainer.training.data.intake import read_table
from mlcontainer.training.data.sources import (
    BUILTIN_DATASETS,
    check_spec,
    download,
    is_url,
    verify_sha256,
)


@dataclass(frozen=True)
class ClassRule:
    """Which classes training keeps: those with enough rows to split and cross-validate."""

    cv: int
    test_size: float
    #: Rows a class needs, as given (``--min-class-rows``); None: what the split needs.
    min_rows: int | None = None

    def needed(self, cv: int | None = None) -> int:
        """Rows a class needs: after the test split, ``cv`` rows to fill every fold."""
        if self.min_rows is not None and cv is None:
            return self.min_rows
        return max(2, math.ceil((cv or self.cv) / (1 - self.test_size)))

    def advice(self, counts: Sequence[int]) -> str:
        """What would keep two classes: the largest ``--cv`` that does, or more rows."""
        second = sorted(counts, reverse=True)[1] if len(counts) > 1 else 0
        cv = max((k for k in range(2, self.cv) if self.needed(k) <= second), default=None)
        if cv is not None:
            return f"--cv {cv} keeps a second class (or set --min-class-rows)"
        return "every class needs at least 2 rows, one to train on and one to test; add rows"


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
    #: How the file was read: what prediction applies to its rows.
    recipe: IntakeRecipe = field(default_factory=IntakeRecipe)
    #: Classes left out for having too few rows, with their row counts.
    excluded_classes: dict[str, int] = field(default_factory=dict)
    #: A line to show before training starts (also among the notes): the guessed task
    #: may be the wrong one, and the option that changes it.
    headline: str | None = None

    def summary(self) -> dict[str, Any]:
        """Return a short JSON description for the manifest and report."""
        counts = self.y.value_counts() if not self.schema.is_regression else pd.Series()
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
            "excluded_classes": dict(self.excluded_classes),
            "notes": list(self.notes),
            "target_summary": self.target_summary(),
        }

    def target_summary(self) -> dict[str, float] | None:
        """Mean, spread and range of a regression target (None for classes)."""
        if not self.schema.is_regression:
            return None
        values = self.y.to_numpy(dtype=float)
        return {
            "mean": float(values.mean()),
            "std": float(values.std()),
            "min": float(values.min()),
            "max": float(values.max()),
            "median": float(np.median(values)),
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
    keep: Sequence[str] = (),
    header: bool | None = None,
    columns: Sequence[str] | None = None,
    class_rule: ClassRule | None = None,
    task: str = "auto",
) -> Dataset:
    """Load a built-in dataset by name, a local CSV/Parquet file, or an http(s) URL.

    ``header`` and ``columns`` say how to read a CSV's first line (default: guessed);
    classes with too few rows for ``class_rule`` are left out, with a warning.
    """
    if spec in BUILTIN_DATASETS:
        if sha256 is not None:
            raise DatasetError(
                f"--sha256 applies to a downloaded or local file, not to the built-in dataset "
                f"{spec!r} (it ships inside an installed package): drop --sha256"
            )
        frame, default_target = BUILTIN_DATASETS[spec].loader()
        recipe = IntakeRecipe(
            source_format="builtin",
            columns=[str(c) for c in frame.columns],
            na_values=list(dict.fromkeys(("", *na_values))),
        )
        return prepare(
            frame,
            target=target or default_target,
            name=spec,
            source=f"builtin:{spec}",
            drop=drop,
            keep=keep,
            recipe=recipe,
            class_rule=class_rule,
            task=task,
        )
    check_spec(spec)
    if is_url(spec):
        path = download(spec, sha256=sha256, cache_dir=cache_dir, progressbar=progressbar)
        source = spec
    else:
        path = Path(spec)
        source = str(path)
        if sha256 is not None:
            verify_sha256(path, sha256)
    table = read_table(path, na_values=na_values, header=header, columns=columns)
    frame = table.frame
    if target is None:
        raise DatasetError(
            f"--target is required for {source}: name the column to predict; "
            f"columns: {_list(frame.columns)}"
        )
    return prepare(
        frame,
        target=target,
        name=path.stem,
        source=source,
        drop=drop,
        keep=keep,
        recipe=table.recipe,
        notes=table.notes,
        class_rule=class_rule,
        task=task,
    )


def prepare(
    frame: pd.DataFrame,
    *,
    target: str,
    name: str,
    source: str,
    drop: Sequence[str] = (),
    keep: Sequence[str] = (),
    recipe: IntakeRecipe | None = None,
    notes: Sequence[str] = (),
    class_rule: ClassRule | None = None,
    task: str = "auto",
) -> Dataset:
    """Split a table into typed features and a target, and derive its schema.

    ``task`` is classification, regression, or auto (see :func:`choose_task`). Columns that
    look like leaks or IDs are left out unless ``keep`` names them.
    """
    frame = frame.rename(columns=str)
    recipe = recipe or IntakeRecipe(source_format="frame", columns=list(frame.columns))
    if target not in frame.columns:
        hint = ""
        if not recipe.header and recipe.source_format == "csv":
            hint = " (the file has no header line: its columns are named column_1, ...)"
        raise DatasetError(
            f"target column {target!r} is not in {source}{hint}"
            f"{did_you_mean(target, frame.columns)}; columns: {_list(frame.columns)}"
        )
    frame = _drop_columns(frame, drop, target=target, source=source)
    _check_kept(frame, keep, target=target, source=source)
    missing_target = frame[target].isna()
    dropped = int(missing_target.sum())
    notes = list(notes)
    if dropped:
        notes.append(f"dropped {dropped} rows with no value in target column {target!r}")
        frame = frame.loc[~missing_target]
    if frame.empty:
        raise DatasetError(f"target column {target!r} of {source} has no values")
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DatasetError(f"{source} has no feature columns besides the target {target!r}")
    chosen, why = choose_task(frame[target], task, target=target, source=source)
    if task == "auto":
        notes.append(why)
    doubtful = task == "auto" and chosen == "classification" and _many_whole_numbers(frame[target])
    headline = why if doubtful else None
    excluded: dict[Any, int] = {}
    if chosen == "regression":
        y = frame[target].astype(float)
        if not np.all(np.isfinite(y.to_numpy())):
            raise DatasetError(f"target column {target!r} of {source} holds infinite values")
    else:
        y = _to_labels(frame[target], target=target, source=source)
        excluded = _rare_classes(y, class_rule.needed()) if class_rule is not None else {}
        if class_rule is not None and excluded:
            features, y = _without_rare(features, y, excluded, class_rule, target, source, notes)
    X, schema_features = _type_features(features, source=source)
    classes: tuple[Any, ...] = ()
    if chosen == "classification":
        classes = tuple(sorted(y.unique().tolist()))
        if len(classes) < 2:
            raise DatasetError(
                f"target column {target!r} of {source} has a single class ({classes[0]!r}); "
                "a classifier needs at least two"
            )
    X = X.reset_index(drop=True)
    y = y.reset_index(drop=True).rename(target)
    schema = Schema(features=tuple(schema_features), target=target, classes=classes, task=chosen)
    notes.extend(_dates_note(schema))
    findings = audit_columns(X, y, schema)
    left_out: dict[str, str] = {
        f.column: f.kind for f in findings if f.leaves_out and f.column not in keep
    }
    X, schema = _leave_out(X, schema, left_out, findings, source=source)
    return Dataset(
        warnings=tuple(f.line(kept=f.column in keep) for f in findings),
        dropped_columns=tuple(dict.fromkeys(drop)),
        name=name,
        source=source,
        X=X,
        y=y,
        schema=schema,
        fingerprint=fingerprint(X, y),
        dropped_rows=dropped,
        notes=tuple(notes),
        recipe=recipe.model_copy(
            update={
                "target": target,
                "dropped": list(dict.fromkeys(drop)),
                "dates": schema.dates,
                "left_out": left_out,
            }
        ),
        excluded_classes={str(c): n for c, n in excluded.items()},
        headline=headline,
    )


#: A whole-number target is a quantity (regression) when it has more distinct values than
#: this, making up more than ``QUANTITY_SHARE`` of the rows: a price, a count, a year.
QUANTITY_VALUES = 20
QUANTITY_SHARE = 0.05


def choose_task(column: pd.Series, requested: str, *, target: str, source: str) -> tuple[Task, str]:
    """Return the task for a target column and one line saying which and why.

    Auto picks regression for a numeric target with non-integer values, or with more than
    20 distinct whole numbers making up more than 5% of the rows; classification otherwise
    (text, booleans, a few whole numbers: classes). A requested regression needs numbers.
    """
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if requested == "regression":
        if not numeric:
            bad = [v for v in column.astype(object).tolist() if not _is_number(v)][:5]
            raise DatasetError(
                f"--task regression needs a numeric target, and {target!r} of {source} holds "
                f"text such as {', '.join(map(repr, bad))}; use --task classification, or "
                "another target"
            )
        return "regression", "--task regression"
    if requested == "classification":
        return "classification", "--task classification"
    if not numeric:
        return "classification", (
            f"Task: classification (target {target!r} holds text or true/false values); "
            "use --task regression for a number"
        )
    values = column.to_numpy(dtype=float)
    distinct = int(column.nunique())
    whole = bool(np.all(values == np.round(values)))
    if not whole:
        return "regression", (
            f"Task: regression (target {target!r} holds non-integer numbers, {distinct} "
            "distinct values); use --task classification to treat them as classes"
        )
    if distinct > QUANTITY_VALUES and distinct > QUANTITY_SHARE * len(column):
        return "regression", (
            f"Task: regression (target {target!r} holds {distinct} distinct whole numbers: "
            f"more than {QUANTITY_VALUES} and more than {QUANTITY_SHARE:.0%} of the "
            f"{len(column)} rows); use --task classification to treat them as classes"
        )
    return "classification", (
        f"Task: classification (target {target!r} holds {distinct} distinct whole numbers, "
        "taken as classes); use --task regression to predict them as a number"
    )


def _leave_out(
    X: pd.DataFrame,
    schema: Schema,
    left_out: dict[str, str],
    findings: Sequence[Finding],
    *,
    source: str,
) -> tuple[pd.DataFrame, Schema]:
    """The features without those left out (likely leaks and IDs); none left is an error."""
    if not left_out:
        return X, schema
    features = tuple(f for f in schema.features if f.name not in left_out)
    if not features:
        lines = "; ".join(f.line(kept=False) for f in findings if f.column in left_out)
        raise DatasetError(
            f"every feature column of {source} looks like a leak or an ID ({lines}): "
            "keep the ones that describe the rows with --keep"
        )
    return X.drop(columns=list(left_out)), replace(schema, features=features)


def _check_kept(frame: pd.DataFrame, keep: Sequence[str], *, target: str, source: str) -> None:
    unknown = [c for c in keep if c not in frame.columns or c == target]
    if unknown:
        shown = ", ".join(repr(c) + did_you_mean(c, frame.columns) for c in unknown)
        raise DatasetError(
            f"--keep names column(s) {shown} that {source} does not have as a feature; "
            f"columns: {_list([c for c in frame.columns if c != target])}"
        )


def _dates_note(schema: Schema) -> list[str]:
    """One line naming the date columns and what the model reads of them (none: no line)."""
    if not schema.dates:
        return []
    formats = ", ".join(sorted(set(schema.dates.values())))
    return [
        f"column(s) {_list(list(schema.dates))} hold dates ({formats}): the model reads their "
        "year, month, day, day of week, days since 1970 and hour (where there is one)"
    ]


#: A whole-number target taken as classes that has more distinct values than this (abalone's
#: 28 ring counts) may well be a quantity: the regression suggestion comes first.
MANY_CLASSES = 10


def _many_whole_numbers(column: pd.Series) -> bool:
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    return numeric and int(column.nunique()) > MANY_CLASSES


def _is_number(value: Any) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _without_rare(
    features: pd.DataFrame,
    y: pd.Series,
    excluded: dict[Any, int],
    class_rule: ClassRule,
    target: str,
    source: str,
    notes: list[str],
) -> tuple[pd.DataFrame, pd.Series]:
    """The rows of the classes kept, with a note naming those left out (too few rows)."""
    keep = ~y.isin(list(excluded))
    kept = y[keep]
    if kept.nunique() < 2:
        raise DatasetError(
            f"target column {target!r} of {source} has fewer than {class_rule.needed()} rows "
            f"in all its classes but one ({_counts(y)}), too few to split off test rows "
            f"and fill {class_rule.cv} cross-validation folds: "
            f"{class_rule.advice(y.value_counts().tolist())}"
        )
    notes.append(
        f"left out class(es) {_counts(y[~keep])} of target {target!r}: fewer than "
        f"{class_rule.needed()} rows each, too few to split off test rows and fill "
        f"{class_rule.cv} cross-validation folds (--min-class-rows sets the threshold)"
    )
    return features.loc[keep], kept


def _rare_classes(y: pd.Series, min_rows: int) -> dict[Any, int]:
    """Classes with fewer than ``min_rows`` rows, and their counts (largest first)."""
    counts = y.value_counts()
    return {c: int(n) for c, n in counts.items() if n < min_rows}


def _counts(y: pd.Series) -> str:
    return ", ".join(f"{str(c)!r} ({n} rows)" for c, n in y.value_counts().items())


def _drop_columns(
    frame: pd.DataFrame, drop: Sequence[str], *, target: str, source: str
) -> pd.DataFrame:
    unknown = [c for c in drop if c not in frame.columns]
    if unknown:
        shown = ", ".join(repr(c) + did_you_mean(c, frame.columns) for c in unknown)
        raise DatasetError(
            f"--drop names column(s) {shown} that {source} does not have; "
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
                f"({column.nunique()} distinct values), and classes must be text or whole "
                "numbers; use --task regression (or the default --task auto) to predict it as "
                "a number"
            )
        return pd.Series(values.astype(np.int64), index=column.index, dtype=object).map(int)
    return column.map(lambda v: str(v).strip()).astype(object)


#: How a typed timestamp (Parquet, Excel) is written as text before its calendar is read.
TIMESTAMP_TEXT = "%Y-%m-%d %H:%M:%S"


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
        elif pd.api.types.is_datetime64_any_dtype(col):  # Parquet, Excel: typed dates
            stamps = col.dt.tz_localize(None) if col.dt.tz is not None else col
            columns[name] = stamps.dt.strftime(TIMESTAMP_TEXT).astype(object)
            schema.append(
                Feature(name, "categorical", nullable=nullable, date_format=TIMESTAMP_TEXT)
            )
        elif (
            pd.api.types.is_object_dtype(col)
            or pd.api.types.is_string_dtype(col)
            or isinstance(col.dtype, pd.CategoricalDtype)
        ):
            text = col.astype(object).where(col.notna(), np.nan)
            text = text.map(lambda v: v if isinstance(v, float) else str(v).strip())
            columns[name] = text
            date_format = detect_format(text.dropna().tolist())
            seen = sorted(set(text.dropna()))
            cats = tuple(seen) if len(seen) <= MAX_LISTED_CATEGORIES and not date_format else None
            schema.append(
                Feature(
                    name, "categorical", categories=cats, nullable=nullable, date_format=date_format
                )
            )
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
