"""The two ways to score validated columns: onnxruntime on model.onnx, or the scikit-learn pipeline.

Both return float64 class probabilities in the schema's class order; labels, overflow checks
and validation are shared (:mod:`mlcontainer.prediction`). Neither imports its library until
a model is loaded with it.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mlcontainer.config import RUNTIMES
from mlcontainer.errors import ArtifactError, ConfigError, InputValidationError

if TYPE_CHECKING:
    import pandas as pd

    from mlcontainer.artifacts import LoadedModel
    from mlcontainer.prediction import Columns, Predictor
    from mlcontainer.schema import Schema

ONNX_FILE = "model.onnx"
NO_SKLEARN = (
    "the scikit-learn runtime needs scikit-learn, which this installation lacks "
    "(install mlcontainer[train], or use --runtime onnx)"
)
_INPUT_TYPES = ("float", "string")
_MAX_FLOAT32 = float(np.finfo(np.float32).max)


class Runtime(Protocol):
    """Scores typed columns: one probability row per input row, classes in schema order."""

    name: str

    def predict_proba(self, columns: Columns) -> np.ndarray: ...


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


class SklearnRuntime:
    """The fitted scikit-learn pipeline from model.skops."""

    name = "sklearn"

    def __init__(self, model: LoadedModel) -> None:
        self.model = model
        self.schema = model.schema

    def predict_proba(self, columns: Columns) -> np.ndarray:
        """Score the columns with ``pipeline.predict_proba``; refuse values it overflows on."""
        frame = to_frame(self.schema, columns)
        # Finite but extreme values (1e308) can overflow inside a model: refuse, don't guess.
        with np.errstate(all="ignore"):
            try:
                return np.asarray(self.model.pipeline.predict_proba(frame), dtype=float)
            except ValueError as exc:  # e.g. scaling 1e308 overflows to infinity
                raise InputValidationError(
                    f"the model cannot score these rows: {str(exc).splitlines()[0]} "
                    "(check for values far outside the range seen in training)"
                ) from None


class OnnxRuntime:
    """One onnxruntime session on model.onnx, fed one [N, 1] tensor per feature."""

    name = "onnx"

    def __init__(
        self, model_bytes: bytes, section: Mapping[str, Any], schema: Schema, *, threads: int | None
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads or os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # warnings about unused initialisers are not the user's
        try:
            self.session = ort.InferenceSession(
                model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except _ort_errors() as exc:
            raise ArtifactError(f"onnxruntime cannot load {ONNX_FILE}: {exc}") from None
        self.schema = schema
        self.missing_category = str(section.get("missing_category", ""))
        self.probabilities_output = str(section.get("probabilities_output", "probabilities"))
        graph_inputs = {i.name for i in self.session.get_inputs()}
        self.inputs: list[tuple[str, str, str]] = []
        for spec in section.get("inputs", []):
            name, column, kind = str(spec["name"]), str(spec["column"]), str(spec["type"])
            if name not in graph_inputs or column not in schema.names or kind not in _INPUT_TYPES:
                raise ArtifactError(
                    f"{ONNX_FILE} does not match its manifest: input {spec!r} is not one of the "
                    f"graph's inputs {sorted(graph_inputs)} for a schema feature"
                )
            self.inputs.append((name, column, kind))
        if {c for _, c, _ in self.inputs} != set(schema.names) or len(self.inputs) != len(
            graph_inputs
        ):
            raise ArtifactError(
                f"{ONNX_FILE} does not match its manifest: its inputs do not cover the features "
                f"{schema.names} one to one"
            )
        if self.probabilities_output not in {o.name for o in self.session.get_outputs()}:
            raise ArtifactError(
                f"{ONNX_FILE} has no output {self.probabilities_output!r} named by its manifest"
            )

    def predict_proba(self, columns: Columns) -> np.ndarray:
        """Score the columns with onnxruntime; refuse numbers beyond float32's range."""
        feeds: dict[str, np.ndarray] = {}
        too_large: list[tuple[int, str]] = []
        for name, column, kind in self.inputs:
            values = columns[column]
            if kind == "string":
                cells = values.copy()
                cells[values == None] = self.missing_category  # noqa: E711 - elementwise
                feeds[name] = cells.reshape(-1, 1)
                continue
            with np.errstate(over="ignore"):
                tensor = values.astype(np.float32)
            beyond = np.flatnonzero(np.abs(values) > _MAX_FLOAT32)
            too_large.extend((int(r), column) for r in beyond[:20])
            feeds[name] = tensor.reshape(-1, 1)
        if too_large:
            row, column = min(too_large)
            raise InputValidationError(
                f"row {row}: the model cannot score it (column {column!r} is beyond the 32-bit "
                "float range the ONNX model computes in); check for values far outside the "
                "range seen in training",
                details=[
                    {"row": r, "column": c, "message": "beyond the 32-bit float range"}
                    for r, c in sorted(too_large)[:20]
                ],
            )
        with np.errstate(all="ignore"):
            try:
                (proba,) = self.session.run([self.probabilities_output], feeds)
            except _ort_errors() as exc:
                raise ArtifactError(
                    f"the ONNX model failed on these rows: {str(exc).splitlines()[0]}"
                ) from None
        return np.asarray(proba, dtype=np.float64)


