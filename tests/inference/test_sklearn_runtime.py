"""The scikit-learn runtime: model.skops loads only with the allowlisted types, and matches."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from support import candidate_pairs, minimal_manifest

from mlcontainer.core.artifacts import (
    CONFUSION_MATRIX_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    REPORT_FILE,
    TRUSTED_TYPES,
    publish,
    sha256_bytes,
)
from mlcontainer.core.errors import ArtifactError
from mlcontainer.core.labels import label_array
from mlcontainer.inference.predictor import Predictor, load_predictor
from mlcontainer.training.data.dataset import Dataset, load_dataset
from mlcontainer.training.data.sources import BUILTIN_DATASETS
from mlcontainer.training.search.models import build_pipeline

#: Fewer trees and boosting rounds: a smaller file holding the same types.
SMALLER: dict[str, dict[str, int]] = {
    "random_forest": {"model__n_estimators": 5},
    "extra_trees": {"model__n_estimators": 5},
    "hist_gradient_boosting": {"model__max_iter": 5},
}


def load(model_dir: Path) -> Predictor:
    return load_predictor(model_dir, "sklearn")


def _rehash(model_dir: Path, data: bytes) -> None:
    """Replace model.skops by ``data`` and update the manifest so the hash matches again."""
    (model_dir / MODEL_FILE).write_bytes(data)
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    manifest["files"][MODEL_FILE] = {"sha256": sha256_bytes(data), "bytes": len(data)}
    (model_dir / MANIFEST_FILE).write_text(json.dumps(manifest))


def _save_set(output: Path, pipeline: Any, dataset: Dataset) -> None:
    files = {
        MODEL_FILE: skops.io.dumps(pipeline),
        METRICS_FILE: b"{}",
        CONFUSION_MATRIX_FILE: b"\x89PNG",
        REPORT_FILE: b"<p></p>",
    }
    publish(output, minimal_manifest(dataset.name, dataset.schema), files)


def test_load_refuses_a_truncated_file_even_when_its_hash_was_updated(model_copy: Path) -> None:
    data = (model_copy / MODEL_FILE).read_bytes()
    _rehash(model_copy, data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="not a valid skops model file"):
        load(model_copy)


def test_load_refuses_a_non_zip_model_file_even_when_its_hash_was_updated(
    model_copy: Path,
) -> None:
    _rehash(model_copy, b"import os; os.system('echo pwned')\n")
    with pytest.raises(ArtifactError, match="not a valid skops model file"):
        load(model_copy)


def test_load_refuses_classes_that_differ_from_the_manifest(model_copy: Path) -> None:
    manifest = json.loads((model_copy / MANIFEST_FILE).read_text())
    manifest["schema"]["classes"] = ["a", "b", "c"]
    (model_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="classes"):
        load(model_copy)


def test_load_refuses_untrusted_types_even_with_a_matching_hash(
    model_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sklearn.gaussian_process import GaussianProcessClassifier
    from sklearn.pipeline import Pipeline

    ds = load_dataset("iris")
    original = load(model_copy).backend.pipeline  # type: ignore[attr-defined]
    foreign = Pipeline([("preprocess", original.named_steps["preprocess"]), ("model", None)])
    foreign.steps[1] = ("model", GaussianProcessClassifier(random_state=0))
    foreign.fit(ds.X, label_array(ds.y))
    data = skops.io.dumps(foreign)
    assert set(skops.io.get_untrusted_types(data=data)) - TRUSTED_TYPES
    _rehash(model_copy, data)

    def must_not_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("skops.io.loads was called on an untrusted file")

    monkeypatch.setattr(skops.io, "loads", must_not_load)
    with pytest.raises(ArtifactError, match=r"does not trust: .*gaussian_process"):
        load(model_copy)


@pytest.fixture(scope="module")
def builtin_datasets() -> dict[str, Dataset]:
    return {name: load_dataset(name) for name in BUILTIN_DATASETS}


@pytest.mark.parametrize(("model_name", "dataset_name"), candidate_pairs())
def test_every_model_on_every_builtin_saves_and_loads_with_the_allowlist(
    model_name: str,
    dataset_name: str,
    builtin_datasets: dict[str, Dataset],
    tmp_path: Path,
) -> None:
    ds = builtin_datasets[dataset_name]
    X = ds.X.iloc[:300]
    if ds.schema.is_regression:
        y = ds.y.iloc[:300].to_numpy(dtype=float)
    else:
        y = label_array(ds.y.iloc[:300])
        assert len(set(y.tolist())) == len(ds.schema.classes)
    pipeline = build_pipeline(model_name, ds.schema, random_state=0)
    pipeline.set_params(**SMALLER.get(model_name, {}))
    pipeline.fit(X, y)
    _save_set(tmp_path, pipeline, ds)
    untrusted = set(skops.io.get_untrusted_types(file=tmp_path / MODEL_FILE))
    assert untrusted <= TRUSTED_TYPES
    loaded = load(tmp_path)
    head = ds.X.iloc[:20]
    method = "predict" if ds.schema.is_regression else "predict_proba"
    np.testing.assert_array_equal(
        getattr(loaded.backend.pipeline, method)(head),  # type: ignore[attr-defined]
        getattr(pipeline, method)(head),
    )
