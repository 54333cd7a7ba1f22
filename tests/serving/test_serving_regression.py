"""A regressor served: numbers from every protocol, through both runtimes, and clear refusals.

Models: a ridge line on scikit-learn's diabetes data (numeric features), and a random forest
on the headerless UCI auto_imports file (text columns, `?` markers, a price in dollars).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from flask import Flask
from flask.testing import FlaskClient

from mlcontainer.core.artifacts import TRUSTED_TYPES, read_manifest
from mlcontainer.core.config import Settings
from mlcontainer.serving.app import create_app
from mlcontainer.training.data.dataset import load_dataset

RUNTIMES = ["onnx", "sklearn"]
DIABETES = "diabetes-ridge"


@pytest.fixture(scope="module")
def diabetes_rows() -> tuple[list[str], list[list[float]]]:
    ds = load_dataset("diabetes")
    return list(ds.X.columns), ds.X.iloc[:6].to_numpy().tolist()


@pytest.fixture(scope="module")
def diabetes_apps(diabetes_model_dir: Path) -> dict[str, Flask]:
    return {r: create_app(Settings(model_dir=diabetes_model_dir, runtime=r)) for r in RUNTIMES}


@pytest.fixture(params=RUNTIMES)
def regressor(request: pytest.FixtureRequest, diabetes_apps: dict[str, Flask]) -> FlaskClient:
    return diabetes_apps[request.param].test_client()


def _expected(model_dir: Path, names: list[str], rows: list[list[Any]]) -> np.ndarray:
    """What the fitted scikit-learn pipeline itself predicts for the rows."""
    import pandas as pd

    pipeline = skops.io.load(model_dir / "model.skops", trusted=sorted(TRUSTED_TYPES))
    return np.asarray(pipeline.predict(pd.DataFrame(rows, columns=names)), dtype=float)


def _tolerance(model_dir: Path) -> float:
    """The ONNX verification's tolerance: 1e-4 of the training target's spread."""
    runtime = read_manifest(model_dir).runtime
    assert runtime is not None
    assert runtime.onnx is not None, runtime.reason
    tolerance = runtime.onnx.verification.tolerance
    assert tolerance is not None
    return float(tolerance)


def test_native_predict_answers_numbers_and_no_probabilities(
    regressor: FlaskClient, diabetes_model_dir: Path, diabetes_rows: Any
) -> None:
    names, rows = diabetes_rows
    records = [dict(zip(names, r, strict=True)) for r in rows]
    answer = regressor.post("/predict", json={"instances": records}).get_json()
    assert set(answer) == {"predictions", "model"}
    values = answer["predictions"]
    assert all(isinstance(v, float) for v in values)
    expected = _expected(diabetes_model_dir, names, rows)
    np.testing.assert_allclose(values, expected, atol=_tolerance(diabetes_model_dir))
    # positional rows give the same numbers
    again = regressor.post("/predict", json={"instances": rows}).get_json()
    assert again["predictions"] == values


def test_both_runtimes_agree_within_the_verified_tolerance(
    diabetes_apps: dict[str, Flask], diabetes_model_dir: Path, diabetes_rows: Any
) -> None:
    _, rows = diabetes_rows
    body = {"instances": rows}
    onnx, sk = (
        diabetes_apps[r].test_client().post("/predict", json=body).get_json()["predictions"]
        for r in RUNTIMES
    )
    np.testing.assert_allclose(onnx, sk, atol=_tolerance(diabetes_model_dir))
    assert all(len(repr(v)) <= len("-123.4567e+10") for v in onnx)  # float32's digits, no noise


@pytest.mark.parametrize("shape", ["split", "records", "instances", "inputs-columns"])
def test_mlflow_invocations_answers_predictions_as_mlflow_serves_a_regressor(
    regressor: FlaskClient, diabetes_rows: Any, diabetes_model_dir: Path, shape: str
) -> None:
    names, rows = diabetes_rows
    body: dict[str, Any] = {
        "split": {"dataframe_split": {"columns": names, "data": rows}},
        "records": {"dataframe_records": [dict(zip(names, r, strict=True)) for r in rows]},
        "instances": {"instances": rows},
        "inputs-columns": {"inputs": {n: [r[i] for r in rows] for i, n in enumerate(names)}},
    }[shape]
    response = regressor.post("/invocations", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    answer = response.get_json()
    assert set(answer) == {"predictions"}
    np.testing.assert_allclose(
        answer["predictions"],
        _expected(diabetes_model_dir, names, rows),
        atol=_tolerance(diabetes_model_dir),
    )


def test_mlflow_invocations_reads_csv_for_a_regressor(
    regressor: FlaskClient, diabetes_rows: Any
) -> None:
    names, rows = diabetes_rows
    csv = ",".join(names) + "\n" + "\n".join(",".join(map(repr, r)) for r in rows) + "\n"
    by_csv = regressor.post("/invocations", data=csv, content_type="text/csv").get_json()
    by_json = regressor.post("/invocations", json={"instances": rows}).get_json()
    assert by_csv == by_json


def test_v2_metadata_names_one_fp64_output_called_predict(regressor: FlaskClient) -> None:
    meta = regressor.get(f"/v2/models/{DIABETES}").get_json()
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    assert [i["datatype"] for i in meta["inputs"]] == ["FP64"] * 10


def test_v2_infer_returns_predict_of_shape_n(
    regressor: FlaskClient, diabetes_rows: Any, diabetes_model_dir: Path
) -> None:
    names, rows = diabetes_rows
    tensor = {"name": "x", "shape": [len(rows), len(names)], "datatype": "FP64", "data": rows}
    for outputs in (None, [{"name": "predict"}]):
        body: dict[str, Any] = {"inputs": [tensor]}
        if outputs is not None:
            body["outputs"] = outputs
        answer = regressor.post(f"/v2/models/{DIABETES}/infer", json=body).get_json()
        (output,) = answer["outputs"]
        assert output["name"] == "predict"
        assert output["datatype"] == "FP64"
        assert output["shape"] == [len(rows)]
        np.testing.assert_allclose(
            output["data"],
            _expected(diabetes_model_dir, names, rows),
            atol=_tolerance(diabetes_model_dir),
        )


@pytest.mark.parametrize("output", ["probabilities", "label"])
def test_asking_a_regressor_for_class_outputs_is_a_400_that_says_why(
    regressor: FlaskClient, diabetes_rows: Any, output: str
) -> None:
    names, rows = diabetes_rows
    tensor = {"name": "x", "shape": [1, len(names)], "datatype": "FP64", "data": rows[:1]}
    body = {"inputs": [tensor], "outputs": [{"name": output}]}
    response = regressor.post(f"/v2/models/{DIABETES}/infer", json=body)
    assert response.status_code == 400
    assert response.get_json() == {
        "error": f"output(s) '{output}' are a classifier's: this model is a regressor and "
        "predicts a number, with no labels or class probabilities; ask for 'predict'"
    }
    response = regressor.post(
        f"/v2/models/{DIABETES}/infer", json={**body, "outputs": [{"name": "scores"}]}
    )
    assert response.status_code == 400
    assert response.get_json()["error"] == "unknown output(s) 'scores'; valid: predict"


def test_metrics_count_predicted_rows_without_class_labels(
    diabetes_model_dir: Path, diabetes_rows: Any
) -> None:
    client = create_app(Settings(model_dir=diabetes_model_dir)).test_client()
    _, rows = diabetes_rows
    assert client.post("/predict", json={"instances": rows}).status_code == 200
    assert client.post("/invocations", json={"instances": rows[:2]}).status_code == 200
    text = client.get("/metrics").get_data(as_text=True)
    assert "mlcontainer_predicted_rows_total 8.0" in text.splitlines()
    assert not [
        line for line in text.splitlines() if line.startswith("mlcontainer_predictions_total{")
    ]


def test_the_summary_and_page_show_a_number_not_classes(
    regressor: FlaskClient, diabetes_model_dir: Path
) -> None:
    summary = regressor.get("/", headers={"Accept": "application/json"}).get_json()
    assert summary["task"] == "regression"
    assert summary["classes"] == []
    page = regressor.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "Predicts a number: target" in page
    assert "confusion_matrix.png" not in page
    assert "<th>r2</th>" in page
    assert "<th>rmse</th>" in page
    missing = regressor.get("/confusion_matrix.png")
    assert missing.status_code == 404
    assert missing.is_json


# --- a real file: text columns, `?` markers ---------------------------------------------------


def _auto_rows(shared_datasets: Path, n: int = 5) -> tuple[list[str], list[list[str]]]:
    lines = (shared_datasets / "auto_imports.csv").read_text().splitlines()[:n]
    rows = [line.split(",")[:25] for line in lines]  # the price (column_26) left out
    return [f"column_{i}" for i in range(1, 26)], rows


def _json_value(cell: str) -> float | str:
    """A CSV cell as a JSON client sends it: numbers as numbers, text and `?` as strings."""
    try:
        return float(cell)
    except ValueError:
        return cell


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_a_regressor_on_a_headerless_file_reads_markers_and_text_through_both_runtimes(
    auto_imports_model_dir: Path, shared_datasets: Path, runtime: str
) -> None:
    names, rows = _auto_rows(shared_datasets)
    assert rows[0][1] == "?"  # normalised losses unknown for the first cars
    client = create_app(Settings(model_dir=auto_imports_model_dir, runtime=runtime)).test_client()
    csv = "\n".join(",".join(r) for r in rows) + "\n"  # headerless, as published
    by_csv = client.post("/invocations", data=csv, content_type="text/csv")
    assert by_csv.status_code == 200, by_csv.get_data(as_text=True)
    records = [{n: _json_value(v) for n, v in zip(names, r, strict=True)} for r in rows]
    assert records[0]["column_2"] == "?"  # the marker as the file writes it, in JSON too
    by_json = client.post("/predict", json={"instances": records})
    assert by_json.status_code == 200, by_json.get_data(as_text=True)
    by_json = by_json.get_json()
    assert by_json["predictions"] == by_csv.get_json()["predictions"]
    import pandas as pd

    frame = load_dataset(str(shared_datasets / "auto_imports.csv"), target="column_26").X.iloc[
        : len(rows)
    ]
    pipeline = skops.io.load(auto_imports_model_dir / "model.skops", trusted=sorted(TRUSTED_TYPES))
    expected = pipeline.predict(pd.DataFrame(frame))
    np.testing.assert_allclose(
        by_json["predictions"], expected, atol=_tolerance(auto_imports_model_dir)
    )
    # prices of these cars are $13,495-$17,450: the forest lands near them
    assert all(8_000 < v < 25_000 for v in by_json["predictions"])


def test_predict_cli_writes_a_prediction_column_and_a_predictions_list(
    auto_imports_model_dir: Path, shared_datasets: Path, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from mlcontainer.cli import main

    _, rows = _auto_rows(shared_datasets)
    data = tmp_path / "cars.csv"
    data.write_text("\n".join(",".join(r) for r in rows))  # no final newline, as published
    outputs = {}
    for runtime in RUNTIMES:
        for fmt in ("csv", "json"):
            args = ["predict", "--model", str(auto_imports_model_dir), "--input", str(data)]
            result = CliRunner().invoke(main, [*args, "--runtime", runtime, "--format", fmt])
            assert result.exit_code == 0, result.output
            outputs[runtime, fmt] = result.stdout
    for runtime in RUNTIMES:
        lines = outputs[runtime, "csv"].splitlines()
        assert lines[0] == "prediction"
        values = json.loads(outputs[runtime, "json"])["predictions"]
        assert len(lines) - 1 == len(values) == len(rows)
        assert [float(v) for v in lines[1:]] == pytest.approx(values, rel=1e-5)
    tolerance = _tolerance(auto_imports_model_dir)
    np.testing.assert_allclose(
        json.loads(outputs["onnx", "json"])["predictions"],
        json.loads(outputs["sklearn", "json"])["predictions"],
        atol=tolerance,
    )
