"""The ONNX runtime's numbers: a float32 graph's values shown with the digits float32 holds."""

from __future__ import annotations

import json

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcontainer.inference.onnx_runtime import float32_digits


@settings(max_examples=300, deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_values_print_with_the_seven_digits_float32_holds(value: float) -> None:
    (rounded,) = float32_digits(np.array([value], dtype=np.float32)).tolist()
    if not 1e-16 <= abs(value) < 1e29:  # no exact power of ten scales it: left as it is
        assert rounded == value
        return
    assert rounded == float(f"{value:.7g}")
    assert repr(rounded) == repr(float(f"{value:.7g}"))  # prints as that decimal, no noise
    assert abs(rounded - value) <= 5e-7 * abs(value)


def test_float32_digits_keeps_zero_and_non_finite_values() -> None:
    values = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 209.9008331298828], dtype=np.float32)
    out = float32_digits(values)
    assert out[:4].tolist() == [0.0, -0.0, np.inf, -np.inf]
    assert np.isnan(out[4])
    assert json.dumps(out[5:].tolist()) == "[209.9008]"
