"""What one server process holds: the loaded predictor, settings, metrics and page assets."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, cast

from flask import current_app

from mlcontainer.core.errors import InputValidationError, Problem, Reason
from mlcontainer.serving.errors import BatchTooLargeError

if TYPE_CHECKING:
    from mlcontainer.core.config import Settings
    from mlcontainer.inference.predictor import Predictor
    from mlcontainer.inference.types import Decoded, Prediction
    from mlcontainer.serving.metrics import Metrics

EXTENSION = "mlcontainer"


@dataclass
class ServingState:
    """The per-process serving state, kept in ``app.extensions``."""

    predictor: Predictor
    settings: Settings
    metrics: Metrics
    confusion_matrix_png: bytes | None
    report_html: bytes | None
    summary: dict[str, Any] = field(default_factory=dict)
    openapi: dict[str, Any] = field(default_factory=dict)
    ready: bool = False

    def check_batch(self, n_rows: int) -> None:
        """Refuse a batch over the configured row limit before any work is done."""
        if n_rows > self.settings.max_rows:
            raise BatchTooLargeError(
                f"the batch has {n_rows} rows; this server accepts at most "
                f"{self.settings.max_rows} per request (split it, or raise the max_rows setting: "
                "--max-rows or MLCONTAINER_MAX_ROWS)"
            )

    def item_budget(self) -> int:
        """The most values and brackets a body of ``max_rows`` rows can need (with slack).

        Every row needs one record or list, every cell a comma; a V2 tensor nested per row
        ``[[v], [v]]`` twice that. A body beyond it is refused before it is parsed: 7.8 MB of
        ``[],`` parsed into 2.6 million lists took 1 GiB before the row limit could answer.
        """
        width = len(self.predictor.schema.names) + len(self.predictor.ignored)
        return (self.settings.max_rows + 1) * (2 * width + 8) + 1024

    def check_json_size(self, data: bytes) -> None:
        """Refuse a JSON body with more items than :meth:`item_budget`, before parsing it."""
        items = data.count(b",") + data.count(b"[") + data.count(b"{")
        self._check_items(items, "values and brackets")

    def check_csv_size(self, data: bytes, delimiter: str) -> None:
        """Refuse a CSV body with more lines or cells than ``max_rows`` rows can hold."""
        lines = data.count(b"\n")
        if lines > self.settings.max_rows + 16:
            self.check_batch(lines - 1)
        self._check_items(lines + data.count(delimiter.encode()), "lines and cells")

    def _check_items(self, items: int, what: str) -> None:
        budget = self.item_budget()
        if items > budget:
            raise BatchTooLargeError(
                f"the body holds {items} {what}, more than a batch of at most "
                f"{self.settings.max_rows} rows can need ({budget}); split it into smaller "
                "batches"
            )

    def predict(
        self, instances: Sequence[Any], *, unknown: Literal["error", "ignore"] = "error"
    ) -> Prediction:
        """Predict records (``{feature: value}``) or positional rows, counting the labels.

        ``unknown="error"`` refuses features the model does not know; ``"ignore"`` drops them
        (MLflow's behaviour, for clients that send extra columns). The target and columns left
        out of training are ignored either way, with a note in the prediction's warnings.
        """
        self.check_batch(len(instances))
        predictor = self.predictor
        if instances and isinstance(instances[0], Mapping):
            records = cast("Sequence[Mapping[str, Any]]", instances)
            if unknown == "error":
                self._refuse_unknown(records)
            decoded = predictor.decode_records(records)
        else:
            decoded = predictor.decode_rows(cast("Sequence[Sequence[Any]]", instances))
        return self.score(decoded)

    def score(self, decoded: Decoded) -> Prediction:
        """Predict validated columns; count the labels and add the rows to the drift window."""
        prediction = self.predictor.predict(decoded)
        self.metrics.count_predictions(prediction)
        if self.metrics.drift is not None:
            self.metrics.drift.observe(decoded.columns, prediction)
        return prediction

    def _refuse_unknown(self, records: Sequence[Mapping[str, Any]]) -> None:
        known = self.predictor.schema.names
        seen: set[str] = set()
        for rec in records:
            if isinstance(rec, Mapping):
                seen.update(rec.keys())
        extra = sorted(seen.difference(known).difference(self.predictor.ignored))
        if extra:
            raise InputValidationError(
                f"unknown feature(s) {', '.join(map(repr, extra))}; the model expects "
                f"{', '.join(map(repr, known))}",
                problems=[
                    Problem(Reason.UNKNOWN_FEATURE, "unknown feature", column=e) for e in extra
                ],
            )


def serving_state() -> ServingState:
    """Return the state of the app handling the current request."""
    return cast("ServingState", current_app.extensions[EXTENSION])
