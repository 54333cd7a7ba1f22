"""The Open Inference Protocol (KServe V2) REST endpoints, with Triton's binary tensor inputs."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from flask import Response, jsonify, request

from mlcontainer import __version__
from mlcontainer.core.errors import ModelNotFoundError
from mlcontainer.core.schema import Schema
from mlcontainer.serving import schemas
from mlcontainer.serving.api import JSON, Route, parse_json, read_body
from mlcontainer.serving.errors import ProtocolError, UnsupportedMediaTypeError
from mlcontainer.serving.state import serving_state

if TYPE_CHECKING:
    from mlcontainer.inference.predictor import Predictor
    from mlcontainer.inference.types import Prediction

#: Output tensors a request may ask for (checked before anything else looks at the name): a
#: classifier's, and a regressor's (its predicted number, as ``mlserver`` names it).
VALID_OUTPUTS = ("label", "probabilities")
REGRESSION_OUTPUTS = ("predict",)
#: The platform names the runtime that computes the answers: ``mlcontainer-onnx`` or
#: ``mlcontainer-sklearn``.
PLATFORM_PREFIX = "mlcontainer-"
#: Header of Triton's binary tensor data extension: the length of the JSON part of the body.
BINARY_HEADER = "Inference-Header-Content-Length"
_BODY_TYPES = frozenset({"", JSON, "application/octet-stream"})
_NUMPY_TYPES = {
    "BOOL": "?",
    "UINT8": "<u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "<i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
_FEATURE_TYPES = {"numeric": "FP64", "boolean": "BOOL", "categorical": "BYTES"}


def model_version(predictor: Predictor) -> str:
    """The model's only version: the start of its SHA-256."""
    return predictor.sha256[:12]


_version = model_version


def _model(name: str, version: str | None = None) -> Predictor:
    """Return the predictor if ``name`` (and ``version``) are the ones this server serves."""
    predictor = serving_state().predictor
    if name != predictor.name:
        raise ModelNotFoundError(f"unknown model {name!r}; this server serves {predictor.name!r}")
    if version is not None and version != _version(predictor):
        raise ModelNotFoundError(
            f"model {name!r} has no version {version!r}; it has {_version(predictor)!r}"
        )
    return predictor


def _label_type(predictor: Predictor) -> str:
    ints = all(isinstance(c, int) and not isinstance(c, bool) for c in predictor.classes)
    return "INT64" if ints else "BYTES"


def server_metadata() -> Response:
    """Describe the server."""
    return jsonify(name="mlcontainer", version=__version__, extensions=[])


def live() -> Response:
    """Answer the protocol's liveness check."""
    return jsonify(live=True)


def server_ready() -> Response:
    """Answer 200 when the model is ready, 400 (the protocol's 'false') before."""
    is_ready = serving_state().ready
    response = jsonify(ready=is_ready)
    response.status_code = 200 if is_ready else 400
    return response


def model_metadata(name: str, version: str | None = None) -> Response:
    """Describe the model's input tensors (one per feature) and outputs."""
    predictor = _model(name, version)
    features = predictor.schema.features
    return jsonify(
        name=predictor.name,
        versions=[_version(predictor)],
        platform=PLATFORM_PREFIX + predictor.runtime,
        inputs=[
            {"name": f.name, "datatype": _FEATURE_TYPES[f.kind], "shape": [-1]} for f in features
        ],
        outputs=[{"name": "predict", "datatype": "FP64", "shape": [-1]}]
        if predictor.schema.is_regression
        else [
            {"name": "label", "datatype": _label_type(predictor), "shape": [-1]},
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, len(predictor.classes)]},
        ],
        parameters={"runtime": predictor.runtime, "runtime_reason": predictor.runtime_reason},
    )


def model_ready(name: str, version: str | None = None) -> Response:
    """Answer whether the named model is ready."""
    predictor = _model(name, version)
    is_ready = serving_state().ready
    response = jsonify(name=predictor.name, ready=is_ready)
    response.status_code = 200 if is_ready else 400
    return response


def infer(name: str, version: str | None = None) -> Response:
    """Run inference on per-feature tensors, or on one ``[rows, features]`` tensor."""
    predictor = _model(name, version)
    body = _read_request()
    wanted = _requested_outputs(body, predictor)
    rows = _rows(predictor, body.inputs)
    prediction = serving_state().predict(rows)
    answer: dict[str, Any] = {
        "model_name": predictor.name,
        "model_version": _version(predictor),
    }
    if body.id is not None:
        answer["id"] = body.id
    answer["outputs"] = [_output(predictor, prediction, o) for o in wanted]
    return jsonify(answer)


