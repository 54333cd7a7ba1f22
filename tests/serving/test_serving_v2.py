"""Open Inference Protocol (KServe V2): requests as the spec writes them, and a real client."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask.testing import FlaskClient
from serving_support import IRIS_ROW

MODEL = "iris-logistic_regression"
INFER = f"/v2/models/{MODEL}/infer"
ROWS = [list(IRIS_ROW.values()), [6.7, 3.0, 5.2, 2.3]]


def feature_inputs(rows: list[list[float]]) -> list[dict[str, Any]]:
    return [
        {"name": n, "shape": [len(rows)], "datatype": "FP64", "data": [r[i] for r in rows]}
        for i, n in enumerate(IRIS_ROW)
    ]


def v2_error(response: Any, status: int) -> str:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == {"error"}
    assert isinstance(body["error"], str)
    return str(body["error"])


def test_server_metadata_live_and_ready(client: FlaskClient) -> None:
    meta = client.get("/v2").get_json()
    assert meta["name"] == "mlcontainer"
    assert isinstance(meta["extensions"], list)
    assert client.get("/v2/health/live").get_json() == {"live": True}
    assert client.get("/v2/health/ready").get_json() == {"ready": True}
    assert client.get(f"/v2/models/{MODEL}/ready").get_json() == {"name": MODEL, "ready": True}


def test_model_metadata_lists_one_input_per_feature(client: FlaskClient) -> None:
    meta = client.get(f"/v2/models/{MODEL}").get_json()
    assert meta["name"] == MODEL
    assert meta["inputs"] == [{"name": n, "datatype": "FP64", "shape": [-1]} for n in IRIS_ROW]
    assert meta["outputs"] == [
        {"name": "label", "datatype": "BYTES", "shape": [-1]},
        {"name": "probabilities", "datatype": "FP64", "shape": [-1, 3]},
    ]
    version = meta["versions"][0]
    assert client.get(f"/v2/models/{MODEL}/versions/{version}").get_json() == meta


def test_infer_with_one_tensor_per_feature(client: FlaskClient) -> None:
    body = {"id": "req-1", "inputs": feature_inputs(ROWS)}
    answer = client.post(INFER, json=body).get_json()
    assert answer["model_name"] == MODEL
    assert answer["id"] == "req-1"
    label, proba = answer["outputs"]
    assert label == {
        "name": "label",
        "datatype": "BYTES",
        "shape": [2],
        "data": ["setosa", "virginica"],
    }
    assert proba["shape"] == [2, 3]
    assert proba["datatype"] == "FP64"
    assert sum(proba["data"][:3]) == pytest.approx(1.0)


def test_infer_with_one_2d_tensor_flat_or_nested(client: FlaskClient) -> None:
    flat = [v for r in ROWS for v in r]
    for data in (flat, ROWS):
        body = {"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", "data": data}]}
        answer = client.post(INFER, json=body).get_json()
        assert answer["outputs"][0]["data"] == ["setosa", "virginica"]


def test_infer_returns_only_the_requested_outputs(client: FlaskClient) -> None:
    body = {"inputs": feature_inputs(ROWS), "outputs": [{"name": "probabilities"}]}
    outputs = client.post(INFER, json=body).get_json()["outputs"]
    assert [o["name"] for o in outputs] == ["probabilities"]


def test_infer_accepts_binary_tensor_data(client: FlaskClient) -> None:
    raw = np.asarray(ROWS, dtype="<f4").tobytes()
    header = (
        '{"inputs": [{"name": "input-0", "shape": [2, 4], "datatype": "FP32", '
        f'"parameters": {{"binary_data_size": {len(raw)}}}}}]}}'
    ).encode()
    response = client.post(
        INFER,
        data=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header))},
        content_type="application/octet-stream",
    )
    assert response.get_json()["outputs"][0]["data"] == ["setosa", "virginica"]


def test_infer_decodes_binary_bytes_tensors(penguins_client: FlaskClient) -> None:
    def bytes_tensor(values: list[str]) -> bytes:
        return b"".join(struct.pack("<I", len(v.encode())) + v.encode() for v in values)

    inputs: list[dict[str, Any]] = []
    blobs = []
    row: dict[str, Any] = {
        "island": "Biscoe",
        "bill_length_mm": 47.5,
        "bill_depth_mm": 14.2,
        "flipper_length_mm": 215.0,
        "body_mass_g": 5000.0,
        "sex": "male",
        "year": 2008.0,
    }
    for name, value in row.items():
        is_text = isinstance(value, str)
        blob = bytes_tensor([value]) if is_text else np.asarray([value], "<f8").tobytes()
        kind = "BYTES" if is_text else "FP64"
        size = {"binary_data_size": len(blob)}
        inputs.append({"name": name, "shape": [1], "datatype": kind, "parameters": size})
        blobs.append(blob)
    header = json.dumps({"inputs": inputs}).encode()
    response = penguins_client.post(
        "/v2/models/penguins-random_forest/infer",
        data=header + b"".join(blobs),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["outputs"][0]["data"] == ["Gentoo"]


@pytest.mark.parametrize(
    ("path", "method"),
    [("/v2/models/other", "GET"), ("/v2/models/other/ready", "GET"),
     ("/v2/models/other/infer", "POST"), (f"/v2/models/{MODEL}/versions/nope", "GET")],
)  # fmt: skip
def test_unknown_model_or_version_is_404_in_v2_error_shape(
    client: FlaskClient, path: str, method: str
) -> None:
    response = client.open(path, method=method, json={"inputs": feature_inputs(ROWS)})
    assert MODEL in v2_error(response, 404)


@pytest.mark.parametrize(
    ("inputs", "fragment"),
    [
        ([{"name": "x", "shape": [2, 3], "datatype": "FP64", "data": [0] * 6}], "shape [rows, 4]"),
        ([{"name": "x", "shape": [2, 4], "datatype": "FP64", "data": [0] * 7}], "7 data elements"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": ["a", 1, 2, 3]}], "holds 'a'"),
        ([{"name": "x", "shape": [1, 4], "datatype": "INT64", "data": [1.5, 1, 2, 3]}], "INT64"),
        ([{"name": "x", "shape": [1, 4], "datatype": "FP64"}], "has no data"),
        (feature_inputs(ROWS)[:3], "missing input(s) 'petal width (cm)'"),
        (
            [
                *feature_inputs(ROWS),
                {"name": "zzz", "shape": [2], "datatype": "FP64", "data": [1, 2]},
            ],
            "unknown input(s) 'zzz'",
        ),
        ([*feature_inputs(ROWS)[:3], feature_inputs([[1.0] * 4])[3]], "different numbers of rows"),
    ],
)
def test_infer_rejects_protocol_violations_with_400(
    client: FlaskClient, inputs: list[dict[str, Any]], fragment: str
) -> None:
    assert fragment in v2_error(client.post(INFER, json={"inputs": inputs}), 400)


def test_infer_rejects_unknown_output_name(client: FlaskClient) -> None:
    body = {"inputs": feature_inputs(ROWS), "outputs": [{"name": "__class__"}]}
    assert "valid: label, probabilities" in v2_error(client.post(INFER, json=body), 400)


def test_infer_rejects_invalid_json_schema_and_media_type(client: FlaskClient) -> None:
    assert "not valid JSON" in v2_error(
        client.post(INFER, data="{", content_type="application/json"), 400
    )
    assert "inputs" in v2_error(client.post(INFER, json={"inputs": []}), 422)
    assert "Content-Type" in v2_error(client.post(INFER, data="x", content_type="text/plain"), 415)


def test_infer_rejects_bad_binary_framing(client: FlaskClient) -> None:
    header = b'{"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", '
    header += b'"parameters": {"binary_data_size": 64}}]}'
    response = client.post(
        INFER,
        data=header + b"\0" * 8,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )
    assert "past the end" in v2_error(response, 400)


def test_infer_value_errors_name_the_feature(client: FlaskClient) -> None:
    inputs = feature_inputs(ROWS)
    inputs[0] = {**inputs[0], "datatype": "BYTES", "data": ["long", "short"]}
    message = v2_error(client.post(INFER, json={"inputs": inputs}), 422)
    assert "sepal length (cm)" in message


@pytest.mark.slow
def test_tritonclient_talks_to_a_real_server(start_server: Any, iris_model_dir: Path) -> None:
    import tritonclient.http as httpclient

    server = start_server("--model", str(iris_model_dir))
    triton = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    try:
        assert triton.is_server_live()
        assert triton.is_server_ready()
        assert triton.is_model_ready(MODEL)
        meta = triton.get_model_metadata(MODEL)
        assert [i["name"] for i in meta["inputs"]] == list(IRIS_ROW)
        rows = np.asarray(ROWS, dtype=np.float32)
        for binary in (False, True):
            tensor = httpclient.InferInput("input-0", list(rows.shape), "FP32")
            tensor.set_data_from_numpy(rows, binary_data=binary)
            outputs = [httpclient.InferRequestedOutput("label", binary_data=False)]
            result = triton.infer(MODEL, [tensor], outputs=outputs)
            # JSON outputs come back as str (binary ones would be bytes).
            assert result.as_numpy("label").tolist() == ["setosa", "virginica"]
        result = triton.infer(MODEL, [tensor])  # no outputs asked: the client wants binary ones
        assert result.as_numpy("probabilities").shape == (2, 3)
        with pytest.raises(httpclient.InferenceServerException, match="unknown model"):
            triton.infer("other", [tensor])
    finally:
        triton.close()


def test_tritonclient_reads_a_regressors_predict_output(
    start_server: Any, diabetes_model_dir: Path
) -> None:
    import tritonclient.http as httpclient

    from mlcontainer.training.data.dataset import load_dataset

    server = start_server("--model", str(diabetes_model_dir))
    triton = httpclient.InferenceServerClient(url=f"127.0.0.1:{server.port}")
    model = "diabetes-ridge"
    try:
        meta = triton.get_model_metadata(model)
        assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
        rows = load_dataset("diabetes").X.iloc[:4].to_numpy()
        tensor = httpclient.InferInput("input-0", list(rows.shape), "FP64")
        tensor.set_data_from_numpy(rows, binary_data=True)
        result = triton.infer(model, [tensor])
        values = result.as_numpy("predict")
        assert values.shape == (4,)
        assert values.dtype == np.float64
        local = triton.infer(
            model, [tensor], outputs=[httpclient.InferRequestedOutput("predict", binary_data=False)]
        ).as_numpy("predict")
        assert local.tolist() == values.tolist()
        with pytest.raises(httpclient.InferenceServerException, match="this model is a regressor"):
            triton.infer(
                model, [tensor], outputs=[httpclient.InferRequestedOutput("probabilities")]
            )
    finally:
        triton.close()
