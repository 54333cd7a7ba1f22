"""The ``mlcontainer`` command line: parse options, call one core function, format the result."""

from __future__ import annotations

import importlib.util
import signal
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from mlcontainer import __version__
from mlcontainer.core.config import RUNTIMES, Settings
from mlcontainer.core.errors import InputValidationError, MlcontainerError
from mlcontainer.core.formats import CSV, check_file, file_format

#: Where each setting a core message may name comes from on this edge (see MlcontainerError).
SETTING_SOURCES = {
    "model_dir": "--model / --output, MODEL_DIR or MLCONTAINER_MODEL_DIR",
    "runtime": "--runtime or MLCONTAINER_RUNTIME",
    "dask_scheduler": "--scheduler or MLCONTAINER_DASK_SCHEDULER",
    "port": "--port, PORT or MLCONTAINER_PORT",
    "max_rows": "--max-rows or MLCONTAINER_MAX_ROWS",
    "drift_window": "--drift-window or MLCONTAINER_DRIFT_WINDOW",
}


def error_text(exc: MlcontainerError) -> str:
    """The one paragraph the command line prints for a typed error."""
    lines = [f"Error: {exc.message}"]
    source = SETTING_SOURCES.get(exc.setting or "")
    if source is None and exc.setting:
        source = f"MLCONTAINER_{exc.setting.upper()}"
    if source:
        lines[0] += f" (set with {source})"
    for problem in exc.problems[:10]:
        where = problem.where()
        lines.append(f"  - {where + ': ' if where else ''}{problem.message}")
    return "\n".join(lines)


class _Group(click.Group):
    """Turn typed errors into one paragraph on stderr and exit status 1, without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MlcontainerError as exc:
            click.echo(error_text(exc), err=True)
            ctx.exit(1)


#: Top-level modules of the `train` extra that `train`, `datasets` and `models` import.
_TRAINING_MODULES = ("sklearn", "pandas", "matplotlib", "skops", "skl2onnx")


def _require_training_extra(command: str, modules: Sequence[str] = _TRAINING_MODULES) -> None:
    """Refuse ``command`` in one line on a serving-only install (no mlcontainer[train])."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise MlcontainerError(
            f"`{command}` needs the training dependencies ({', '.join(missing)} missing): this "
            "is a serving-only installation; install mlcontainer[train] "
            "(pip install 'mlcontainer[train]' or uv sync --extra train)"
        )


def _settings(ctx: click.Context) -> Settings:
    settings = ctx.find_object(Settings)
    if settings is None:  # pragma: no cover - set by the group callback
        raise click.UsageError("settings were not loaded")
    return settings


#: ``--runtime``, shared by `predict` and `serve`.
_runtime_option = click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    default=None,
    help="What computes predictions: onnx (model.onnx with onnxruntime), sklearn (model.skops "
    "with scikit-learn), or auto: ONNX when the model folder has a verified model.onnx. "
    "[default: auto, or MLCONTAINER_RUNTIME]",
)


def _input_option(text: str) -> Callable[[Any], Any]:
    """The ``--input`` option of the commands that read rows, with its help text."""
    return click.option("--input", "-i", "input_path", required=True, help=text)


#: ``--model``, shared by the commands that use a trained model folder.
_model_option = click.option(
    "--model",
    "model_dir",
    default=None,
    type=click.Path(path_type=Path),
    help="Model folder written by `train`. [default: artifacts, or MODEL_DIR]",
)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlcontainer")
@click.pass_context
def main(ctx: click.Context) -> None:
    """Train, compare, evaluate and save a scikit-learn classifier; predict with it.

    Configuration comes from options, then MLCONTAINER_* environment variables, then defaults.
    """
    ctx.obj = Settings.from_env()


if TYPE_CHECKING:
    _ParamType = click.ParamType[Any, Any]
else:  # click 8.4 takes one type parameter, 8.5 two, 8.1 none: subclass it unsubscripted
    _ParamType = click.ParamType


class _OptionType(_ParamType):
    """Reads a train option's text as :func:`~mlcontainer.training.options.convert` does."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.name = {"int": "integer", "float": "float", "path": "path"}.get(kind, "text")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from mlcontainer.training.options import SYNTAX_KINDS, convert

        if not isinstance(value, str) or self.kind not in SYNTAX_KINDS:
            return value
        try:
            return convert(self.kind, value)  # type: ignore[arg-type]
        except (ValueError, MlcontainerError) as exc:
            self.fail(getattr(exc, "message", str(exc)), param, ctx)


def _train_options() -> list[click.Parameter]:
    """One click option per train option, generated from the options' own declarations."""
    from mlcontainer.training.options import flag_of, help_text, info_of, option_fields

    options: list[click.Parameter] = []
    for f in option_fields():
        info = info_of(f)
        if info.kind == "flag":  # --header / --no-header, None when neither is given
            flag = flag_of(f)
            options.append(
                click.Option([f"{flag}/--no-{flag[2:]}", f.name], default=None, help=help_text(f))
            )
        else:
            decls = [flag_of(f), *([info.short] if info.short else []), f.name]
            options.append(
                click.Option(decls, type=_OptionType(info.kind), default=None, help=help_text(f))
            )
    return options