def _read_request() -> schemas.InferenceRequest:
    """Parse the JSON request, decoding binary tensor data when the extension header is set."""
    if request.mimetype not in _BODY_TYPES:
        raise UnsupportedMediaTypeError(
            f"Content-Type must be {JSON} (or application/octet-stream with the "
            f"{BINARY_HEADER} header), got {request.mimetype!r}"
        )
    data = read_body()
    header = request.headers.get(BINARY_HEADER)
    if header is None:
        return schemas.InferenceRequest.model_validate(parse_json(data))
    try:
        json_size = int(header)
    except ValueError:
        raise ProtocolError(f"{BINARY_HEADER} must be a whole number, got {header!r}") from None
    if not 0 < json_size <= len(data):
        raise ProtocolError(f"{BINARY_HEADER} is {json_size} but the body has {len(data)} bytes")
    body = schemas.InferenceRequest.model_validate(parse_json(data[:json_size]))
    offset = json_size
    for tensor in body.inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is None:
            continue
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ProtocolError(f"input {tensor.name!r}: binary_data_size must be a byte count")
        if offset + size > len(data):
            raise ProtocolError(f"input {tensor.name!r}: binary data runs past the end of the body")
        tensor.data = _decode_binary(tensor, data[offset : offset + size])
        offset += size
    if offset != len(data):
        raise ProtocolError(f"the body has {len(data) - offset} bytes no input claims")
    return body


def _decode_binary(tensor: schemas.RequestInput, raw: bytes) -> list[Any]:
    if tensor.datatype == "BYTES":
        values: list[Any] = []
        pos = 0
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise ProtocolError(f"input {tensor.name!r}: truncated BYTES element length")
            (n,) = struct.unpack_from("<I", raw, pos)
            pos += 4
            if pos + n > len(raw):
                raise ProtocolError(f"input {tensor.name!r}: truncated BYTES element")
            try:
                values.append(raw[pos : pos + n].decode())
            except UnicodeDecodeError:
                raise ProtocolError(f"input {tensor.name!r}: BYTES element is not UTF-8") from None
            pos += n
        return values
    dtype = np.dtype(_NUMPY_TYPES[tensor.datatype])
    if len(raw) % dtype.itemsize:
        raise ProtocolError(
            f"input {tensor.name!r}: {len(raw)} bytes is not a whole number of "
            f"{tensor.datatype} elements"
        )
    return list(np.frombuffer(raw, dtype=dtype).tolist())


def valid_outputs(schema: Schema) -> tuple[str, ...]:
    """The output tensors a request may ask of a model with ``schema``."""
    return REGRESSION_OUTPUTS if schema.is_regression else VALID_OUTPUTS


def _requested_outputs(body: schemas.InferenceRequest, predictor: Predictor) -> list[str]:
    valid = valid_outputs(predictor.schema)
    if not body.outputs:
        return list(valid)
    names = [o.name for o in body.outputs]
    unknown = [n for n in names if n not in valid]
    if unknown and predictor.schema.is_regression and set(unknown) <= set(VALID_OUTPUTS):
        raise ProtocolError(
            f"output(s) {', '.join(map(repr, unknown))} are a classifier's: this model is a "
            "regressor and predicts a number, with no labels or class probabilities; ask for "
            "'predict'"
        )
    if unknown:
        raise ProtocolError(
            f"unknown output(s) {', '.join(map(repr, unknown))}; valid: {', '.join(valid)}"
        )
    return names


def _flatten(data: Sequence[Any]) -> list[Any]:
    """Flatten row-major nested tensor data (the protocol allows both forms)."""
    out: list[Any] = []
    stack: list[Any] = [iter(data)]
    while stack:
        for item in stack[-1]:
            if isinstance(item, list):
                stack.append(iter(item))
                break
            out.append(item)
        else:
            stack.pop()
    return out


def _elements(tensor: schemas.RequestInput) -> list[Any]:
    """Check a tensor's data against its shape and datatype; return it flat."""
    if tensor.data is None:
        raise ProtocolError(f"input {tensor.name!r} has no data")
    flat = _flatten(tensor.data)
    expected = math.prod(tensor.shape)
    if len(flat) != expected:
        raise ProtocolError(
            f"input {tensor.name!r} has shape {tensor.shape} ({expected} elements) "
            f"but {len(flat)} data elements"
        )
    kind = tensor.datatype
    for value in flat:
        ok = (
            isinstance(value, str)
            if kind == "BYTES"
            else isinstance(value, bool)
            if kind == "BOOL"
            else isinstance(value, int) and not isinstance(value, bool)
            if kind.startswith(("INT", "UINT"))
            else isinstance(value, (int, float)) and not isinstance(value, bool)
        )
        if not ok:
            raise ProtocolError(
                f"input {tensor.name!r} is {kind} but holds {value!r} ({type(value).__name__})"
            )
    return flat


