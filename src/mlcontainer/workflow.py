"""The training job end to end: load data, compare and fit, evaluate, write the model set."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlcontainer import __version__
from mlcontainer.artifacts import package_versions
from mlcontainer.budget import DEFAULT_TIME_BUDGET, check_budget
from mlcontainer.cluster import check_scheduler
from mlcontainer.data import DEFAULT_DATASET, DEFAULT_NA_VALUES, Dataset, load_dataset
from mlcontainer.errors import ConfigError
from mlcontainer.evaluation import (
    DEFAULT_METRIC,
    Evaluation,
    check_metric,
    confusion_matrix_png,
    evaluate,
    json_floats,
    render_report,
)
from mlcontainer.models import MODELS
from mlcontainer.training import FoldCallback, TrainingResult, train

_VERSIONED = ("scikit-learn", "skops", "numpy", "pandas", "scipy", "joblib")


@dataclass(frozen=True)
class TrainOptions:
    """Everything ``mlcontainer train`` can be asked to do."""

    dataset: str = DEFAULT_DATASET
    target: str | None = None
    sha256: str | None = None
    models: tuple[str, ...] = tuple(MODELS)
    metric: str = DEFAULT_METRIC
    cv: int = 5
    test_size: float = 0.2
    seed: int = 42
    jobs: int = -1
    output: Path = Path("artifacts")
    cache_dir: Path | None = None
    na_values: tuple[str, ...] = DEFAULT_NA_VALUES
    drop: tuple[str, ...] = ()
    time_budget: float | None = DEFAULT_TIME_BUDGET
    scheduler: str | None = None

    def check(self) -> None:
        """Refuse bad options before any work is done."""
        check_metric(self.metric)
        if self.cv < 2:
            raise ConfigError(f"--cv must be at least 2, got {self.cv}")
        if not 0 < self.test_size < 1:
            raise ConfigError(
                f"--test-size must be between 0 and 1 (exclusive), got {self.test_size}"
            )
        if self.jobs == 0:
            raise ConfigError("--jobs must not be 0: use 1 (no parallelism) or -1 (all cores)")
        check_budget(self.time_budget)
        check_scheduler(self.scheduler)
        if self.output.exists() and not self.output.is_dir():
            raise ConfigError(f"--output {self.output} exists and is not a folder")


@dataclass
class TrainOutcome:
    """What a training run produced, for the caller to display."""

    dataset: Dataset
    result: TrainingResult
    evaluation: Evaluation
    manifest: dict[str, Any]
    output: Path
    seconds: dict[str, float] = field(default_factory=dict)


def library_versions() -> dict[str, str]:
    """Return the versions that matter for reading the model file back."""
    return {
        "python": platform.python_version(),
        "mlcontainer": __version__,
        **package_versions(_VERSIONED),
    }


def run_training(
    options: TrainOptions,
    *,
    progressbar: Any = False,
    on_fold: FoldCallback | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> TrainOutcome:
    """Load, compare, select, evaluate and save; nothing is written unless every step succeeds."""
    options.check()
    stage = on_stage or (lambda _name: None)
    started = time.time()  # the time budget counts from here: loading the data is part of it
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        seconds[name] = round(now - clock, 3)
        clock = now

    stage("loading data")
    dataset = load_dataset(
        options.dataset,
        target=options.target,
        sha256=options.sha256,
        cache_dir=options.cache_dir,
        progressbar=progressbar,
        na_values=options.na_values,
        drop=options.drop,
    )
    lap("load")
    stage("comparing models")
    result = train(
        dataset,
        models=options.models,
        metric=options.metric,
        cv=options.cv,
        test_size=options.test_size,
        random_state=options.seed,
        jobs=options.jobs,
        on_fold=on_fold,
        time_budget=options.time_budget,
        scheduler=options.scheduler,
        started=started,
    )
    lap("compare_and_fit")
    stage("evaluating")
    classes = dataset.schema.classes
    evaluation = evaluate(result.pipeline, result.split.X_test, result.split.y_test, classes)
    lap("evaluate")
    stage("exporting to ONNX")
    from mlcontainer.onnx_export import export_onnx

    # Verified on the same held-out rows as the metrics; never fails training (see its doc).
    exported = export_onnx(result.pipeline, dataset.schema, result.split.X_test)
    lap("onnx")
    stage("writing report")
    manifest = build_manifest(dataset, result, evaluation)
    png = confusion_matrix_png(evaluation.confusion_matrix, classes)
    html = render_report(
        title=f"mlcontainer: {manifest['name']}",
        dataset=manifest["dataset"],
        leaderboard=manifest["leaderboard"],
        selection=manifest["selection"],
        evaluation=evaluation,
        classes=classes,
        png=png,
    )
    lap("report")
    stage("saving model")
    from mlcontainer.artifacts import save

    full = save(
        options.output,
        pipeline=result.pipeline,
        manifest=manifest,
        metrics=evaluation.to_dict(),
        confusion_matrix_png=png,
        report_html=html,
        onnx_bytes=exported.model_bytes,
        runtime=exported.runtime_section,
    )
    lap("save")
    return TrainOutcome(dataset, result, evaluation, full, options.output, seconds)


def build_manifest(
    dataset: Dataset, result: TrainingResult, evaluation: Evaluation
) -> dict[str, Any]:
    """Describe the model: data, schema, selection, scores and versions (hashes added on save)."""
    spec = MODELS[result.selected]
    estimator = result.pipeline.named_steps["model"]
    return {
        "name": f"{dataset.name}-{result.selected}",
        "model": {
            "name": result.selected,
            "description": spec.description,
            "estimator": f"{type(estimator).__module__}.{type(estimator).__qualname__}",
        },
        "dataset": dataset.summary(),
        "schema": dataset.schema.to_dict(),
        "selection": {
            "model": result.selected,
            "metric": result.metric,
            "cv": result.cv,
            "seed": result.seed,
            "test_size": result.test_size,
            "train_rows": len(result.split.X_train),
            "test_rows": len(result.split.X_test),
            "fit_rows": result.fit_rows,
            "time_budget": result.time_budget,
            "budget": list(result.budget_lines),
            "where": result.where,
            "candidates": [c.name for c in result.leaderboard],
        },
        "leaderboard": [c.to_dict() for c in result.leaderboard],
        "metrics": json_floats(evaluation.metrics),
        "confusion_matrix": evaluation.confusion_matrix,
        "versions": library_versions(),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }
