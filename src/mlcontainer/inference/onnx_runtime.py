"""Score with onnxruntime on ``model.onnx``: one ``[N, 1]`` tensor per feature, each number
float32 or float64 as the graph's input says (its outputs are float32).

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
        # The graph output this runtime reads: probabilities, or a regressor's values.
        output = section.value_output if schema.is_regression else section.probabilities_output
        if output is None:
            raise ArtifactError(
                f"the manifest's ONNX section names no output for a {schema.task} model"
            )
        self.output = output
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
        outputs = {o.name: o.shape for o in self.session.get_outputs()}
        if self.output not in outputs:
            raise ArtifactError(
                f"{section.file} has no output {self.output!r} named by its manifest"
            )
        self.width = None if schema.is_regression else len(schema.classes)
        shape = outputs[self.output]
        known = self.width is not None and len(shape) == 2 and isinstance(shape[1], int)
        if known and shape[1] != self.width:
            raise ArtifactError(
                f"{section.file} does not match its manifest: it gives {shape[1]} class "
                f"probabilities, the manifest lists {self.width} classes"
            )

    def predict_proba(self, columns: Columns) -> np.ndarray:
        """A classifier's probabilities for the columns; refuse what a float input cannot hold."""
        return self._run(columns)

    def predict_values(self, columns: Columns) -> np.ndarray:
        """A regressor's predictions for the columns, one number per row, to the 7
        significant digits a float32 graph computes (209.9008, not 209.9008331298828)."""
        return float32_digits(self._run(columns).ravel())

    def _run(self, columns: Columns) -> np.ndarray:
        feeds: dict[str, np.ndarray] = {}
        too_large: list[tuple[int, str]] = []
        for name, column, kind in self.inputs:
            values = columns[column]
            if kind == "string":
                cells = values.copy()
                cells[values == None] = self.missing_category  # noqa: E711 - elementwise
                feeds[name] = cells.reshape(-1, 1)
                continue
            if kind == "double":
                feeds[name] = values.astype(np.float64).reshape(-1, 1)
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
                (scores,) = self.session.run([self.output], feeds)
            except _ort_errors() as exc:
                raise ArtifactError(
                    f"the ONNX model failed on these rows: {str(exc).splitlines()[0]}"
                ) from None
        scores = np.asarray(scores, dtype=np.float64)
        if self.width is not None and scores.shape[1:] != (self.width,):
            raise ArtifactError(
                f"model.onnx does not match its manifest: it gave {scores.shape[1:]} "
                f"probabilities per row for {self.width} classes"
            )
        return scores


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


#: Significant decimal digits every float32 holds.
FLOAT32_DIGITS = 7


def float32_digits(values: np.ndarray, digits: int = FLOAT32_DIGITS) -> np.ndarray:
    """Float64 values rounded to ``digits`` significant digits, so that JSON and CSV show the
    precision a float32 computation has rather than the binary noise of widening it.

    Vectorised (~0.08 s per million values): x is rounded at 10^k and divided back, and an
    IEEE division of an integer by an exact power of ten gives the double nearest the
    decimal, which prints as that decimal. Values outside [1e-16, 1e29), where the power of
    ten needed is not an exact double, are left as they are.
    """
    x = values.astype(np.float64)
    finite = np.isfinite(x) & (x != 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(finite, digits - 1 - np.floor(np.log10(np.abs(x))), 0)
    exact = finite & (np.abs(k) <= 22)  # powers of ten up to 1e22 are exact doubles
    k = np.where(exact, k, 0)
    up = 10.0 ** np.maximum(k, 0)
    down = 10.0 ** np.maximum(-k, 0)
    rounded = np.where(k >= 0, np.round(x * up) / up, np.round(x / down) * down)
    return np.where(exact, rounded, x)
