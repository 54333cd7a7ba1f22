"""The OpenAPI document: generated from the routes and pydantic models, complete, resolvable."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from mlcontainer.core.config import Settings
from mlcontainer.serving.api import openapi_path
from mlcontainer.serving.app import create_app
from mlcontainer.serving.schemas import InferenceRequest, PredictRequest


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return own + [r for v in node.values() for r in refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


def test_openapi_lists_every_route_of_the_app(client: FlaskClient, iris_app: Flask) -> None:
    doc = client.get("/openapi.json").get_json()
    assert doc["openapi"].startswith("3.")
    served = {
        (openapi_path(rule.rule), method.lower())
        for rule in iris_app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
    }
    documented = {(path, method) for path, ops in doc["paths"].items() for method in ops}
    assert documented == served


def test_openapi_schemas_come_from_the_pydantic_models(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    schemas = doc["components"]["schemas"]
    predict = doc["paths"]["/predict"]["post"]
    assert predict["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/PredictRequest"
    }
    # The request bodies are narrowed to the served model (see test_serving_contract.py).
    assert set(schemas["PredictRequest"]["properties"]) == set(PredictRequest.model_fields)
    assert set(predict["responses"]) == {"200", "400", "413", "415", "422"}
    assert "InferenceRequest" in schemas
    assert set(InferenceRequest.model_fields) <= set(schemas["InferenceRequest"]["properties"])
    assert "text/csv" in doc["paths"]["/invocations"]["post"]["requestBody"]["content"]


def test_openapi_references_all_resolve(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    names = set(doc["components"]["schemas"])
    prefix = "#/components/schemas/"
    assert all(r.startswith(prefix) and r[len(prefix) :] in names for r in refs(doc))


def test_openapi_path_parameters_are_declared(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    infer = doc["paths"]["/v2/models/{name}/versions/{version}/infer"]["post"]
    assert [p["name"] for p in infer["parameters"]] == ["name", "version"]


PREDICT_OPERATIONS = (
    "/predict",
    "/invocations",
    "/v2/models/{name}/infer",
    "/v2/models/{name}/versions/{version}/infer",
)


def test_every_prediction_route_declares_413_for_a_batch_over_the_row_limit(
    client: FlaskClient,
) -> None:
    doc = client.get("/openapi.json").get_json()  # the iris app: at most 50 rows
    for path in PREDICT_OPERATIONS:
        too_large = doc["paths"][path]["post"]["responses"]["413"]
        assert "more than 50 rows" in too_large["description"], path
    # V2 tensors too: 50 rows at most, and no more elements than 50 rows of 4 features.
    tensor = doc["components"]["schemas"]["RequestInput"]["properties"]
    assert tensor["shape"]["prefixItems"][0]["maximum"] == 50
    assert {s.get("maxItems") for s in tensor["data"]["anyOf"]} == {200, None}


def test_v2_output_names_are_only_the_models_own(
    client: FlaskClient, diabetes_model_dir: Path
) -> None:
    output = client.get("/openapi.json").get_json()["components"]["schemas"]["RequestOutput"]
    assert output["properties"]["name"]["enum"] == ["label", "probabilities"]
    regressor = create_app(Settings(model_dir=diabetes_model_dir)).test_client()
    output = regressor.get("/openapi.json").get_json()["components"]["schemas"]["RequestOutput"]
    assert output["properties"]["name"]["enum"] == ["predict"]
