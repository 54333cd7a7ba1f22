"""Drift in ``/metrics``: each worker's sliding window of recent rows, merged at scrape time.

A worker keeps the last ``drift_window`` rows it predicted, each reduced to its bin per feature
and its prediction's bin (:mod:`mlcontainer.core.drift`): an int16 ring of window x (features
+ 1), never the values themselves. Beside it a table of counts (one per bin) is kept up to date
as rows enter and leave. Under gunicorn that table is a memory-mapped file in the metrics
folder, ``drift-<pid>.npy``, so the worker that answers a scrape sums every live worker's
counts and computes each PSI from the sum: the PSI of all the workers' windows together, which
an average or a sum of per-worker PSIs is not. (A prometheus-client gauge per bin would do the
same sum, but each multiprocess gauge write cost ~12 µs here, 20 of them per row: more than the
whole drift budget.) The file of a worker that exits is removed with its gauges.

Drift never fails a prediction: an error is logged and counted
(``mlcontainer_drift_errors_total``), and the answer goes out as if nothing happened.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily, Metric

from mlcontainer.core.drift import DriftProfile, psi
from mlcontainer.inference.types import Prediction

#: Batches of at most this many rows are binned in plain Python (faster than NumPy's calls).
FEW_ROWS = 16
#: Rows kept per worker when the setting is not given.
DEFAULT_WINDOW = 10_000
FILE_PREFIX = "drift-"
_log = logging.getLogger(__name__)


def window_bytes(profile: DriftProfile, window: int) -> int:
    """Memory one worker's window takes: the ring of bins and the table of counts."""
    features = len(profile.features) + 1
    return window * features * 2 + (features + 1) * profile.widest * 8


