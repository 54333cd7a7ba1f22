"""The on-disk model set: atomic saves, and loads that refuse anything not exactly ours."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from support import tree_snapshot

from mlcontainer import artifacts
from mlcontainer.artifacts import (
    MANIFEST_FILE,
    MODEL_FILE,
    ONNX_FILE,
    TRUSTED_TYPES,
    load,
    save,
    sha256_bytes,
    write_atomic,
)
from mlcontainer.data import BUILTIN_DATASETS, Dataset, load_dataset
from mlcontainer.errors import ArtifactError
from mlcontainer.evaluation import label_array
from mlcontainer.models import MODELS, build_pipeline
from mlcontainer.onnx_export import export_onnx

#: Fewer trees and boosting rounds: a smaller file holding the same types.
SMALLER: dict[str, dict[str, int]] = {
    "random_forest": {"model__n_estimators": 5},
    "extra_trees": {"model__n_estimators": 5},
    "hist_gradient_boosting": {"model__max_iter": 5},
}
SET_FILES = {"model.skops", "model.json", "metrics.json", "confusion_matrix.png", "report.html"}
#: What ``train`` writes when the ONNX export verified (it does for iris).
TRAINED_FILES = SET_FILES | {"model.onnx"}


@pytest.fixture
def model_copy(iris_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's iris model folder, free to damage."""
    return Path(shutil.copytree(iris_model_dir, tmp_path / "model"))


def _rehash(model_dir: Path, data: bytes) -> None:
    """Replace model.skops by ``data`` and update the manifest so the hash matches again."""
    (model_dir / MODEL_FILE).write_bytes(data)
    manifest = json.loads((model_dir / MANIFEST_FILE).read_text())
    manifest["files"][MODEL_FILE] = {"sha256": sha256_bytes(data), "bytes": len(data)}
    (model_dir / MANIFEST_FILE).write_text(json.dumps(manifest))


def _save_set(output: Path, pipeline: Any, dataset: Dataset, tag: str = "") -> dict[str, Any]:
    return save(
        output,
        pipeline=pipeline,
        manifest={"name": f"{dataset.name}{tag}", "schema": dataset.schema.to_dict()},
        metrics={"tag": tag},
        confusion_matrix_png=b"\x89PNG" + tag.encode(),
        report_html=f"<p>{tag}</p>",
    )


def test_saved_set_has_every_file_and_hashes_in_the_manifest(iris_model_dir: Path) -> None:
    assert {p.name for p in iris_model_dir.iterdir()} == TRAINED_FILES
    manifest = json.loads((iris_model_dir / MANIFEST_FILE).read_text())
    assert manifest["format"] == "mlcontainer.model"
    for name in TRAINED_FILES - {MANIFEST_FILE}:
        data = (iris_model_dir / name).read_bytes()
        assert manifest["files"][name] == {"sha256": sha256_bytes(data), "bytes": len(data)}


def test_manifest_describes_data_schema_versions_and_selection(iris_model_dir: Path) -> None:
    manifest = json.loads((iris_model_dir / MANIFEST_FILE).read_text())
    assert manifest["dataset"]["name"] == "iris"
    assert len(manifest["dataset"]["fingerprint"]) == 64
    assert manifest["schema"]["features"][0]["name"] == "sepal length (cm)"
    assert manifest["schema"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert manifest["selection"]["model"] == "logistic_regression"
    assert manifest["selection"]["seed"] == 42
    assert {"scikit-learn", "skops", "numpy", "pandas", "python"} <= set(manifest["versions"])
    assert manifest["created"].endswith("+00:00")
    assert 0.0 <= manifest["metrics"]["accuracy"] <= 1.0


def test_report_is_self_contained_html(iris_model_dir: Path) -> None:
    page = (iris_model_dir / "report.html").read_text()
    assert page.startswith("<!doctype html>")
    assert "data:image/png;base64," in page
    assert "logistic_regression" in page
    assert 'src="http' not in page
    assert (iris_model_dir / "confusion_matrix.png").read_bytes().startswith(b"\x89PNG")


def test_load_returns_a_working_pipeline(iris_model_dir: Path) -> None:
    model = load(iris_model_dir)
    assert model.name == "iris-logistic_regression"
    assert model.schema.classes == ("setosa", "versicolor", "virginica")
    assert list(model.pipeline.classes_) == ["setosa", "versicolor", "virginica"]


def test_load_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no model folder at"):
        load(tmp_path / "nowhere")


def test_load_refuses_a_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"has no model\.json"):
        load(tmp_path)


def test_load_refuses_a_missing_model_file(model_copy: Path) -> None:
    (model_copy / MODEL_FILE).unlink()
    with pytest.raises(ArtifactError, match=r"model\.skops is missing"):
        load(model_copy)


def test_load_refuses_a_truncated_model_file(model_copy: Path) -> None:
    data = (model_copy / MODEL_FILE).read_bytes()
    (model_copy / MODEL_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ArtifactError, match="truncated, replaced or tampered"):
        load(model_copy)


