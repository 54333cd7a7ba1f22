"""The service's own endpoints: page, health, readiness, predict, manifest, metrics, OpenAPI."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, render_template, request

from mlcontainer.core.errors import MlcontainerError
from mlcontainer.serving import schemas
from mlcontainer.serving.api import Route, read_json
from mlcontainer.serving.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from mlcontainer.serving.page import page_metrics
from mlcontainer.serving.state import serving_state


class NotReadyError(MlcontainerError):
    """The model is not loaded (yet): the process must not receive traffic."""

    status_code = 503
    code = "not_ready"


class AssetMissingError(MlcontainerError):
    """The model folder has no such picture or report."""

    status_code = 404
    code = "not_found"


def index() -> Response | str:
    """Render the welcome page, or the same summary as JSON for ``Accept: application/json``."""
    state = serving_state()
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    if best == "application/json":
        return jsonify(state.summary)
    return render_template("index.html", summary=state.summary, metrics=page_metrics(state.summary))


def health() -> Response:
    """Answer the lab's liveness contract."""
    return jsonify(status="healthy")


def ready() -> Response:
    """Answer 200 once the model is loaded and warmed up, 503 before."""
    if not serving_state().ready:
        raise NotReadyError("the model is still loading")
    return jsonify(status="ready")


def predict() -> Response:
    """Predict records or positional rows; answer labels, probabilities and the model id."""
    state = serving_state()
    body = schemas.PredictRequest.model_validate(read_json())
    prediction = state.predict(body.instances)
    names = [str(c) for c in prediction.classes]
    model = state.predictor
    answer: dict[str, Any] = {"predictions": prediction.labels}
    if not prediction.is_regression:  # a regressor's answer is the number alone
        answer["probabilities"] = [
            dict(zip(names, p, strict=True)) for p in prediction.probabilities.tolist()
        ]
    answer["model"] = {"name": model.name, "sha256": model.sha256}
    if prediction.warnings:  # e.g. the target column, sent along and ignored
        answer["warnings"] = prediction.warnings
    return jsonify(answer)


def model_manifest() -> Response:
    """Return the manifest: schema, classes, metrics, leaderboard, versions, hashes."""
    return jsonify(serving_state().predictor.manifest.to_json())


def metrics() -> Response:
    """Expose Prometheus metrics (merged over all gunicorn workers)."""
    return Response(
        serving_state().metrics.render(), mimetype=None, content_type=METRICS_CONTENT_TYPE
    )


def openapi() -> Response:
    """Return the OpenAPI document generated from the request and response models."""
    return jsonify(serving_state().openapi)


def confusion_matrix() -> Response:
    """Return the confusion-matrix picture saved with the model (read once at start)."""
    data = serving_state().confusion_matrix_png
    if data is None:
        raise AssetMissingError("this model folder has no confusion matrix picture")
    return Response(data, mimetype="image/png")


def report() -> Response:
    """Return the model's self-contained evaluation report page (read once at start)."""
    data = serving_state().report_html
    if data is None:
        raise AssetMissingError("this model folder has no report page")
    return Response(data, mimetype="text/html")


_HTML = ("text/html", {"type": "string"})
ROUTES = (
    Route("/", "GET", index, "Welcome page (HTML) or model summary (JSON)",
          response=schemas.Summary, response_media=_HTML),
    Route("/health", "GET", health, "Liveness: the process answers", response=schemas.Health),
    Route("/ready", "GET", ready, "Readiness: 200 once the model is loaded, 503 before",
          response=schemas.Readiness, errors=(503,)),
    Route("/predict", "POST", predict, "Predict labels and class probabilities",
          body=schemas.PredictRequest, response=schemas.PredictResponse,
          errors=(400, 413, 415, 422)),
    Route("/model", "GET", model_manifest, "The model's manifest", response=schemas.Manifest),
    Route("/metrics", "GET", metrics, "Prometheus metrics",
          response_media=(METRICS_CONTENT_TYPE, {"type": "string"})),
    Route("/openapi.json", "GET", openapi, "This OpenAPI document",
          response_media=("application/json", {"type": "object"})),
    Route("/confusion_matrix.png", "GET", confusion_matrix, "Confusion matrix on the test split",
          response_media=("image/png", {"type": "string", "format": "binary"}), errors=(404,)),
    Route("/report", "GET", report, "The model's evaluation report page",
          response_media=_HTML, errors=(404,)),
)  # fmt: skip
