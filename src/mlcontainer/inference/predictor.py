"""A loaded model: one runtime (ONNX or scikit-learn) behind the same validation and labels.

:func:`load_predictor` reads and verifies a model folder and picks the runtime; a
:class:`Predictor` turns validated columns (see :mod:`.decoding`) into labels and
probabilities. Importable without pandas, scikit-learn or SciPy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlcontainer.core.artifacts import (
    MODEL_FILE,
    Manifest,
    OnnxSection,
    read_manifest,
    verify_file,
)
from mlcontainer.core.config import RUNTIMES
from mlcontainer.core.decision import decide
from mlcontainer.core.errors import (
    ConfigError,
    InputValidationError,
    Problem,
    Reason,
)
from mlcontainer.core.schema import Label, Schema
from mlcontainer.inference import decoding, layout
from mlcontainer.inference.layout import Resolver
from mlcontainer.inference.types import Columns, Decoded, Prediction, Runtime


class Predictor:
    """A loaded model that turns validated rows into predictions with one runtime."""

    def __init__(
        self,
        backend: Runtime,
        *,
        manifest: Manifest,
        sha256: str,
        runtime_reason: str | None = None,
    ) -> None:
        self.backend = backend
        self.runtime: str = backend.name
        #: Why the model is not served with ONNX (one line), or None when it is.
        self.runtime_reason = runtime_reason
        self.manifest = manifest
        self.schema: Schema = manifest.input_schema
        #: How the training file was read, applied to every input.
        self.recipe = manifest.recipe
        self.rules = self.recipe.cell_rules()
        #: Columns an input may hold that the model ignores (the target, dropped ones).
        self.ignored = self.recipe.ignored()
        self.classes: tuple[Label, ...] = self.schema.classes
        self.name = manifest.name
        #: The SHA-256 of the file the runtime reads (model.onnx or model.skops).
        self.sha256 = sha256

    def resolver(
        self, *, header: bool | None = None, columns: Sequence[str] | None = None
    ) -> Resolver:
        """How a CSV input's first row is laid out (a header, or data of the training file)."""
        return layout.resolver(self.schema, self.recipe, header=header, columns=columns)

    def predict(self, decoded: Decoded) -> Prediction:
        """Predict columns validated by one of the :mod:`.decoding` functions.

        Errors name rows by file line where the rows came from a file.
        """
        if self.schema.is_regression:
            return self._predict_values(decoded)
        try:
            proba = self.backend.predict_proba(decoded.columns)
        except InputValidationError as exc:
            raise decoded.locate(exc) from None
        _refuse_unscored(decoded, ~np.isfinite(proba).all(axis=1), "its probabilities overflow")
        decided = decide(proba, self.classes, self.manifest.decision)
        return Prediction(
            labels=decided.labels.tolist(),
            probabilities=decided.probabilities,
            classes=self.classes,
            warnings=list(decoded.warnings),
            positions=decided.positions,
        )

    def _predict_values(self, decoded: Decoded) -> Prediction:
        try:
            values = self.backend.predict_values(decoded.columns)
        except InputValidationError as exc:
            raise decoded.locate(exc) from None
        _refuse_unscored(decoded, ~np.isfinite(values), "its prediction overflows")
        return Prediction(
            labels=values.tolist(),
            probabilities=np.empty((len(values), 0)),
            classes=(),
            warnings=list(decoded.warnings),
            task="regression",
        )

    def decode_records(self, records: Sequence[Mapping[str, Any]]) -> Decoded:
        """Validate JSON records (``{feature: value}``) into typed columns."""
        return decoding.from_records(self.schema, records, self.rules, self.ignored)

    def decode_rows(self, rows: Sequence[Sequence[Any]]) -> Decoded:
        """Validate positional rows (values in schema order) into typed columns."""
        return decoding.from_rows(self.schema, rows, self.rules)

    def decode_text(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        lines: Sequence[int] | None = None,
    ) -> Decoded:
        """Validate a CSV-style table (header + text rows) into typed columns."""
        return decoding.from_text(self.schema, header, rows, self.rules, self.ignored, lines=lines)

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        """Validate JSON records (``{feature: value}``) and predict them."""
        return self.predict(self.decode_records(records))

    def predict_rows(self, rows: Sequence[Sequence[Any]]) -> Prediction:
        """Validate positional rows (values in schema order) and predict them."""
        return self.predict(self.decode_rows(rows))

    def predict_text(
        self,
        header: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        lines: Sequence[int] | None = None,
    ) -> Prediction:
        """Validate a CSV-style table (header + text rows) and predict it."""
        return self.predict(self.decode_text(header, rows, lines=lines))

    def warm_up(self) -> None:
        """Pay the first prediction's one-off costs now (sessions, lazy imports, caches)."""
        # A category seen in training where the schema lists one, else a missing value.
        columns: Columns = {
            f.name: np.array([f.categories[0] if f.categories else None], dtype=object)
            if f.kind == "categorical"
            else np.zeros(1)
            for f in self.schema.features
        }
        try:
            if self.schema.is_regression:
                self.backend.predict_values(columns)
            else:
                self.backend.predict_proba(columns)
        except InputValidationError:
            return


