"""The intake recipe: how ``train`` read its file, kept in the manifest and applied to every input.

``train`` records the delimiter, whether the file had a header line, the column names, the
missing-value markers, the columns whose values were wrapped in single quotes, the columns
read as numbers from text, the target, the dropped columns and the date columns' formats.
``predict`` and every route of ``serve`` read their rows with the same recipe, so the rows of
the training file itself predict untouched: ``?`` is missing there as it was in training.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field


class IntakeRecipe(BaseModel):
    """The manifest's ``intake`` section."""

    model_config = ConfigDict(extra="allow", frozen=True)

    #: ``csv``, ``parquet`` or ``builtin`` (a table from an installed package).
    source_format: str = "csv"
    delimiter: str = ","
    #: Whether the training file's first row was a header line (else names were given).
    header: bool = True
    #: The training file's columns in file order, as named (target and dropped ones included).
    columns: list[str] = Field(default_factory=list)
    #: Text that meant "missing" once stripped; the empty cell always does.
    na_values: list[str] = Field(default_factory=lambda: [""])
    strip: bool = True
    #: Columns whose values were all wrapped in single quotes ('-1'): unwrapped on input.
    unquote: list[str] = Field(default_factory=list)
    #: Text columns read as numbers (every value that is not missing parses as one).
    numeric_text: list[str] = Field(default_factory=list)
    target: str | None = None
    dropped: list[str] = Field(default_factory=list)
    #: Text columns of dates and the format fixed for each: the saved pipeline turns them
    #: into calendar features (``core.dates``); the schema's features say the same.
    dates: dict[str, str] = Field(default_factory=dict)
    #: Columns training left out on its own (``leak`` or ``id``; ``--keep`` keeps one).
    left_out: dict[str, str] = Field(default_factory=dict)

    def cell_rules(self) -> CellRules:
        """The rules every input cell is read with."""
        return CellRules(markers=frozenset({"", *self.na_values}), unquote=frozenset(self.unquote))

    def ignored(self) -> dict[str, str]:
        """Columns an input may carry that the model does not use, with why (for a note)."""
        out = dict.fromkeys(self.dropped, "left out of training (--drop)")
        for name, kind in self.left_out.items():
            what = "a likely leak" if kind == "leak" else "it looks like an ID"
            out[name] = f"left out of training ({what}; --keep keeps it)"
        if self.target is not None:
            out[self.target] = "the target: the model predicts it"
        return out


#: How folders written before the recipe existed read their inputs: only an empty cell is
#: missing, nothing is unquoted, the first CSV row is a header.
LEGACY = IntakeRecipe()


@dataclass(frozen=True)
class CellRules:
    """Markers that mean missing, and the columns whose single quotes are unwrapped."""

    markers: frozenset[str] = frozenset({""})
    unquote: frozenset[str] = field(default_factory=frozenset)

    def text(self, column: str, value: str | None) -> str | None:
        """A text cell as training read it: stripped, unquoted, ``None`` for a marker."""
        if value is None:
            return None
        text = value.strip()
        if column in self.unquote:
            text = unwrap(text)
        return None if text in self.markers else text

    def texts(self, column: str, values: Iterable[str | None]) -> list[str | None]:
        """:meth:`text` of each value."""
        return [self.text(column, v) for v in values]


def unwrap(text: str) -> str:
    """``'-1'`` -> ``-1``: one pair of single quotes around a value, as ARFF exports write."""
    if len(text) >= 2 and text[0] == "'" and text[-1] == "'":
        return text[1:-1].strip()
    return text
