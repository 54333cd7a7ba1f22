"""Pydantic models of every request and response body; the OpenAPI document is built from them."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

#: One cell of an input row as JSON carries it; ``null`` is a missing value.
Value = float | int | str | bool | None
Record = dict[str, Value]
Row = list[Value]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- native -------------------------------------------------------------------------------


class PredictRequest(_Strict):
    """Rows to predict: records ``{feature: value}`` or rows of values in schema order."""

    instances: Annotated[list[Record] | list[Row], Field(min_length=1)]


class ModelRef(BaseModel):
    name: str
    sha256: str


class PredictResponse(BaseModel):
    """Labels and class probabilities; for a regressor the predicted numbers alone."""

    predictions: list[str | int | float | bool]
    probabilities: list[dict[str, float]] | None = None
    model: ModelRef
    #: Notes on the input, e.g. a target column that was sent along and ignored.
    warnings: list[str] | None = None


class Health(BaseModel):
    status: Literal["healthy"]


class Readiness(BaseModel):
    status: Literal["ready", "loading"]


class FeatureInfo(BaseModel):
    name: str
    type: Literal["numeric", "boolean", "categorical"]
    nullable: bool
    categories: list[str] | None = None


class Summary(BaseModel):
    """What ``GET /`` answers to ``Accept: application/json``."""

    name: str
    #: classification or regression.
    task: str
    estimator: str | None
    #: "onnx" or "sklearn": what computes the predictions.
    runtime: str
    #: Why the model is not served with ONNX (one line), or null.
    runtime_reason: str | None
    dataset: dict[str, Any]
    metrics: dict[str, Any]
    classes: list[str | int | float | bool]
    features: list[FeatureInfo]
    sha256: str
    #: The typical training row, a few held-out rows with their targets, numeric features'
    #: training spreads (null for folders written before they were kept).
    examples: dict[str, Any] | None = None
    #: The features the answer puts against their training spread, most important first.
    top_features: list[str] = []
    links: dict[str, str]


class Manifest(BaseModel):
    """The model's manifest: schema, classes, metrics, leaderboard, versions, file hashes."""

    model_config = ConfigDict(extra="allow")
    name: str
    schema_: Annotated[dict[str, Any], Field(alias="schema")]
    metrics: dict[str, Any]
    versions: dict[str, Any]


class ErrorDetail(BaseModel):
    row: int | None = None
    column: str | None = None
    location: str | None = None
    #: Why: a machine-readable code (``missing_feature``, ``wrong_type``, ``not_finite``, ...).
    reason: str | None = None
    message: str


class ErrorBody(BaseModel):
    code: str
    message: str
    details: list[ErrorDetail]


class ErrorResponse(BaseModel):
    """Every error outside the V2 paths: what is wrong, where, and what would be valid."""

    error: ErrorBody


# --- MLflow scoring protocol --------------------------------------------------------------


class DataframeSplit(_Strict):
    columns: list[str]
    data: list[Row]
    index: list[Any] | None = None


class MlflowRequest(_Strict):
    """One of MLflow's JSON input formats (exactly one of the four keys), plus ``params``."""

    dataframe_split: DataframeSplit | None = None
    dataframe_records: list[Record] | None = None
    instances: list[Record] | list[Row] | None = None
    inputs: dict[str, list[Value]] | list[Record] | list[Row] | None = None
    params: dict[str, Any] | None = None


class MlflowResponse(BaseModel):
    predictions: list[str | int | float | bool]


class MlflowErrorResponse(ErrorResponse):
    """MLflow's error fields (``error_code``, ``message``) next to the service's own."""

    error_code: str
    message: str


# --- Open Inference Protocol (KServe V2) --------------------------------------------------

Datatype = Literal[
    "BOOL",
    "UINT8",
    "UINT16",
    "UINT32",
    "UINT64",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
]
Parameters = dict[str, str | int | float | bool]


class TensorMetadata(BaseModel):
    name: str
    datatype: Datatype
    shape: list[int]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]
    #: ``runtime`` ("onnx" or "sklearn") and, for a scikit-learn fallback, ``runtime_reason``.
    parameters: dict[str, Any] | None = None


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class RequestInput(_Strict):
    name: str
    shape: list[Annotated[int, Field(ge=0)]]
    datatype: Datatype
    parameters: Parameters | None = None
    data: list[Any] | None = None


class RequestOutput(_Strict):
    name: str
    parameters: Parameters | None = None


class InferenceRequest(_Strict):
    id: str | None = None
    parameters: Parameters | None = None
    inputs: Annotated[list[RequestInput], Field(min_length=1)]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: Datatype
    data: list[Any]


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    outputs: list[ResponseOutput]


class InferenceErrorResponse(BaseModel):
    """The protocol's error shape."""

    error: str