class DriftMonitor:
    """One worker's window of recent rows and its counts per bin."""

    def __init__(
        self,
        profile: DriftProfile,
        *,
        window: int,
        errors: Counter,
        folder: Path | None = None,
        pid: int | None = None,
    ) -> None:
        self.profile = profile
        self.window = window
        self.errors = errors
        self.folder = folder
        width = len(profile.features) + 1  # the features, then the prediction
        self._ring = np.full((window, width), -1, dtype=np.int16)
        self._pos = 0
        self._widest = profile.widest
        self._offsets = np.arange(width, dtype=np.int64) * self._widest
        shape = (width + 1, profile.widest)  # the last row: [rows in the window, ...]
        if folder is None:
            self._counts: np.ndarray = np.zeros(shape, dtype=np.int64)
        else:
            path = folder / f"{FILE_PREFIX}{pid or os.getpid()}.npy"
            self._counts = np.lib.format.open_memmap(path, mode="w+", dtype=np.int64, shape=shape)
        #: The counts as one flat plain array over the same memory (a memmap's item access
        #: is slower).
        self._flat = self._counts.view(np.ndarray).reshape(-1)
        #: The same memory as flat memoryviews: a Python-level item access costs ~0.05 µs
        #: there against ~0.6 µs on a NumPy array (a few rows are added item by item).
        self._counts_view = self._flat.data.cast("B").cast("q")
        self._ring_view = self._ring.data.cast("B").cast("h")
        self._lock = threading.Lock()

    def observe(self, columns: Mapping[str, np.ndarray], prediction: Prediction) -> None:
        """Add a batch's rows to the window (dropping the oldest); never raises."""
        try:
            with self._lock:
                self._add(columns, prediction)
        except Exception:  # noqa: BLE001 - drift must never fail the prediction it watches
            _log.exception("drift tracking failed on a batch of %d rows", len(prediction.labels))
            self.errors.inc()

    def _add(self, columns: Mapping[str, np.ndarray], prediction: Prediction) -> None:
        if len(prediction.labels) <= FEW_ROWS:
            self._add_few(columns, prediction)
        else:
            self._add_many(columns, prediction)

    def _add_few(self, columns: Mapping[str, np.ndarray], prediction: Prediction) -> None:
        """The same as :meth:`_add_many`, a row at a time in plain Python."""
        profile = self.profile
        rows = profile.assign_few(columns)
        if profile.prediction is None:
            predicted = [0] * len(rows)
        else:
            predicted = profile.prediction.assign_few(
                positions=prediction.positions, values=prediction.labels
            )
        counts, ring, width = self._counts_view, self._ring_view, self._widest
        size = len(self._offsets)
        for row, bin_ in zip(rows, predicted, strict=True):
            row.append(bin_)
            base = self._pos * size
            if ring[base] < 0:
                counts[len(counts) - width] += 1  # the window grows by a row
            for j, now in enumerate(row):
                was = ring[base + j]
                if was != now:
                    if was >= 0:
                        counts[j * width + was] -= 1
                    counts[j * width + now] += 1
                    ring[base + j] = now
            self._pos = (self._pos + 1) % self.window

    def _add_many(self, columns: Mapping[str, np.ndarray], prediction: Prediction) -> None:
        profile = self.profile
        rows = np.empty((len(prediction.labels), len(self._offsets)), dtype=np.int16)
        rows[:, :-1] = profile.assign(columns)
        if profile.prediction is None:
            rows[:, -1] = 0
        else:
            rows[:, -1] = profile.prediction.assign(
                positions=prediction.positions, values=prediction.labels
            )
        rows = rows[-self.window :]
        at = (self._pos + np.arange(len(rows))) % self.window
        flat = self._flat
        leaving = self._ring[at]
        leaving = leaving[leaving[:, 0] >= 0]
        if len(leaving):
            np.subtract.at(flat, (leaving + self._offsets).ravel(), 1)
        np.add.at(flat, (rows + self._offsets).ravel(), 1)
        self._ring[at] = rows
        self._pos = int((self._pos + len(rows)) % self.window)
        self._counts[-1, 0] += len(rows) - len(leaving)

    def counts(self) -> np.ndarray:
        """The counts per bin of every live worker's window, summed (this one's alone outside
        gunicorn): features, then the prediction, then the rows in the windows."""
        if self.folder is None:
            return np.array(self._counts)
        total = np.zeros(self._counts.shape, dtype=np.int64)
        for path in self.folder.glob(f"{FILE_PREFIX}*.npy"):
            try:
                found = np.load(path, mmap_mode="r")
            except (OSError, ValueError):  # a worker's file being created or removed
                continue
            if found.shape == total.shape:
                total += found
        return total

    def collect(self) -> Iterable[Metric]:
        """The drift gauges, from the merged counts (a prometheus-client collector)."""
        counts = self.counts()
        rows = GaugeMetricFamily(
            "mlcontainer_drift_window_rows",
            "Recent rows the drift gauges are computed on (the windows of all workers).",
            value=float(counts[-1, 0]),
        )
        yield rows
        psis = _family("mlcontainer_feature_drift_psi", "PSI of a feature against training.")
        missing = _family(
            "mlcontainer_feature_missing_share", "Share of recent rows missing the feature."
        )
        unseen = _family(
            "mlcontainer_feature_unseen_share",
            "Share of recent rows with a category training never saw.",
        )
        total = float(counts[-1, 0])
        for i, feature in enumerate(self.profile.features):
            row = counts[i, : len(feature.labels)]
            if total:
                psis.add_metric([feature.name], psi(feature.expected, row))
                missing.add_metric([feature.name], float(row[feature.missing_bin]) / total)
                if feature.unseen_bin is not None and feature.knows_unseen:
                    unseen.add_metric([feature.name], float(row[feature.unseen_bin]) / total)
        yield from (psis, missing, unseen)
        prediction = self.profile.prediction
        if prediction is not None and total:
            row = counts[len(self.profile.features), : len(prediction.labels)]
            yield GaugeMetricFamily(
                "mlcontainer_prediction_drift_psi",
                "PSI of the predictions against those on the held-out test rows.",
                value=psi(prediction.expected, row),
            )


def _family(name: str, text: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, text, labels=["feature"])
