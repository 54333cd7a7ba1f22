"""Typed errors, and the problems they report, mapped to exit codes or HTTP statuses at the edges.

A leaf module: everything may import it, it imports nothing of the package. Validation errors
are built from :class:`Problem` records (a machine-readable :class:`Reason`, a row number kept
as a number, a column, a message); the error's one-line message is written from the first
problem only when the error is made, so a caller can renumber rows (a chunk's rows counted
from the start of its file) without editing any text.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

#: How many problems one error lists in ``details`` before it stops listing (it keeps counting).
MAX_DETAILS = 20


class Reason(StrEnum):
    """Why a value, a row or a request was refused: the ``reason`` of each error detail."""

    #: A feature the model needs is absent (from the request, a record or the CSV header).
    MISSING_FEATURE = "missing_feature"
    #: A field the model does not know, where unknown fields are refused.
    UNKNOWN_FEATURE = "unknown_feature"
    #: A value of the wrong type for its feature (text for a number, a number for a category).
    WRONG_TYPE = "wrong_type"
    #: Infinity, or "nan"/"inf" written out, where a finite number is needed.
    NOT_FINITE = "not_finite"
    #: A finite number the model cannot compute with (beyond 32-bit floats for ONNX).
    OUT_OF_RANGE = "out_of_range"
    #: A row of the wrong shape: not a record or a list, or with the wrong number of values.
    ROW_SHAPE = "row_shape"
    #: The model's probabilities overflow on a row.
    UNSCORABLE = "unscorable"
    #: The request body does not have the shape the endpoint expects (a field, a type).
    INVALID_REQUEST = "invalid_request"


@dataclass(frozen=True)
class Problem:
    """One refused value or row: why, where (row counted as the caller counts, column) and what."""

    reason: Reason
    message: str
    #: The row's position in a batch (a JSON list), counted from 0.
    row: int | None = None
    column: str | None = None
    #: Where in a JSON request body (``instances.0.x``), for request-shape problems.
    location: str | None = None
    #: The file line (counted from 1, header included) of a row read from a CSV file.
    line: int | None = None

    def where(self) -> str:
        """``column 'x', row 3`` or ``column 'x', line 5`` (or either part alone, or ``""``)."""
        parts = []
        if self.column is not None:
            parts.append(f"column {self.column!r}")
        if self.line is not None:
            parts.append(f"line {self.line}")
        elif self.row is not None:
            parts.append(f"row {self.row}")
        return ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON form of one error detail."""
        out: dict[str, Any] = {"row": self.row, "column": self.column}
        if self.line is not None:
            out["line"] = self.line
        if self.location is not None:
            out["location"] = self.location
        out["reason"] = str(self.reason)
        out["message"] = self.message
        return out


