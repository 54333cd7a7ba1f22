"""HTTP-only errors and the one place that turns every error into a JSON response."""

from __future__ import annotations

import re
from typing import Any

import pydantic
from flask import Flask, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from mlcontainer.core.errors import MlcontainerError, Problem, Reason

#: Paths whose errors follow the Open Inference Protocol shape ``{"error": "message"}``.
V2_PREFIX = "/v2"
#: Paths of the MLflow scoring protocol, whose clients read ``error_code`` and ``message``.
MLFLOW_PATHS = frozenset({"/invocations", "/ping"})


class InvalidJSONError(MlcontainerError):
    """The body is not valid JSON (NaN and Infinity are not JSON either)."""

    code = "invalid_json"


class UnsupportedMediaTypeError(MlcontainerError):
    """The request's Content-Type is not one the endpoint reads."""

    status_code = 415
    code = "unsupported_media_type"


class BatchTooLargeError(MlcontainerError):
    """A batch has more rows than the server's configured limit."""

    status_code = 413
    code = "batch_too_large"


class PayloadTooLargeError(MlcontainerError):
    """The request body is larger than the server's byte limit, whatever its framing."""

    status_code = 413
    code = "payload_too_large"


class IncompleteBodyError(MlcontainerError):
    """The body ended before its declared length, or its chunked framing is broken."""

    code = "incomplete_body"


class BodyTimeoutError(MlcontainerError):
    """The client sent its body too slowly."""

    status_code = 408
    code = "request_timeout"


class RequestShapeError(MlcontainerError):
    """The JSON is valid but does not have the shape the endpoint expects."""

    status_code = 422
    code = "invalid_request"


class ProtocolError(MlcontainerError):
    """A V2 (Open Inference Protocol) request breaks the protocol's rules."""

    code = "invalid_inference_request"


def from_validation_error(exc: pydantic.ValidationError) -> RequestShapeError:
    """Turn a pydantic error into one that names every bad field by its JSON path."""
    problems: list[Problem] = []
    for err in exc.errors(include_url=False, include_context=False)[:20]:
        loc = [str(p) for p in err["loc"]]
        row = next((int(p) for p in loc[1:2] if p.isdigit()), None)
        problems.append(
            Problem(Reason.INVALID_REQUEST, err["msg"], row=row, location=".".join(loc))
        )
    first = problems[0] if problems else Problem(Reason.INVALID_REQUEST, "invalid request")
    where = f"at {first.location}: " if first.location else ""
    more = f" (and {exc.error_count() - 1} more problem(s))" if exc.error_count() > 1 else ""
    return RequestShapeError(f"{where}{first.message}{more}", problems=problems)


#: Quoted values longer than this are cut in error messages: a 5 MB bad value must not come
#: back as a 5 MB error.
MAX_ECHO = 100
#: Messages up to this length are left alone (they cannot hold a long value); no message is
#: longer than MAX_MESSAGE, whatever it echoes unquoted.
_SHORT = 300
MAX_MESSAGE = 1000
#: One character class per quote: an alternation inside the repeat would make the regex
#: engine keep a state per character (1.2 GiB for a 10 MB value).
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def bounded(text: str) -> str:
    """Cut every quoted value in ``text`` to :data:`MAX_ECHO` characters, the whole to
    :data:`MAX_MESSAGE`."""
    if len(text) <= _SHORT:
        return text

    def cut(match: re.Match[str]) -> str:
        quoted = match.group(0)
        if len(quoted) <= MAX_ECHO + 2:
            return quoted
        return f"{quoted[: MAX_ECHO + 1]}…{quoted[0]} ({len(quoted) - 2} characters)"

    text = _QUOTED.sub(cut, text)
    if len(text) > MAX_MESSAGE:
        text = f"{text[:MAX_MESSAGE]}… ({len(text)} characters)"
    return text


def _bounded_details(details: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: bounded(v) if isinstance(v, str) else v for k, v in d.items()} for d in details]


def _code_of(exc: HTTPException) -> str:
    return re.sub(r"[^a-z0-9]+", "_", (exc.name or "error").lower()).strip("_")


def error_body(
    path: str, status: int, code: str, message: str, details: list[dict[str, Any]]
) -> dict[str, Any]:
    """The error document of the protocol that ``path`` belongs to."""
    if path == V2_PREFIX or path.startswith(V2_PREFIX + "/"):
        return {"error": message}
    body: dict[str, Any] = {"error": {"code": code, "message": message, "details": details}}
    if path in MLFLOW_PATHS:
        body["error_code"] = "BAD_REQUEST" if status < 500 else "INTERNAL_ERROR"
        body["message"] = message
    return body


def error_response(status: int, code: str, message: str, details: list[dict[str, Any]]) -> Response:
    """Render an error in the shape of the protocol the request used (quoted values cut)."""
    body = error_body(request.path, status, code, bounded(message), _bounded_details(details))
    response = jsonify(body)
    response.status_code = status
    return response


def register_error_handlers(app: Flask) -> None:
    """Map typed errors, pydantic errors and werkzeug errors to JSON, never HTML."""

    @app.errorhandler(MlcontainerError)
    def _typed(exc: MlcontainerError) -> Response:
        return error_response(exc.status_code, exc.code, exc.message, exc.details)

    @app.errorhandler(pydantic.ValidationError)
    def _pydantic(exc: pydantic.ValidationError) -> Response:
        err = from_validation_error(exc)
        return error_response(err.status_code, err.code, err.message, err.details)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 413:
            limit = current_app.config.get("MAX_CONTENT_LENGTH")
            message = f"the request body is larger than the server's limit of {limit} bytes"
            return error_response(status, "payload_too_large", message, [])
        allowed = sorted(set(getattr(exc, "valid_methods", None) or ()) - {"HEAD", "OPTIONS"})
        if status == 405 and allowed:
            message = f"{request.method} is not allowed on {request.path}; use {', '.join(allowed)}"
        elif status == 404:
            message = f"no endpoint at {request.path}; the endpoints are listed at /openapi.json"
        response = error_response(status, _code_of(exc), message, [])
        if status == 405:
            response.headers["Allow"] = ", ".join(getattr(exc, "valid_methods", None) or ())
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # The edge of the service: log the traceback, answer without leaking internals.
        app.logger.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", "internal server error", [])
