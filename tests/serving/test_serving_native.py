"""The native endpoints and every bad-input error, through Flask's test client."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from serving_support import IRIS_ROW

from mlcontainer.core.config import Settings
from mlcontainer.inference.predictor import Predictor
from mlcontainer.serving.app import create_app
from mlcontainer.serving.state import EXTENSION

IRIS_NAMES = list(IRIS_ROW)


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return dict(body["error"])


def post_json_text(client: FlaskClient, body: str) -> Any:
    return client.post("/predict", data=body, content_type="application/json")


def test_health_answers_the_labs_contract(client: FlaskClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200
    assert response.get_json() == {"status": "healthy"}


def test_ready_is_200_once_loaded_and_503_before(
    client: FlaskClient, iris_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert client.get("/ready").get_json() == {"status": "ready"}
    monkeypatch.setattr(iris_app.extensions[EXTENSION], "ready", False)
    assert error_of(client.get("/ready"), 503)["code"] == "not_ready"


def test_predict_records_returns_labels_probabilities_and_model(
    client: FlaskClient, iris_predictor: Predictor
) -> None:
    response = client.post("/predict", json={"instances": [IRIS_ROW, IRIS_ROW]})
    assert response.status_code == 200
    body = response.get_json()
    expected = iris_predictor.predict_records([IRIS_ROW])
    assert body["predictions"] == [expected.labels[0]] * 2
    assert list(body["probabilities"][0]) == ["setosa", "versicolor", "virginica"]
    assert body["probabilities"][0]["setosa"] == pytest.approx(expected.probabilities[0][0])
    assert sum(body["probabilities"][1].values()) == pytest.approx(1.0)
    manifest = iris_predictor.manifest.to_json()
    # The hash of the file actually served: the ONNX graph under the default runtime.
    assert body["model"] == {
        "name": manifest["name"],
        "sha256": manifest["files"]["model.onnx"]["sha256"],
    }


def test_predict_rows_in_schema_order_match_records(client: FlaskClient) -> None:
    by_rows = client.post("/predict", json={"instances": [list(IRIS_ROW.values())]}).get_json()
    by_records = client.post("/predict", json={"instances": [IRIS_ROW]}).get_json()
    assert by_rows == by_records


def test_predict_categorical_and_missing_values(penguins_client: FlaskClient) -> None:
    row = {
        "island": "Biscoe",
        "bill_length_mm": 47.5,
        "bill_depth_mm": 14.2,
        "flipper_length_mm": 215.0,
        "body_mass_g": None,
        "sex": None,
        "year": 2008,
    }
    response = penguins_client.post("/predict", json={"instances": [row]})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["predictions"] == ["Gentoo"]


def test_model_returns_the_manifest(client: FlaskClient, iris_model_dir: Path) -> None:
    manifest = json.loads((iris_model_dir / "model.json").read_text())
    assert client.get("/model").get_json() == manifest


def test_summary_has_the_typical_row_held_out_rows_and_the_top_features(
    penguins_client: FlaskClient, penguins_predictor: Predictor
) -> None:
    summary = penguins_client.get("/", headers={"Accept": "application/json"}).get_json()
    manifest = penguins_predictor.manifest
    assert manifest.examples is not None
    assert manifest.importance is not None
    names = list(penguins_predictor.schema.names)
    assert set(summary["examples"]["typical"]) == set(names)
    for row in summary["examples"]["held_out"]:
        assert set(row["values"]) == set(names)
        assert row["target"] in penguins_predictor.classes
    # The most important first, as the permutation importance ranked them.
    ranked = [c.column for c in manifest.importance.columns]
    assert summary["top_features"] == ranked[:5]


def test_the_form_starts_filled_and_a_folder_from_before_examples_starts_empty(
    client: FlaskClient, tmp_path: Path
) -> None:
    import shutil

    def form_of(c: FlaskClient) -> str:
        page = c.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
        return page.split('id="predict-form"', 1)[1].split("</form>", 1)[0]

    assert 'value="' in form_of(client)
    assert 'id="example-button"' in form_of(client)
    old = tmp_path / "old"
    shutil.copytree(Path(__file__).parents[1] / "fixtures" / "model-0.1.0-penguins", old)
    old_form = form_of(create_app(Settings(model_dir=old, runtime="sklearn")).test_client())
    assert "<input" in old_form
    assert 'value="' not in old_form.replace('<option value="', "")
    assert "example-button" not in old_form


def test_index_page_shows_model_and_one_field_per_feature(client: FlaskClient) -> None:
    response = client.get("/", headers={"Accept": "text/html"})
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    page = response.get_data(as_text=True)
    assert "iris-logistic_regression" in page
    assert 'src="/confusion_matrix.png"' in page
    for name in IRIS_NAMES:
        assert f'data-feature="{name}"' in page


def test_index_answers_json_summary_when_asked(client: FlaskClient) -> None:
    body = client.get("/", headers={"Accept": "application/json"}).get_json()
    assert body["name"] == "iris-logistic_regression"
    assert body["dataset"]["name"] == "iris"
    assert [f["name"] for f in body["features"]] == IRIS_NAMES
    assert body["classes"] == ["setosa", "versicolor", "virginica"]
    assert 0 < body["metrics"]["accuracy"] <= 1


def test_confusion_matrix_and_report_are_served(client: FlaskClient, iris_model_dir: Path) -> None:
    png = client.get("/confusion_matrix.png")
    assert png.mimetype == "image/png"
    assert png.data == (iris_model_dir / "confusion_matrix.png").read_bytes()
    report = client.get("/report")
    assert report.mimetype == "text/html"
    assert report.data == (iris_model_dir / "report.html").read_bytes()


def test_metrics_count_requests_predictions_and_model(client: FlaskClient) -> None:
    client.post("/predict", json={"instances": [IRIS_ROW] * 3})
    client.post("/predict", data="{", content_type="application/json")
    text = client.get("/metrics").get_data(as_text=True)
    assert 'mlcontainer_http_requests_total{endpoint="/predict",method="POST",status="200"}' in text
    assert 'mlcontainer_http_requests_total{endpoint="/predict",method="POST",status="400"}' in text
    assert 'mlcontainer_predictions_total{class="setosa"}' in text
    assert 'mlcontainer_http_request_duration_seconds_bucket{endpoint="/predict",le="0.1"}' in text
    assert 'mlcontainer_model_info{estimator="Logistic regression (L2, lbfgs)"' in text


def test_request_id_is_echoed_or_generated(client: FlaskClient) -> None:
    assert (
        client.get("/health", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"]
        == "abc-123"
    )
    generated = client.get("/health", headers={"X-Request-ID": "<script>"}).headers["X-Request-ID"]
    assert len(generated) == 32
    assert generated.isalnum()


# --- every bad input: a JSON error that names the problem, never HTML, never 500 -----------


def test_predict_rejects_invalid_json(client: FlaskClient) -> None:
    err = error_of(
        client.post("/predict", data='{"instances": [', content_type="application/json"), 400
    )
    assert err["code"] == "invalid_json"
    assert "line 1 column" in err["message"]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_predict_rejects_nan_and_infinity_literals(client: FlaskClient, literal: str) -> None:
    err = error_of(post_json_text(client, f'{{"instances": [[{literal}, 3.5, 1.4, 0.2]]}}'), 400)
    assert literal in err["message"]
    assert "null" in err["message"]


def test_predict_rejects_number_that_overflows_to_infinity(client: FlaskClient) -> None:
    err = error_of(post_json_text(client, '{"instances": [[1e999, 3.5, 1.4, 0.2]]}'), 422)
    assert err["details"][0]["column"] == "sepal length (cm)"
    assert "finite" in err["message"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
def test_predict_rejects_wrong_content_type(client: FlaskClient, content_type: str) -> None:
    data = json.dumps({"instances": [IRIS_ROW]})
    err = error_of(client.post("/predict", data=data, content_type=content_type), 415)
    assert err["code"] == "unsupported_media_type"
    assert "application/json" in err["message"]


def test_predict_rejects_missing_feature(client: FlaskClient) -> None:
    row = {k: v for k, v in IRIS_ROW.items() if k != "petal width (cm)"}
    err = error_of(client.post("/predict", json={"instances": [row]}), 422)
    assert "petal width (cm)" in err["message"]
    assert err["details"][0]["column"] == "petal width (cm)"


def test_predict_rejects_unknown_column(client: FlaskClient) -> None:
    err = error_of(client.post("/predict", json={"instances": [{**IRIS_ROW, "colour": 1}]}), 422)
    assert "'colour'" in err["message"]
    assert "sepal length (cm)" in err["message"]  # says what would be valid
    assert err["details"] == [
        {"row": None, "column": "colour", "reason": "unknown_feature", "message": "unknown feature"}
    ]


def test_predict_rejects_wrong_type_naming_row_and_column(client: FlaskClient) -> None:
    rows = [IRIS_ROW, {**IRIS_ROW, "sepal width (cm)": "wide"}]
    err = error_of(client.post("/predict", json={"instances": rows}), 422)
    assert err["details"][0] == {
        "row": 1,
        "column": "sepal width (cm)",
        "reason": "wrong_type",
        "message": "expected a number, got 'wide'",
    }


def test_predict_rejects_wrong_row_length(client: FlaskClient) -> None:
    err = error_of(client.post("/predict", json={"instances": [[5.1, 3.5, 1.4]]}), 422)
    assert "expected 4 values in schema order, got 3" in err["message"]


def test_predict_rejects_empty_batch(client: FlaskClient) -> None:
    err = error_of(client.post("/predict", json={"instances": []}), 422)
    assert "instances" in err["message"]


def test_predict_rejects_batch_over_the_row_limit(client: FlaskClient) -> None:
    err = error_of(client.post("/predict", json={"instances": [IRIS_ROW] * 51}), 413)
    assert err["code"] == "batch_too_large"
    assert "51 rows" in err["message"]
    assert "at most 50" in err["message"]


def test_predict_rejects_body_over_the_size_limit(
    iris_model_dir: Path, iris_predictor: Predictor
) -> None:
    app = create_app(
        Settings(model_dir=iris_model_dir, max_body_bytes=2000), predictor=iris_predictor
    )
    data = json.dumps({"instances": [IRIS_ROW] * 40})
    err = error_of(
        app.test_client().post("/predict", data=data, content_type="application/json"), 413
    )
    assert err["code"] == "payload_too_large"
    assert "2000 bytes" in err["message"]


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"rows": [IRIS_ROW]}, "instances"),
        ({"instances": [IRIS_ROW], "extra": 1}, "extra"),
        ({"instances": IRIS_ROW}, "instances"),
        ([IRIS_ROW], ""),
        ({"instances": [[{"nested": 1}, 1, 2, 3]]}, "instances"),
    ],
)
def test_predict_rejects_wrong_request_shape(client: FlaskClient, body: Any, where: str) -> None:
    err = error_of(client.post("/predict", json=body), 422)
    assert err["code"] == "invalid_request"
    assert where in err["message"]


def test_unknown_path_is_json_404(client: FlaskClient) -> None:
    err = error_of(client.get("/predictions"), 404)
    assert "/predictions" in err["message"]


def test_wrong_method_is_json_405_with_allow(client: FlaskClient) -> None:
    response = client.get("/predict")
    err = error_of(response, 405)
    assert "use POST" in err["message"]
    assert "POST" in response.headers["Allow"]


def test_unexpected_failure_is_json_500_without_internals(
    client: FlaskClient, iris_app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_: Any, **__: Any) -> None:
        raise RuntimeError("secret internal detail")

    state = iris_app.extensions[EXTENSION]
    monkeypatch.setattr(state.predictor, "predict", explode)
    monkeypatch.setattr(iris_app.logger, "disabled", True)
    err = error_of(client.post("/predict", json={"instances": [IRIS_ROW]}), 500)
    assert err == {"code": "internal_error", "message": "internal server error", "details": []}


def test_create_app_refuses_a_missing_model(tmp_path: Path) -> None:
    from mlcontainer.core.errors import ArtifactError

    with pytest.raises(ArtifactError, match="no model folder"):
        create_app(Settings(model_dir=tmp_path / "absent"))
