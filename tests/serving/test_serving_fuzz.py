"""Fuzzing: thousands of generated requests, and not one 5xx or HTML error page."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlcontainer.serving.app import PROTOCOLS

pytestmark = pytest.mark.slow
#: 500 examples x 4 tests + 200 CSV bodies: about 2 200 requests, a minute or two.
FUZZ = settings(
    max_examples=500,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)
PENGUIN_FEATURES = [
    "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "year",
]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.floats(min_value=-1e308, max_value=1e308)
    | st.text(max_size=12)
    | st.sampled_from(["Biscoe", "Dream", "male", "female", "", " 1.5 ", "nan", "Infinity"])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
keys = st.sampled_from(PENGUIN_FEATURES) | st.text(max_size=8)
records = st.dictionaries(keys, scalars | json_values, max_size=9)
rows = st.lists(scalars | json_values, max_size=9)
instances = st.lists(records, max_size=4) | st.lists(rows, max_size=4) | json_values
API_PATHS = sorted(
    {r.rule.replace("<name>", "penguins-random_forest").replace("<version>", "v1")
     for table in PROTOCOLS.values() for r in table}
)  # fmt: skip


def assert_no_server_error(response: Any) -> None:
    assert response.status_code < 500, response.get_data(as_text=True)
    if response.status_code >= 400:
        body = response.get_json()
        assert isinstance(body, dict)
        assert "error" in body


@given(body=st.fixed_dictionaries({"instances": instances}) | json_values)
@FUZZ
def test_predict_never_answers_5xx(penguins_app: Flask, body: Any) -> None:
    response = penguins_app.test_client().post("/predict", json=body)
    assert_no_server_error(response)


@given(
    fmt=st.sampled_from(["dataframe_split", "dataframe_records", "instances", "inputs"]),
    payload=instances
    | st.fixed_dictionaries({"columns": st.lists(keys, max_size=8), "data": st.lists(rows)})
    | st.dictionaries(keys, st.lists(scalars, max_size=3), max_size=8),
    extra=st.dictionaries(st.sampled_from(["params", "inputs", "other"]), json_values, max_size=1),
)
@FUZZ
def test_invocations_never_answers_5xx(
    penguins_app: Flask, fmt: str, payload: Any, extra: Any
) -> None:
    response = penguins_app.test_client().post("/invocations", json={fmt: payload, **extra})
    assert_no_server_error(response)


csv_tables = st.lists(st.lists(scalars.map(str), max_size=8), max_size=4).map(
    lambda rs: ",".join(PENGUIN_FEATURES) + "\n" + "\n".join(",".join(r) for r in rs)
)


@given(text=st.text(max_size=200) | csv_tables)
@settings(FUZZ, max_examples=200)  # each CSV request goes through pandas.read_csv: slower
def test_invocations_csv_never_answers_5xx(penguins_app: Flask, text: str) -> None:
    response = penguins_app.test_client().post("/invocations", data=text, content_type="text/csv")
    assert_no_server_error(response)


tensor = st.fixed_dictionaries(
    {
        "name": keys,
        "shape": st.lists(st.integers(min_value=-2, max_value=4), max_size=3),
        "datatype": st.sampled_from(["FP64", "FP32", "INT64", "BOOL", "BYTES", "UINT8", "FP16"])
        | st.text(max_size=5),
        "data": st.lists(scalars | json_values, max_size=8),
    },
    optional={"parameters": st.dictionaries(st.sampled_from(["binary_data_size", "x"]), scalars)},
)


@given(
    body=st.fixed_dictionaries(
        {"inputs": st.lists(tensor, max_size=8)},
        optional={"outputs": st.lists(st.fixed_dictionaries({"name": st.text(max_size=14)}))},
    )
    | json_values,
    binary=st.none() | st.binary(max_size=64),
)
@FUZZ
def test_v2_infer_never_answers_5xx(penguins_app: Flask, body: Any, binary: bytes | None) -> None:
    header = json.dumps(body).encode()
    extra = {} if binary is None else {"Inference-Header-Content-Length": str(len(header))}
    response = penguins_app.test_client().post(
        "/v2/models/penguins-random_forest/infer",
        data=header + (binary or b""),
        headers=extra,
        content_type="application/json",
    )
    assert_no_server_error(response)


@given(
    path=st.sampled_from(API_PATHS)
    | st.from_regex(r"\A/[A-Za-z0-9._~%-][A-Za-z0-9._~%/<>-]{0,20}\Z"),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    content_type=st.sampled_from(
        ["application/json", "text/csv", "text/plain", "application/xml", ""]
    ),
    data=st.binary(max_size=100),
)
@FUZZ
def test_any_path_method_and_body_never_answers_5xx(
    penguins_app: Flask, path: str, method: str, content_type: str, data: bytes
) -> None:
    response = penguins_app.test_client().open(
        path,
        method=method,
        data=data,
        content_type=content_type,
        headers={"Accept": "application/json"},
    )
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.mimetype != "text/html" or path in ("/", "/report")