class _TrainCommand(click.Command):
    """A command whose options are declared by the training options, built when first needed:
    ``mlcontainer --help`` and the other commands never import them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._built: list[click.Parameter] | None = None
        super().__init__(*args, **kwargs)

    @property
    def params(self) -> list[click.Parameter]:
        if self._built is None:
            self._built = [*_train_options(), *self._given]
        return self._built

    @params.setter
    def params(self, value: list[click.Parameter]) -> None:
        self._given = value
        self._built = None


@main.command(cls=_TrainCommand)
@click.pass_context
def train(ctx: click.Context, /, **given: Any) -> None:
    """Compare candidate models by cross-validation, evaluate the best and save it."""
    # The budget counts from here, as its user does: the training stack's imports (pandas,
    # scikit-learn: seconds on a busy machine) come after; Python's start and click's before.
    # The reading is the budget clock's (``training.search.scheduler.clock.now``), taken
    # without importing it: a bad option is refused before any training module loads.
    started = time.perf_counter()
    from mlcontainer.training.options import TrainOptions

    # Checked before the training stack loads: a bad option or a missing file is told at once.
    options = TrainOptions.from_given(given, _settings(ctx))
    _require_training_extra("train")
    from mlcontainer.bake import run_and_show

    run_and_show(options, started=started)


@main.command()
@_model_option
@_input_option(
    "File of rows with the training columns: .csv (also .csv.gz, .csv.zst), .xlsx, .json, "
    ".jsonl, .parquet; a folder of Parquet partitions (read by sorted name); any other name "
    "is read as CSV, and '-' reads CSV from stdin."
)
@click.option(
    "--output",
    "-o",
    "output_path",
    default=None,
    type=click.Path(path_type=Path),
    help="Write predictions to this file (atomically) instead of stdout.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "json", "parquet"]),
    default=None,
    help="Output format; parquet needs --output. [default: from the --output suffix "
    "(.csv, .json, .parquet, .pq), else csv]",
)
@click.option(
    "--chunk-size",
    default=50_000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Rows read and predicted at a time: memory stays flat whatever the file's size.",
)
@click.option(
    "--csv-reader",
    type=click.Choice(["auto", "arrow", "stdlib"]),
    default="auto",
    show_default=True,
    help="CSV parser: pyarrow's (fast; `mlcontainer[parquet]`) or Python's csv module; "
    "auto picks arrow when pyarrow is installed. Both give the same rows and errors.",
)
@click.option(
    "--header/--no-header",
    default=None,
    help="Whether the input's first line names the columns. [default: a first line that names "
    "every feature, or is no row of data, is a header]",
)
@click.option(
    "--columns",
    default=None,
    help="Comma-separated names of the input's columns, for rows without a header line. "
    "[default: the training file's columns, by position]",
)
@click.option(
    "--scheduler",
    default=None,
    help="Score a Parquet file or folder of partitions on the Dask cluster at tcp://HOST:PORT "
    "(the dask extra) and write --output as Parquet: the same rows as a local run.",
)
@_runtime_option
@click.pass_context
def predict(
    ctx: click.Context,
    model_dir: Path | None,
    input_path: str,
    output_path: Path | None,
    fmt: str | None,
    chunk_size: int,
    csv_reader: str,
    header: bool | None,
    columns: str | None,
    scheduler: str | None,
    runtime: str | None,
) -> None:
    """Predict labels and class probabilities for new rows, streamed in chunks."""
    source: Any = sys.stdin.buffer if input_path == "-" else Path(input_path)
    if isinstance(source, Path) and not source.is_dir():  # a folder: Parquet partitions
        # Before the model loads: a missing file is told at once.
        check_file(source, InputValidationError, what="input file", default=CSV)
    fmt = fmt or _output_format(output_path)
    if scheduler is not None:
        _predict_on_cluster(
            ctx, model_dir, runtime, source, output_path, fmt, scheduler, chunk_size
        )
        return
    from mlcontainer import console
    from mlcontainer.inference.batch import predict_file
    from mlcontainer.inference.predictor import load_predictor

    settings = _settings(ctx).with_overrides(model_dir=model_dir, runtime=runtime)
    # A batch run has the machine to itself: with ONNX, predict_file runs one chunk per core,
    # each on one thread (better than all threads on one chunk: not every node is parallel).
    predictor = load_predictor(settings.model_dir, settings.runtime, threads=1)
    size = _input_size(source)
    # SIGTERM (docker stop) unwinds like Ctrl-C, so the hidden .partial output is removed.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with console.batch_progress(size) as on_progress:
        result = predict_file(
            predictor,
            source,
            output=output_path or sys.stdout.buffer,
            fmt=fmt,
            chunk_rows=chunk_size,
            on_progress=on_progress,
            csv_reader=csv_reader,
            header=header,
            columns=_names(columns),
        )
        if output_path is None:
            _flush_stdout()
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    if output_path is not None:
        click.echo(f"Wrote {result.rows} predictions to {output_path}", err=True)


def _predict_on_cluster(
    ctx: click.Context,
    model_dir: Path | None,
    runtime: str | None,
    source: Any,
    output_path: Path | None,
    fmt: str,
    scheduler: str,
    chunk_size: int,
) -> None:
    """`predict --scheduler`: Parquet in, Parquet out, one line per piece scored."""
    from mlcontainer.core.config import check_scheduler

    address = check_scheduler(scheduler)
    found = file_format(source) if isinstance(source, Path) else None
    parquet = isinstance(source, Path) and (source.is_dir() or (found and found.kind == "parquet"))
    if address is None or not parquet:
        raise InputValidationError(
            "--scheduler scores a Parquet file or a folder of Parquet partitions (--input)"
        )
    if output_path is None or fmt != "parquet":
        raise InputValidationError("--scheduler writes Parquet: add --output OUT.parquet")
    from mlcontainer.inference.distributed import predict_on_cluster
    from mlcontainer.inference.predictor import load_predictor

    settings = _settings(ctx).with_overrides(model_dir=model_dir, runtime=runtime)
    predictor = load_predictor(settings.model_dir, settings.runtime, threads=1)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    result = predict_on_cluster(
        predictor,
        settings.model_dir,
        source,
        output=output_path,
        scheduler=address,
        chunk_rows=chunk_size,
        on_piece=lambda done: click.echo(
            f"scored {done.index}/{done.pieces}: {done.piece.path.name} "
            f"({done.piece.rows:,} rows); {done.rows_written:,} rows written",
            err=True,
        ),
    )
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)
    click.echo(f"Wrote {result.rows} predictions to {output_path} (on {address})", err=True)


def _input_size(source: Any) -> int | None:
    """The bytes to read: a file's size, a folder's partitions' sizes; None for stdin."""
    if not isinstance(source, Path):
        return None
    if source.is_dir():
        from mlcontainer.inference.parquetreader import partition_files

        return sum(p.stat().st_size for p in partition_files(source))
    return source.stat().st_size if source.is_file() else None


