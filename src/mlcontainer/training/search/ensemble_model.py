"""The selected ensemble as one scikit-learn model: its members refitted, soft-voting.

One preprocessor (imputation, scaling, one-hot encoding) feeds every member: the members that
were compared without scaling (trees, forests, boosting, naive Bayes) split or fit the same
way on scaled columns, since scaling is increasing and per column. Then a
``VotingClassifier`` (soft: the weighted mean of the members' probabilities) or a
``VotingRegressor`` (the weighted mean of their predictions) with the selection's weights.
The model step keeps the name ``model``, as every candidate's, for the export and the runtimes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.schema import Schema
from mlcontainer.training.search.ensemble import Blend
from mlcontainer.training.search.models import MODELS, build_pipeline, build_preprocessor, fit_ready
from mlcontainer.training.search.scheduler.reserve import measured_refit

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline


def refit_seconds(blend: Blend, rows: int) -> float:
    """About how long refitting every member on ``rows`` rows takes on one core: each
    member's measured fold fit, grown with the rows as its family's cost grows."""
    return math.fsum(
        measured_refit(m.model, fold_seconds=m.fit_seconds, fold_rows=m.fit_rows, rows=rows)
        for m in blend.members
    )


def member_names(blend: Blend) -> list[str]:
    """The members' step names in the voting model: the model, numbered when repeated."""
    names: list[str] = []
    for m in blend.members:
        name, n = m.model, 2
        while name in names:
            name, n = f"{m.model}_{n}", n + 1
        names.append(name)
    return names


def ensemble_pipeline(
    blend: Blend, schema: Schema, y: np.ndarray, *, random_state: int, target_scale: float = 1.0
) -> Pipeline:
    """Return the unfitted soft-voting pipeline of ``blend``'s members with their presets
    (``y``: the rows it will be fitted on, for the members' own inner folds)."""
    from sklearn.ensemble import VotingClassifier, VotingRegressor
    from sklearn.pipeline import Pipeline

    estimators: list[tuple[str, Any]] = []
    for name, m in zip(member_names(blend), blend.members, strict=True):
        member = build_pipeline(
            m.model, schema, random_state=random_state, target_scale=target_scale
        )
        if m.preset.params:
            member.set_params(
                **{f"model__{k}": v for k, v in m.preset.resolved(target_scale).items()}
            )
        estimators.append((name, fit_ready(member, y).named_steps["model"]))
    # The converter to ONNX takes the weights as an array, not a list.
    weights = np.asarray(blend.weights, dtype=float)
    voting: Any
    if schema.is_regression:
        voting = VotingRegressor(estimators, weights=weights)
    else:
        # flatten_transform=False: the converter to ONNX supports only this form.
        voting = VotingClassifier(
            estimators, voting="soft", weights=weights, flatten_transform=False
        )
    scale = any(MODELS[m.model].scale for m in blend.members)
    return Pipeline([("preprocess", build_preprocessor(schema, scale=scale)), ("model", voting)])
