"""ONNX export: every candidate converts and agrees with scikit-learn, or falls back saying why."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline
from sklearn.semi_supervised import LabelSpreading
from support import BUILTIN_TASKS, candidate_pairs

from mlcontainer.core.decision import decide
from mlcontainer.core.labels import label_array
from mlcontainer.core.schema import Feature, Schema
from mlcontainer.core.threads import one_native_thread
from mlcontainer.training.data.dataset import Dataset, load_dataset
from mlcontainer.training.data.sources import BUILTIN_DATASETS
from mlcontainer.training.export import onnx_export
from mlcontainer.training.export.onnx_export import (
    RELATIVE_TOLERANCE,
    TOLERANCE,
    export_onnx,
    feeds,
)
from mlcontainer.training.search.models import (
    BASELINE,
    MAX_CATEGORIES,
    MIN_FREQUENCY,
    MISSING_CATEGORY,
    MODELS,
    build_pipeline,
    build_preprocessor,
)
from mlcontainer.training.search.split import Split, split_dataset

#: Gaussian naive Bayes on digits: near-zero pixel variances make the joint log-likelihoods
#: huge, and float32 arithmetic in the graph moves probabilities by ~1e-2: a fallback case.
MAY_FALL_BACK = {("naive_bayes", "digits")}
#: Fitting and converting these takes seconds (hundreds of trees).
SLOW_MODELS = {"random_forest", "extra_trees", "hist_gradient_boosting"}


@pytest.fixture(scope="module")
def splits() -> dict[str, tuple[Dataset, Split]]:
    out = {}
    for name in BUILTIN_DATASETS:
        ds = load_dataset(name)
        out[name] = (ds, split_dataset(ds, test_size=0.2, cv=3, random_state=0))
    return out


def _fitted(model: str, ds: Dataset, split: Split) -> Pipeline:
    scale = float(np.std(split.y_train)) if ds.schema.is_regression else 1.0
    pipeline = build_pipeline(model, ds.schema, random_state=0, target_scale=scale)
    y = (
        split.y_train.to_numpy(dtype=float)
        if ds.schema.is_regression
        else label_array(split.y_train)
    )
    with one_native_thread():  # HistGradientBoosting's OpenMP threads spin on a busy machine
        pipeline.fit(split.X_train, y)
    return pipeline


def _session(model_bytes: bytes) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])


def _matrix(task: str = "classification") -> list[Any]:
    return [
        pytest.param(model, dataset, marks=[pytest.mark.slow] if model in SLOW_MODELS else [])
        for model, dataset in candidate_pairs(baseline=False)
        if BUILTIN_TASKS[dataset] == task
    ]


@pytest.mark.parametrize(("model", "dataset"), _matrix())
def test_every_candidate_on_every_builtin_converts_and_agrees(
    model: str, dataset: str, splits: dict[str, tuple[Dataset, Split]]
) -> None:
    ds, split = splits[dataset]
    pipeline = _fitted(model, ds, split)
    exported = export_onnx(pipeline, ds.schema, split.X_test)
    if (model, dataset) in MAY_FALL_BACK and exported.reason is not None:
        assert exported.model_bytes is None
        assert re.fullmatch(r"ONNX probabilities differ .* on \d+ test rows", exported.reason)
        return
    assert exported.reason is None
    assert exported.model_bytes is not None
    section = exported.runtime_section.model_dump(mode="json")
    assert section["default"] == "onnx"
    check = section["onnx"]["verification"]
    assert check["rows"] == len(split.X_test)
    assert check["labels_equal"] is True
    assert check["label_mismatches"] == 0
    assert 0 <= check["max_abs_probability_diff"] <= TOLERANCE
    # Independently of the verification: the graph's own probabilities give sklearn's labels.
    (proba,) = _session(exported.model_bytes).run(
        ["probabilities"], feeds(section["onnx"]["inputs"], split.X_test)
    )
    with one_native_thread():
        expected = pipeline.predict_proba(split.X_test)
    np.testing.assert_allclose(proba, expected, atol=TOLERANCE)
    classes = list(ds.schema.classes)
    assert (decide(proba, classes, None).labels == decide(expected, classes, None).labels).all()


@pytest.mark.parametrize(
    "model",
    [
        pytest.param(m, marks=[pytest.mark.slow] if m in SLOW_MODELS else [])
        for m, spec in MODELS.items()
        if "regression" in spec.tasks and m != BASELINE
    ],
)
@pytest.mark.parametrize("dataset", ["diabetes", "auto_imports"])
def test_every_regressor_converts_and_agrees_within_the_targets_spread(
    model: str, dataset: str, splits: dict[str, tuple[Dataset, Split]], shared_datasets: Path
) -> None:
    if dataset == "auto_imports":  # headerless, `?` markers, text columns, a price in dollars
        ds = load_dataset(str(shared_datasets / "auto_imports.csv"), target="column_26")
        split = split_dataset(ds, test_size=0.2, cv=3, random_state=0)
    else:
        ds, split = splits[dataset]
    assert ds.schema.is_regression
    pipeline = _fitted(model, ds, split)
    spread = float(np.std(split.y_train))
    exported = export_onnx(pipeline, ds.schema, split.X_test, target_scale=spread)
    # Gradient boosting on diabetes included: values there differ only past float32's
    # precision (0.06345271983825305 against a threshold of 0.06345271983825301), which the
    # double graph tells apart as scikit-learn does.
    assert exported.reason is None, exported.reason
    assert exported.model_bytes is not None
    section = exported.runtime_section.model_dump(mode="json")
    check = section["onnx"]["verification"]
    assert check["relative_tolerance"] == RELATIVE_TOLERANCE
    assert check["tolerance"] == pytest.approx(RELATIVE_TOLERANCE * spread, rel=1e-5)
    assert 0 <= check["max_abs_value_diff"] <= check["tolerance"]
    assert section["onnx"]["value_output"] == "variable"
    assert section["onnx"]["probabilities_output"] is None
    (values,) = _session(exported.model_bytes).run(
        ["variable"], feeds(section["onnx"]["inputs"], split.X_test)
    )
    with one_native_thread():
        expected = pipeline.predict(split.X_test)
    np.testing.assert_allclose(values.ravel(), expected, atol=RELATIVE_TOLERANCE * spread)


@pytest.mark.parametrize("dataset", ["iris", "diabetes"])
def test_the_baseline_has_no_onnx_converter_and_falls_back_saying_so(
    dataset: str, splits: dict[str, tuple[Dataset, Split]]
) -> None:
    ds, split = splits[dataset]
    exported = export_onnx(_fitted(BASELINE, ds, split), ds.schema, split.X_test)
    assert exported.model_bytes is None
    assert exported.reason is not None
    assert exported.reason.startswith("skl2onnx cannot convert Dummy")


def test_runtime_section_describes_inputs_outputs_and_versions(
    splits: dict[str, tuple[Dataset, Split]],
) -> None:
    ds, split = splits["penguins"]
    section = export_onnx(_fitted("naive_bayes", ds, split), ds.schema, split.X_test)
    runtime = section.runtime_section.model_dump(mode="json")
    json.dumps(runtime, allow_nan=False)  # goes into model.json as it is
    onnx = runtime["onnx"]
    assert runtime["reason"] is None
    assert onnx["file"] == "model.onnx"
    assert [i["column"] for i in onnx["inputs"]] == ds.schema.names
    kinds = {f.name: f.kind for f in ds.schema.features}
    for spec in onnx["inputs"]:
        assert spec["type"] == ("string" if kinds[spec["column"]] == "categorical" else "float")
    assert onnx["label_output"] == "label"
    assert onnx["probabilities_output"] == "probabilities"
    assert onnx["missing_category"] == MISSING_CATEGORY
    assert onnx["opset"] == {"": 17, "ai.onnx.ml": 3}
    assert set(onnx["versions"]) == {"skl2onnx", "onnx", "onnxruntime"}
    session = _session(section.model_bytes or b"")
    assert [i.name for i in session.get_inputs()] == [i["name"] for i in onnx["inputs"]]
    assert [o.name for o in session.get_outputs()] == ["label", "probabilities"]
    assert session.get_outputs()[1].shape[1] == len(ds.schema.classes)


def test_input_names_that_are_not_identifiers_are_sanitised_and_mapped(
    splits: dict[str, tuple[Dataset, Split]],
) -> None:
    ds, split = splits["iris"]  # columns like "sepal length (cm)"
    exported = export_onnx(_fitted("logistic_regression", ds, split), ds.schema, split.X_test)
    inputs = exported.runtime_section.model_dump(mode="json")["onnx"]["inputs"]
    assert inputs[0]["column"] == "sepal length (cm)"
    assert inputs[0]["name"].isidentifier()


@pytest.mark.parametrize("model", ["logistic_regression", "decision_tree", "k_nearest_neighbors"])
def test_missing_and_unseen_values_agree_with_sklearn(
    model: str, splits: dict[str, tuple[Dataset, Split]]
) -> None:
    ds, split = splits["penguins"]
    pipeline = _fitted(model, ds, split)
    exported = export_onnx(pipeline, ds.schema, split.X_test)
    assert exported.model_bytes is not None
    rows = split.X_test.head(6).copy()
    rows.loc[rows.index[0], "island"] = np.nan  # missing category
    rows.loc[rows.index[1], "island"] = "Atlantis"  # never seen in training
    rows.loc[rows.index[2], "sex"] = np.nan
    rows.loc[rows.index[3], "bill_length_mm"] = np.nan  # missing number
    rows.loc[rows.index[4], ["island", "sex", "body_mass_g"]] = [np.nan, "unknown", np.nan]
    (proba,) = _session(exported.model_bytes).run(
        ["probabilities"],
        feeds(exported.runtime_section.model_dump(mode="json")["onnx"]["inputs"], rows),
    )
    np.testing.assert_allclose(proba, pipeline.predict_proba(rows), atol=TOLERANCE)


def test_rare_many_and_unseen_categories_are_encoded_as_sklearn_does() -> None:
    # "shade": frequent values, rare ones (the infrequent column) and unseen ones at predict time.
    # "code": more distinct values than MAX_CATEGORIES, so the rarest share one column.
    # "flag": every value frequent, so an unseen value encodes as all zeros.
    rng = np.random.default_rng(0)
    n = 400
    shade = rng.choice(["red", "green", "blue"], n).astype(object)
    shade[: 3 * (MIN_FREQUENCY - 1)] = ["teal", "plum", "sand"] * (MIN_FREQUENCY - 1)
    code = np.array([f"c{v}" for v in rng.integers(0, MAX_CATEGORIES + 20, n)], dtype=object)
    flag = rng.choice(["yes", "no"], n).astype(object)
    X = pd.DataFrame({"shade": shade, "code": code, "flag": flag, "x": rng.normal(size=n)})
    X.loc[rng.choice(n, 30, replace=False), "shade"] = np.nan
    y = np.where((X["shade"] == "red") | (X["x"] > 0.5), "a", "b").astype(object)
    schema = Schema(
        features=(
            Feature("shade", "categorical"),
            Feature("code", "categorical"),
            Feature("flag", "categorical"),
            Feature("x", "numeric"),
        ),
        target="y",
        classes=("a", "b"),
    )
    pipeline = build_pipeline("logistic_regression", schema, random_state=0)
    pipeline.fit(X, y)
    encoder = pipeline.named_steps["preprocess"].named_transformers_["categorical"]["onehot"]
    assert encoder.infrequent_categories_[0] is not None  # the case under test exists
    exported = export_onnx(pipeline, schema, X.iloc[:50])
    assert exported.model_bytes is not None
    rows = pd.DataFrame(
        {
            "shade": ["red", "teal", "violet", np.nan, "plum", "", "__missing__"],
            "code": ["c0", f"c{MAX_CATEGORIES + 19}", "c999", "c1", np.nan, "c2", "c3"],
            "flag": ["yes", "no", "maybe", np.nan, "yes", "no", "yes"],
            "x": [0.0, 1.0, -1.0, np.nan, 0.3, 0.6, -0.2],
        }
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # sklearn: "found unknown categories"
        expected = pipeline.predict_proba(rows)
    (proba,) = _session(exported.model_bytes).run(
        ["probabilities"],
        feeds(exported.runtime_section.model_dump(mode="json")["onnx"]["inputs"], rows),
    )
    np.testing.assert_allclose(proba, expected, atol=TOLERANCE)


def test_export_leaves_the_trained_pipeline_unchanged(
    splits: dict[str, tuple[Dataset, Split]],
) -> None:
    ds, split = splits["penguins"]
    pipeline = _fitted("logistic_regression", ds, split)
    before = pipeline.predict_proba(split.X_test)
    export_onnx(pipeline, ds.schema, split.X_test)
    imputer = pipeline.named_steps["preprocess"].named_transformers_["categorical"]["impute"]
    assert isinstance(imputer.missing_values, float)
    assert np.isnan(imputer.missing_values)
    rows = split.X_test.copy()
    rows["island"] = np.nan
    assert (pipeline.predict_proba(rows) >= 0).all()  # NaN still means missing to sklearn
    np.testing.assert_array_equal(pipeline.predict_proba(split.X_test), before)


def test_an_unconvertible_model_falls_back_with_a_one_line_reason() -> None:
    ds = load_dataset("iris")
    pipeline = Pipeline(
        [("preprocess", build_preprocessor(ds.schema, scale=True)), ("model", LabelSpreading())]
    )
    pipeline.fit(ds.X, label_array(ds.y))
    exported = export_onnx(pipeline, ds.schema, ds.X.iloc[:30])
    assert exported.model_bytes is None
    assert exported.runtime_section.model_dump(mode="json") == {
        "default": "sklearn",
        "reason": exported.reason,
        "onnx": None,
    }
    assert exported.reason is not None
    assert exported.reason.startswith("skl2onnx cannot convert LabelSpreading: ")
    assert "\n" not in exported.reason


def test_a_graph_that_disagrees_falls_back(
    splits: dict[str, tuple[Dataset, Split]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ds, split = splits["wine"]
    pipeline = _fitted("logistic_regression", ds, split)
    # The graph of another model (trained on shuffled labels) stands in for a wrong conversion.
    shuffled = build_pipeline("logistic_regression", ds.schema, random_state=0)
    labels = label_array(split.y_train)
    shuffled.fit(split.X_train, np.random.default_rng(0).permutation(labels))
    wrong = onnx_export._convert(shuffled, ds.schema)
    monkeypatch.setattr(onnx_export, "_convert", lambda _pipeline, _schema: wrong)
    exported = export_onnx(pipeline, ds.schema, split.X_test)
    assert exported.model_bytes is None
    assert exported.runtime_section.model_dump(mode="json")["default"] == "sklearn"
    assert exported.reason is not None
    assert exported.reason.startswith("ONNX disagrees with scikit-learn on ")
    assert exported.reason.endswith(f" of {len(split.X_test)} test rows")


def test_probabilities_beyond_the_tolerance_fall_back(
    splits: dict[str, tuple[Dataset, Split]],
) -> None:
    ds, split = splits["wine"]
    pipeline = _fitted("logistic_regression", ds, split)  # float32 graph: |Δp| ~ 1e-7, not 0
    exported = export_onnx(pipeline, ds.schema, split.X_test, tolerance=1e-12)
    assert exported.model_bytes is None
    assert exported.reason is not None
    assert "probabilities differ from scikit-learn's by up to" in exported.reason
    assert "tolerance 1e-12" in exported.reason


def test_a_graph_onnxruntime_cannot_load_falls_back(
    splits: dict[str, tuple[Dataset, Split]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ds, split = splits["iris"]
    pipeline = _fitted("naive_bayes", ds, split)
    inputs = onnx_export._convert(pipeline, ds.schema)[1]
    monkeypatch.setattr(onnx_export, "_convert", lambda _p, _s: (b"not a graph", inputs))
    exported = export_onnx(pipeline, ds.schema, split.X_test)
    assert exported.model_bytes is None
    assert exported.reason is not None
    assert exported.reason.startswith("onnxruntime cannot run the converted GaussianNB: ")
    assert "\n" not in exported.reason


def test_nearest_neighbours_rank_distances_in_double_as_sklearn_does() -> None:
    """Balances in cents around a million: float32 holds them to 1/16, so every query fell
    on other neighbours (diamonds, 1 000 rows: prices "differ by up to 80.8")."""
    k = np.arange(400)
    X = pd.DataFrame({"balance": 1_000_000.0 + 0.01 * k})
    X_test = pd.DataFrame({"balance": 1_000_000.0 + 0.01 * k[:200] * 2 + 0.003})
    schema = Schema(features=(Feature("balance", "numeric"),), target="y", classes=(),
                    task="regression")  # fmt: skip
    pipeline = build_pipeline("k_nearest_neighbors", schema, random_state=0)
    pipeline.fit(X, k.astype(float))
    exported = export_onnx(pipeline, schema, X_test, target_scale=float(np.std(k)))
    assert exported.reason is None, exported.reason
    onnx = exported.runtime_section.model_dump(mode="json")["onnx"]
    assert [i["type"] for i in onnx["inputs"]] == ["double"]


def _neighbours_frame(n: int, *, test: bool, seed: int) -> pd.DataFrame:
    """Rows whose ``z`` is 3.92 or 3.94 in training and also 3.93 when testing: scikit-learn
    splits at the float64 midpoint 3.9299999999999997, which float32 cannot tell from 3.93.
    ``w`` has missing values (the imputer), ``kind`` is a category (a float one-hot block
    joined to the double columns)."""
    rng = np.random.default_rng(seed)
    z = rng.choice([3.92, 3.93, 3.94] if test else [3.92, 3.94], n)
    w = rng.normal(18_000.0, 4_000.0, n).round(2)  # large values, like diamond prices
    w[rng.random(n) < 0.1] = np.nan
    kind = rng.choice(["a", "b", "c"], n).astype(object)
    return pd.DataFrame({"z": z, "w": w, "kind": kind})


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_gradient_boosting_splits_between_float32_neighbours_as_sklearn_does(task: str) -> None:
    """Fails with float32 graphs: every z = 3.93 row took the other branch."""
    X = _neighbours_frame(600, test=False, seed=1)
    X_test = _neighbours_frame(300, test=True, seed=2)
    assert (X_test["z"] == 3.93).sum() > 50
    noise = np.random.default_rng(3).normal(0, 1, len(X))
    value = 1000.0 * (X["z"] > 3.93) + 0.01 * X["w"].fillna(0) + noise
    if task == "classification":
        y: Any = np.where(value > value.median(), "high", "low").astype(object)
        classes: tuple[Any, ...] = ("high", "low")
    else:
        y, classes = value.to_numpy(dtype=float), ()
    schema = Schema(
        features=(
            Feature("z", "numeric"),
            Feature("w", "numeric"),
            Feature("kind", "categorical", tuple("abc")),
        ),
        target="y",
        classes=classes,
        task=task,  # type: ignore[arg-type]
    )
    pipeline = build_pipeline("hist_gradient_boosting", schema, random_state=0)
    with one_native_thread():
        pipeline.fit(X, y)
    spread = float(np.std(y)) if task == "regression" else 1.0
    exported = export_onnx(pipeline, schema, X_test, target_scale=spread)
    assert exported.reason is None, exported.reason
    assert exported.model_bytes is not None
    onnx = exported.runtime_section.model_dump(mode="json")["onnx"]
    assert [i["type"] for i in onnx["inputs"]] == ["double", "double", "string"]
    output = "variable" if task == "regression" else "probabilities"
    (got,) = _session(exported.model_bytes).run([output], feeds(onnx["inputs"], X_test))
    with one_native_thread():
        if task == "regression":
            np.testing.assert_allclose(got.ravel(), pipeline.predict(X_test), rtol=1e-6)
        else:
            np.testing.assert_allclose(got, pipeline.predict_proba(X_test), atol=1e-6)


def test_feeds_follow_the_contract() -> None:
    inputs = [
        {"name": "island_in", "column": "island", "type": "string"},
        {"name": "mass_in", "column": "body_mass_g", "type": "float"},
    ]
    X = pd.DataFrame({"island": ["Dream", np.nan], "body_mass_g": [3500.0, np.nan]})
    out = feeds(inputs, X)
    assert out["island_in"].tolist() == [["Dream"], [MISSING_CATEGORY]]
    assert out["mass_in"].dtype == np.float32
    assert out["mass_in"].shape == (2, 1)
    assert np.isnan(out["mass_in"][1, 0])
    double = feeds([{"name": "z_in", "column": "z", "type": "double"}], pd.DataFrame({"z": [3.93]}))
    assert double["z_in"].dtype == np.float64
    assert double["z_in"][0, 0] == 3.93
