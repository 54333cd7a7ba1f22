"""Score with onnxruntime on ``model.onnx``: one ``[N, 1]`` tensor per feature, float32 maths.

The graph's inputs and outputs come from the manifest's ONNX section, which training wrote
after checking the graph against scikit-learn on the held-out rows. Importable without
scikit-learn, SciPy or pandas; onnxruntime itself is imported when a session is made.
"""

from __future__ import annotations

import os

import numpy as np

from mlcontainer.core.artifacts import OnnxSection
from mlcontainer.core.errors import ArtifactError, InputValidationError, Problem, Reason
from mlcontainer.core.schema import Schema
from mlcontainer.inference.types import Columns

_MAX_FLOAT32 = float(np.finfo(np.float32).max)


class OnnxRuntime:
    """One onnxruntime session on model.onnx, fed one [N, 1] tensor per feature."""

    name = "onnx"

    def __init__(
        self, model_bytes: bytes, section: OnnxSection, schema: Schema, *, threads: int | None
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
            raise ArtifactError(f"onnxruntime cannot load {section.file}: {exc}") from None
        self.schema = schema
        self.missing_category = section.missing_category
        self.probabilities_output = section.probabilities_output
        graph_inputs = {i.name for i in self.session.get_inputs()}
        self.inputs: list[tuple[str, str, str]] = []
        for spec in section.inputs:
            if spec.name not in graph_inputs or spec.column not in schema.names:
                raise ArtifactError(
                    f"{section.file} does not match its manifest: input {spec.name!r} is not one "
                    f"of the graph's inputs {sorted(graph_inputs)} for a schema feature"
                )
            self.inputs.append((spec.name, spec.column, spec.type))
        if {c for _, c, _ in self.inputs} != set(schema.names) or len(self.inputs) != len(
            graph_inputs
        ):
            raise ArtifactError(
                f"{section.file} does not match its manifest: its inputs do not cover the "
                f"features {schema.names} one to one"
            )
        if self.probabilities_output not in {o.name for o in self.session.get_outputs()}:
            raise ArtifactError(
                f"{section.file} has no output {self.probabilities_output!r} named by its manifest"
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
            raise InputValidationError.of(
                [
                    Problem(
                        Reason.OUT_OF_RANGE,
                        "the model cannot score it: the value is beyond the 32-bit float range "
                        "the ONNX model computes in; check for values far outside the range "
                        "seen in training",
                        row=r,
                        column=c,
                    )
                    for r, c in sorted(too_large)[:20]
                ]
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
