"""The Flask app factory: load the model once, register every protocol's routes and hooks."""

from __future__ import annotations

import logging
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flask import Flask, Response, g, request
from werkzeug.routing import Map

from mlcontainer import __version__
from mlcontainer.core.config import Settings
from mlcontainer.core.drift import compile_profile
from mlcontainer.serving import mlflow, native, openapi, v2
from mlcontainer.serving.api import blueprint, openapi_document
from mlcontainer.serving.drift import DriftMonitor
from mlcontainer.serving.errors import register_error_handlers
from mlcontainer.serving.metrics import Metrics
from mlcontainer.serving.page import model_summary
from mlcontainer.serving.state import EXTENSION, ServingState

if TYPE_CHECKING:
    from mlcontainer.inference.predictor import Predictor

REQUEST_ID_HEADER = "X-Request-ID"
#: A client's request id is echoed only if it is short and plain; otherwise we make one.
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
PROTOCOLS = {"native": native.ROUTES, "mlflow": mlflow.ROUTES, "v2": v2.ROUTES}


class _Map(Map):
    """A URL map that does not merge slashes: werkzeug answers "//predict" with an HTML
    redirect that no error handler sees; an unknown path gets the JSON 404 instead."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["merge_slashes"] = False
        super().__init__(*args, **kwargs)


class _App(Flask):
    url_map_class = _Map


def create_app(
    settings: Settings | None = None,
    *,
    metrics_dir: Path | None = None,
    predictor: Predictor | None = None,
) -> Flask:
    """Build the app for ``settings.model_dir``: the model is loaded and warmed up here, once.

    The runtime is ``settings.runtime``; its session runs on one intra-op thread
    (``SESSION_THREADS``), so workers never oversubscribe the cores. ``metrics_dir``
    switches metrics to prometheus-client's multiprocess mode (gunicorn sets it);
    ``predictor`` reuses an already loaded predictor (tests, benchmarks).
    """
    from mlcontainer.core.artifacts import CONFUSION_MATRIX_FILE, REPORT_FILE, read_optional
    from mlcontainer.inference.predictor import load_predictor

    settings = settings or Settings.from_env()
    if predictor is None:
        predictor = load_predictor(settings.model_dir, settings.runtime, threads=SESSION_THREADS)
    app = _App(__name__, static_folder=None)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]
    model_dir = settings.model_dir
    metrics = Metrics(metrics_dir=metrics_dir)
    metrics.drift = drift_monitor(predictor, settings, metrics, metrics_dir)
    state = ServingState(
        predictor=predictor,
        settings=settings,
        metrics=metrics,
        confusion_matrix_png=read_optional(model_dir, predictor.manifest, CONFUSION_MATRIX_FILE),
        report_html=read_optional(model_dir, predictor.manifest, REPORT_FILE),
        summary=model_summary(predictor),
    )
    routes = [r for table in PROTOCOLS.values() for r in table]
    document = openapi_document(
        routes,
        title="mlcontainer",
        version=__version__,
        description=f"Predictions from the model {predictor.name!r}: the native API, "
        "MLflow's scoring protocol and the Open Inference Protocol (KServe V2).",
    )
    state.openapi = openapi.for_model(
        document,
        predictor.schema,
        name=predictor.name,
        version=v2.model_version(predictor),
        max_rows=settings.max_rows,
        ignored=tuple(predictor.ignored),
        delimiter=predictor.recipe.delimiter,
    )
    app.extensions[EXTENSION] = state
    for name, table in PROTOCOLS.items():
        app.register_blueprint(blueprint(name, table))
    register_error_handlers(app)
    _register_hooks(app, metrics)
    metrics.set_model(
        name=predictor.name,
        sha256=predictor.sha256,
        estimator=str(state.summary.get("estimator") or ""),
        runtime=predictor.runtime,
    )
    # Workers build the app after the fork: each one creates its own inference session here,
    # before gunicorn lets it accept a connection.
    predictor.warm_up()
    state.ready = True
    return app


def drift_monitor(
    predictor: Predictor, settings: Settings, metrics: Metrics, folder: Path | None
) -> DriftMonitor | None:
    """The window behind the drift gauges; None when the setting turns it off or the model
    folder has no reference (folders trained before it, or a reference that does not fit)."""
    reference = predictor.manifest.reference
    if not settings.drift_window or reference is None:
        return None
    try:
        profile = compile_profile(reference, predictor.schema)
    except ValueError as exc:
        logging.getLogger(__name__).warning("no drift gauges: %s", exc)
        return None
    return DriftMonitor(
        profile, window=settings.drift_window, errors=metrics.drift_errors, folder=folder
    )


#: Intra-op threads of a worker's inference session. One: requests run in parallel across
#: workers (and gthread threads), and a second intra-op thread only spins against the Python
#: request code. Measured on 2 cores (wine random forest, p50): 1 row 1.5-2.1 ms with one
#: thread vs 6.1 ms with two; 100 rows 7.7 ms vs 21-27 ms.
SESSION_THREADS = 1


def _register_hooks(app: Flask, metrics: Metrics) -> None:
    @app.before_request
    def _start() -> None:
        g.started = time.perf_counter()
        given = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = given if _REQUEST_ID.match(given) else uuid.uuid4().hex

    @app.after_request
    def _finish(response: Response) -> Response:
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        rule = request.url_rule
        metrics.observe(
            endpoint=rule.rule if rule is not None else "unmatched",
            method=request.method,
            status=response.status_code,
            seconds=time.perf_counter() - g.get("started", time.perf_counter()),
        )
        return response
