"""Output: predictions as CSV (label + one probability column per class) or JSON records."""

from __future__ import annotations

import json

import pytest

from mlcontainer.inference.output import write_predictions
from mlcontainer.inference.predictor import Predictor

IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


def test_csv_output_has_label_and_one_probability_column_per_class(
    iris_predictor: Predictor,
) -> None:
    out = write_predictions(iris_predictor.predict_records([IRIS_ROW]), "csv").decode()
    header, row, end = out.split("\n")
    assert header == "prediction,proba_setosa,proba_versicolor,proba_virginica"
    assert row.startswith("setosa,")
    assert end == ""


def test_json_output_is_one_record_per_row(iris_predictor: Predictor) -> None:
    out = json.loads(write_predictions(iris_predictor.predict_records([IRIS_ROW] * 2), "json"))
    assert len(out) == 2
    assert out[0]["prediction"] == "setosa"
    assert sum(out[0]["probabilities"].values()) == pytest.approx(1.0)
