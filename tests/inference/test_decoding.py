"""Decoding: CSV text tables become typed columns per the schema, or one clear error."""

from __future__ import annotations

import numpy as np
import pytest

from mlcontainer.core.errors import InputValidationError
from mlcontainer.inference import decoding
from mlcontainer.inference.csvreader import read_csv_text
from mlcontainer.inference.predictor import Predictor
from mlcontainer.inference.types import Decoded

IRIS_HEADER = "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)"


def _csv(text: str, predictor: Predictor) -> Decoded:
    """Decode CSV text as `/invocations` and `predict` do: read it, then validate it."""
    chunk = read_csv_text(text.encode())
    return decoding.from_text(predictor.schema, chunk.names, chunk.rows, lines=chunk.lines)


def test_csv_input_is_parsed_per_schema(penguins_predictor: Predictor) -> None:
    text = (
        "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n"
        "Biscoe,48.0,,220,5200,,2008\n"
        " Dream , 39.5 ,17.4,186,3800,female,2007\n"
    )
    decoded = _csv(text, penguins_predictor)
    assert decoded.warnings == []
    assert np.isnan(decoded.columns["bill_depth_mm"]).tolist() == [True, False]
    assert decoded.columns["island"].tolist() == ["Biscoe", "Dream"]
    assert decoded.columns["bill_length_mm"].tolist() == [48.0, 39.5]


def test_csv_input_with_a_bad_number_names_column_and_row(penguins_predictor: Predictor) -> None:
    text = (
        "island,bill_length_mm,bill_depth_mm,flipper_length_mm,body_mass_g,sex,year\n"
        "Biscoe,48.0,15,220,5200,male,2008\n"
        "Biscoe,48.0,15,220,heavy,male,2008\n"
    )
    with pytest.raises(
        InputValidationError, match=r"column 'body_mass_g', line 3: expected a number, got 'heavy'"
    ):
        _csv(text, penguins_predictor)


def test_empty_csv_input_is_refused(iris_predictor: Predictor) -> None:
    with pytest.raises(InputValidationError, match="the input is empty"):
        _csv("", iris_predictor)


def test_header_only_csv_input_is_refused(iris_predictor: Predictor) -> None:
    with pytest.raises(InputValidationError, match="batch is empty"):
        _csv(IRIS_HEADER + "\n", iris_predictor)