def _output_format(output_path: Path | None) -> str:
    """The format an --output name asks for (csv, json or parquet); csv for stdout."""
    if output_path is None:
        return "csv"
    found = file_format(output_path)
    if found is None or found.compression or found.kind not in ("csv", "json", "parquet"):
        raise click.BadParameter(
            f"cannot tell the format from {output_path}; add --format", param_hint="--format"
        )
    return found.kind


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _flush_stdout() -> None:
    """Flush the predictions written to stdout: a full disk must fail here, not silently
    at exit (it exited 0 with the output cut short)."""
    try:
        sys.stdout.buffer.flush()
    except OSError as exc:
        raise MlcontainerError(f"cannot write the predictions: {exc.strerror or exc}") from None


@main.command()
@_model_option
@click.option("--host", default=None, help="Address to listen on. [default: 127.0.0.1]")
@click.option("--port", "-p", default=None, type=int, help="Port. [default: 8080, or PORT]")
@click.option("--workers", "-w", default=None, type=int, help="Worker processes. [default: 1]")
@click.option(
    "--threads",
    default=None,
    type=int,
    help="Threads per worker; each worker reads requests whole before a thread sees them, "
    "so slow clients cost no thread. [default: 1]",
)
@click.option(
    "--timeout", default=None, type=int, help="Seconds before a stuck worker is restarted."
)
@click.option(
    "--graceful-timeout",
    default=None,
    type=int,
    help="Seconds in-flight requests get to finish after SIGTERM. [default: 8]",
)
@click.option("--max-rows", default=None, type=int, help="Rows per request. [default: 10000]")
@click.option(
    "--drift-window",
    default=None,
    type=int,
    help="Recent rows each worker keeps for the drift gauges of /metrics; 0: off. [default: 10000]",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Access and error log format; json writes one object per line. [default: text]",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error", "critical"]),
    default=None,
    help="[default: info]",
)
@_runtime_option
@click.pass_context
def serve(
    ctx: click.Context,
    model_dir: Path | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    threads: int | None,
    timeout: int | None,
    graceful_timeout: int | None,
    max_rows: int | None,
    drift_window: int | None,
    log_format: str | None,
    log_level: str | None,
    runtime: str | None,
) -> None:
    """Serve predictions over HTTP with gunicorn (native, MLflow and V2 protocols)."""
    from mlcontainer.serving.server import serve as run_server

    settings = _settings(ctx).with_overrides(
        model_dir=model_dir,
        host=host,
        port=port,
        workers=workers,
        threads=threads,
        timeout=timeout,
        graceful_timeout=graceful_timeout,
        max_rows=max_rows,
        drift_window=drift_window,
        log_format=log_format,
        log_level=log_level,
        runtime=runtime,
    )
    run_server(settings)