@dataclass(frozen=True)
class RuntimeChoice:
    """What a load of a model folder will do: its checked manifest and the runtime chosen."""

    manifest: Manifest
    runtime: str
    #: The verified ONNX section when ONNX serves it, else None.
    onnx: OnnxSection | None
    #: Why scikit-learn serves it (one line), or None for ONNX.
    reason: str | None


def choose_runtime(model_dir: Path, runtime: str = "auto") -> RuntimeChoice:
    """Check ``model_dir`` and pick the runtime that serves it, without loading the model.

    Reads the manifest and every file's hash, and refuses a runtime that cannot serve the
    folder or is not installed; imports neither scikit-learn nor onnxruntime, so a server
    can say what is wrong before it binds its port and load the model afterwards.
    """
    from mlcontainer.inference import sklearn_runtime

    if runtime not in RUNTIMES:
        raise ConfigError(
            f"unknown runtime {runtime!r}; valid: {', '.join(RUNTIMES)}", setting="runtime"
        )
    manifest = read_manifest(model_dir)
    section = manifest.runtime
    onnx = section.verified_onnx() if section is not None else None
    why_not = (
        section.why_not_onnx()
        if section is not None
        else "this model folder predates ONNX export (no runtime in model.json)"
    )
    if runtime == "onnx" or (runtime == "auto" and manifest.default_runtime() == "onnx"):
        if onnx is None:
            raise ConfigError(
                f"the onnx runtime cannot serve {model_dir}: it has no verified ONNX model "
                f"({why_not}); use the sklearn or auto runtime",
                setting="runtime",
            )
        return RuntimeChoice(manifest, "onnx", onnx, None)
    if not sklearn_runtime.available():
        if runtime == "auto":
            raise ConfigError(
                f"{model_dir} has no verified ONNX model ({why_not}), and "
                f"{sklearn_runtime.NO_SKLEARN}",
                setting="runtime",
            )
        raise ConfigError(sklearn_runtime.NO_SKLEARN, setting="runtime")
    reason = "scikit-learn runtime asked for" if runtime == "sklearn" else why_not
    return RuntimeChoice(manifest, "sklearn", None, reason)


def load_predictor(
    model_dir: Path, runtime: str = "auto", *, threads: int | None = None
) -> Predictor:
    """Load and verify ``model_dir`` for the ``runtime`` asked for (auto: ONNX if verified).

    ``threads`` caps the runtime's compute threads (None: all cores for ONNX, as loaded
    for scikit-learn).
    """
    choice = choose_runtime(model_dir, runtime)
    manifest = choice.manifest
    if choice.onnx is not None:
        from mlcontainer.inference.onnx_runtime import OnnxRuntime

        graph = verify_file(model_dir, manifest, choice.onnx.file)
        backend = OnnxRuntime(graph, choice.onnx, manifest.input_schema, threads=threads)
        return Predictor(backend, manifest=manifest, sha256=manifest.sha256(choice.onnx.file))
    from mlcontainer.inference import sklearn_runtime

    pipeline = sklearn_runtime.load_pipeline(model_dir, manifest)
    return Predictor(
        sklearn_runtime.SklearnRuntime(pipeline, manifest.input_schema),
        manifest=manifest,
        sha256=manifest.sha256(MODEL_FILE),
        runtime_reason=choice.reason,
    )


def _refuse_unscored(decoded: Decoded, unscored: np.ndarray, why: str) -> None:
    """Refuse the rows the model gave no finite answer for (at most 20 named)."""
    rows = np.flatnonzero(unscored)
    if not rows.size:
        return
    problems = [
        Problem(
            Reason.UNSCORABLE,
            f"the model cannot score it ({why}); check for values far outside the range seen "
            "in training",
            row=int(r),
        )
        for r in rows[:20]
    ]
    raise decoded.locate(InputValidationError.of(problems, total=int(rows.size)))
