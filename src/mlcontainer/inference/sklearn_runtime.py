"""Score with the fitted scikit-learn pipeline from ``model.skops``, loaded without running code.

skops reads the file; only the types of :data:`~mlcontainer.core.artifacts.TRUSTED_TYPES`
beyond its defaults are allowed, and that list comes from this code, never from the file.
scikit-learn, skops and pandas are imported only when a model is loaded with this runtime.
"""

from __future__ import annotations

import importlib.util
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.artifacts import MODEL_FILE, TRUSTED_TYPES, Manifest, verify_file
from mlcontainer.core.errors import ArtifactError, InputValidationError
from mlcontainer.core.schema import Schema
from mlcontainer.inference.types import Columns

if TYPE_CHECKING:
    import pandas as pd

NO_SKLEARN = (
    "the scikit-learn runtime needs scikit-learn, which this installation lacks "
    "(install mlcontainer[train], or use the onnx runtime)"
)


def available() -> bool:
    """Whether scikit-learn and skops are installed (the training extra)."""
    return importlib.util.find_spec("sklearn") is not None and (
        importlib.util.find_spec("skops") is not None
    )


def to_frame(schema: Schema, columns: Columns) -> pd.DataFrame:
    """Return the pandas frame the scikit-learn pipelines were fitted on (NaN = missing)."""
    import pandas as pd

    data: dict[str, Any] = {}
    for f in schema.features:
        values = columns[f.name]
        if f.kind == "categorical":
            data[f.name] = pd.Series(
                [np.nan if v is None else v for v in values.tolist()], dtype=object
            )
        else:
            data[f.name] = np.asarray(values, dtype=float)
    return pd.DataFrame(data, copy=False)


def load_pipeline(model_dir: Path, manifest: Manifest) -> Any:
    """Load ``model.skops`` after verifying its hash and the types it contains."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    data = verify_file(model_dir, manifest, MODEL_FILE)
    path = model_dir / MODEL_FILE
    try:
        untrusted = set(skops.io.get_untrusted_types(data=data))
        refused = sorted(untrusted - TRUSTED_TYPES)
        if refused:
            raise ArtifactError(
                f"{path} contains types mlcontainer does not trust: {', '.join(refused)}; "
                "it was not written by mlcontainer's candidate models and will not be loaded"
            )
        pipeline = skops.io.loads(data, trusted=sorted(untrusted))
    except UntrustedTypesFoundException as exc:
        raise ArtifactError(f"{path} was refused by skops: {exc}") from None
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{path} is not a valid skops model file: {exc}") from None
    schema = manifest.input_schema
    fitted = getattr(pipeline, "feature_names_in_", None)
    if fitted is not None and [str(n) for n in fitted] != schema.names:
        raise ArtifactError(
            f"{path} does not match its manifest: it reads the features {_few(list(fitted))}, "
            f"the manifest lists {_few(schema.names)}"
        )
    if schema.is_regression:
        if not hasattr(pipeline, "predict") or hasattr(pipeline, "classes_"):
            raise ArtifactError(f"{path} does not match its manifest: it is not a regressor")
        return pipeline
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(pipeline, "classes_", [])]
    if not hasattr(pipeline, "predict_proba") or classes != list(schema.classes):
        raise ArtifactError(
            f"{path} does not match its manifest: classes {_few(classes)} vs "
            f"{_few(list(schema.classes))}"
        )
    return pipeline


def _few(values: list[Any], shown: int = 8) -> str:
    """A list for a message: all of a short one, the first few and the count of a long one."""
    if len(values) <= shown:
        return repr(values)
    return f"{repr(values[:shown])[:-1]}, ...] ({len(values)} in all)"


class SklearnRuntime:
    """The fitted scikit-learn pipeline from model.skops."""

    name = "sklearn"

    def __init__(self, pipeline: Any, schema: Schema) -> None:
        self.pipeline = pipeline
        self.schema = schema

    def predict_proba(self, columns: Columns) -> np.ndarray:
        """Score the columns with ``pipeline.predict_proba``; refuse values it overflows on."""
        return self._run("predict_proba", columns)

    def predict_values(self, columns: Columns) -> np.ndarray:
        """A regressor's predictions for the columns (``pipeline.predict``)."""
        return self._run("predict", columns).ravel()

    def _run(self, method: str, columns: Columns) -> np.ndarray:
        frame = to_frame(self.schema, columns)
        # Finite but extreme values (1e308) can overflow inside a model: refuse, don't guess.
        with np.errstate(all="ignore"):
            try:
                return np.asarray(getattr(self.pipeline, method)(frame), dtype=float)
            except ValueError as exc:  # e.g. scaling 1e308 overflows to infinity
                raise InputValidationError(
                    f"the model cannot score these rows: {str(exc).splitlines()[0]} "
                    "(check for values far outside the range seen in training)"
                ) from None
