"""Compare a batch file with the model's drift reference: read, predict and count each chunk."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from mlcontainer.core.drift import PREDICTION, FeatureDrift, Tally, compare, compile_profile
from mlcontainer.core.errors import ArtifactError, InputValidationError
from mlcontainer.inference.batch import DEFAULT_CHUNK_ROWS, iter_decoded, score_chunk
from mlcontainer.inference.predictor import Predictor


@dataclass(frozen=True)
class BatchDrift:
    """A batch against the reference: rows read, every feature's drift (largest PSI first,
    the prediction last) and the input's warnings."""

    rows: int
    drifts: list[FeatureDrift]
    warnings: list[str] = field(default_factory=list)

    @property
    def largest(self) -> float:
        """The largest PSI of a feature or of the prediction (0 when none is defined)."""
        return max((d.psi for d in self.drifts if d.psi == d.psi), default=0.0)

    @property
    def features(self) -> list[FeatureDrift]:
        """The features' rows, without the prediction's."""
        return [d for d in self.drifts if d.name != PREDICTION]


def batch_drift(
    predictor: Predictor,
    source: Path | IO[bytes],
    *,
    chunk_rows: int = DEFAULT_CHUNK_ROWS,
    csv_reader: str = "auto",
    header: bool | None = None,
    columns: Sequence[str] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> BatchDrift:
    """Read ``source`` by the rules of ``predict`` (same readers and errors), predict it
    chunk by chunk and compare its bins and predictions with the reference: memory stays
    that of one chunk whatever the file's size."""
    reference = predictor.manifest.reference
    if reference is None:
        raise ArtifactError(
            f"the model {predictor.name!r} has no drift reference: it was trained before "
            "mlcontainer recorded one; train it again to compare batches with it"
        )
    try:
        profile = compile_profile(reference, predictor.schema)
    except ValueError as exc:
        raise ArtifactError(f"the model's drift reference cannot be used: {exc}") from None
    tally = Tally.empty(profile)
    warnings: list[str] = []
    chunks = iter_decoded(
        predictor, source, chunk_rows=chunk_rows, csv_reader=csv_reader,
        header=header, columns=columns,
    )  # fmt: skip
    try:
        for decoded, bytes_read in chunks:
            prediction = score_chunk(predictor, decoded, tally.rows)
            tally.add(
                profile, decoded.columns, positions=prediction.positions, values=prediction.labels
            )
            if not warnings:
                warnings = list(decoded.warnings)
            if on_progress is not None:
                on_progress(tally.rows, bytes_read)
    finally:
        chunks.close()
    if tally.rows == 0:
        raise InputValidationError("no rows to compare: the input is empty (a header, no rows)")
    return BatchDrift(tally.rows, compare(profile, tally), warnings)
