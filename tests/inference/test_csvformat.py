"""csvformat renders probabilities exactly as Python's "{:.6g}" does, on whole arrays."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mlcontainer.inference.csvformat import csv_body, g6


def texts(matrix: np.ndarray) -> list[str]:
    return [row[row != 0].tobytes().decode() for row in matrix]


EDGES = [
    0.0,
    -0.0,
    1.0,
    1.0000001192092896,  # a float32 probability just above 1
    0.5,
    1e-4,
    9.99999e-5,
    9.999995e-5,  # rounds up across the fixed/scientific boundary
    0.9999995,  # rounds up to 1
    9.9999995,  # rounds up to 10
    0.1234565,
    0.12345650000000001,
    1e-100,
    1e-99,
    1.5e-7,
    1e-300,
    5e-324,  # subnormal
    float("nan"),
    float("inf"),
    -1.0,
    123456789.0,
]


def test_g6_matches_python_on_boundaries_and_specials() -> None:
    values = np.array(EDGES)
    assert texts(g6(values)) == [f"{v:.6g}" for v in EDGES]


@settings(max_examples=200)
@given(arrays(np.float64, st.integers(0, 50), elements=st.floats(0, 10)))
def test_g6_matches_python_on_probability_range(values: np.ndarray) -> None:
    assert texts(g6(values)) == [f"{v:.6g}" for v in values.tolist()]


@settings(max_examples=200)
@given(arrays(np.float64, st.integers(0, 50), elements=st.floats(allow_nan=True)))
def test_g6_matches_python_on_any_float(values: np.ndarray) -> None:
    assert texts(g6(values)) == [f"{v:.6g}" for v in values.tolist()]


def test_g6_matches_python_on_many_random_magnitudes() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.random(20_000), 10 ** rng.uniform(-310, 1, 20_000)])
    assert texts(g6(values)) == [f"{v:.6g}" for v in values.tolist()]


def test_csv_body_is_label_then_probabilities_per_row() -> None:
    proba = np.array([[0.2, 0.8], [0.5, 0.5], [1.0, 3e-9]])
    chosen = np.array([1, 0, 1])  # the decision's labels, not the most probable ones
    assert csv_body(["no", "yes"], proba, chosen) == b"yes,0.2,0.8\nno,0.5,0.5\nyes,1,3e-09\n"


def test_csv_body_of_no_rows_is_empty() -> None:
    assert csv_body(["a", "b"], np.zeros((0, 2)), np.zeros(0, dtype=np.int64)) == b""


def test_csv_body_matches_row_by_row_formatting() -> None:
    rng = np.random.default_rng(3)
    proba = rng.dirichlet([0.3, 0.3, 0.3], size=5_000)
    chosen = rng.integers(0, 3, size=5_000)
    classes = ["setosa", "versicolor", "virginica"]
    expected = "".join(
        "{},{:.6g},{:.6g},{:.6g}\n".format(classes[c], *row)
        for c, row in zip(chosen.tolist(), proba.tolist(), strict=True)
    )
    assert csv_body(classes, proba, chosen) == expected.encode()
