"""MLflow's scoring protocol (``/ping``, ``/invocations``), so MLflow and SageMaker clients work."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify, request

from mlcontainer.core.errors import Problem, Reason
from mlcontainer.inference.csvreader import read_csv_text
from mlcontainer.serving import schemas
from mlcontainer.serving.api import JSON, Route, parse_json, read_body
from mlcontainer.serving.errors import RequestShapeError, UnsupportedMediaTypeError
from mlcontainer.serving.state import serving_state

CSV = "text/csv"
#: MLflow's JSON input formats; a request names exactly one of them.
FORMATS = ("dataframe_split", "dataframe_records", "instances", "inputs")


def ping() -> Response:
    """Answer MLflow's health check."""
    return Response("\n", status=200, mimetype=JSON)


def invocations() -> Response:
    """Predict from any MLflow input format; answer ``{"predictions": [...]}``."""
    state = serving_state()
    if request.mimetype == CSV:
        predictor = state.predictor
        data = read_body()
        state.check_csv_size(data, predictor.recipe.delimiter)
        chunk = read_csv_text(
            data,
            delimiter=predictor.recipe.delimiter,
            resolve=predictor.resolver(),
        )
        state.check_batch(len(chunk.rows))
        prediction = state.score(predictor.decode_text(chunk.names, chunk.rows, lines=chunk.lines))
    elif request.mimetype == JSON:
        body = schemas.MlflowRequest.model_validate(parse_json(read_body()))
        prediction = state.predict(_instances(body), unknown="ignore")
    else:
        raise UnsupportedMediaTypeError(
            f"Content-Type must be {JSON} or {CSV}, got {request.mimetype or 'none'!r}"
        )
    return jsonify(predictions=prediction.labels)


def _instances(body: schemas.MlflowRequest) -> list[Any]:
    """Turn whichever format the request used into records or positional rows."""
    given = [f for f in FORMATS if getattr(body, f) is not None]
    if len(given) != 1:
        raise RequestShapeError(
            f"send exactly one of {', '.join(FORMATS)}; got "
            f"{', '.join(given) if given else 'none of them'}"
        )
    if body.dataframe_split is not None:
        split = body.dataframe_split
        width = len(split.columns)
        for i, row in enumerate(split.data):
            if len(row) != width:
                raise RequestShapeError(
                    f"dataframe_split.data row {i} has {len(row)} values for {width} columns",
                    problems=[Problem(Reason.ROW_SHAPE, "row length != columns", row=i)],
                )
        return [dict(zip(split.columns, row, strict=True)) for row in split.data]
    if isinstance(body.inputs, dict):
        return _records_from_columns(body.inputs)
    value = body.dataframe_records or body.instances or body.inputs
    return list(value or [])


def _records_from_columns(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    lengths = {name: len(values) for name, values in columns.items()}
    if len(set(lengths.values())) > 1:
        raise RequestShapeError(
            f"inputs columns have different lengths: {lengths}",
            problems=[
                Problem(Reason.ROW_SHAPE, f"{k} values", column=n) for n, k in lengths.items()
            ],
        )
    names = list(columns)
    return [dict(zip(names, values, strict=True)) for values in zip(*columns.values(), strict=True)]


_CSV_BODY = {CSV: {"type": "string", "description": "a header line, then one row per line"}}
ROUTES = (
    Route("/ping", "GET", ping, "MLflow health check"),
    Route("/invocations", "POST", invocations, "MLflow scoring: predict labels",
          body=schemas.MlflowRequest, body_media=_CSV_BODY, response=schemas.MlflowResponse,
          errors=(400, 413, 415, 422), error_model=schemas.MlflowErrorResponse),
)  # fmt: skip
