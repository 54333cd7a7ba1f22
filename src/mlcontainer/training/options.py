"""What a training run can be asked to do: every option declared once, parsed and checked once.

Each field of :class:`TrainOptions` carries its default, its help text and how its text is
read (:func:`option`). The command line (``mlcontainer train``) and the image's build-time
entry (``python -m mlcontainer.bake``) generate their options from these fields, so
both accept the same options with the same defaults, and both build the options with
:meth:`TrainOptions.from_given`. Constructing a ``TrainOptions`` checks it: an instance is
always valid, and the functions below it take it whole.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from mlcontainer.core.cells import DEFAULT_NA_VALUES
from mlcontainer.core.config import Settings, check_scheduler
from mlcontainer.core.errors import ConfigError
from mlcontainer.core.schema import Task
from mlcontainer.training.data.sources import check_spec

# The search modules (NumPy, the candidates) are imported where they are used, so that the
# command line reads and checks the options, and names a missing file, without loading them.

#: ``--task``: auto picks one from the target (see ``training.dataset.choose_task``).
TASK_CHOICES = ("auto", "classification", "regression")

#: The dataset `train` uses when none is given: built in, no download.
DEFAULT_DATASET = "wine"
#: Seconds a run should take at most when ``--time-budget`` is not given.
DEFAULT_TIME_BUDGET = 60.0
#: How an option's text is read: as is, a whole number, a number, a path, a comma-separated
#: list, or a comma-separated list of candidate names.
Kind = Literal["text", "int", "float", "path", "list", "models", "flag"]
#: Kinds a command line converts while parsing (a bad value is a usage error there); the
#: others are read by :meth:`TrainOptions.from_given`, which names what would be valid.
SYNTAX_KINDS: frozenset[str] = frozenset({"int", "float", "path"})
#: ``flag`` options are yes / no / not given: ``--header`` and ``--no-header``.


@dataclass(frozen=True)
class OptionInfo:
    """How an option looks on a command line: how it is read, its help, a short flag."""

    kind: Kind
    help: str
    short: str | None = None
    #: The default as the help text shows it, when the field's own default would mislead.
    shown_default: str | None = None


def option(
    default: Any,
    *,
    kind: Kind,
    help: str,
    short: str | None = None,
    shown_default: str | None = None,
) -> Any:
    """Declare a field of :class:`TrainOptions` that is also a command-line option."""
    info = OptionInfo(kind, help, short, shown_default)
    return field(default=default, metadata={"option": info})


def _whole(text: str) -> int:
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a valid integer") from None


def _number(text: str) -> float:
    try:
        return float(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not a valid number") from None


def _names(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _yes_no(text: str) -> bool:
    answer = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
    if text.strip().lower() not in answer:
        raise ValueError(f"{text!r} is not yes or no")
    return answer[text.strip().lower()]


def _model_names(text: str) -> tuple[str, ...]:
    from mlcontainer.training.search.models import parse_model_names

    return tuple(parse_model_names(text))


_READERS: dict[str, Any] = {
    "int": _whole,
    "float": _number,
    "path": Path,
    "list": _names,
    "models": _model_names,
    "flag": _yes_no,
}


def convert(kind: Kind, text: str) -> Any:
    """Read an option's text as its kind says; ``ValueError`` says why it cannot be."""
    return _READERS.get(kind, str)(text)


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``mlcontainer train`` can be asked to do; valid once constructed."""

    dataset: str = option(
        DEFAULT_DATASET,
        kind="text",
        short="-d",
        help="A built-in dataset name (see `mlcontainer datasets`), a data file (.csv, .xlsx, "
        ".json, .jsonl, .parquet; .csv and .json(l) also as .gz or .zst), or an http(s) URL "
        "(needs --sha256).",
    )
    target: str | None = option(
        None,
        kind="text",
        short="-t",
        help="Column to predict. Required for files and URLs; built-ins know theirs.",
    )
    sha256: str | None = option(
        None,
        kind="text",
        help="Expected SHA-256 of the dataset file; required for URLs, checked for files.",
    )
    task: str = option(
        "auto",
        kind="text",
        help="classification, regression, or auto: regression for a numeric target with "
        "non-integer values, or more than 20 distinct whole numbers making up more than 5% of "
        "the rows; classification otherwise.",
    )
    models: tuple[str, ...] | None = option(
        None,
        kind="models",
        short="-m",
        shown_default="every candidate for the task",
        help="Comma-separated candidates to compare (see `mlcontainer models`); the baseline "
        "is always compared too.",
    )
    metric: str | None = option(
        None,
        kind="text",
        shown_default="f1_macro for classification, rmse for regression",
        help="Cross-validated metric that selects the best model: accuracy, "
        "balanced_accuracy, f1_macro, f1_weighted, precision_macro, recall_macro, "
        "roc_auc_ovr, log_loss; for regression rmse, mae, r2, median_ae, mape.",
    )
    cv: int = option(
        5, kind="int", help="Number of stratified cross-validation folds on the training split."
    )
    test_size: float = option(
        0.2,
        kind="float",
        help="Fraction of rows held out (stratified) to evaluate the selected model once.",
    )
    seed: int = option(
        42,
        kind="int",
        help="Random seed for the split, the folds and the models: same seed, same result.",
    )
    jobs: int = option(
        -1,
        kind="int",
        short="-j",
        help="Parallel fits through joblib: threads on this machine, or the --scheduler's "
        "workers (-1 = all cores, 1 = one at a time). Same result whatever the value.",
    )
    output: Path = option(
        Path("artifacts"),
        kind="path",
        short="-o",
        shown_default="artifacts, or MLCONTAINER_MODEL_DIR",
        help="Folder for model.skops, model.json, metrics.json, confusion_matrix.png and "
        "report.html.",
    )
    na_values: tuple[str, ...] = option(
        DEFAULT_NA_VALUES,
        kind="list",
        shown_default=",".join(v for v in DEFAULT_NA_VALUES if v),
        help="Comma-separated cell values that mean 'missing' in CSV files, matched after "
        "spaces are stripped; an empty cell always does.",
    )
    drop: tuple[str, ...] = option(
        (),
        kind="list",
        shown_default="none",
        help="Comma-separated columns to leave out (IDs, leaks), e.g. --drop alive,who.",
    )
    keep: tuple[str, ...] = option(
        (),
        kind="list",
        shown_default="none",
        help="Comma-separated columns to train on although they look like a leak or an ID "
        "(those are left out by default, each named in one line), e.g. --keep ticket.",
    )
    header: bool | None = option(
        None,
        kind="flag",
        shown_default="guessed: a first row of numbers over numeric columns is data",
        help="Whether the CSV's first line names the columns (--header) or is data "
        "(--no-header, columns named column_1, column_2, ...).",
    )
    columns: tuple[str, ...] | None = option(
        None,
        kind="list",
        shown_default="the header line, or column_1, column_2, ...",
        help="Comma-separated names for the columns of a CSV without a header line, one per "
        "column.",
    )
    min_class_rows: int | None = option(
        None,
        kind="int",
        shown_default="enough for --test-size and --cv, 7 for the defaults",
        help="Classes with fewer rows are left out, with a warning naming them.",
    )
    time_budget: float | None = option(
        DEFAULT_TIME_BUDGET,
        kind="float",
        help="Seconds the command should take at most: the strongest candidates are compared "
        "first, slow ones subsampled or skipped, each with a line saying why; the selected "
        "model is always refitted on every training row (0 = no budget).",
    )
    scheduler: str | None = option(
        None,
        kind="text",
        shown_default="MLCONTAINER_DASK_SCHEDULER, else local",
        help="Run the cross-validation on a Dask cluster, e.g. tcp://10.0.0.5:8786 (needs "
        "mlcontainer[dask]).",
    )
    #: Where downloads are cached: a setting (MLCONTAINER_CACHE_DIR), not an option.
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.task not in TASK_CHOICES:
            raise ConfigError(f"--task must be one of {', '.join(TASK_CHOICES)}, got {self.task!r}")
        if self.metric is not None:
            from mlcontainer.training.search.metrics import check_metric

            check_metric(self.metric, None if self.task == "auto" else self.task)  # type: ignore[arg-type]
        if self.models is not None:
            from mlcontainer.training.search.models import check_model_names

            check_model_names(self.models)
        if self.cv < 2:
            raise ConfigError(f"--cv must be at least 2, got {self.cv}")
        if not 0 < self.test_size < 1:
            raise ConfigError(
                f"--test-size must be between 0 and 1 (exclusive), got {self.test_size}"
            )
        if self.jobs == 0:
            raise ConfigError("--jobs must not be 0: use 1 (no parallelism) or -1 (all cores)")
        budget = self.time_budget
        if budget is not None and (not math.isfinite(budget) or budget < 0):
            raise ConfigError(
                f"--time-budget must be a number of seconds >= 0 (0 = no budget), got {budget}"
            )
        # 0 means no budget: stored as None, so every reader has one case less.
        object.__setattr__(self, "time_budget", float(budget) if budget else None)
        object.__setattr__(self, "scheduler", check_scheduler(self.scheduler))
        if self.min_class_rows is not None and self.min_class_rows < 2:
            raise ConfigError(
                f"--min-class-rows must be at least 2 (a class needs a training and a test "
                f"row), got {self.min_class_rows}"
            )
        if self.columns is not None and not self.columns:
            raise ConfigError("--columns names no column: give one name per column, a,b,c")
        if self.output.exists() and not self.output.is_dir():
            raise ConfigError(
                f"the output folder {self.output} exists and is not a folder",
                setting="model_dir",
            )
        check_spec(self.dataset)

    def metric_for(self, task: Task) -> str:
        """The metric that selects for ``task``: ``--metric``, checked against it, or its
        default."""
        from mlcontainer.training.search.metrics import DEFAULT_METRICS, check_metric

        if self.metric is None:
            return DEFAULT_METRICS[task]
        return check_metric(self.metric, task).name

    def candidates(self, task: Task) -> list[str]:
        """The candidates compared for ``task`` (the baseline last)."""
        from mlcontainer.training.search.models import models_for

        return models_for(task, self.models)

    @classmethod
    def from_given(cls, given: Mapping[str, Any], settings: Settings) -> TrainOptions:
        """Build the options from those given on a command line (``None``: not given).

        Text is read by :func:`convert` (values already converted are kept); what was not
        given comes from the settings (the output folder, the scheduler, the cache) or the
        field's default.
        """
        values: dict[str, Any] = {
            "output": settings.model_dir,
            "cache_dir": settings.cache_dir,
            "scheduler": settings.dask_scheduler or None,
        }
        for f in option_fields():
            value = given.get(f.name)
            if value is None:
                continue
            kind = info_of(f).kind
            values[f.name] = convert(kind, value) if isinstance(value, str) else value
        return cls(**values)


def option_fields() -> list[Field[Any]]:
    """The fields of :class:`TrainOptions` that are command-line options, in order."""
    return [f for f in fields(TrainOptions) if "option" in f.metadata]


def info_of(f: Field[Any]) -> OptionInfo:
    """How the option of field ``f`` is read and explained."""
    info: OptionInfo = f.metadata["option"]
    return info


def flag_of(f: Field[Any]) -> str:
    """The option's long flag: the field's name with dashes (``--test-size``)."""
    return "--" + f.name.replace("_", "-")


def help_text(f: Field[Any]) -> str:
    """An option's help with its default, as ``--help`` shows it."""
    info = info_of(f)
    shown = info.shown_default
    if shown is None:
        shown = "none" if f.default is None else str(f.default)
    return f"{info.help} [default: {shown}]"
