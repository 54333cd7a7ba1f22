"""One ONNX graph for a soft-voting ensemble, verified against scikit-learn, whatever number
types its members' graphs answer in."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlcontainer.core.schema import Feature, Schema
from mlcontainer.core.threads import one_native_thread
from mlcontainer.training.export.onnx_export import export_onnx
from mlcontainer.training.search.ensemble import Blend, Member
from mlcontainer.training.search.ensemble_model import ensemble_pipeline
from mlcontainer.training.search.tuning import DEFAULT, Preset

#: Members whose graphs take double inputs (boosting, k-NN) beside ones that take float
#: (forest, SVM, linear): the mix skl2onnx's own voting converters cannot run.
CLASSIFIERS = ("logistic_regression", "random_forest", "hist_gradient_boosting", "svm",
               "k_nearest_neighbors")  # fmt: skip
REGRESSORS = ("ridge", "random_forest", "hist_gradient_boosting", "svm", "k_nearest_neighbors")
FEWER = Preset("fewer", {"n_estimators": 10})


def _data(task: str) -> tuple[pd.DataFrame, np.ndarray, Schema]:
    rng = np.random.default_rng(0)
    n = 300
    X = pd.DataFrame(
        {"a": rng.normal(size=n) * 1000, "b": rng.normal(size=n), "c": rng.choice(["x", "y"], n)}
    )
    X.loc[::13, "a"] = np.nan
    X.loc[::17, "c"] = np.nan
    signal = np.nan_to_num(X["a"].to_numpy()) / 1000 + X["b"].to_numpy() + (X["c"] == "x")
    features = (
        Feature("a", "numeric", nullable=True),
        Feature("b", "numeric"),
        Feature("c", "categorical", ("x", "y"), nullable=True),
    )
    if task == "regression":
        return X, signal + 0.1 * rng.normal(size=n), Schema(features, "t", (), "regression")
    y = np.where(signal > 0.3, "yes", "no").astype(object)
    return X, y, Schema(features, "t", ("no", "yes"))


@pytest.mark.parametrize(("task", "models"), [("classification", CLASSIFIERS),
                                              ("regression", REGRESSORS)])  # fmt: skip
def test_a_mixed_ensemble_converts_to_one_verified_graph(
    task: str, models: tuple[str, ...]
) -> None:
    X, y, schema = _data(task)
    members = tuple(
        Member(m, FEWER if m == "random_forest" else DEFAULT, np.zeros((1, 1))) for m in models
    )
    blend = Blend(members, (0.3, 0.2, 0.2, 0.2, 0.1))
    scale = float(np.std(y)) if task == "regression" else 1.0
    pipeline = ensemble_pipeline(blend, schema, y, random_state=0, target_scale=scale)
    with one_native_thread():
        pipeline.fit(X, y)
        export = export_onnx(pipeline, schema, X.iloc[:150], target_scale=scale)
    assert export.reason is None
    assert export.model_bytes is not None
    onnx = export.runtime_section.onnx
    assert onnx is not None
    assert onnx.verification.rows == 150
    assert {i.type for i in onnx.inputs if i.column != "c"} == {"double"}
