"""Typed errors raised by the core and mapped to exit codes or HTTP statuses at the edges."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class MlcontainerError(Exception):
    """Base class: a message that names the bad value and what would be valid."""

    status_code: int = 400
    code: str = "bad_request"

    def __init__(self, message: str, *, details: Sequence[Mapping[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[dict[str, Any]] = [dict(d) for d in details or ()]

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON error body ``{"error": {code, message, details}}``."""
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


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


class ModelNotFoundError(MlcontainerError):
    """A request names a model this server does not serve."""

    status_code = 404
    code = "model_not_found"
