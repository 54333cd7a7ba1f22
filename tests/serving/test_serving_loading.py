"""A worker's app while the model loads: alive, not ready, 503 with Retry-After, then the app."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from flask import Flask
from werkzeug.test import create_environ

from mlcontainer.serving.loading import RETRY_AFTER, LoadingApp


def _call(app: Any, path: str, method: str = "GET") -> tuple[str, dict[str, str], Any]:
    seen: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        seen["status"], seen["headers"] = status, dict(headers)

    environ = create_environ(path, method=method)
    body = b"".join(app(environ, start_response))
    return seen["status"], seen["headers"], json.loads(body)


@pytest.fixture
def release() -> threading.Event:
    return threading.Event()


@pytest.fixture
def loading(release: threading.Event) -> LoadingApp:
    def build() -> Flask:
        release.wait(30)
        app = Flask("loaded")
        app.add_url_rule("/ready", "ready", lambda: {"status": "ready"})
        return app

    return LoadingApp(build, failed=lambda exc: None)


def test_while_loading_liveness_says_alive_and_readiness_says_not_yet(
    loading: LoadingApp,
) -> None:
    assert _call(loading, "/health")[::2] == ("200 OK", {"status": "healthy"})
    assert _call(loading, "/v2/health/live")[::2] == ("200 OK", {"live": True})
    assert _call(loading, "/v2/health/ready")[::2] == ("400 Bad Request", {"ready": False})
    status, headers, body = _call(loading, "/ready")
    assert status == "503 Service Unavailable"
    assert headers["Retry-After"] == str(RETRY_AFTER)
    assert body["error"]["code"] == "not_ready"
    assert "still loading" in body["error"]["message"]


@pytest.mark.parametrize(
    ("path", "shape"),
    [("/predict", "native"), ("/invocations", "mlflow"), ("/v2/models/m/infer", "v2")],
)
def test_while_loading_every_route_is_503_in_its_protocol_s_shape(
    loading: LoadingApp, path: str, shape: str
) -> None:
    status, headers, body = _call(loading, path, "POST")
    assert status.startswith("503")
    assert headers["Content-Type"] == "application/json"
    if shape == "v2":
        assert "still loading" in body["error"]
    else:
        assert body["error"]["code"] == "not_ready"
    if shape == "mlflow":
        assert body["error_code"] == "INTERNAL_ERROR"


def test_once_loaded_the_real_app_answers(loading: LoadingApp, release: threading.Event) -> None:
    release.set()
    loading.thread.join(30)
    assert loading.app is not None
    assert _call(loading, "/ready")[::2] == ("200 OK", {"status": "ready"})


def test_a_failed_load_is_reported_with_its_exception() -> None:
    reported: list[BaseException] = []

    def build() -> Flask:
        raise RuntimeError("no model")

    app = LoadingApp(build, failed=reported.append)
    app.thread.join(30)
    assert [str(e) for e in reported] == ["no model"]
    assert app.app is None
