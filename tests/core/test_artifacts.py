"""The model folder's format: atomic publishing, a typed manifest, loads that refuse the foreign."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io
from support import minimal_manifest, tree_snapshot, unwritable_folder

from mlcontainer.core import atomic
from mlcontainer.core.artifacts import (
    CONFUSION_MATRIX_FILE,
    MANIFEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    ONNX_FILE,
    REPORT_FILE,
    Manifest,
    check_writable,
    publish,
    read_manifest,
    sha256_bytes,
)
from mlcontainer.core.atomic import write_atomic
from mlcontainer.core.errors import ArtifactError
from mlcontainer.core.labels import label_array
from mlcontainer.inference.predictor import Predictor, load_predictor
from mlcontainer.training.data.dataset import Dataset, load_dataset
from mlcontainer.training.export.onnx_export import export_onnx
from mlcontainer.training.search.models import build_pipeline

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

SET_FILES = {"model.skops", "model.json", "metrics.json", "confusion_matrix.png", "report.html"}
#: What ``train`` writes when the ONNX export verified (it does for iris).
TRAINED_FILES = SET_FILES | {"model.onnx", "README.md"}


def load(model_dir: Path) -> Predictor:
    """Load a folder the way `serve --runtime sklearn` does (every check of the set runs)."""
    return load_predictor(model_dir, "sklearn")


def _files(pipeline: Any, tag: str, **extra: bytes) -> dict[str, bytes]:
    return {
        MODEL_FILE: skops.io.dumps(pipeline),
        METRICS_FILE: json.dumps({"tag": tag}).encode(),
        CONFUSION_MATRIX_FILE: b"\x89PNG" + tag.encode(),
        REPORT_FILE: f"<p>{tag}</p>".encode(),
        **extra,
    }


def _save_set(output: Path, pipeline: Any, dataset: Dataset, tag: str = "") -> Manifest:
    manifest = minimal_manifest(f"{dataset.name}{tag}", dataset.schema)
    return publish(output, manifest, _files(pipeline, tag))


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
    assert list(model.backend.pipeline.classes_) == ["setosa", "versicolor", "virginica"]  # type: ignore[attr-defined]


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
    with pytest.raises(ArtifactError, match="not a valid manifest: schema"):
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

    monkeypatch.setattr(atomic.os, "fsync", broken_fsync)
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
    real_fsync = atomic.os.fsync
    calls = {"n": 0}

    def flaky_fsync(fd: int) -> None:
        calls["n"] += 1
        if calls["n"] == failing_call:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", flaky_fsync)
    pipeline = build_pipeline("decision_tree", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    with pytest.raises(ArtifactError, match="No space left on device"):
        _save_set(output, pipeline, ds, tag="new")
    assert tree_snapshot(output) == before
    assert load(output).manifest.name == "irisold"


def _fail_moving_into_place(monkeypatch: pytest.MonkeyPatch, failing: int) -> None:
    """Make the ``failing``-th move of a file between two folders (the commit folder into
    place) fail as a disk would; renames within one folder (the commit rename) still work."""
    real_rename = os.rename
    calls = {"n": 0}

    def flaky_rename(source: Any, target: Any, **dirs: Any) -> None:
        if dirs.get("src_dir_fd") != dirs.get("dst_dir_fd"):
            calls["n"] += 1
            if calls["n"] == failing:
                raise OSError(5, "Input/output error")
        real_rename(source, target, **dirs)

    monkeypatch.setattr(os, "rename", flaky_rename)


@pytest.mark.parametrize("failing_rename", [1, 2, 5])
def test_save_failing_between_renames_restores_the_previous_set(
    good_set: tuple[Path, Dataset, dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
    failing_rename: int,
) -> None:
    output, ds, before = good_set
    _fail_moving_into_place(monkeypatch, failing_rename)
    pipeline = build_pipeline("decision_tree", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    with pytest.raises(ArtifactError, match="Input/output error"):
        _save_set(output, pipeline, ds, tag="new")
    monkeypatch.undo()
    assert tree_snapshot(output) == before
    assert load(output).manifest.name == "irisold"


def test_save_over_a_previous_set_replaces_it_whole(
    good_set: tuple[Path, Dataset, dict[str, bytes]],
) -> None:
    output, ds, _ = good_set
    pipeline = build_pipeline("decision_tree", ds.schema, random_state=0)
    pipeline.fit(ds.X, label_array(ds.y))
    _save_set(output, pipeline, ds, tag="new")
    assert {p.name for p in output.iterdir()} == SET_FILES
    assert load(output).manifest.name == "irisnew"
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


def test_written_files_follow_the_umask_not_mkstemp_0600(tmp_path: Path) -> None:
    # A model trained in a container (as root) must stay readable by the host's user.
    import os

    old = os.umask(0o022)
    try:
        write_atomic(tmp_path / "a.json", b"{}")
        os.umask(0o077)
        write_atomic(tmp_path / "b.json", b"{}")
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
    manifest = minimal_manifest("irisold", ds.schema, runtime=exported.runtime_section)
    publish(output, manifest, _files(pipeline, "old", **{ONNX_FILE: exported.model_bytes}))
    before = tree_snapshot(output)
    assert before is not None
    return output, ds, pipeline, before


def test_save_writes_the_onnx_graph_with_its_hash_and_the_runtime(
    set_with_graph: tuple[Path, Dataset, Any, dict[str, bytes]],
) -> None:
    output, _, _, _ = set_with_graph
    assert {p.name for p in output.iterdir()} == SET_FILES | {ONNX_FILE}
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
        publish(
            tmp_path / "out",
            minimal_manifest("x", ds.schema),
            {MODEL_FILE: b"", ONNX_FILE: b"graph"},
        )
    assert not (tmp_path / "out").exists()


def test_publish_refuses_a_file_that_is_not_part_of_a_model_set(tmp_path: Path) -> None:
    ds = load_dataset("iris")
    with pytest.raises(ValueError, match="not files of a model set"):
        publish(tmp_path / "out", minimal_manifest("x", ds.schema), {"../evil": b""})
    assert not (tmp_path / "out").exists()


def test_a_folder_written_by_release_0_1_0_still_loads_and_predicts() -> None:
    # Written by mlcontainer 0.1.0 (format version 1) before the package was split up:
    # `train -d penguins --models logistic_regression --cv 2`. Both runtimes must read it.
    folder = FIXTURES / "model-0.1.0-penguins"
    row = {
        "island": "Biscoe",
        "bill_length_mm": 48.0,
        "bill_depth_mm": 15.0,
        "flipper_length_mm": 220.0,
        "body_mass_g": 5200.0,
        "sex": "male",
        "year": 2008,
    }
    answers = []
    for runtime in ("onnx", "sklearn"):
        predictor = load_predictor(folder, runtime)
        assert predictor.name == "penguins-logistic_regression"
        assert predictor.runtime == runtime
        answers.append(predictor.predict_records([row]))
    assert answers[0].labels == answers[1].labels == ["Gentoo"]
    np.testing.assert_allclose(answers[0].probabilities, answers[1].probabilities, atol=1e-4)


def test_the_manifest_reads_back_exactly_as_written(iris_model_dir: Path) -> None:
    text = (iris_model_dir / MANIFEST_FILE).read_text()
    manifest = read_manifest(iris_model_dir)
    assert json.dumps(manifest.to_json(), indent=2) + "\n" == text


def test_keys_a_reader_does_not_know_are_kept(model_copy: Path) -> None:
    data = json.loads((model_copy / MANIFEST_FILE).read_text())
    data["from_a_later_release"] = {"note": "kept"}
    (model_copy / MANIFEST_FILE).write_text(json.dumps(data))
    assert read_manifest(model_copy).to_json()["from_a_later_release"] == {"note": "kept"}


@pytest.mark.parametrize("failing_rename", [1, 3, 5])
def test_save_failing_between_renames_keeps_the_previous_graph(
    set_with_graph: tuple[Path, Dataset, Any, dict[str, bytes]],
    monkeypatch: pytest.MonkeyPatch,
    failing_rename: int,
) -> None:
    output, ds, pipeline, before = set_with_graph
    _fail_moving_into_place(monkeypatch, failing_rename)
    with pytest.raises(ArtifactError, match="Input/output error"):
        _save_set(output, pipeline, ds, tag="new")  # a set without a graph: it removes the old
    monkeypatch.undo()
    assert tree_snapshot(output) == before


def test_check_writable_passes_writable_folders_and_leaves_nothing_behind(tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "keep.txt").write_text("kept")
    check_writable(existing)
    check_writable(tmp_path / "new" / "nested")  # created by the save, in a writable parent
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == [
        "existing",
        "existing/keep.txt",
    ]


def test_check_writable_refuses_a_read_only_folder_and_one_it_would_create_there() -> None:
    with unwritable_folder() as folder:
        for target in (folder, folder / "model"):
            with pytest.raises(ArtifactError, match="Permission denied") as caught:
                check_writable(target)
            assert caught.value.setting == "model_dir"
        assert list(folder.iterdir()) == []
