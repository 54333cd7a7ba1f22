"""Route tables: each route is declared once and becomes both a Flask rule and an OpenAPI entry."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import Blueprint, current_app, has_app_context, request
from flask.typing import ResponseReturnValue
from gunicorn.http.errors import ParseException
from pydantic import BaseModel

from mlcontainer.serving.errors import (
    BodyTimeoutError,
    IncompleteBodyError,
    InvalidJSONError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from mlcontainer.serving.schemas import ErrorResponse
from mlcontainer.serving.state import serving_state

M = TypeVar("M", bound=BaseModel)
JSON = "application/json"
_RULE_VARIABLE = re.compile(r"<(?:\w+:)?(\w+)>")
#: A JSON string escape of a UTF-16 surrogate: only then can a parsed string hold a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_READ_SIZE = 64 * 1024


@dataclass(frozen=True)
class Route:
    """One endpoint: its Flask rule and view, and what the OpenAPI document says about it."""

    rule: str
    method: str
    view: Callable[..., ResponseReturnValue]
    summary: str
    body: type[BaseModel] | None = None
    #: Extra request media types beside JSON, each with a JSON-schema for its body.
    body_media: Mapping[str, dict[str, Any]] = field(default_factory=dict)
    response: type[BaseModel] | None = None
    #: Media type and schema of a non-JSON success response (the page, metrics, images).
    response_media: tuple[str, dict[str, Any]] | None = None
    errors: tuple[int, ...] = ()
    error_model: type[BaseModel] = ErrorResponse


def blueprint(name: str, routes: Sequence[Route]) -> Blueprint:
    """Build a blueprint that registers every route of the table."""
    bp = Blueprint(name, __name__)
    for route in routes:
        bp.add_url_rule(
            route.rule,
            endpoint=route.view.__name__,
            view_func=route.view,
            methods=[route.method],
        )
    return bp


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON; send null for a missing value")


def read_json(*, required_type: str = JSON) -> Any:
    """Return the request's JSON body, refusing other media types and non-standard JSON."""
    mimetype = request.mimetype
    if mimetype != required_type and not (mimetype.endswith("+json") and required_type == JSON):
        raise UnsupportedMediaTypeError(
            f"Content-Type must be {required_type}, got {mimetype or 'none'!r}"
        )
    return parse_json(read_body())


def read_body() -> bytes:
    """Return the whole request body, or refuse it before any work is done.

    Over the byte limit: 413, whatever the framing (a ``Content-Length``, or chunks, which
    Werkzeug would silently cut at the limit, pallets/werkzeug#1096). Shorter than its
    ``Content-Length``, or chunks whose framing is broken: 400. Never a part of a body.
    """
    encoding = (request.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding != "identity":
        raise UnsupportedMediaTypeError(
            f"Content-Encoding {encoding!r} is not supported; send the body uncompressed"
        )
    limit = int(current_app.config["MAX_CONTENT_LENGTH"])
    declared = request.content_length  # None for a chunked body
    if declared is not None and declared > limit:
        raise _too_large(limit)
    stream = request.environ["wsgi.input"]
    parts: list[bytes] = []
    size = 0
    want = limit + 1 if declared is None else declared
    try:
        while size < want:
            part = stream.read(min(_READ_SIZE, want - size))
            if not part:
                break
            parts.append(part)
            size += len(part)
    except ParseException as exc:
        raise IncompleteBodyError(f"the chunked body is malformed: {exc}") from None
    except TimeoutError:
        raise BodyTimeoutError("the body arrived too slowly; send it at once") from None
    except OSError:
        raise IncompleteBodyError("the body ended before its last chunk") from None
    if size > limit:
        raise _too_large(limit)
    if declared is not None and size < declared:
        raise IncompleteBodyError(
            f"the body ended after {size} of the {declared} bytes its Content-Length announced"
        )
    return b"".join(parts)


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the request body is larger than the server's limit of {limit} bytes "
        "(MLCONTAINER_MAX_BODY_BYTES)"
    )


def parse_json(data: bytes) -> Any:
    """Parse strict JSON (no NaN/Infinity, no lone surrogates), naming the first error.

    In a request, a body with more items than a batch can need is refused unparsed (413).
    """
    if has_app_context():
        serving_state().check_json_size(data)
    try:
        value = json.loads(data, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        raise InvalidJSONError(f"the body is not UTF-8 text: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise InvalidJSONError(
            f"the body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidJSONError(f"the body is not valid JSON: {exc}") from None
    if _SURROGATE_ESCAPE.search(data) and _has_lone_surrogate(value):
        raise InvalidJSONError(
            "the body is not valid Unicode text: a string holds a lone UTF-16 surrogate "
            "(such as \\ud800); send the character itself or its escaped pair"
        )
    return value


def _has_lone_surrogate(value: Any) -> bool:
    """Whether any string in a parsed JSON document cannot be encoded as UTF-8."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def openapi_path(rule: str) -> str:
    """Turn a Flask rule (``/v2/models/<name>``) into an OpenAPI path (``/v2/models/{name}``)."""
    return _RULE_VARIABLE.sub(r"{\1}", rule)


def openapi_document(
    routes: Sequence[Route], *, title: str, version: str, description: str
) -> dict[str, Any]:
    """Build an OpenAPI 3.1 document for ``routes`` from their pydantic models."""
    schemas: dict[str, Any] = {}

    def ref(model: type[BaseModel]) -> dict[str, Any]:
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}", by_alias=True)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.method.lower() + re.sub(r"\W+", "_", route.rule).rstrip("_"),
        }
        params = _RULE_VARIABLE.findall(route.rule)
        if params:
            op["parameters"] = [
                {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
                for p in params
            ]
        if route.body is not None:
            content = {JSON: {"schema": ref(route.body)}}
            content.update({m: {"schema": s} for m, s in route.body_media.items()})
            op["requestBody"] = {"required": True, "content": content}
        responses: dict[str, Any] = {}
        if route.response is not None:
            responses["200"] = {
                "description": "success",
                "content": {JSON: {"schema": ref(route.response)}},
            }
        if route.response_media is not None:
            media, schema = route.response_media
            responses.setdefault("200", {"description": "success", "content": {}})
            responses["200"]["content"][media] = {"schema": schema}
        for status in route.errors:
            responses[str(status)] = {
                "description": _ERROR_TEXT.get(status, "error"),
                "content": {JSON: {"schema": ref(route.error_model)}},
            }
        op["responses"] = responses or {"200": {"description": "success"}}
        paths.setdefault(openapi_path(route.rule), {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version, "description": description},
        "paths": paths,
        "components": {"schemas": dict(sorted(schemas.items()))},
    }


_ERROR_TEXT = {
    400: "malformed request (invalid JSON, protocol violation)",
    404: "unknown model name",
    413: "body over the size limit or batch over the row limit",
    415: "wrong Content-Type",
    422: "valid JSON that does not match the model's input schema",
    503: "the model is not loaded yet",
}
