"""Prediction: rows are validated against the saved schema, then labelled with probabilities."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcontainer.core.errors import InputValidationError
from mlcontainer.inference.predictor import Predictor, load_predictor
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.workflow import run_training

IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}
PENGUIN_ROW = {
    "island": "Biscoe",
    "bill_length_mm": 48.0,
    "bill_depth_mm": 15.0,
    "flipper_length_mm": 220.0,
    "body_mass_g": 5200.0,
    "sex": "male",
    "year": 2008,
}


@pytest.fixture(scope="module")
def naive_bayes_predictor(tmp_path_factory: pytest.TempPathFactory) -> Predictor:
    """Gaussian naive Bayes on iris: its probabilities overflow to NaN on extreme inputs."""
    output = tmp_path_factory.mktemp("nb") / "artifacts"
    run_training(TrainOptions(dataset="iris", models=("naive_bayes",), cv=2, output=output))
    return load_predictor(output, "sklearn")


def test_predict_records_returns_a_label_and_one_probability_per_class(
    iris_predictor: Predictor,
) -> None:
    result = iris_predictor.predict_records([IRIS_ROW, {**IRIS_ROW, "petal length (cm)": 6.0}])
    assert result.classes == ("setosa", "versicolor", "virginica")
    assert result.labels[0] == "setosa"
    assert set(result.labels) <= set(result.classes)
    assert result.probabilities.shape == (2, 3)
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0)
    assert result.warnings == []
    record = result.records()[0]
    assert record["prediction"] == "setosa"
    assert set(record["probabilities"]) == {"setosa", "versicolor", "virginica"}


def test_predict_rejects_a_missing_column_and_names_it(iris_predictor: Predictor) -> None:
    row = {k: v for k, v in IRIS_ROW.items() if k != "petal width (cm)"}
    with pytest.raises(InputValidationError, match=r"missing feature\(s\) 'petal width \(cm\)'"):
        iris_predictor.predict_records([row])


def test_predict_rejects_a_row_missing_a_column_the_others_have(
    iris_predictor: Predictor,
) -> None:
    partial = {k: v for k, v in IRIS_ROW.items() if k != "sepal width (cm)"}
    with pytest.raises(InputValidationError, match=r"column 'sepal width \(cm\)', row 1"):
        iris_predictor.predict_records([IRIS_ROW, partial])


def test_predict_ignores_an_extra_column_with_a_warning(iris_predictor: Predictor) -> None:
    result = iris_predictor.predict_records([{**IRIS_ROW, "colour": "blue"}])
    assert result.labels == ["setosa"]
    assert result.warnings == ["ignored unknown column(s) 'colour'"]


def test_predict_rejects_a_wrong_type_naming_column_and_row(iris_predictor: Predictor) -> None:
    rows = [IRIS_ROW, {**IRIS_ROW, "sepal width (cm)": "wide"}]
    with pytest.raises(InputValidationError) as info:
        iris_predictor.predict_records(rows)
    assert "column 'sepal width (cm)', row 1" in info.value.message
    assert "expected a number, got 'wide'" in info.value.message
    assert info.value.details == [
        {
            "row": 1,
            "column": "sepal width (cm)",
            "reason": "wrong_type",
            "message": "expected a number, got 'wide'",
        }
    ]


def test_predict_reports_every_bad_value_in_details(iris_predictor: Predictor) -> None:
    rows = [{**IRIS_ROW, "sepal width (cm)": "x", "petal width (cm)": True}] * 3
    with pytest.raises(InputValidationError, match=r"and 5 more problem"):
        iris_predictor.predict_records(rows)


def test_predict_rejects_infinity(iris_predictor: Predictor) -> None:
    with pytest.raises(InputValidationError, match="finite number, got infinity"):
        iris_predictor.predict_records([{**IRIS_ROW, "sepal width (cm)": float("inf")}])


@pytest.mark.parametrize("value", [10**400, -(10**5000)], ids=["beyond-float", "beyond-str-limit"])
def test_predict_rejects_an_integer_beyond_float_range(
    iris_predictor: Predictor, penguins_predictor: Predictor, value: int
) -> None:
    with pytest.raises(
        InputValidationError, match=r"'sepal width \(cm\)', row 0: expected a finite"
    ):
        iris_predictor.predict_records([{**IRIS_ROW, "sepal width (cm)": value}])
    with pytest.raises(
        InputValidationError, match=r"'island', row 0: expected a string, got an int"
    ):
        penguins_predictor.predict_records([{**PENGUIN_ROW, "island": value}])


@pytest.mark.parametrize("predictor_name", ["iris_predictor", "naive_bayes_predictor"])
def test_predict_refuses_extreme_values_the_model_cannot_score(
    predictor_name: str, request: pytest.FixtureRequest
) -> None:
    predictor: Predictor = request.getfixturevalue(predictor_name)
    rows = [IRIS_ROW, {**IRIS_ROW, "petal length (cm)": 1e308, "sepal width (cm)": -1e308}]
    with pytest.raises(InputValidationError, match=r"cannot score"):
        predictor.predict_records(rows)


def test_predict_rejects_an_empty_batch(iris_predictor: Predictor) -> None:
    with pytest.raises(InputValidationError, match="batch is empty"):
        iris_predictor.predict_records([])
    with pytest.raises(InputValidationError, match="batch is empty"):
        iris_predictor.predict_rows([])


def test_predict_rejects_a_record_that_is_not_an_object(iris_predictor: Predictor) -> None:
    with pytest.raises(InputValidationError, match=r"row 1: expected an object"):
        iris_predictor.predict_records([IRIS_ROW, [1, 2, 3, 4]])  # type: ignore[list-item]


def test_predict_rows_takes_values_in_schema_order(iris_predictor: Predictor) -> None:
    by_name = iris_predictor.predict_records([IRIS_ROW])
    by_position = iris_predictor.predict_rows([list(IRIS_ROW.values())])
    assert by_position.labels == by_name.labels
    np.testing.assert_array_equal(by_position.probabilities, by_name.probabilities)


def test_predict_rows_rejects_a_row_of_the_wrong_width(iris_predictor: Predictor) -> None:
    with pytest.raises(InputValidationError, match=r"row 0: expected 4 values in schema order"):
        iris_predictor.predict_rows([[1.0, 2.0]])


def test_penguins_accepts_missing_values_and_unseen_categories(
    penguins_predictor: Predictor,
) -> None:
    rows = [
        PENGUIN_ROW,
        {**PENGUIN_ROW, "sex": None, "bill_depth_mm": None},
        {**PENGUIN_ROW, "island": "Atlantis"},
    ]
    result = penguins_predictor.predict_records(rows)
    assert set(result.labels) <= {"Adelie", "Chinstrap", "Gentoo"}
    np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0)


def test_penguins_rejects_a_number_for_a_text_column_only_when_not_integral(
    penguins_predictor: Predictor,
) -> None:
    with pytest.raises(InputValidationError, match=r"column 'island', row 0: expected a string"):
        penguins_predictor.predict_records([{**PENGUIN_ROW, "island": 1.5}])


# --- Property: whatever JSON a client sends, validation fails only with InputValidationError ---

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**1000), max_value=10**1000)  # json reads any size
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10)
)
_json_values = st.recursive(
    _json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


def _record_strategy(names: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional=dict.fromkeys(names, _json_values)).map(dict) | (
        st.fixed_dictionaries(dict.fromkeys(names, _json_values))
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_predict_records_raises_only_input_validation_errors(
    penguins_predictor: Predictor, data: st.DataObject
) -> None:
    names = penguins_predictor.schema.names
    records = data.draw(st.lists(_record_strategy(names) | _json_values, max_size=4))
    try:
        result = penguins_predictor.predict_records(records)
    except InputValidationError as exc:
        assert exc.message  # noqa: PT017 - any other exception fails the property
    else:
        assert len(result.labels) == len(records)
        assert np.all(np.isfinite(result.probabilities))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(_json_values, min_size=7, max_size=7) | _json_values, max_size=4))
def test_predict_rows_raises_only_input_validation_errors(
    penguins_predictor: Predictor, rows: list[Any]
) -> None:
    try:
        result = penguins_predictor.predict_rows(rows)
    except InputValidationError as exc:
        assert exc.message  # noqa: PT017 - any other exception fails the property
    else:
        assert len(result.labels) == len(rows)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cells=st.lists(st.lists(st.text(max_size=8), min_size=7, max_size=7), max_size=4))
def test_csv_text_cells_raise_only_input_validation_errors(
    penguins_predictor: Predictor, cells: list[list[str]]
) -> None:
    try:
        result = penguins_predictor.predict_text(penguins_predictor.schema.names, cells)
    except InputValidationError as exc:
        assert exc.message  # noqa: PT017 - any other exception fails the property
    else:
        assert len(result.labels) == len(cells)
