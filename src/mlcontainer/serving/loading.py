"""A worker's app while its model loads: the port answers at once, /ready says 503 until then.

Loading a model takes from a fraction of a second (an ONNX session) to several seconds
(importing scikit-learn and skops, reading the pipeline, the first prediction): a worker
that loaded before serving left connections unanswered all that time, and a probe of
``/ready`` hung instead of being told "not yet". :class:`LoadingApp` is the worker's WSGI
app from the start: it builds the real app in a thread and, until that is done, answers
the liveness checks as alive, the readiness checks as not ready, and everything else with
503 and ``Retry-After``, in each protocol's error shape.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from mlcontainer.serving.errors import error_body

if TYPE_CHECKING:
    from flask import Flask

#: Seconds a client is told to wait before it asks again.
RETRY_AFTER = 1
_LOADING = "the model is still loading; retry in a moment"
#: Answers that do not need the model: liveness (the process answers), readiness (not yet).
_ANSWERS: dict[str, tuple[int, dict[str, Any]]] = {
    "/health": (200, {"status": "healthy"}),
    "/v2/health/live": (200, {"live": True}),
    "/v2/health/ready": (400, {"ready": False}),  # the protocol's "false"
}
_REASONS = {200: "OK", 400: "Bad Request", 503: "Service Unavailable"}

StartResponse = Callable[..., Any]


class LoadingApp:
    """The WSGI app of a worker: loading answers until ``build`` has returned the real app.

    ``build`` runs once, in a thread started here; ``loaded`` is called just before the app
    answers, and ``failed`` with the exception if ``build`` raises (the server then stops the
    worker, see ``serving.server``).
    """

    def __init__(
        self,
        build: Callable[[], Flask],
        *,
        failed: Callable[[BaseException], None],
        loaded: Callable[[], None] = lambda: None,
    ) -> None:
        self._build = build
        self._failed = failed
        self._loaded = loaded
        self._app: Flask | None = None
        self.thread = threading.Thread(target=self._load, name="model-loader", daemon=True)
        self.thread.start()

    @property
    def app(self) -> Flask | None:
        """The real app once loaded, else None."""
        return self._app

    def _load(self) -> None:
        try:
            app = self._build()
            self._loaded()
        except BaseException as exc:  # noqa: BLE001 - reported whole to the server
            self._failed(exc)
            return
        self._app = app

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        app = self._app
        if app is not None:
            return app(environ, start_response)
        path = environ.get("PATH_INFO", "")
        status, body = _ANSWERS.get(path, (503, error_body(path, 503, "not_ready", _LOADING, [])))
        data = json.dumps(body, separators=(",", ":")).encode()
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        if status == 503:
            headers.append(("Retry-After", str(RETRY_AFTER)))
        start_response(f"{status} {_REASONS[status]}", headers)
        return [data]
