"""The model as serving sees it: what a predictor must offer, loading it, and worker threads.

Serving talks to ``mlcontainer.prediction`` through the ``ServedModel`` shape only, so the
ONNX and the scikit-learn runtimes are served by the same routes. Until the prediction API
of issue 5 (``load_predictor``, ``read_csv_text``) is in ``mlcontainer.prediction``, a
minimal adapter here wraps the scikit-learn ``Predictor``.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, cast

from mlcontainer.errors import InputValidationError

if TYPE_CHECKING:
    from mlcontainer.prediction import Prediction
    from mlcontainer.schema import Label, Schema

RUNTIMES = ("auto", "onnx", "sklearn")


class ServedModel(Protocol):
    """What the routes need from a loaded predictor, whichever runtime computes it."""

    runtime: str
    runtime_reason: str | None
    schema: Schema
    classes: tuple[Label, ...]
    manifest: dict[str, Any]
    name: str
    sha256: str

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> Prediction: ...

    def predict_rows(self, rows: Sequence[Sequence[Any]]) -> Prediction: ...

    def predict_text_table(
        self, header: Sequence[str], rows: Sequence[Sequence[str]]
    ) -> Prediction: ...

    def warm_up(self) -> None: ...


def worker_threads(workers: int) -> int:
    """Return the inference threads one worker may use so that workers share the cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def load_model(
    model_dir: Path, runtime: str = "auto", *, threads: int | None = None
) -> ServedModel:
    """Load and verify the model folder with the requested runtime."""
    from mlcontainer import prediction

    loader = getattr(prediction, "load_predictor", None)
    if loader is not None:
        return cast("ServedModel", loader(model_dir, runtime, threads=threads))
    return as_served(prediction.Predictor.from_dir(model_dir))  # pragma: no cover - interim


def as_served(predictor: Any) -> ServedModel:
    """Return ``predictor`` itself when it has the runtime API, else wrap it (interim)."""
    if hasattr(predictor, "runtime") and hasattr(predictor, "predict_text_table"):
        return cast("ServedModel", predictor)
    return _LegacyPredictor(predictor)  # pragma: no cover - interim


def read_csv(data: bytes) -> tuple[list[str], list[list[str]]]:
    """Read a CSV request body into a header and text rows."""
    from mlcontainer import prediction

    reader = getattr(prediction, "read_csv_text", None)
    if reader is not None:
        return cast("tuple[list[str], list[list[str]]]", reader(io.BytesIO(data)))
    return _read_csv_text(data)  # pragma: no cover - interim


def _read_csv_text(data: bytes) -> tuple[list[str], list[list[str]]]:  # pragma: no cover
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputValidationError(
            f"cannot parse the input CSV: not UTF-8 ({exc.reason})"
        ) from None
    try:
        rows = [r for r in csv.reader(io.StringIO(text), skipinitialspace=True) if r]
    except csv.Error as exc:
        raise InputValidationError(f"cannot parse the input CSV: {exc}") from None
    if not rows:
        raise InputValidationError("the input is empty: expected a CSV header line and rows")
    return rows[0], rows[1:]


class _LegacyPredictor:  # pragma: no cover - interim, until prediction.load_predictor lands
    """The scikit-learn ``Predictor`` seen through ``ServedModel``."""

    runtime_reason: str | None = None

    def __init__(self, predictor: Any) -> None:
        self._predictor = predictor
        self.runtime = "sklearn"
        self.schema = predictor.schema
        self.classes = predictor.classes
        self.manifest = predictor.model.manifest
        self.name = predictor.model.name
        self.sha256 = predictor.model.sha256

    def predict_records(self, records: Sequence[Mapping[str, Any]]) -> Prediction:
        return cast("Prediction", self._predictor.predict_records(records))

    def predict_rows(self, rows: Sequence[Sequence[Any]]) -> Prediction:
        return cast("Prediction", self._predictor.predict_rows(rows))

    def predict_text_table(
        self, header: Sequence[str], rows: Sequence[Sequence[str]]
    ) -> Prediction:
        import pandas as pd

        from mlcontainer.prediction import Prediction

        width = len(header)
        for i, row in enumerate(rows):
            if len(row) > width:
                raise InputValidationError(
                    f"cannot parse the input CSV: row {i} has {len(row)} fields for {width} columns"
                )
        padded = [list(r) + [""] * (width - len(r)) for r in rows]
        table = pd.DataFrame(padded, columns=list(header), dtype=str)
        frame, warnings = self._predictor.frame_from_table(table)
        result = self._predictor.predict_frame(frame)
        return Prediction(result.labels, result.probabilities, result.classes, warnings)

    def warm_up(self) -> None:
        try:
            self._predictor.predict_rows([[None] * len(self.schema.features)])
        except InputValidationError:
            return
