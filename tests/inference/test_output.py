"""Output: predictions as CSV (label + one probability column per class) or JSON records."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from mlcontainer.core.artifacts import Decision
from mlcontainer.core.decision import decide
from mlcontainer.inference.output import prediction_table, write_predictions
from mlcontainer.inference.predictor import Predictor
from mlcontainer.inference.types import Prediction

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


@pytest.mark.parametrize(
    "classes", [("no", "yes"), ("no, thanks", 'yes "x"')], ids=["array-rendered", "csv-module"]
)
@pytest.mark.parametrize("fmt", ["csv", "json", "parquet"])
def test_every_rendering_writes_the_decided_label_not_the_most_probable(
    classes: tuple[str, str], fmt: str
) -> None:
    decision = Decision(positive_class=classes[1], threshold=0.3, metric="f1_macro")
    decided = decide(np.array([[0.6, 0.4], [0.8, 0.2], [0.1, 0.9]]), classes, decision)
    prediction = Prediction(
        labels=decided.labels.tolist(),
        probabilities=decided.probabilities,
        classes=classes,
        positions=decided.positions,
    )
    if fmt == "parquet":
        assert prediction_table(prediction).column("prediction").to_pylist() == [
            classes[1],
            classes[0],
            classes[1],
        ]
        return
    out = write_predictions(prediction, fmt).decode()
    if fmt == "json":
        labels = [r["prediction"] for r in json.loads(out)]
    else:
        labels = [row[0] for row in list(csv.reader(io.StringIO(out)))[1:]]
    assert labels == [classes[1], classes[0], classes[1]]


def test_parquet_output_types_whole_number_labels_as_integers() -> None:
    decided = decide(np.array([[0.7, 0.3], [0.2, 0.8]]), (0, 1), None)
    table = prediction_table(
        Prediction(
            labels=decided.labels.tolist(),
            probabilities=decided.probabilities,
            classes=(0, 1),
            positions=decided.positions,
        )
    )
    assert str(table.schema.field("prediction").type) == "int64"
    assert table.column_names == ["prediction", "proba_0", "proba_1"]
    assert table.to_pydict() == {"prediction": [0, 1], "proba_0": [0.7, 0.2], "proba_1": [0.3, 0.8]}


def test_parquet_output_of_a_regressor_is_one_float_column() -> None:
    prediction = Prediction(
        labels=[1.5, -2.25], probabilities=np.empty((2, 0)), classes=(), task="regression"
    )
    table = prediction_table(prediction)
    assert table.to_pydict() == {"prediction": [1.5, -2.25]}
    assert str(table.schema.field("prediction").type) == "double"