@main.command()
@_model_option
@_input_option("File of rows to compare, read as `predict` reads it (.csv, .parquet, .xlsx ...).")
@click.option(
    "--report",
    "report_path",
    default="drift-report.html",
    show_default=True,
    type=click.Path(path_type=Path),
    help="Write the HTML report (a picture per drifted feature) here.",
)
@click.option(
    "--fail-above",
    default=None,
    type=click.FloatRange(min=0),
    help="Exit 3 when the largest PSI (a feature's or the prediction's) is above this, e.g. "
    "0.25, to gate a pipeline. [default: never]",
)
@click.option(
    "--header/--no-header", default=None, help="Whether the first line names the columns."
)
@click.option("--columns", default=None, help="Column names for rows without a header line.")
@_runtime_option
@click.pass_context
def drift(
    ctx: click.Context,
    model_dir: Path | None,
    input_path: str,
    report_path: Path,
    fail_above: float | None,
    header: bool | None,
    columns: str | None,
    runtime: str | None,
) -> None:
    """Compare a batch with the training data: PSI per feature, a table, an HTML report."""
    source = Path(input_path)
    check_file(source, InputValidationError, what="input file", default=CSV)
    _require_training_extra("drift", ("scipy", "matplotlib"))
    from mlcontainer.console import show_drift
    from mlcontainer.core.atomic import write_atomic
    from mlcontainer.inference.driftcheck import batch_drift
    from mlcontainer.inference.driftreport import render_report
    from mlcontainer.inference.predictor import load_predictor

    settings = _settings(ctx).with_overrides(model_dir=model_dir, runtime=runtime)
    predictor = load_predictor(settings.model_dir, settings.runtime, threads=1)
    result = batch_drift(predictor, source, header=header, columns=_names(columns))
    page = render_report(result, model=predictor.name, source=source.name, fail_above=fail_above)
    write_atomic(report_path, page.encode())
    show_drift(result, report_path)
    if fail_above is not None and result.largest > fail_above:
        click.echo(f"Drift above {fail_above}: largest PSI {result.largest:.3f}", err=True)
        ctx.exit(3)


@main.command()
@_model_option
@click.pass_context
def recover(ctx: click.Context, model_dir: Path | None) -> None:
    """Finish a save that `train` was killed in, or remove one that never finished.

    Loading (predict, serve) never does this: it refuses a folder whose save was published
    but not yet put in place, and names this command.
    """
    from mlcontainer.core.artifacts import recover as recover_folder

    folder = _settings(ctx).with_overrides(model_dir=model_dir).model_dir
    for line in recover_folder(folder) or [f"nothing to recover in {folder}"]:
        click.echo(line[0].upper() + line[1:])


@main.command()
def datasets() -> None:
    """List the built-in datasets (no download needed)."""
    _require_training_extra("datasets")
    from mlcontainer import console
    from mlcontainer.training.data.sources import BUILTIN_DATASETS
    from mlcontainer.training.options import DEFAULT_DATASET

    console.show_list(
        "Built-in datasets",
        [
            (n + (" (default)" if n == DEFAULT_DATASET else ""), d.description)
            for n, d in BUILTIN_DATASETS.items()
        ],
    )


@main.command()
def models() -> None:
    """List the candidate models that `train` compares, and the task each serves."""
    _require_training_extra("models")
    from mlcontainer import console
    from mlcontainer.training.search.models import MODELS

    rows = [
        (
            name,
            spec.describe("classification") if "classification" in spec.tasks else "-",
            spec.describe("regression") if "regression" in spec.tasks else "-",
        )
        for name, spec in MODELS.items()
    ]
    console.show_list(
        "Candidate models (the baseline is added to every comparison)",
        rows,
        columns=("name", "classification", "regression"),
    )


def _names(text: str | None) -> list[str] | None:
    """Turn ``"a, b"`` into ``["a", "b"]``; ``None`` stays ``None``."""
    return None if text is None else [part.strip() for part in text.split(",")]


def train_main(argv: Sequence[str] | None = None) -> None:
    """Run ``mlcontainer train`` with ``argv``: the lab's ``python train.py``."""
    args = list(sys.argv[1:] if argv is None else argv)
    main.main(["train", *args], prog_name="train.py")
