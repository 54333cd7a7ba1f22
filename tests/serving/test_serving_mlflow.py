"""MLflow's scoring protocol: requests exactly as MLflow's serving docs show them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from serving_support import IRIS_ROW

NAMES = list(IRIS_ROW)
ROWS = [list(IRIS_ROW.values()), [6.7, 3.0, 5.2, 2.3]]
EXPECTED = ["setosa", "virginica"]


def test_ping_answers_200(client: FlaskClient) -> None:
    response = client.get("/ping")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"dataframe_split": {"columns": NAMES, "data": ROWS}},
        {"dataframe_split": {"index": [10, 11], "columns": NAMES, "data": ROWS}},
        {"dataframe_records": [dict(zip(NAMES, r, strict=True)) for r in ROWS]},
        {"instances": [dict(zip(NAMES, r, strict=True)) for r in ROWS]},
        {"instances": ROWS},
        {"inputs": ROWS},
        {"inputs": {n: [r[i] for r in ROWS] for i, n in enumerate(NAMES)}},
        {"inputs": ROWS, "params": {"unused": 1}},
    ],
    ids=["split", "split-index", "records", "instances-records", "instances-rows",
         "inputs-rows", "inputs-columns", "with-params"],
)  # fmt: skip
def test_invocations_accepts_every_mlflow_json_format(client: FlaskClient, body: Any) -> None:
    # MLflow's docs send "Content-Type:application/json;" with a trailing semicolon.
    response = client.post(
        "/invocations", data=json.dumps(body), headers={"Content-Type": "application/json;"}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"predictions": EXPECTED}


def test_invocations_accepts_csv(client: FlaskClient) -> None:
    csv = ",".join(NAMES) + "\n" + "\n".join(",".join(map(str, r)) for r in ROWS) + "\n"
    response = client.post("/invocations", data=csv, content_type="text/csv")
    assert response.get_json() == {"predictions": EXPECTED}


def test_invocations_ignores_extra_columns_like_mlflow(client: FlaskClient) -> None:
    body = {"dataframe_records": [{**IRIS_ROW, "id": 7}]}
    assert client.post("/invocations", json=body).get_json() == {"predictions": ["setosa"]}


def mlflow_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert body["error_code"] == "BAD_REQUEST"
    assert body["message"] == body["error"]["message"]
    return dict(body)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({}, "exactly one of"),
        ({"instances": ROWS, "inputs": ROWS}, "got instances, inputs"),
        ({"dataframe_split": {"columns": NAMES, "data": [[1, 2]]}}, "row 0 has 2 values"),
        ({"inputs": {"a": [1, 2], "b": [1]}}, "different lengths"),
        ({"dataframe_records": [{"sepal length (cm)": 1}]}, "missing feature"),
        ({"dataframe_records": []}, "empty"),
    ],
)
def test_invocations_rejects_bad_json_in_mlflow_error_shape(
    client: FlaskClient, body: Any, fragment: str
) -> None:
    err = mlflow_error(client.post("/invocations", json=body), 422)
    assert fragment in err["message"]


def test_invocations_rejects_other_content_types(client: FlaskClient) -> None:
    err = mlflow_error(client.post("/invocations", data="x", content_type="text/plain"), 415)
    assert "text/csv" in err["message"]


def test_invocations_rejects_unparseable_csv_and_bad_cells(client: FlaskClient) -> None:
    empty = mlflow_error(client.post("/invocations", data="", content_type="text/csv"), 422)
    assert "empty" in empty["message"]
    csv = ",".join(NAMES) + "\nabc,1,1,1\n"
    bad = mlflow_error(client.post("/invocations", data=csv, content_type="text/csv"), 422)
    assert bad["error"]["details"][0]["column"] == "sepal length (cm)"


@pytest.mark.parametrize("end", ["\n", ""])
def test_invocations_refuses_a_csv_row_cut_short_by_its_line(client: FlaskClient, end: str) -> None:
    csv = ",".join(NAMES) + "\n5,3,1,0.2\n\n6.7,3.0" + end  # a blank line 3, then line 4
    err = mlflow_error(client.post("/invocations", data=csv, content_type="text/csv"), 422)
    assert "line 4: it has 2 fields for 4 columns" in err["message"]
    assert err["error"]["details"][0]["line"] == 4


def test_invocations_csv_batch_over_the_row_limit_is_413(client: FlaskClient) -> None:
    csv = ",".join(NAMES) + "\n" + "5,3,1,0.2\n" * 51
    mlflow_error(client.post("/invocations", data=csv, content_type="text/csv"), 413)
