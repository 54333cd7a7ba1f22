"""Terminal presentation for the CLI: progress bars and rich tables. No logic of its own."""

from __future__ import annotations

import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.columns import Columns
from rich.console import Console, RenderableType
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from mlcontainer.core.artifacts import (
    CARD_FILE,
    CONFUSION_MATRIX_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ONNX_FILE,
    REPORT_FILE,
    Manifest,
)
from mlcontainer.training.search.metrics import METRICS

if TYPE_CHECKING:
    from mlcontainer.inference.driftcheck import BatchDrift
    from mlcontainer.training.workflow import TrainOutcome


#: The width output takes when it is not a terminal: no line is wrapped, no name cut.
UNBOUNDED = 100_000


def _titled(title: str) -> Table:
    """A table whose title is never wrapped: the table is at least as wide as its title
    (rich wraps a title to its table's width, even where the output is not a terminal)."""
    return Table(title=title, min_width=len(title))


def _console() -> Console:
    out = Console(highlight=False)
    if out.is_terminal:
        return out
    return Console(highlight=False, width=UNBOUNDED)


class _DownloadBar:
    """Adapter with the interface pooch expects of a custom progress bar."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._task: TaskID | None = None
        self.total = 0

    def _ensure(self) -> TaskID:
        if self._task is None:
            self._task = self._progress.add_task("downloading", total=self.total or None)
        self._progress.update(self._task, total=self.total or None)
        return self._task

    def update(self, n: int) -> None:
        self._progress.advance(self._ensure(), n)

    def reset(self) -> None:
        self._progress.reset(self._ensure(), total=self.total or None)

    def close(self) -> None:
        if self._task is not None:
            self._progress.update(self._task, visible=False)


class _BudgetColumn(ProgressColumn):
    """A bar of the time budget used so far, and the seconds left of it (or elapsed, without
    a budget)."""

    def __init__(self, budget: float | None, started: float) -> None:
        super().__init__()
        self._budget = budget
        self._started = started

    def render(self, task: Task) -> RenderableType:
        elapsed = time.monotonic() - self._started
        if not self._budget:
            return Text(f"{elapsed:.0f} s")
        bar = ProgressBar(total=self._budget, completed=min(elapsed, self._budget), width=20)
        left = self._budget - elapsed
        said = f"{left:.0f} s left of {self._budget:g} s" if left >= 0 else "over the budget"
        return Columns([bar, Text(said)])


class TrainingProgress:
    """What a training run shows while it runs: on a terminal one live line (stage, candidate,
    fold, the time budget used and left); in a pipe or a log, a line per finished candidate
    and per later stage, written as it happens."""

    def __init__(
        self, progress: Progress, *, live: bool, cv: int, started: float, stream: TextIO
    ) -> None:
        self._progress = progress
        self._live = live
        self._cv = cv
        self._started = started
        self._stream = stream
        self._task = progress.add_task("loading data", total=None)
        self._current: str | None = None
        self._fits = 0

    def download_bar(self) -> _DownloadBar:
        return _DownloadBar(self._progress)

    def on_stage(self, name: str) -> None:
        """A stage starts: the candidate being compared, if any, is done."""
        self._finish()
        if name != "loading data":  # an error reading the data stays one paragraph
            self._line(name)
        self._progress.update(self._task, description=name)

    def on_note(self, text: str) -> None:
        """A line to read before anything else (on a terminal too, above the live line)."""
        if self._live:
            self._progress.console.print(f"[yellow]Note:[/] {text}")
        else:
            self._stream.write(f"Note: {text}\n")
            self._stream.flush()

    def on_fold(self, model: str, fold: int) -> None:
        """A fit ended: a fit of another candidate means the one before it is done."""
        if model != self._current:
            self._finish()
            self._current, self._fits = model, 0
        self._fits += 1
        description = f"comparing models: {model}, fold {fold + 1} of {self._cv}"
        self._progress.update(self._task, description=description)

    def _finish(self) -> None:
        if self._current is not None:
            fits = f"{self._fits} fit{'s' if self._fits != 1 else ''}"
            self._line(f"compared {self._current} ({fits})")
        self._current = None

    def _line(self, text: str) -> None:
        if self._live:
            return  # the live line says it
        elapsed = time.monotonic() - self._started
        self._stream.write(f"{elapsed:6.1f} s  {text}\n")
        self._stream.flush()  # as it happens, whatever buffers the pipe


@contextmanager
def training_progress(*, budget: float | None, cv: int) -> Iterator[TrainingProgress]:
    """Show a training run's progress on stderr (see :class:`TrainingProgress`).

    Warnings of other libraries are not shown meanwhile: scikit-learn's ``parallel.delayed``
    UserWarning comes from a race in its own handling of warning filters across the threads
    that run the fits, and says nothing about the run.
    """
    err = Console(stderr=True)
    started = time.monotonic()
    progress = Progress(
        TextColumn("{task.description}"),
        _BudgetColumn(budget, started),
        console=err,
        transient=True,
        # Not a terminal (CI, a pipe, a log file): lines instead, and no stray blank line.
        disable=not err.is_terminal,
    )
    with progress, _own_warnings_only():
        yield TrainingProgress(
            progress, live=err.is_terminal, cv=cv, started=started, stream=sys.stderr
        )


@contextmanager
def _own_warnings_only() -> Iterator[None]:
    """Show only mlcontainer's own warnings (a hook, not a filter: the race above wipes
    filters, never the hook, which each catch_warnings saves and restores as it found it)."""
    shown = warnings.showwarning
    package = str(Path(__file__).resolve().parent) + os.sep

    def show(message: Any, category: Any, filename: str, *args: Any, **kwargs: Any) -> None:
        if str(Path(filename).resolve()).startswith(package):
            shown(message, category, filename, *args, **kwargs)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = shown


@contextmanager
def batch_progress(total_bytes: int | None) -> Iterator[Callable[[int, int], None]]:
    """Show rows predicted and input read (to stderr) while a batch prediction runs."""
    progress = Progress(
        TextColumn("predicting"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=(err := Console(stderr=True)),
        transient=True,
        # Not a terminal (CI, a pipe, a log file): no bar, and no stray blank line either.
        disable=not err.is_terminal,
    )
    task = progress.add_task("predicting", total=total_bytes, rows=0)

    def advance(rows: int, bytes_read: int) -> None:
        progress.update(task, completed=bytes_read, rows=rows)

    with progress:
        yield advance


def _f(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def _leaderboard(manifest: Manifest) -> Table:
    """Build the comparison table; candidates cut by the time budget are marked."""
    sel = manifest.selection
    metric = sel.metric
    second = "r2" if manifest.input_schema.is_regression else "accuracy"
    better = "higher" if METRICS[metric].greater_is_better else "lower"
    board = _titled(
        f"Model comparison: {sel.cv}-fold CV on the training split ({metric}: {better} is better)"
    )
    board.add_column("#", justify="right")
    board.add_column("model")
    board.add_column(f"{metric} (mean ± std)", justify="right")
    if metric != second:
        board.add_column(second, justify="right")
    board.add_column("fit s", justify="right")
    board.add_column("ms/row", justify="right")
    for rank, entry in enumerate(manifest.leaderboard, start=1):
        budget = entry.budget
        if budget and budget.action == "skip":
            board.add_row(str(rank), entry.name, "[yellow]skipped (time budget)[/]")
            continue
        # The preset its search kept; a subsampled candidate is marked here and explained
        # under the table.
        label = entry.name
        if entry.preset != "default":
            label += f" [cyan]({escape(entry.preset)})[/]"
        label += " [yellow](subsampled)[/]" if budget else ""
        if entry.error:
            board.add_row(str(rank), entry.name, f"[red]failed: {entry.error}[/]")
            continue
        s = entry.scores
        cells = [f"{_f(s[metric].mean)} ± {_f(s[metric].std, 3)}"]
        if metric != second:
            cells.append(_f(s[second].mean))
        style = "bold green" if entry.name == sel.model else None
        board.add_row(
            str(rank),
            label,
            *cells,
            f"{entry.fit_seconds:.3f}",
            f"{entry.predict_ms_per_row:.3f}",
            style=style,
        )
    return board


def show_training(outcome: TrainOutcome) -> None:
    """Print the leaderboard, test metrics, confusion matrix and example predictions."""
    out = _console()
    manifest = outcome.manifest
    sel = manifest.selection
    ds = manifest.dataset
    for note in outcome.dataset.notes:
        out.print(f"[yellow]Note:[/] {note}")
    warnings = (*outcome.dataset.warnings, *outcome.evaluation.warnings, *sel.warnings)
    for warning in warnings:
        out.print(f"[bold yellow]Warning:[/] {warning}")
    regression = manifest.input_schema.is_regression
    what = "a number" if regression else f"{len(ds.class_counts)} classes"
    out.print(
        f"Dataset [bold]{ds.name}[/]: {ds.rows} rows, {ds.features} features, "
        f"target [bold]{ds.target}[/] ({what}). "
        f"Split {sel.train_rows} train / {sel.test_rows} test (seed {sel.seed})."
    )
    out.print(_leaderboard(manifest))
    if sel.budget:
        out.print(f"[yellow]Time budget {sel.time_budget:g} s:[/]")
        for line in sel.budget:
            out.print(f"  {line}", markup=False)
    chosen = next((c for c in manifest.leaderboard if c.name == sel.model), None)
    if chosen is not None and chosen.search:
        params = ", ".join(f"{k}={v}" for k, v in chosen.params.items()) or "its defaults"
        out.print(f"Tuned: {sel.model}, {chosen.search} ({params})", markup=False)
    if manifest.model.members:
        out.print(
            f"{manifest.model.description}; members refitted on the training rows", markup=False
        )
    if manifest.decision is not None:
        out.print(decision_line(manifest), markup=False)

    scores = _titled(f"Selected: {sel.model}, on {sel.test_rows} held-out test rows")
    scores.add_column("metric")
    scores.add_column("value", justify="right")
    for name, value in manifest.metrics.items():
        scores.add_row(METRICS[name].label, _f(value))
    out.print(scores)

    if regression:
        _show_regression_rows(out, outcome)
    else:
        _show_classification_rows(out, outcome)
    out.print(runtime_line(manifest), markup=False)
    out.print(
        f"Saved to [bold]{outcome.output}/[/]: {MODEL_FILE} (sha256 "
        f"{manifest.sha256(MODEL_FILE)[:12]}…), " + ", ".join(_saved_order(manifest))
    )


def _show_regression_rows(out: Console, outcome: TrainOutcome) -> None:
    samples = _titled("Predictions on test rows")
    for col in ("row", "actual", "predicted", "error"):
        samples.add_column(col, justify="right")
    for s in outcome.evaluation.samples:
        samples.add_row(str(s["row"]), _g(s["true"]), _g(s["predicted"]), _g(s["error"]))
    out.print(samples)


def _g(value: float) -> str:
    return f"{value:.6g}"


def _show_classification_rows(out: Console, outcome: TrainOutcome) -> None:
    manifest = outcome.manifest
    classes = [str(c) for c in manifest.input_schema.classes]
    cm = _titled("Confusion matrix (rows: true, columns: predicted)")
    cm.add_column("true \\ predicted")
    for c in classes:
        cm.add_column(c, justify="right")
    for c, row in zip(classes, manifest.confusion_matrix, strict=True):
        cm.add_row(c, *(str(v) for v in row))
    out.print(cm)

    samples = _titled("Predictions on test rows")
    for col in ("row", "true", "predicted", "probability", ""):
        samples.add_column(col, justify="right" if col in ("row", "probability") else "left")
    for s in outcome.evaluation.samples:
        ok = "[green]✓[/]" if s["true"] == s["predicted"] else "[red]✗[/]"
        samples.add_row(
            str(s["row"]), str(s["true"]), str(s["predicted"]), f"{s['probability']:.3f}", ok
        )
    out.print(samples)


def _saved_order(manifest: Manifest) -> list[str]:
    """The other files of the set, in the order the summary line has always listed them."""
    rest = [ONNX_FILE] if ONNX_FILE in manifest.files else []
    picture = [CONFUSION_MATRIX_FILE] if CONFUSION_MATRIX_FILE in manifest.files else []
    card = [CARD_FILE] if CARD_FILE in manifest.files else []
    return [*rest, MANIFEST_FILE, METRICS_FILE, *picture, REPORT_FILE, *card]


def decision_line(manifest: Manifest) -> str:
    """One line on the decision layer: threshold and calibration, or class weights."""
    decision = manifest.decision
    assert decision is not None
    if decision.class_weights is not None:
        weights = ", ".join(
            f"{c} x{w:.2g}" for c, w in zip(manifest.input_schema.classes, decision.class_weights,
                                            strict=True)
        )  # fmt: skip
        line = f"Decision: the class with the largest weighted probability ({weights})"
        if decision.score_at_threshold is not None and decision.score_at_half is not None:
            line += (
                f", tuned out of fold for {decision.metric} ({decision.score_at_half:.4f} "
                f"without, {decision.score_at_threshold:.4f} with them, cross-fitted)"
            )
        return line
    line = f"Decision: {decision.positive_class} when its probability is at least "
    line += f"{decision.threshold:.3g}"
    if decision.score_at_threshold is not None and decision.score_at_half is not None:
        line += (
            f", tuned out of fold for {decision.metric} ({decision.score_at_half:.4f} at 0.5, "
            f"{decision.score_at_threshold:.4f} at it)"
        )
    calibration = decision.calibration
    if calibration is not None:
        line += (
            f"; probabilities calibrated (Platt, out of fold: Brier {calibration.brier_before:.4f}"
            f" → {calibration.brier_after:.4f})"
        )
    return line


def runtime_line(manifest: Manifest) -> str:
    """Say in one line which runtime serves the model, and why not ONNX when it does not."""
    runtime = manifest.runtime
    onnx = runtime.verified_onnx() if runtime is not None else None
    if runtime is not None and runtime.default == "onnx" and onnx is not None:
        check = onnx.verification
        assert check is not None  # verified_onnx() checked it
        if check.max_abs_value_diff is not None:
            return (
                f"Runtime: ONNX (verified on {check.rows} test rows, max |Δ| "
                f"{check.max_abs_value_diff:.1g} within {check.tolerance:.2g})"
            )
        return (
            f"Runtime: ONNX (verified on {check.rows} test rows, "
            f"max |Δp| {check.max_abs_probability_diff:.0e})"
        )
    reason = runtime.reason if runtime is not None else None
    return f"Runtime: scikit-learn ({reason or 'no ONNX export'})"


def show_list(
    title: str, rows: Sequence[tuple[str, ...]], columns: Sequence[str] = ("name", "description")
) -> None:
    """Print a table of names and descriptions (one column per entry of ``columns``)."""
    table = _titled(title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    _console().print(table)


def show_drift(result: BatchDrift, report: Path) -> None:
    """Print the batch's drift, largest PSI first, and where the report is."""
    rows = [
        (
            d.name,
            f"{d.psi:.4f}",
            f"{d.missing:.1%}",
            "" if d.unseen is None else f"{d.unseen:.1%}",
            d.test,
            f"{d.statistic:.4g}",
            f"{d.p_value:.3g}",
        )
        for d in result.drifts
    ]
    columns = ("feature", "PSI", "missing", "unseen", "test", "statistic", "p-value")
    show_list(f"Drift of {result.rows} rows against training", rows, columns)
    _console().print(f"Report: {report} (largest PSI {result.largest:.3f})")
