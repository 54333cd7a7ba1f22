"""Tell how a CSV to predict lays out its columns: a header line, or rows of the training file.

The first row is a header when it names every feature (after the header rule of
:func:`~mlcontainer.core.csvtext.unique_names`, so a training file's renamed header maps the
same way), or when it is no row of data. It is data when its cells read as the features'
values and its width is one of the training file's: every column (the training file
itself), every column but the target, or the features in schema order. ``--header``,
``--no-header`` and ``--columns`` decide instead of the guess.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mlcontainer.core.csvtext import CsvError, Row, given_names, unique_names
from mlcontainer.core.errors import InputValidationError
from mlcontainer.core.recipe import CellRules, IntakeRecipe
from mlcontainer.core.schema import Schema
from mlcontainer.inference.coercion import bool_from_text


@dataclass(frozen=True)
class Layout:
    """The input's column names, whether its first row is data, and a note saying so."""

    names: list[str]
    first_is_data: bool
    note: str | None = None


#: Called with the first row of an input; returns its layout.
Resolver = Callable[[Row], Layout]


def resolver(
    schema: Schema,
    recipe: IntakeRecipe,
    *,
    header: bool | None = None,
    columns: Sequence[str] | None = None,
) -> Resolver:
    """Return the rule that lays out an input from its first row."""
    rules = recipe.cell_rules()

    def resolve(first: Row) -> Layout:
        if columns is not None:
            try:
                names = given_names(columns, first)
            except CsvError as exc:
                raise InputValidationError(exc.message) from None
            return Layout(names, first_is_data=header is not True)
        named, _ = unique_names(first.cells)
        if header is True or (header is None and set(schema.names) <= set(named)):
            return Layout(named, first_is_data=False)
        layouts = positional_layouts(schema, recipe)
        positional = layouts.get(len(first.cells))
        if header is False:
            if positional is None:
                raise InputValidationError(_width_error(first, layouts, headerless=True))
            return Layout(positional, first_is_data=True, note=_note(first, positional, schema))
        if positional is not None and _reads_as_data(
            first.cells, positional, schema, rules, recipe
        ):
            return Layout(positional, first_is_data=True, note=_note(first, positional, schema))
        return Layout(named, first_is_data=False)

    return resolve


def positional_layouts(schema: Schema, recipe: IntakeRecipe) -> dict[int, list[str]]:
    """Column names by width for an input without a header line, in order of preference."""
    out: dict[int, list[str]] = {}
    candidates = [schema.names]
    if recipe.columns:
        candidates = [
            recipe.columns,
            [c for c in recipe.columns if c != recipe.target],
            schema.names,
        ]
    for names in candidates:
        out.setdefault(len(names), list(names))
    return out


def _reads_as_data(
    cells: Sequence[str],
    names: Sequence[str],
    schema: Schema,
    rules: CellRules,
    recipe: IntakeRecipe,
) -> bool:
    position = {n: j for j, n in enumerate(names)}
    numeric = 0
    known = 0
    categorical = 0
    for feature in schema.features:
        j = position.get(feature.name)
        if j is None:
            return False
        text = rules.text(feature.name, cells[j])
        if text is None:
            continue
        if feature.kind == "numeric":
            try:
                float(text)
            except ValueError:
                return False
            numeric += 1
        elif feature.kind == "boolean":
            if bool_from_text(text) is None:
                return False
            numeric += 1
        else:
            categorical += 1
            known += feature.categories is not None and text in feature.categories
    # With no number to check, a row of known categories (or a training file that had no
    # header line itself) is data; a row of unheard-of words is a header.
    return numeric > 0 or not recipe.header or (categorical > 0 and known * 2 > categorical)


def _note(first: Row, names: Sequence[str], schema: Schema) -> str:
    what = "every training column" if len(names) > len(schema.names) else "the features"
    return (
        f"the input has no header line (line {first.line} holds values): its "
        f"{len(names)} columns are read as {what}, in the training file's order"
    )


def _width_error(first: Row, layouts: dict[int, list[str]], *, headerless: bool) -> str:
    widths = " or ".join(str(w) for w in layouts)
    start = "--no-header: " if headerless else ""
    return (
        f"{start}a row without a header line must have {widths} fields (the training "
        f"file's columns, without the target, or the features in order); line {first.line} "
        f"has {len(first.cells)}"
    )