def test_load_refuses_a_tampered_model_file(model_copy: Path) -> None:
    data = bytearray((model_copy / MODEL_FILE).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (model_copy / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        load(model_copy)


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


@pytest.mark.parametrize(
    "manifest",
    [
        {"name": "x"},
        {"artifact_path": "model", "flavors": {"sklearn": {"pickled_model": "model.pkl"}}},
        ["not", "an", "object"],
        {"format": "mlcontainer.model", "format_version": 99},
    ],
    ids=["no-format", "mlflow", "list", "future-version"],
)
def test_load_refuses_a_foreign_manifest(model_copy: Path, manifest: Any) -> None:
    (model_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match=r"not an mlcontainer manifest|format version 99"):
        load(model_copy)


def test_load_refuses_a_manifest_that_is_not_json(model_copy: Path) -> None:
    (model_copy / MANIFEST_FILE).write_bytes(b"\x00\xffnot json")
    with pytest.raises(ArtifactError, match=r"cannot read .*model\.json"):
        load(model_copy)


def test_load_refuses_a_manifest_without_a_schema(model_copy: Path) -> None:
    manifest = json.loads((model_copy / MANIFEST_FILE).read_text())
    del manifest["schema"]
    (model_copy / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ArtifactError, match="no valid schema"):
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
    original = load(model_copy).pipeline
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


def test_write_atomic_replaces_whole_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "out" / "file.txt"
    write_atomic(target, b"first")
    write_atomic(target, b"second")
    assert target.read_bytes() == b"second"
    assert [p.name for p in target.parent.iterdir()] == ["file.txt"]


def test_write_atomic_failure_keeps_old_content_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "file.txt"
    target.write_bytes(b"good")

    def broken_fsync(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(artifacts.os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="No space left"):
        write_atomic(target, b"half")
    assert target.read_bytes() == b"good"
    assert [p.name for p in tmp_path.iterdir()] == ["file.txt"]


@pytest.fixture
def good_set(tmp_path: Path) -> tuple[Path, Dataset, dict[str, bytes]]:
    """A folder holding a good model set, and a snapshot of its bytes."""
    ds = load_dataset("iris")
    pipeline = build_pipeline("naive_bayes", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    output = tmp_path / "artifacts"
    _save_set(output, pipeline, ds, tag="old")
    before = tree_snapshot(output)
    assert before is not None
    return output, ds, before


@pytest.mark.parametrize("failing_call", [1, 3, 5])
def test_save_failing_while_staging_keeps_the_previous_set(
    good_set: tuple[Path, Dataset, dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
    failing_call: int,
) -> None:
    output, ds, before = good_set
    real_fsync = artifacts.os.fsync
    calls = {"n": 0}

    def flaky_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == failing_call:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(artifacts.os, "fsync", flaky_fsync)
    pipeline = build_pipeline("decision_tree", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    with pytest.raises(ArtifactError, match="No space left on device"):
        _save_set(output, pipeline, ds, tag="new")
    assert tree_snapshot(output) == before
    assert load(output).manifest["name"] == "irisold"


@pytest.mark.parametrize("failing_rename", [1, 2, 5])
def test_save_failing_between_renames_restores_the_previous_set(
    good_set: tuple[Path, Dataset, dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
    failing_rename: int,
) -> None:
    output, ds, before = good_set
    real_replace = Path.replace
    calls = {"n": 0}

    def flaky_replace(self: Path, target: Any) -> Path:
        if Path(target).parent == output:  # a rename into place, not a staging write
            calls["n"] += 1
            if calls["n"] == failing_rename:
                raise OSError(5, "Input/output error")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", flaky_replace)
    pipeline = build_pipeline("decision_tree", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    with pytest.raises(ArtifactError, match="Input/output error"):
        _save_set(output, pipeline, ds, tag="new")
    monkeypatch.undo()
    assert tree_snapshot(output) == before
    assert load(output).manifest["name"] == "irisold"


def test_save_over_a_previous_set_replaces_it_whole(
    good_set: tuple[Path, Dataset, dict[str, bytes]],
) -> None:
    output, ds, _ = good_set
    pipeline = build_pipeline("decision_tree", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    _save_set(output, pipeline, ds, tag="new")
    assert {p.name for p in output.iterdir()} == SET_FILES
    assert load(output).manifest["name"] == "irisnew"
    assert (output / "report.html").read_text() == "<p>new</p>"


def test_save_refuses_an_output_that_is_a_file(tmp_path: Path) -> None:
    ds = load_dataset("iris")
    pipeline = build_pipeline("naive_bayes", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    output = tmp_path / "file"
    output.write_text("keep me")
    with pytest.raises(ArtifactError, match="is not a folder"):
        _save_set(output, pipeline, ds)
    assert output.read_text() == "keep me"


@pytest.fixture(scope="module")
def builtin_datasets() -> dict[str, Dataset]:
    return {name: load_dataset(name) for name in BUILTIN_DATASETS}


@pytest.mark.parametrize("dataset_name", list(BUILTIN_DATASETS))
@pytest.mark.parametrize("model_name", list(MODELS))
def test_every_model_on_every_builtin_saves_and_loads_with_the_allowlist(
    model_name: str,
    dataset_name: str,
    builtin_datasets: dict[str, Dataset],
    tmp_path: Path,
) -> None:
    ds = builtin_datasets[dataset_name]
    X, y = ds.X.iloc[:300], label_array(ds.y.iloc[:300])
    assert len(set(y.tolist())) == len(ds.schema.classes)
    pipeline = build_pipeline(model_name, ds.schema, random_state=0)
    pipeline.set_params(**SMALLER.get(model_name, {}))
    pipeline.fit(X, y)
    _save_set(tmp_path, pipeline, ds)
    untrusted = set(skops.io.get_untrusted_types(file=tmp_path / MODEL_FILE))
    assert untrusted <= TRUSTED_TYPES
    loaded = load(tmp_path)
    head = ds.X.iloc[:20]
    np.testing.assert_array_equal(loaded.pipeline.predict_proba(head), pipeline.predict_proba(head))


def test_written_files_follow_the_umask_not_mkstemp_0600(tmp_path: Path) -> None:
    # A model trained in a container (as root) must stay readable by the host's user.
    import os

    old = os.umask(0o022)
    try:
        artifacts.write_atomic(tmp_path / "a.json", b"{}")
        os.umask(0o077)
        artifacts.write_atomic(tmp_path / "b.json", b"{}")
    finally:
        os.umask(old)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.json").stat().st_mode & 0o777 == 0o600


@pytest.fixture
def set_with_graph(tmp_path: Path) -> tuple[Path, Dataset, Any, dict[str, bytes]]:
    """A folder holding a model set with a verified ONNX graph, and a snapshot of its bytes."""
    ds = load_dataset("iris")
    pipeline = build_pipeline("naive_bayes", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    exported = export_onnx(pipeline, ds.schema, ds.X.iloc[::5])
    assert exported.model_bytes is not None
    output = tmp_path / "artifacts"
    save(
        output,
        pipeline=pipeline,
        manifest={"name": "irisold", "schema": ds.schema.to_dict()},
        metrics={},
        confusion_matrix_png=b"\x89PNG",
        report_html="<p>old</p>",
        onnx_bytes=exported.model_bytes,
        runtime=exported.runtime_section,
    )
    before = tree_snapshot(output)
    assert before is not None
    return output, ds, pipeline, before


def test_save_writes_the_onnx_graph_with_its_hash_and_the_runtime(
    set_with_graph: tuple[Path, Dataset, Any, dict[str, bytes]],
) -> None:
    output, _, _, _ = set_with_graph
    assert {p.name for p in output.iterdir()} == TRAINED_FILES
    manifest = json.loads((output / MANIFEST_FILE).read_text())
    data = (output / ONNX_FILE).read_bytes()
    assert manifest["files"][ONNX_FILE] == {"sha256": sha256_bytes(data), "bytes": len(data)}
    assert manifest["runtime"]["default"] == "onnx"
    assert manifest["runtime"]["onnx"]["file"] == ONNX_FILE


def test_save_without_a_graph_names_sklearn_and_removes_an_earlier_graph(
    set_with_graph: tuple[Path, Dataset, Any, dict[str, bytes]],
) -> None:
    output, ds, pipeline, _ = set_with_graph
    _save_set(output, pipeline, ds, tag="new")
    assert {p.name for p in output.iterdir()} == SET_FILES
    runtime = json.loads((output / MANIFEST_FILE).read_text())["runtime"]
    assert runtime == {"default": "sklearn", "reason": "no ONNX export was attempted", "onnx": None}


def test_save_refuses_a_graph_without_its_runtime_section(tmp_path: Path) -> None:
    ds = load_dataset("iris")
    with pytest.raises(ValueError, match="runtime section"):
        save(
            tmp_path / "out",
            pipeline=build_pipeline("naive_bayes", ds.schema, random_state=0),
            manifest={"name": "x"},
            metrics={},
            confusion_matrix_png=b"",
            report_html="",
            onnx_bytes=b"graph",
        )
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("failing_rename", [1, 3, 5])
def test_save_failing_between_renames_keeps_the_previous_graph(
    set_with_graph: tuple[Path, Dataset, Any, dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
    failing_rename: int,
) -> None:
    output, ds, pipeline, before = set_with_graph
    real_replace = Path.replace
    calls = {"n": 0}

    def flaky_replace(self: Path, target: Any) -> Path:
        if Path(target).parent == output:  # a rename into place, not a staging write
            calls["n"] += 1
            if calls["n"] == failing_rename:
                raise OSError(5, "Input/output error")
        return real_replace(self, target)

    monkeypatch.setattr(Path, "replace", flaky_replace)
    with pytest.raises(ArtifactError, match="Input/output error"):
        _save_set(output, pipeline, ds, tag="new")  # a set without a graph: it removes the old
    monkeypatch.undo()
    assert tree_snapshot(output) == before
