"""Describe a trained model as its manifest: data, schema, selection, scores and versions."""

from __future__ import annotations

from datetime import UTC, datetime

from mlcontainer.core.artifacts import (
    Candidate,
    ColumnImportance,
    DatasetInfo,
    Examples,
    Importance,
    Manifest,
    ModelInfo,
    Reference,
    RuntimeSection,
    Selection,
)
from mlcontainer.training.data.dataset import Dataset
from mlcontainer.training.export.versions import library_versions
from mlcontainer.training.report.importance import Importances
from mlcontainer.training.search.metrics import Evaluation, json_floats
from mlcontainer.training.search.models import MODELS
from mlcontainer.training.search.selection import TrainingResult


def build_manifest(
    dataset: Dataset,
    result: TrainingResult,
    evaluation: Evaluation,
    runtime: RuntimeSection,
    *,
    examples: Examples | None = None,
    importances: Importances | None = None,
    reference: Reference | None = None,
) -> Manifest:
    """Describe the model (the files' hashes are added when the set is published)."""
    spec = MODELS[result.selected]
    estimator = result.pipeline.named_steps["model"]
    return Manifest(
        name=f"{dataset.name}-{result.selected}",
        model=ModelInfo(
            name=result.selected,
            description=spec.describe(dataset.schema.task),
            estimator=f"{type(estimator).__module__}.{type(estimator).__qualname__}",
            preset=result.preset,
            params=result.params,
        ),
        dataset=DatasetInfo(**dataset.summary()),
        schema=dataset.schema,
        selection=Selection(
            model=result.selected,
            metric=result.metric,
            cv=result.cv,
            seed=result.seed,
            test_size=result.test_size,
            train_rows=len(result.split.X_train),
            test_rows=len(result.split.X_test),
            fit_rows=result.fit_rows,
            time_budget=result.time_budget,
            budget=list(result.budget_lines),
            where=result.where,
            candidates=[c.name for c in result.leaderboard],
            warnings=list(result.warnings),
        ),
        leaderboard=[Candidate.model_validate(c.to_dict()) for c in result.leaderboard],
        metrics=json_floats(evaluation.metrics),
        confusion_matrix=evaluation.confusion_matrix,
        versions=library_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
        intake=dataset.recipe,
        runtime=runtime,
        decision=result.decision,
        examples=examples,
        importance=_importance(importances),
        reference=reference,
    )


def _importance(importances: Importances | None) -> Importance | None:
    if importances is None:
        return None
    return Importance(
        metric=importances.metric,
        rows=importances.rows,
        repeats=importances.repeats,
        columns=[
            ColumnImportance(column=c.column, mean=c.mean, std=c.std) for c in importances.columns
        ],
    )
