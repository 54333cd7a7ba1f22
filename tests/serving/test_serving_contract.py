"""The OpenAPI document allows what the server accepts, for the model it serves."""

from __future__ import annotations

import re
from typing import Any

import jsonschema_rs
import pytest
from flask.testing import FlaskClient
from serving_support import IRIS_ROW

CSV_HEADER = ",".join(IRIS_ROW)


def _document(client: FlaskClient) -> dict[str, Any]:
    return client.get("/openapi.json").get_json()  # type: ignore[no-any-return]


def _validator(doc: dict[str, Any], component: str) -> Any:
    schema = {"$ref": f"#/components/schemas/{component}", "components": doc["components"],
              "$schema": "https://json-schema.org/draft/2020-12/schema"}  # fmt: skip
    return jsonschema_rs.validator_for(schema)


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        ({"instances": [IRIS_ROW]}, True),
        ({"instances": [list(IRIS_ROW.values())]}, True),
        ({"instances": [[None]]}, False),  # the server wants one value per feature
        ({"instances": []}, False),
        ({"instances": [IRIS_ROW] * 51}, False),  # the app's max_rows is 50
        ({"instances": [{**IRIS_ROW, "extra": 1}]}, False),
        ({"instances": [{"sepal length (cm)": 1.0}]}, False),
        ({"instances": [{**IRIS_ROW, "sepal length (cm)": "5.1"}]}, False),
    ],
)
def test_the_predict_body_is_the_models_contract(
    client: FlaskClient, body: Any, accepted: bool
) -> None:
    assert _validator(_document(client), "PredictRequest").is_valid(body) == accepted
    assert (client.post("/predict", json=body).status_code == 200) == accepted


def test_numbers_beyond_32_bit_floats_are_outside_the_contract(client: FlaskClient) -> None:
    body = {"instances": [{**IRIS_ROW, "sepal length (cm)": 1e39}]}
    assert not _validator(_document(client), "PredictRequest").is_valid(body)
    assert client.post("/predict", json=body).status_code == 422  # the ONNX runtime refuses


@pytest.mark.parametrize(
    ("body", "accepted"),
    [
        ({"dataframe_records": [IRIS_ROW]}, True),
        ({"dataframe_split": {"columns": list(IRIS_ROW), "data": [list(IRIS_ROW.values())]}}, True),
        ({"instances": [IRIS_ROW], "params": {}}, True),
        ({"instances": [IRIS_ROW], "inputs": [IRIS_ROW]}, False),  # exactly one format
        ({"dataframe_split": {"columns": list(IRIS_ROW), "data": [[1]]}}, False),
        ({}, False),
    ],
)
def test_the_invocations_body_is_the_models_contract(
    client: FlaskClient, body: Any, accepted: bool
) -> None:
    assert _validator(_document(client), "MlflowRequest").is_valid(body) == accepted
    assert (client.post("/invocations", json=body).status_code == 200) == accepted


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        (f"{CSV_HEADER}\n5.1,3.5,1.4,0.2\n", True),
        (f"{CSV_HEADER}\r\n5.1,3.5,1.4,0.2\r\n6,3,4,1", True),
        ("", False),
        (f"{CSV_HEADER}\n", False),
        ("0\n0", False),
    ],
)
def test_the_csv_body_is_the_models_contract(
    client: FlaskClient, text: str, accepted: bool
) -> None:
    operation = _document(client)["paths"]["/invocations"]["post"]
    pattern = operation["requestBody"]["content"]["text/csv"]["schema"]["pattern"]
    assert bool(re.search(pattern, text)) == accepted
    answer = client.post("/invocations", data=text, content_type="text/csv")
    assert (answer.status_code == 200) == accepted


def test_the_path_parameters_name_the_served_model_only(client: FlaskClient) -> None:
    doc = _document(client)
    name = client.get("/model").get_json()["name"]
    infer = doc["paths"]["/v2/models/{name}/versions/{version}/infer"]["post"]
    schemas = {p["name"]: p["schema"] for p in infer["parameters"]}
    assert schemas["name"] == {"type": "string", "enum": [name]}
    (version,) = schemas["version"]["enum"]
    assert client.get(f"/v2/models/{name}/versions/{version}").status_code == 200