def _ort_errors() -> tuple[type[Exception], ...]:
    """onnxruntime's exception classes (plain ``Exception`` subclasses, one per status)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = (
        "Fail",
        "InvalidArgument",
        "InvalidGraph",
        "InvalidProtobuf",
        "NoSuchFile",
        "NotImplemented",
        "RuntimeException",
        "EPFail",
    )
    return tuple(getattr(state, n) for n in names if hasattr(state, n))


def verified_onnx(manifest: Mapping[str, Any]) -> tuple[Mapping[str, Any] | None, str | None]:
    """Return (the manifest's ONNX section, None) if it is verified, else (None, why not)."""
    section = manifest.get("runtime")
    if not isinstance(section, Mapping):
        return None, "this model folder predates ONNX export (no runtime in model.json)"
    reason = section.get("reason")
    onnx = section.get("onnx")
    if not isinstance(onnx, Mapping):
        return None, str(reason or "the model folder has no ONNX model")
    check = onnx.get("verification")
    if not isinstance(check, Mapping):
        return None, "the ONNX model was never verified against scikit-learn"
    diff, tolerance = check.get("max_abs_probability_diff"), check.get("tolerance")
    if check.get("labels_equal") is not True or not (
        isinstance(diff, (int, float)) and isinstance(tolerance, (int, float)) and diff <= tolerance
    ):
        return None, str(reason or "the ONNX model disagrees with scikit-learn on the test split")
    return onnx, None


def load(model_dir: Path, runtime: str = "auto", *, threads: int | None = None) -> Predictor:
    """Load ``model_dir`` with the asked runtime (see ``prediction.load_predictor``)."""
    from mlcontainer.artifacts import read_manifest, verify_file
    from mlcontainer.prediction import Predictor
    from mlcontainer.schema import Schema

    if runtime not in RUNTIMES:
        raise ConfigError(f"unknown runtime {runtime!r}; valid: {', '.join(RUNTIMES)}")
    manifest = read_manifest(model_dir)
    onnx, why_not = verified_onnx(manifest)
    use_onnx = runtime == "onnx" or (
        runtime == "auto" and onnx is not None and manifest["runtime"].get("default") == "onnx"
    )
    if use_onnx:
        if onnx is None:
            raise ConfigError(
                f"--runtime onnx: {model_dir} has no verified ONNX model ({why_not}); "
                "use --runtime sklearn or auto"
            )
        try:
            schema = Schema.from_dict(manifest["schema"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ArtifactError(f"the manifest in {model_dir} has no valid schema: {exc}") from None
        name = str(onnx.get("file", ONNX_FILE))
        backend = OnnxRuntime(verify_file(model_dir, manifest, name), onnx, schema, threads=threads)
        return Predictor(
            backend, manifest=manifest, schema=schema, sha256=manifest["files"][name]["sha256"]
        )
    if importlib.util.find_spec("sklearn") is None or importlib.util.find_spec("skops") is None:
        if runtime == "auto":
            raise ConfigError(
                f"{model_dir} has no verified ONNX model ({why_not}), and {NO_SKLEARN}"
            )
        raise ConfigError(NO_SKLEARN)
    from mlcontainer.artifacts import load as load_sklearn

    model = load_sklearn(model_dir)
    reason = "scikit-learn runtime asked for" if runtime == "sklearn" else why_not
    return Predictor(
        SklearnRuntime(model),
        manifest=model.manifest,
        schema=model.schema,
        sha256=model.sha256,
        runtime_reason=reason,
    )
