"""The candidate registry: every name builds a full, unfitted pipeline for any schema."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlcontainer.core.errors import ConfigError
from mlcontainer.core.labels import label_array
from mlcontainer.training.data.dataset import load_dataset, prepare
from mlcontainer.training.search.models import (
    MISSING_CATEGORY,
    MODELS,
    build_pipeline,
    parse_model_names,
)


def test_registry_has_at_least_six_candidates_with_descriptions() -> None:
    assert len(MODELS) >= 6
    assert {"logistic_regression", "decision_tree", "random_forest", "svm"} <= set(MODELS)
    assert {"hist_gradient_boosting", "k_nearest_neighbors"} <= set(MODELS)
    assert all(spec.description and spec.name == name for name, spec in MODELS.items())


@pytest.mark.parametrize(
    ("text", "names"),
    [
        (None, list(MODELS)),
        ("", list(MODELS)),
        ("svm", ["svm"]),
        (" svm , naive_bayes ,svm", ["svm", "naive_bayes"]),
    ],
)
def test_parse_model_names(text: str | None, names: list[str]) -> None:
    assert parse_model_names(text) == names


@pytest.mark.parametrize("text", ["svc", "svm,forest", ",", " , "])
def test_parse_model_names_refuses_unknown_or_no_names(text: str) -> None:
    with pytest.raises(ConfigError, match="valid: logistic_regression, decision_tree"):
        parse_model_names(text)


def test_build_pipeline_refuses_an_unknown_name() -> None:
    with pytest.raises(ConfigError, match="unknown model 'gpt'"):
        build_pipeline("gpt", load_dataset("iris").schema, random_state=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_every_model_has_preprocessing_then_model_and_is_unfitted(name: str) -> None:
    dataset = "penguins" if "classification" in MODELS[name].tasks else "diabetes"
    pipeline = build_pipeline(name, load_dataset(dataset).schema, random_state=3)
    assert [step for step, _ in pipeline.steps] == ["preprocess", "model"]
    assert not hasattr(pipeline, "classes_")
    params = pipeline.get_params()
    for key, value in params.items():
        if key.endswith("random_state"):
            assert value in (3, None), key


def test_scaling_follows_the_registry_flag() -> None:
    schemas = {
        "classification": load_dataset("iris").schema,
        "regression": load_dataset("diabetes").schema,
    }
    for name, spec in MODELS.items():
        for task in spec.tasks:
            pipeline = build_pipeline(name, schemas[task], random_state=0)
            steps = dict(pipeline.named_steps["preprocess"].transformers[0][1].steps)
            assert ("scale" in steps) is spec.scale, (name, task)


def test_pipeline_accepts_raw_rows_with_missing_and_unseen_values() -> None:
    frame = pd.DataFrame(
        {
            "size": [1.0, 2.0, None, 4.0, 5.0, 6.0, 7.0, 8.0] * 3,
            "colour": ["red", "blue", None, "red", "blue", "red", "blue", "red"] * 3,
            "y": ["a", "b"] * 12,
        }
    )
    ds = prepare(frame, target="y", name="t", source="test")
    pipeline = build_pipeline("logistic_regression", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    raw = pd.DataFrame({"size": [np.nan, 3.0], "colour": ["purple", np.nan]}, dtype=object)
    raw["size"] = raw["size"].astype(float)
    proba = pipeline.predict_proba(raw)
    assert proba.shape == (2, 2)
    assert np.allclose(proba.sum(axis=1), 1.0)
    encoder = pipeline.named_steps["preprocess"].named_transformers_["categorical"]
    assert MISSING_CATEGORY in encoder.named_steps["onehot"].categories_[0]


def test_the_calibrated_svm_calibrates_on_fewer_folds_when_a_class_is_small() -> None:
    import numpy as np

    from mlcontainer.training.search.models import fit_ready

    ds = load_dataset("iris")
    pipeline = build_pipeline("svm", ds.schema, random_state=0)
    y = np.array(["a"] * 10 + ["b"] * 2)
    assert fit_ready(pipeline, y).named_steps["model"].cv == 2


def test_the_calibrated_svm_refuses_a_class_of_one_row_in_its_own_words() -> None:
    import numpy as np

    from mlcontainer.training.search.models import CandidateUnfitError, fit_ready

    pipeline = build_pipeline("svm", load_dataset("iris").schema, random_state=0)
    with pytest.raises(
        CandidateUnfitError, match=r"needs 2 rows of every class, and class 'b' has 1"
    ):
        fit_ready(pipeline, np.array(["a"] * 10 + ["b"]))
