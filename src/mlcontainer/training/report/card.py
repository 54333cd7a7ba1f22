"""The model card: ``README.md`` for the model folder, written with ``skops.card``.

skops 0.16's :class:`skops.card.Card` renders the Markdown body (sections and tables); it
has no metadata header (that left with its Hugging Face Hub support), so the YAML header
is written here. Its values are JSON, which YAML reads as flow scalars and collections:
``json.dumps`` does the quoting and escaping, so a dataset named ``a: "b"`` stays one string.
The card is built from the manifest and the fitted pipeline only; no skops file is loaded.

Everything the data named (columns, classes, the dataset, its source, warnings that quote
them) is text, never Markdown: names go in code spans (:func:`_code`), sentences are escaped
(:func:`_text`), so a column called ``<script>`` or ``[x](javascript:...)`` reads as itself
in python-markdown and markdown-it alike, with raw HTML allowed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mlcontainer import __version__
from mlcontainer.core.artifacts import MODEL_FILE, TRUSTED_TYPES, Manifest
from mlcontainer.training.report.importance import Importances
from mlcontainer.training.search.metrics import METRICS

#: Keys written without quotes in the metadata header, unless YAML reads them as another
#: type (YAML 1.1 booleans and null: PyYAML takes ``yes: 1`` as ``{True: 1}``).
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NOT_TEXT = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
_NON_ASCII = re.compile(r"[^\x20-\x7e]")
#: Characters Markdown gives a meaning inline, escaped with a backslash (python-markdown
#: honours these escapes, CommonMark every ASCII punctuation), and the ones written as
#: character references instead: python-markdown has no escape for ``<``, ``|`` or ``~``.
_INLINE = re.compile(r"[\\`*_{}\[\]()!]")
_REFERENCES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "|": "&#124;", "~": "&#126;"}
_BLOCK_START = re.compile(r"^(\s*(?:\d+)?)([#+.)-])")
#: The Hugging Face task names for the two tasks.
PIPELINE_TAGS = {"classification": "tabular-classification", "regression": "tabular-regression"}


def front_matter(data: Mapping[str, Any]) -> str:
    """A YAML metadata header between ``---`` lines: block mappings and lists, every key and
    scalar written as JSON (ASCII only: YAML refuses some characters unescaped)."""
    return "---\n" + "\n".join(_block(data, 0)) + "\n---\n"


def _block(value: Mapping[str, Any] | Sequence[Any], depth: int) -> list[str]:
    pad = "  " * depth
    lines: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            plain = _PLAIN_KEY.fullmatch(key) and key.lower() not in _NOT_TEXT
            name = key if plain else _json(key)
            if isinstance(item, Mapping | list) and item:
                lines += [f"{pad}{name}:", *_block(item, depth + 1)]
            else:
                lines.append(f"{pad}{name}: {_json(item)}")
        return lines
    for item in value:
        if isinstance(item, Mapping | list) and item:
            first, *rest = _block(item, depth + 1)
            lines += [f"{pad}- {first.lstrip()}", *rest]
        else:
            lines.append(f"{pad}- {_json(item)}")
    return lines


def _json(value: Any) -> str:
    """A scalar (or empty collection) as JSON; text's non-ASCII characters as YAML escapes
    (JSON's surrogate pairs are two characters to YAML, so those get ``\\U`` instead)."""
    if not isinstance(value, str):
        return json.dumps(value, allow_nan=False)
    return _NON_ASCII.sub(_escape, json.dumps(value, ensure_ascii=False))


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def _text(value: object) -> str:
    """Data-derived text as Markdown that renders as exactly that text, on one line."""
    text = " ".join(str(value).splitlines())
    text = "".join(_REFERENCES.get(ch, ch) for ch in text)
    text = _INLINE.sub(r"\\\g<0>", text)
    # Where the text starts a line (a list item), a heading or list marker stays text.
    return _BLOCK_START.sub(r"\1\\\2", text, count=1)


def _code(value: object) -> str:
    """A data-derived name as an inline code span: literal in every renderer, on one line.

    The fence is one backtick longer than the longest run inside, and spaced from content
    that starts or ends with a backtick (both renderers strip that space).
    """
    text = " ".join(str(value).splitlines())
    if not text.strip():
        return f"`{text!r}`"  # an empty or blank name, shown quoted
    fence = "`" * (max(map(len, re.findall(r"`+", text)), default=0) + 1)
    pad = " " if text[0] in "` " or text[-1] in "` " else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def metadata(manifest: Manifest) -> dict[str, Any]:
    """The card's metadata: library, task, model file and test-split metrics."""
    task = manifest.input_schema.task
    metrics = [
        {"type": name, "value": value, "name": METRICS[name].label}
        for name, value in manifest.metrics.items()
        if name in METRICS and value is not None and math.isfinite(value)
    ]
    return {
        "library_name": "sklearn",
        "pipeline_tag": PIPELINE_TAGS[task],
        "tags": ["mlcontainer", "sklearn", "skops", PIPELINE_TAGS[task]],
        "model_format": "skops",
        "model_file": MODEL_FILE,
        "metrics": [m["type"] for m in metrics],
        "model-index": [
            {
                "name": manifest.name,
                "results": [
                    {
                        "task": {"type": PIPELINE_TAGS[task], "name": task},
                        "dataset": {"name": manifest.dataset.name, "type": "tabular"},
                        "metrics": metrics,
                    }
                ],
            }
        ],
    }


def model_card(
    manifest: Manifest,
    pipeline: Any,
    *,
    params: Mapping[str, str],
    importances: Importances | None,
    warnings: Sequence[str] = (),
) -> str:
    """Render the model card: metadata header, then what the model is for, its data, how it
    was chosen, its scores, what limits it, and how to load and serve it."""
    from skops.card import Card

    card = Card(pipeline, template=None, model_diagram=False)
    sel, task = manifest.selection, manifest.input_schema.task
    card.add(
        **{
            "Model description": _description(manifest),
            "Model description/Intended uses & limitations": _uses(manifest, warnings),
            "Model description/Training data": _training_data(manifest),
            "Model description/Training procedure": (
                f"{sel.cv}-fold {'' if task == 'regression' else 'stratified '}"
                f"cross-validation of {len(manifest.leaderboard)} candidates (the baseline "
                f"included) on {sel.train_rows} training rows, selected by "
                f"{METRICS[sel.metric].label}; the selected model was then fitted on "
                f"{sel.fit_rows} rows and scored once on {sel.test_rows} held-out rows "
                f"(seed {sel.seed}).{_tuning(manifest)}"
            ),
        }
    )
    _table(
        card,
        "Model description/Training procedure/Hyperparameters",
        {"Hyperparameter": list(params), "Value": [_cell(_code(v)) for v in params.values()]},
        f"The parameters of `{manifest.model.estimator}` (the pipeline's last step).",
    )
    _table(
        card,
        "Model description/Training procedure/Candidates",
        {
            "Candidate": [c.name for c in manifest.leaderboard],
            f"{METRICS[sel.metric].label} (mean ± std)": [
                _score(c.scores.get(sel.metric)) if c.error is None else f"failed: {_text(c.error)}"
                for c in manifest.leaderboard
            ],
        },
        "Cross-validated on the training split, best first.",
    )
    card.add_metrics(
        section="Model description/Evaluation results",
        description=f"On the {sel.test_rows} held-out test rows, scored once.",
        **{
            METRICS[n].label: (f"{v:.4f}" if v is not None else "n/a")
            for n, v in manifest.metrics.items()
            if n in METRICS
        },
    )
    if importances is not None and importances.columns:
        _table(
            card,
            "Model description/Evaluation results/Permutation importance",
            {
                "Column": [_cell(_code(c.column)) for c in importances.columns],
                "Mean drop": [f"{c.mean:.4f}" for c in importances.columns],
                "Std": [f"{c.std:.4f}" for c in importances.columns],
            },
            f"How much {METRICS[importances.metric].label} drops when one column is "
            f"shuffled ({importances.rows} test rows, {importances.repeats} shuffles each).",
        )
    card.add(**{"How to get started with the model": _get_started(manifest)})
    body: str = card.render()
    return front_matter(metadata(manifest)) + body.lstrip("\n") + "\n"


def _table(card: Any, key: str, table: Mapping[str, list[Any]], description: str) -> None:
    if not next(iter(table.values()), None):
        return  # skops refuses an empty table
    card.add_table(description=description, **{key: table})
    # skops titles a table with its whole key ("A/B/C"); the heading should say "C".
    card.select(key).title = key.rsplit("/", 1)[-1]


def _description(manifest: Manifest) -> str:
    schema, data = manifest.input_schema, manifest.dataset
    what = "class of" if schema.task == "classification" else "number"
    return (
        f"**{_text(manifest.name)}**: {manifest.model.description} "
        f"(`{manifest.model.estimator}`) that predicts the {what} {_code(schema.target)} from "
        f"{len(schema.features)} columns of the dataset {_code(data.name)}. Trained with "
        f"mlcontainer {__version__} on "
        f"{manifest.created}; the model folder's `model.json` lists every file's SHA-256 and "
        "`report.html` shows the evaluation with its pictures."
    )


def _uses(manifest: Manifest, warnings: Sequence[str]) -> str:
    schema, data = manifest.input_schema, manifest.dataset
    intended = (
        f"Intended use: predicting {_code(schema.target)} for new rows shaped like the "
        f"training data ({data.rows} rows from {_code(data.source)}): the same columns, read "
        "the same way. "
        "It has seen nothing else: rows from another population, values outside the "
        "training ranges or categories it never saw get answers nobody has checked."
    )
    limits = [
        _text(line)
        for line in (
            *data.warnings,
            *manifest.selection.warnings,
            *warnings,
            *manifest.selection.budget,
        )
    ]
    if data.excluded_classes:
        left = ", ".join(f"{_code(c)} ({n} rows)" for c, n in data.excluded_classes.items())
        limits.append(f"classes left out of training for having too few rows: {left}")
    if data.dropped_columns:
        dropped = ", ".join(map(_code, data.dropped_columns))
        limits.append(f"columns left out of training: {dropped}")
    if not limits:
        return intended + "\n\nLimitations: none were flagged while training."
    return (
        intended
        + "\n\nLimitations flagged while training:\n\n"
        + "\n".join(f"- {line}" for line in limits)
    )


def _training_data(manifest: Manifest) -> str:
    schema, data = manifest.input_schema, manifest.dataset
    if schema.task == "regression" and data.target_summary:
        s = data.target_summary
        target = (
            f"a number: mean {s['mean']:.4g}, standard deviation {s['std']:.4g}, from "
            f"{s['min']:.4g} to {s['max']:.4g}"
        )
    else:
        target = ", ".join(f"{_code(c)}: {n} rows" for c, n in data.class_counts.items())
    columns = ", ".join(f"{_code(f.name)} ({f.kind})" for f in schema.features)
    return (
        f"{_code(data.source)}: {data.rows} rows (content fingerprint "
        f"`{data.fingerprint[:16]}`); target {_code(schema.target)} ({target}).\n\n"
        f"Columns: {columns}."
    )


def _get_started(manifest: Manifest) -> str:
    name = manifest.name
    return (
        "Serve it over HTTP (a page with a form, `/predict`, MLflow's `/invocations`, KServe "
        "V2) or predict a file, from this folder:\n\n"
        "```console\n"
        "mlcontainer serve --model .\n"
        "mlcontainer predict --model . --input rows.csv\n"
        'docker run --rm -p 4000:8080 -v "$PWD:/app/artifacts:ro" ml-app serve\n'
        "```\n\n"
        "Load the pipeline in Python with skops, which runs no code while loading. Trust "
        "only the types listed here, which mlcontainer's own loader allows; never the list "
        "`skops.io.get_untrusted_types` reads from the file (a tampered file would name what "
        "it needs):\n\n"
        "```python\n"
        "import skops.io\n\n"
        f"trusted = {sorted(TRUSTED_TYPES)!r}\n"
        f'pipeline = skops.io.load("{MODEL_FILE}", trusted=trusted)\n'
        "```\n\n"
        f"The model's name is {_code(name)}."
    )


def _tuning(manifest: Manifest) -> str:
    """What the search kept and the decision layer, as sentences (empty when neither)."""
    out = ""
    if manifest.model.members:
        members = ", ".join(
            f"{_code(m.model)}{'' if m.preset == 'default' else ' ' + _code(m.preset)} "
            f"x{m.weight:.2f}"
            for m in manifest.model.members
        )
        out += (
            f" It is a weighted ensemble of the compared models ({members}), selected greedily "
            "on their out-of-fold predictions; it averages its members' outputs with these "
            "weights (soft voting), each member refitted on the training rows."
        )
    if manifest.model.preset != "default":
        params = ", ".join(_code(f"{k}={v}") for k, v in manifest.model.params.items())
        preset = _code(manifest.model.preset)
        out += f" Its search kept the preset {preset} ({params or 'defaults'})."
    decision = manifest.decision
    if decision is not None and decision.class_weights is not None:
        weights = ", ".join(
            f"{_code(c)} x{w:.2g}" for c, w in zip(manifest.input_schema.classes,
                                                   decision.class_weights, strict=True)
        )  # fmt: skip
        out += (
            f" It predicts the class with the largest weighted probability ({weights}; tuned "
            f"out of fold for {decision.metric}); the metrics below include it."
        )
    elif decision is not None:
        out += (
            f" It predicts {_code(decision.positive_class)} when that class's "
            f"{'calibrated ' if decision.calibration else ''}probability is at least "
            f"{decision.threshold:.3g} (tuned out of fold for {decision.metric})"
        )
        if decision.calibration is not None:
            out += ", after Platt scaling fitted out of fold"
        out += "; the served probabilities and the metrics below include it."
    return out


def _score(score: Any) -> str:
    if score is None or score.mean is None:
        return "n/a"
    return f"{score.mean:.4f} ± {score.std or 0.0:.4f}"


def _cell(markdown: str) -> str:
    """A table cell of Markdown (escaped text or a code span): no column separator, at most
    200 characters (a code span cut short is closed again)."""
    cell = markdown.replace("|", "\\|")
    if len(cell) <= 200:
        return cell
    fence = re.match(r"`+", cell)
    return cell[:200] + "…" + (fence.group() if fence else "")
