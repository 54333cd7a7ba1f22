"""Output: predictions as CSV (label + one probability column per class) or JSON records."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest

from mlcontainer.core.artifacts import Decision
from mlcontainer.core.decision import decide
from mlcontainer.inference.output import write_predictions
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
@pytest.mark.parametrize("fmt", ["csv", "json"])
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
    out = write_predictions(prediction, fmt).decode()
    if fmt == "json":
        labels = [r["prediction"] for r in json.loads(out)]
    else:
        labels = [row[0] for row in list(csv.reader(io.StringIO(out)))[1:]]
    assert labels == [classes[1], classes[0], classes[1]]
