"""The training job end to end: load, compare and fit, evaluate, export, write the model set."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcontainer.core.artifacts import (
    CARD_FILE,
    CONFUSION_MATRIX_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ONNX_FILE,
    REPORT_FILE,
    Manifest,
    json_bytes,
    publish,
)
from mlcontainer.core.memory import release_memory
from mlcontainer.training.data.dataset import ClassRule, Dataset, load_dataset
from mlcontainer.training.data.profile import column_profiles, drift_reference, examples
from mlcontainer.training.export import skopsfile
from mlcontainer.training.export.manifest import build_manifest
from mlcontainer.training.export.onnx_export import export_onnx
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.report.card import model_card
from mlcontainer.training.report.importance import permutation_importances
from mlcontainer.training.report.report import model_parameters, render_report, report_pictures
from mlcontainer.training.search import selection
from mlcontainer.training.search.metrics import Evaluation, evaluate
from mlcontainer.training.search.selection import (
    FoldCallback,
    TrainingResult,
    target_array,
    target_scale,
    train,
)


@dataclass
class TrainOutcome:
    """What a training run produced, for the caller to display."""

    dataset: Dataset
    result: TrainingResult
    evaluation: Evaluation
    manifest: Manifest
    output: Path
    seconds: dict[str, float] = field(default_factory=dict)


def run_training(
    options: TrainOptions,
    *,
    progressbar: Any = False,
    on_fold: FoldCallback | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> TrainOutcome:
    """Load, compare, select, evaluate and save; nothing is written unless every step succeeds."""
    stage = on_stage or (lambda _name: None)
    started = selection.clock()  # the budget counts from here: loading the data is part of it
    clock = time.perf_counter()
    seconds: dict[str, float] = {}

    def lap(name: str) -> None:
        nonlocal clock
        release_memory()  # each stage's peak starts from what is alive, not the last peak
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
        header=options.header,
        columns=options.columns,
        class_rule=ClassRule(options.cv, options.test_size, options.min_class_rows),
        task=options.task,
    )
    lap("load")
    stage("comparing models")
    result = train(dataset, options, on_fold=on_fold, started=started)
    lap("compare_and_fit")
    stage("evaluating")
    classes = dataset.schema.classes
    evaluation = evaluate(
        result.pipeline,
        result.split.X_test,
        result.split.y_test,
        classes,
        task=dataset.schema.task,
        decision=result.decision,
    )
    lap("evaluate")
    stage("exporting to ONNX")
    # Verified on the same held-out rows as the metrics; never fails training (see its doc).
    scale = target_scale(target_array(result.split.y_train, dataset.schema), dataset.schema)
    exported = export_onnx(result.pipeline, dataset.schema, result.split.X_test, target_scale=scale)
    lap("onnx")
    stage("writing report")
    split, schema = result.split, dataset.schema
    importances = permutation_importances(
        result.pipeline, split.X_test, split.y_test, schema,
        metric=result.metric, random_state=result.seed, decision=result.decision,
    )  # fmt: skip
    manifest = build_manifest(
        dataset, result, evaluation, exported.runtime_section,
        examples=examples(split.X_train, split.X_test, split.y_test, schema),
        importances=importances,
        reference=drift_reference(split.X_train, schema, evaluation.predicted),
    )  # fmt: skip
    pictures = report_pictures(manifest, evaluation, importances)
    params = model_parameters(result.pipeline)
    html = render_report(
        manifest, evaluation, classes, pictures,
        profile=column_profiles(dataset.X, schema), params=params, importances=importances,
    )  # fmt: skip
    card = model_card(
        manifest, result.pipeline, params=params, importances=importances,
        warnings=evaluation.warnings,
    )  # fmt: skip
    lap("report")
    stage("saving model")
    confusion = next((p.png for p in pictures if p.name == "confusion_matrix"), None)
    # The figures (and their pixel buffers) hold each other in cycles: free them before the
    # model is serialised, the run's peak (a 5 000-row file: 417 -> MB measured).
    del pictures
    gc.collect()
    files = {
        MODEL_FILE: skopsfile.dumps(result.pipeline),
        METRICS_FILE: json_bytes(evaluation.to_dict()),
        REPORT_FILE: html.encode(),
        CARD_FILE: card.encode(),
    }
    if confusion is not None:  # the serving page shows it
        files[CONFUSION_MATRIX_FILE] = confusion
    if exported.model_bytes is not None:
        files[ONNX_FILE] = exported.model_bytes
    full = publish(options.output, manifest, files)
    lap("save")
    return TrainOutcome(dataset, result, evaluation, full, options.output, seconds)
