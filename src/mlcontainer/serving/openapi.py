"""The OpenAPI document narrowed to the served model: what its request bodies may really hold.

The route tables describe every model (:func:`mlcontainer.serving.api.openapi_document`);
this fills in the one being served: its name and version as the only path values, its
features as the properties and positions of a row, their types, the row limit (a longer
batch is answered 413, as each prediction route declares) and the V2 output names. A
request the document allows is one the server can answer (it may still refuse a value the
model cannot score, such as one far outside the range seen in training, and a V2 tensor
whose data does not fill its shape: a JSON schema cannot tie one to the other).
"""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np

from mlcontainer.core.schema import Feature, Schema
from mlcontainer.serving.v2 import valid_outputs

#: Numbers beyond 32-bit floats are refused by the ONNX runtime (and overflow most models).
_FLOAT32_MAX = float(np.finfo(np.float32).max)
#: A CSV number cell (empty: missing), within 32-bit floats.
_CSV_NUMBER = r"(-?[0-9]{1,30}(\.[0-9]{1,10})?)?"
_SPECIAL = re.compile(r"[\\^$.|?*+()\[\]{}/-]")
_CSV_CELLS = {"numeric": _CSV_NUMBER, "boolean": r"(true|false)?", "categorical": r"[^\r\n\",]*"}


#: Any one JSON value a cell may hold (the columns a model ignores).
_SCALAR = {"type": ["number", "string", "boolean", "null"]}


def cell(feature: Feature) -> dict[str, Any]:
    """The JSON schema of one value of ``feature`` (null is a missing value)."""
    if feature.kind == "numeric":
        return {"type": ["number", "null"], "minimum": -_FLOAT32_MAX, "maximum": _FLOAT32_MAX}
    if feature.kind == "boolean":
        return {"type": ["boolean", "null"]}
    return {"type": ["string", "null"]}


def record(schema: Schema, *, ignored: tuple[str, ...], extra: bool) -> dict[str, Any]:
    """A record ``{feature: value}``: every feature; the ignored columns may come along."""
    properties: dict[str, Any] = {f.name: cell(f) for f in schema.features}
    properties.update({name: _SCALAR for name in ignored if name not in properties})
    return {
        "type": "object",
        "properties": properties,
        "required": list(schema.names),
        "additionalProperties": _SCALAR if extra else False,
    }


def row(schema: Schema) -> dict[str, Any]:
    """A positional row: one value per feature, in schema order."""
    n = len(schema.features)
    return {
        "type": "array",
        "prefixItems": [cell(f) for f in schema.features],
        "items": False,
        "minItems": n,
        "maxItems": n,
    }


def _escape(text: str) -> str:
    """Escape the characters special to ECMA-262 regular expressions (what OpenAPI uses);
    Python's ``re.escape`` also escapes spaces, which an ECMA ``u`` pattern refuses."""
    return _SPECIAL.sub(r"\\\g<0>", text)


def csv_pattern(schema: Schema, delimiter: str) -> str:
    """A CSV body with the features' header line, then one or more rows of their values."""
    sep = _escape(delimiter)
    header = sep.join(_escape(n) for n in schema.names)
    cells = [_CSV_CELLS[f.kind].replace(",", delimiter) for f in schema.features]
    line = sep.join(cells)
    return f"^{header}\\r?\\n({line}\\r?\\n)*{line}(\\r?\\n)?$"


def for_model(
    document: dict[str, Any],
    schema: Schema,
    *,
    name: str,
    version: str,
    max_rows: int,
    ignored: tuple[str, ...],
    delimiter: str = ",",
) -> dict[str, Any]:
    """Return ``document`` with the served model's names, features and row limit filled in."""
    doc = copy.deepcopy(document)
    components = doc["components"]["schemas"]

    def batch(item: dict[str, Any]) -> dict[str, Any]:
        return {"type": "array", "items": item, "minItems": 1, "maxItems": max_rows}

    strict = record(schema, ignored=ignored, extra=False)
    loose = record(schema, ignored=ignored, extra=True)  # MLflow ignores unknown columns
    components["PredictRequest"] = {
        "type": "object",
        "description": "Rows to predict: records {feature: value}, or rows in schema order.",
        "properties": {"instances": {"oneOf": [batch(strict), batch(row(schema))]}},
        "required": ["instances"],
        "additionalProperties": False,
    }
    split = {
        "type": "object",
        "properties": {
            "columns": {"const": list(schema.names)},
            "data": batch(row(schema)),
            "index": {"type": "array"},
        },
        "required": ["columns", "data"],
        "additionalProperties": False,
    }
    formats = {
        "dataframe_split": split,
        "dataframe_records": batch(loose),
        "instances": {"oneOf": [batch(loose), batch(row(schema))]},
        "inputs": {"oneOf": [batch(loose), batch(row(schema))]},
    }
    components["MlflowRequest"] = {
        "description": "Exactly one of MLflow's JSON input formats, plus params.",
        "oneOf": [
            {
                "type": "object",
                "properties": {key: value, "params": {"type": "object"}},
                "required": [key],
                "additionalProperties": False,
            }
            for key, value in formats.items()
        ],
    }
    _narrow_v2(components, schema, max_rows)
    for path, operations in doc["paths"].items():
        for operation in operations.values():
            too_large = operation.get("responses", {}).get("413")
            if too_large is not None:
                too_large["description"] = (
                    f"a batch of more than {max_rows} rows (the row limit), or a body over the "
                    "size limit"
                )
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "name":
                    parameter["schema"] = {"type": "string", "enum": [name]}
                elif parameter["name"] == "version":
                    parameter["schema"] = {"type": "string", "enum": [version]}
            csv = operation.get("requestBody", {}).get("content", {}).get("text/csv")
            if csv is not None and path == "/invocations":
                csv["schema"] = {**csv["schema"], "pattern": csv_pattern(schema, delimiter)}
    return doc


def _narrow_v2(components: dict[str, Any], schema: Schema, max_rows: int) -> None:
    """V2 tensors: the first dimension (rows) within the row limit, no more elements than a
    full batch holds, and only the model's output names."""
    tensor = components["RequestInput"]["properties"]
    tensor["shape"] = {
        **tensor["shape"],
        "prefixItems": [{"type": "integer", "minimum": 0, "maximum": max_rows}],
    }
    elements = max_rows * max(1, len(schema.features))
    tensor["data"] = {
        **tensor["data"],
        "anyOf": [
            {**s, "maxItems": elements} if s.get("type") == "array" else s
            for s in tensor["data"]["anyOf"]
        ],
    }
    output = components["RequestOutput"]["properties"]
    output["name"] = {**output["name"], "enum": list(valid_outputs(schema))}
