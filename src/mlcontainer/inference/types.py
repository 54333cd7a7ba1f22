"""Types the inference modules share: typed columns, a prediction, the runtime protocol.

A leaf: it imports nothing of the package but the core, so every inference module may import
it without a cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from mlcontainer.core.errors import InputValidationError
from mlcontainer.core.schema import Label, Task

#: One validated array per feature: float64 (NaN = missing) for numeric and boolean features,
#: object arrays of ``str`` (``None`` = missing) for categorical ones.
Columns = dict[str, np.ndarray]


@dataclass(frozen=True)
class Decoded:
    """Validated columns for a batch of rows, and the warnings validation gave (extra columns)."""

    columns: Columns
    rows: int
    warnings: list[str] = field(default_factory=list)
    #: The file line each row starts on (counted from 1), for input read from CSV.
    lines: Sequence[int] | None = None
    #: For rows read from a Parquet file (no lines): its name, and the file row (counted
    #: from 0) of the first row.
    origin: tuple[str, int] | None = None

    def locate(self, exc: InputValidationError) -> InputValidationError:
        """The error with its rows named by file line (or file and row), where the rows came
        from a file."""
        if self.lines is not None:
            return exc.at_lines(self.lines)
        if self.origin is not None:
            return exc.in_file(self.origin[0], first=self.origin[1])
        return exc


@dataclass(frozen=True)
class Prediction:
    """A batch's predictions, plus validation warnings.

    A classifier's: labels and per-class probabilities. A regressor's: the predicted numbers
    as ``labels`` (floats), no classes, and a probability array with no column.
    """

    labels: list[Label] | list[float]
    probabilities: np.ndarray
    classes: tuple[Label, ...]
    warnings: list[str] = field(default_factory=list)
    task: Task = "classification"
    #: A classifier's: the position of each row's label in ``classes`` (int64), as
    #: :func:`mlcontainer.core.decision.decide` chose it; None for a regressor.
    positions: np.ndarray | None = None

    @property
    def is_regression(self) -> bool:
        """Whether the predictions are numbers rather than classes."""
        return self.task == "regression"

    def records(self) -> list[dict[str, Any]]:
        """Return one ``{"prediction": ..., "probabilities": {class: p}}`` per row (a
        regressor's: ``{"prediction": number}``)."""
        if self.is_regression:
            return [{"prediction": value} for value in self.labels]
        names = [str(c) for c in self.classes]
        return [
            {"prediction": label, "probabilities": dict(zip(names, row, strict=True))}
            for label, row in zip(self.labels, self.probabilities.tolist(), strict=True)
        ]


class Runtime(Protocol):
    """Scores typed columns: a classifier's probabilities (one row per input row, classes in
    schema order), or a regressor's values (one number per input row)."""

    name: str

    def predict_proba(self, columns: Columns) -> np.ndarray: ...

    def predict_values(self, columns: Columns) -> np.ndarray: ...
