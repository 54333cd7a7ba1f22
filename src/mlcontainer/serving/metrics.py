"""Prometheus metrics, correct under several gunicorn workers (prometheus-client multiprocess)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

if TYPE_CHECKING:
    from mlcontainer.inference.types import Prediction
    from mlcontainer.serving.drift import DriftMonitor

#: Latency buckets in seconds: sub-millisecond to the default request timeout.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
CONTENT_TYPE = CONTENT_TYPE_LATEST
#: Methods counted under their own name; any other (clients may send any token) is "other",
#: so random methods cannot grow the label set (5 000 of them made a 475 KB scrape).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
OTHER = "other"


class Metrics:
    """The service's metrics, in a registry of their own (one per app, so tests can build many).

    In multiprocess mode (``metrics_dir`` set, and ``PROMETHEUS_MULTIPROC_DIR`` pointing at it
    before prometheus-client was imported) every worker writes its values to files there and
    ``render`` merges them, so a scrape sees all workers whichever one answers it.
    """

    def __init__(self, *, metrics_dir: Path | None = None) -> None:
        self.metrics_dir = metrics_dir
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "mlcontainer_http_requests",
            "HTTP requests by endpoint, method and status.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mlcontainer_http_request_duration_seconds",
            "Time to answer a request, by endpoint.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "mlcontainer_predictions",
            "Predicted labels, by class (a classifier's).",
            ["class"],
            registry=self.registry,
        )
        self.predicted_rows = Counter(
            "mlcontainer_predicted_rows",
            "Rows predicted, by a classifier or a regressor.",
            registry=self.registry,
        )
        self.model_info = Gauge(
            "mlcontainer_model_info",
            "The served model (always 1) and the runtime that computes its predictions.",
            ["name", "sha256", "estimator", "runtime"],
            registry=self.registry,
            multiprocess_mode="max",
        )

        self.drift_errors = Counter(
            "mlcontainer_drift_errors",
            "Batches whose drift tracking failed (their predictions were answered all the same).",
            registry=self.registry,
        )
        #: The window of recent rows behind the drift gauges (None: not tracked).
        self.drift: DriftMonitor | None = None

    def set_model(self, *, name: str, sha256: str, estimator: str, runtime: str) -> None:
        """Publish which model this process serves, and with which runtime (onnx, sklearn)."""
        self.model_info.labels(name=name, sha256=sha256, estimator=estimator, runtime=runtime).set(
            1
        )

    def observe(self, *, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one answered request and its latency (an unknown method counts as other)."""
        method = method if method in METHODS else OTHER
        self.requests.labels(endpoint=endpoint, method=method, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)

    def count_predictions(self, prediction: Prediction) -> None:
        """Count predicted rows, and a classifier's labels by class."""
        self.predicted_rows.inc(len(prediction.labels))
        if prediction.is_regression:
            return
        counts: dict[str, int] = {}
        for label in prediction.labels:
            key = str(label)
            counts[key] = counts.get(key, 0) + 1
        for key, n in counts.items():
            self.predictions.labels(**{"class": key}).inc(n)

    def render(self) -> bytes:
        """Return the exposition text: all workers' values in multiprocess mode."""
        drift = generate_latest(self.drift) if self.drift is not None else b""
        if self.metrics_dir is None:
            return generate_latest(self.registry) + drift
        merged = CollectorRegistry()
        MultiProcessCollector(merged, path=str(self.metrics_dir))  # type: ignore[no-untyped-call]
        return generate_latest(merged) + drift
