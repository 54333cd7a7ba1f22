"""Every protocol reads inputs with the training file's recipe: a headerless UCI-like model
answers the training file's own rows, `?` markers and quoted categories, on both runtimes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from mlcontainer.core.config import Settings
from mlcontainer.serving.app import create_app

MODEL = "uci-logistic_regression"
FEATURES = [f"column_{j}" for j in range(1, 6)]


@pytest.fixture(scope="module", params=["onnx", "sklearn"])
def uci_client(request: pytest.FixtureRequest, uci_model_dir: Path) -> FlaskClient:
    app = create_app(Settings(model_dir=uci_model_dir, runtime=request.param))
    return app.test_client()


def _rows(uci_file: Path) -> list[list[str]]:
    return [line.split(",") for line in uci_file.read_text().splitlines()]


def _typed(row: list[str]) -> dict[str, Any]:
    """A row as a JSON client sends it: numbers as numbers, `?` and the quotes as in the file."""
    out: dict[str, Any] = {}
    for name, cell in zip(FEATURES, row, strict=False):
        out[name] = cell if cell == "?" or cell.startswith("'") else float(cell)
    return out


def test_native_predict_reads_markers_quotes_and_ignores_the_target(
    uci_client: FlaskClient, uci_file: Path
) -> None:
    rows = _rows(uci_file)[:10]
    records = [{**_typed(r), "column_6": r[5]} for r in rows]
    assert any(r["column_2"] == "?" for r in records)
    answer = uci_client.post("/predict", json={"instances": records})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    body = answer.get_json()
    assert len(body["predictions"]) == 10
    assert body["warnings"] == ["ignored column 'column_6' (the target: the model predicts it)"]
    plain = [{**r, "column_2": None if r["column_2"] == "?" else r["column_2"],
              "column_5": r["column_5"].strip("'")} for r in records]  # fmt: skip
    again = uci_client.post("/predict", json={"instances": plain}).get_json()
    assert again["predictions"] == body["predictions"]
    for one, other in zip(again["probabilities"], body["probabilities"], strict=True):
        assert one == pytest.approx(other)


def test_mlflow_csv_takes_the_training_file_rows_as_they_are(
    uci_client: FlaskClient, uci_file: Path
) -> None:
    data = uci_file.read_bytes()
    answer = uci_client.post("/invocations", data=data, headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert len(answer.get_json()["predictions"]) == 120
    records = [_typed(r) for r in _rows(uci_file)]
    native = uci_client.post("/predict", json={"instances": records}).get_json()
    assert answer.get_json()["predictions"] == native["predictions"]


def test_mlflow_json_reads_a_marker_string_as_missing(
    uci_client: FlaskClient, uci_file: Path
) -> None:
    row = _typed(_rows(uci_file)[4])
    body = {"dataframe_split": {"columns": FEATURES, "data": [list(row.values())]}}
    answer = uci_client.post("/invocations", json=body)
    assert answer.status_code == 200, answer.get_data(as_text=True)


def test_mlflow_csv_with_an_unterminated_quote_is_refused_naming_its_line(
    uci_client: FlaskClient, uci_file: Path
) -> None:
    lines = uci_file.read_text().splitlines()
    lines[6] = lines[6].replace("'", '"', 1)
    data = ("\n".join(lines) + "\n").encode()
    answer = uci_client.post("/invocations", data=data, headers={"Content-Type": "text/csv"})
    assert answer.status_code == 422
    assert "line 7: a quoted field starts on this line" in answer.get_json()["message"]


def test_v2_reads_quoted_categories_as_training_did(
    uci_client: FlaskClient, uci_file: Path
) -> None:
    row = _typed(_rows(uci_file)[0])
    inputs = [
        {"name": n, "shape": [1], "datatype": "BYTES" if n == "column_5" else "FP64",
         "data": [row[n]]}
        for n in FEATURES
    ]  # fmt: skip
    quoted = uci_client.post(f"/v2/models/{MODEL}/infer", json={"inputs": inputs})
    assert quoted.status_code == 200, quoted.get_data(as_text=True)
    inputs[4]["data"] = [row["column_5"].strip("'")]
    plain = uci_client.post(f"/v2/models/{MODEL}/infer", json={"inputs": inputs})
    assert quoted.get_json()["outputs"] == plain.get_json()["outputs"]