class Problems:
    """Collects problems so that one error reports every bad value (listing up to a limit)."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self.total = 0

    def add(self, reason: Reason, message: str, *, row: int | None, column: str | None) -> None:
        """Record one problem."""
        self.total += 1
        if len(self.items) < MAX_DETAILS:
            self.items.append(Problem(reason, message, row=row, column=column))

    def raise_if_any(self, *, prefix: str = "") -> None:
        """Raise an :class:`InputValidationError` for the problems collected, if any."""
        if self.total:
            raise InputValidationError.of(self.items, total=self.total, prefix=prefix)


class MlcontainerError(Exception):
    """Base class: a message that names the bad value and what would be valid.

    ``setting`` names the setting (a ``Settings`` field such as ``runtime`` or ``model_dir``)
    the message is about, when it may have come from an option or an environment variable:
    the core says "the onnx runtime", and the edge adds where that is set (``--runtime`` or
    ``MLCONTAINER_RUNTIME``), which only the edge knows.
    """

    status_code: int = 400
    code: str = "bad_request"

    def __init__(
        self,
        message: str,
        *,
        problems: Iterable[Problem] = (),
        details: Sequence[Mapping[str, Any]] | None = None,
        setting: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.problems: tuple[Problem, ...] = tuple(problems)
        self._details = [dict(d) for d in details or ()]
        self.setting = setting

    def __reduce__(self) -> tuple[Any, ...]:
        # Whole, problems and all, when pickled (a Dask worker's error reaching the client):
        # Exception's default would call __init__ with the message alone.
        return (_restored, (type(self), self.args, self.__dict__))

    @property
    def details(self) -> list[dict[str, Any]]:
        """The JSON form of the problems (or of the details given)."""
        return [p.to_dict() for p in self.problems] or [dict(d) for d in self._details]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON error body ``{"error": {code, message, details}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


def _restored(
    kind: type[MlcontainerError], args: tuple[Any, ...], state: dict[str, Any]
) -> MlcontainerError:
    error = kind.__new__(kind)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(MlcontainerError):
    """An option or environment variable has an invalid value."""

    code = "invalid_configuration"


class DatasetError(MlcontainerError):
    """A dataset cannot be found, read, downloaded or used for training."""

    code = "invalid_dataset"


class TrainingError(MlcontainerError):
    """The data cannot be split or cross-validated as asked."""

    code = "training_failed"


class ArtifactError(MlcontainerError):
    """A saved model folder is missing, incomplete, tampered with or foreign."""

    status_code = 500
    code = "invalid_artifact"


class InputValidationError(MlcontainerError):
    """Rows to predict do not match the model's input schema."""

    status_code = 422
    code = "invalid_input"

    def __init__(
        self,
        message: str,
        *,
        problems: Iterable[Problem] = (),
        total: int | None = None,
        prefix: str | None = None,
    ) -> None:
        super().__init__(message, problems=problems)
        self.total = len(self.problems) if total is None else total
        #: Set when the message was written from the first problem (see :meth:`of`).
        self.prefix = prefix

    @classmethod
    def of(
        cls, problems: Sequence[Problem], *, total: int | None = None, prefix: str = ""
    ) -> InputValidationError:
        """Write the message from the first problem: ``column 'x', row 3: why (and N more)``."""
        first = problems[0]
        total = len(problems) if total is None else total
        where = first.where()
        more = f" (and {total - 1} more problem(s))" if total > 1 else ""
        text = f"{prefix}{where}: {first.message}{more}" if where else f"{prefix}{first.message}"
        return cls(text, problems=problems, total=total, prefix=prefix)

    def at_lines(self, lines: Sequence[int]) -> InputValidationError:
        """Return the same error with each row named by its file line: row ``r`` is the row
        that starts on ``lines[r]``."""
        problems = [
            replace(p, row=None, line=lines[p.row])
            if p.row is not None and 0 <= p.row < len(lines)
            else p
            for p in self.problems
        ]
        if self.prefix is None or not problems:
            return InputValidationError(self.message, problems=problems, total=self.total)
        return InputValidationError.of(problems, total=self.total, prefix=self.prefix)

    def renumbered(self, row: Callable[[int], int]) -> InputValidationError:
        """Return the same error with every row number ``r`` replaced by ``row(r)``.

        The message is written again from the renumbered problems when it was written from
        them in the first place; a message of its own names no row and is kept.
        """
        problems = [replace(p, row=row(p.row)) if p.row is not None else p for p in self.problems]
        if self.prefix is None or not problems:
            return InputValidationError(self.message, problems=problems, total=self.total)
        return InputValidationError.of(problems, total=self.total, prefix=self.prefix)

    def in_file(self, name: str, *, first: int) -> InputValidationError:
        """Return the same error for rows read from file ``name`` (Parquet: no lines): row
        ``r`` of the batch is the file's row ``first + r + 1``, counted from 1, and the message
        names the file."""
        problems = [
            replace(p, row=first + p.row + 1) if p.row is not None else p for p in self.problems
        ]
        where = f"in {name} (rows counted from 1): "
        if self.prefix is None or not problems:
            return InputValidationError(where + self.message, problems=problems, total=self.total)
        return InputValidationError.of(problems, total=self.total, prefix=where + self.prefix)


class ModelNotFoundError(MlcontainerError):
    """A request names a model this server does not serve."""

    status_code = 404
    code = "model_not_found"