def _rows(predictor: Predictor, inputs: Sequence[schemas.RequestInput]) -> list[list[Any]]:
    """Assemble positional rows from per-feature tensors or from one 2-D tensor."""
    names = predictor.schema.names
    width = len(names)
    if len(inputs) == 1 and inputs[0].name not in names:
        tensor = inputs[0]
        if len(tensor.shape) != 2 or tensor.shape[1] != width:
            raise ProtocolError(
                f"input {tensor.name!r}: a single tensor must have shape [rows, {width}] "
                f"(features in schema order), got {tensor.shape}; or send one input per feature"
            )
        flat = _elements(tensor)
        return [flat[i : i + width] for i in range(0, len(flat), width)]
    by_name = {t.name: t for t in inputs}
    unknown = [t.name for t in inputs if t.name not in names]
    missing = [n for n in names if n not in by_name]
    if unknown or missing or len(by_name) != len(inputs):
        problems = []
        if unknown:
            problems.append(f"unknown input(s) {', '.join(map(repr, unknown))}")
        if missing:
            problems.append(f"missing input(s) {', '.join(map(repr, missing))}")
        if len(by_name) != len(inputs):
            problems.append("an input name is repeated")
        raise ProtocolError(f"{'; '.join(problems)}: send one input per feature: {names}")
    columns = []
    for n in names:
        tensor = by_name[n]
        if len(tensor.shape) not in (1, 2) or (len(tensor.shape) == 2 and tensor.shape[1] != 1):
            raise ProtocolError(
                f"input {n!r} must have shape [rows] or [rows, 1], got {tensor.shape}"
            )
        columns.append(_elements(tensor))
    lengths = {len(c) for c in columns}
    if len(lengths) != 1:
        raise ProtocolError(f"inputs have different numbers of rows: {sorted(lengths)}")
    return [list(r) for r in zip(*columns, strict=True)]


def _output(predictor: Predictor, prediction: Prediction, name: str) -> dict[str, Any]:
    n = len(prediction.labels)
    if name == "predict":
        return {"name": "predict", "datatype": "FP64", "shape": [n], "data": prediction.labels}
    if name == "label":
        kind = _label_type(predictor)
        data = prediction.labels if kind == "INT64" else [str(x) for x in prediction.labels]
        return {"name": "label", "datatype": kind, "shape": [n], "data": data}
    proba = prediction.probabilities
    return {
        "name": "probabilities",
        "datatype": "FP64",
        "shape": [n, proba.shape[1]],
        "data": proba.ravel().tolist(),
    }


_E = schemas.InferenceErrorResponse
_V = "/v2/models/<name>/versions/<version>"
ROUTES = (
    Route("/v2", "GET", server_metadata, "V2 server metadata", response=schemas.ServerMetadata),
    Route("/v2/health/live", "GET", live, "V2 server liveness", response=schemas.Live),
    Route("/v2/health/ready", "GET", server_ready, "V2 server readiness", response=schemas.Ready,
          errors=(400,), error_model=schemas.Ready),
    Route("/v2/models/<name>", "GET", model_metadata, "V2 model metadata",
          response=schemas.ModelMetadata, errors=(404,), error_model=_E),
    Route(f"{_V}", "GET", model_metadata, "V2 model metadata (versioned)",
          response=schemas.ModelMetadata, errors=(404,), error_model=_E),
    Route("/v2/models/<name>/ready", "GET", model_ready, "V2 model readiness",
          response=schemas.ModelReady, errors=(400, 404), error_model=_E),
    Route(f"{_V}/ready", "GET", model_ready, "V2 model readiness (versioned)",
          response=schemas.ModelReady, errors=(400, 404), error_model=_E),
    Route("/v2/models/<name>/infer", "POST", infer, "V2 inference",
          body=schemas.InferenceRequest, response=schemas.InferenceResponse,
          errors=(400, 404, 413, 415, 422), error_model=_E),
    Route(f"{_V}/infer", "POST", infer, "V2 inference (versioned)",
          body=schemas.InferenceRequest, response=schemas.InferenceResponse,
          errors=(400, 404, 413, 415, 422), error_model=_E),
)  # fmt: skip
