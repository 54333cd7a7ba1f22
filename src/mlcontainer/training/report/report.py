"""The report page of a trained model: one self-contained HTML file from a Jinja2 template."""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping, Sequence
from typing import Any

from mlcontainer.core.artifacts import Manifest
from mlcontainer.core.schema import Label
from mlcontainer.training.data.profile import ColumnProfile
from mlcontainer.training.report.importance import Importances
from mlcontainer.training.report.plots import Picture
from mlcontainer.training.search.metrics import METRICS, Evaluation

TEMPLATE = "report.html"
#: The report's sections, in order: (id, heading). Tests check each one is on the page.
SECTIONS = (
    ("data", "Data"),
    ("comparison", "Model comparison"),
    ("model", "Selected model"),
    ("test", "On the test split"),
    ("importance", "Which columns matter"),
)
#: A parameter's value is cut to this many characters in the table.
_PARAM_CHARS = 160


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def model_parameters(pipeline: Any) -> dict[str, str]:
    """The parameters of the pipeline's last step (the model, with those of a model it wraps,
    such as a calibrated SVM's ``estimator__C``), by name, as short text."""
    params = pipeline.steps[-1][1].get_params(deep=True)
    out = {}
    for name in sorted(params):
        text = repr(params[name])
        out[name] = text if len(text) <= _PARAM_CHARS else text[: _PARAM_CHARS - 1] + "…"
    return out


def chosen_threshold(manifest: Manifest) -> tuple[float | None, Label | None]:
    """The binary decision threshold and positive class from the manifest's ``decision``
    (None, None for a folder without one: the most probable class is predicted)."""
    decision = manifest.decision
    if decision is None:
        return None, None
    return decision.threshold, decision.positive_class


def _embedded(picture: Picture) -> dict[str, str]:
    data = base64.b64encode(picture.png).decode()
    return {"title": picture.title, "caption": picture.caption, "data": data}


def _recipe_rows(manifest: Manifest) -> list[tuple[str, str]]:
    """The intake recipe as (what, how) lines."""
    recipe = manifest.intake
    if recipe is None:
        return []
    markers = ", ".join(repr(m) for m in recipe.na_values if m) or "none"
    rows = [
        ("format", recipe.source_format),
        ("delimiter", repr(recipe.delimiter)),
        ("header line", "yes" if recipe.header else "no (columns named column_1, …)"),
        ("missing-value markers", f"{markers} and the empty cell"),
        ("spaces around values", "stripped" if recipe.strip else "kept"),
    ]
    if recipe.unquote:
        rows.append(("single quotes removed in", ", ".join(recipe.unquote)))
    if recipe.numeric_text:
        rows.append(("text read as numbers in", ", ".join(recipe.numeric_text)))
    rows.append(("dropped columns", ", ".join(recipe.dropped) or "none"))
    return rows


def render_report(
    manifest: Manifest,
    evaluation: Evaluation,
    classes: Sequence[Label],
    pictures: Sequence[Picture],
    *,
    profile: Sequence[ColumnProfile] = (),
    params: Mapping[str, str] | None = None,
    importances: Importances | None = None,
) -> str:
    """Return one self-contained HTML page (pictures embedded) describing the trained model."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("mlcontainer.training.report", "templates"),
        autoescape=select_autoescape(["html"]),
        keep_trailing_newline=True,
    )
    env.filters["fmt"] = _fmt
    regression = manifest.input_schema.is_regression
    threshold, positive = chosen_threshold(manifest)
    selection = manifest.selection
    spec = METRICS[selection.metric]
    return env.get_template(TEMPLATE).render(
        title=f"mlcontainer: {manifest.name}",
        manifest=manifest,
        dataset=manifest.dataset,
        selection=manifest.selection,
        leaderboard=manifest.leaderboard,
        metric_label=spec.label,
        better="higher" if spec.greater_is_better else "lower",
        labels={name: s.label for name, s in METRICS.items()},
        evaluation=evaluation,
        classes=classes,
        regression=regression,
        sections=SECTIONS,
        profile=profile,
        recipe=_recipe_rows(manifest),
        params=params or {},
        importances=importances,
        importance_label=METRICS[importances.metric].label if importances else "",
        threshold=threshold,
        decision=manifest.decision,
        chosen=next((c for c in manifest.leaderboard if c.name == selection.model), None),
        positive=positive if positive is not None else (classes[1] if len(classes) == 2 else None),
        pictures={p.name: _embedded(p) for p in pictures},
        first_metric="r2" if regression else "accuracy",
    )


def report_pictures(
    manifest: Manifest, evaluation: Evaluation, importances: Importances | None
) -> list[Picture]:
    """Draw every picture of the report: the fold scores, the test-split pictures of the
    task, and the permutation importance."""
    from mlcontainer.training.report import plots

    schema, selection = manifest.input_schema, manifest.selection
    spec = METRICS[selection.metric]
    out = [
        plots.fold_scores_picture(
            [(c.name, c.fold_scores) for c in manifest.leaderboard],
            metric_label=spec.label,
            greater_is_better=spec.greater_is_better,
            selected=selection.model,
        )
    ]
    if schema.is_regression:
        out += plots.regression_pictures(evaluation.truth, evaluation.predicted)
    else:
        out.append(plots.confusion_matrix_picture(evaluation.confusion_matrix, schema.classes))
        if evaluation.probabilities is not None:
            threshold, positive = chosen_threshold(manifest)
            out += plots.classification_pictures(
                evaluation.truth, evaluation.probabilities, schema.classes,
                threshold=threshold, positive=positive,
            )  # fmt: skip
    if importances is not None and importances.columns:
        out.append(
            plots.importance_picture(
                [(c.column, c.mean, c.std) for c in importances.columns],
                metric_label=METRICS[importances.metric].label,
                rows=importances.rows,
                repeats=importances.repeats,
                total=importances.total,
            )
        )
    return out
