"""Crafted model folders and killed saves: nothing read outside the folder, no half-saved set."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlcontainer.core import artifacts
from mlcontainer.core.artifacts import (
    CARD_FILE,
    COMMIT_PREFIX,
    MANIFEST_FILE,
    MODEL_FILE,
    ONNX_FILE,
    REPORT_FILE,
    STAGING_PREFIX,
    RuntimeSection,
    publish,
    read_manifest,
    read_optional,
    sha256_bytes,
    verify_file,
)
from mlcontainer.core.errors import ArtifactError
from mlcontainer.inference.predictor import load_predictor

IRIS_ROW = {
    "sepal length (cm)": 5.1,
    "sepal width (cm)": 3.5,
    "petal length (cm)": 1.4,
    "petal width (cm)": 0.2,
}


def _rewrite_manifest(folder: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads((folder / MANIFEST_FILE).read_text())
    change(data)
    (folder / MANIFEST_FILE).write_text(json.dumps(data))


def _list_as(folder: Path, name: str, content: bytes) -> None:
    """Make the manifest describe ``content`` for ``name``: the attacker writes the manifest."""

    def change(data: dict[str, Any]) -> None:
        data["files"][name] = {"sha256": sha256_bytes(content), "bytes": len(content)}

    _rewrite_manifest(folder, change)


def test_a_report_linked_to_a_host_file_is_refused_even_with_a_matching_hash(
    model_copy: Path,
) -> None:
    secret = Path("/etc/passwd").read_bytes()
    (model_copy / REPORT_FILE).unlink()
    (model_copy / REPORT_FILE).symlink_to("/etc/passwd")
    _list_as(model_copy, REPORT_FILE, secret)
    with pytest.raises(ArtifactError, match="symbolic link") as caught:
        read_manifest(model_copy)
    assert str(len(secret)) not in caught.value.message
    assert sha256_bytes(secret)[:16] not in caught.value.message


def test_a_picture_linked_to_proc_environ_is_never_read(model_copy: Path) -> None:
    (model_copy / "confusion_matrix.png").unlink()
    (model_copy / "confusion_matrix.png").symlink_to("/proc/self/environ")
    with pytest.raises(ArtifactError, match="symbolic link"):
        load_predictor(model_copy, "onnx")


@pytest.mark.parametrize("path", ["../other/model.onnx", "/tmp/model.onnx", "model.skops"])
def test_the_onnx_file_of_the_manifest_is_model_onnx_only(
    model_copy: Path, tmp_path: Path, path: str
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copy(model_copy / ONNX_FILE, other / ONNX_FILE)
    _rewrite_manifest(model_copy, lambda d: d["runtime"]["onnx"].update(file=path))
    with pytest.raises(ArtifactError, match=r"not a valid manifest: runtime\.onnx\.file"):
        load_predictor(model_copy, "onnx")


@pytest.mark.parametrize("name", ["../model.json", "/etc/passwd", "notes.txt", MANIFEST_FILE])
def test_verify_file_reads_only_the_files_of_a_model_folder(model_copy: Path, name: str) -> None:
    manifest = read_manifest(model_copy)
    with pytest.raises(ArtifactError, match="is not a file of a model folder"):
        verify_file(model_copy, manifest, name)


def test_a_manifest_listing_a_foreign_name_is_refused(model_copy: Path) -> None:
    _list_as(model_copy, "../../etc/passwd", b"x")
    with pytest.raises(ArtifactError, match="not files of a model folder"):
        read_manifest(model_copy)


def test_a_tampered_model_skops_is_refused_even_when_onnx_serves(model_copy: Path) -> None:
    data = bytearray((model_copy / MODEL_FILE).read_bytes())
    data[100] ^= 0xFF
    (model_copy / MODEL_FILE).write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match=r"model\.skops does not match its manifest"):
        load_predictor(model_copy, "onnx")


def test_a_tampered_report_is_refused_at_load(model_copy: Path) -> None:
    (model_copy / REPORT_FILE).write_text("<script>alert(1)</script>")
    with pytest.raises(ArtifactError, match=r"report\.html does not match its manifest"):
        read_manifest(model_copy)


def test_a_tampered_model_card_is_refused_at_load(model_copy: Path) -> None:
    card = model_copy / CARD_FILE
    card.write_text(card.read_text().replace("Intended use", "Approved for any use"))
    with pytest.raises(ArtifactError, match=r"README\.md does not match its manifest"):
        read_manifest(model_copy)


@pytest.mark.parametrize("name", [REPORT_FILE, CARD_FILE])
def test_a_file_of_the_set_the_manifest_does_not_list_is_refused(
    model_copy: Path, name: str
) -> None:
    _rewrite_manifest(model_copy, lambda d: d["files"].pop(name))
    with pytest.raises(ArtifactError, match="not listed by the folder's manifest"):
        read_manifest(model_copy)


def test_a_card_linked_to_a_host_file_is_refused(model_copy: Path, tmp_path: Path) -> None:
    outside = tmp_path / "host.md"
    outside.write_bytes((model_copy / CARD_FILE).read_bytes())  # the same bytes: hash matches
    (model_copy / CARD_FILE).unlink()
    (model_copy / CARD_FILE).symlink_to(outside)
    with pytest.raises(ArtifactError, match="symbolic link"):
        read_manifest(model_copy)


def test_a_serving_only_folder_without_model_skops_loads_with_onnx(model_copy: Path) -> None:
    (model_copy / MODEL_FILE).unlink()
    predictor = load_predictor(model_copy, "onnx")
    assert len(predictor.predict_records([IRIS_ROW]).labels) == 1
    assert read_optional(model_copy, predictor.manifest, REPORT_FILE)


def test_a_fifo_in_place_of_a_file_is_refused_without_blocking(model_copy: Path) -> None:
    (model_copy / REPORT_FILE).unlink()
    os.mkfifo(model_copy / REPORT_FILE)
    with pytest.raises(ArtifactError, match="not a regular file"):
        read_manifest(model_copy)


# --- a save killed at any instant --------------------------------------------------------------

#: Calls between which a kill is simulated (each is one or a few system calls).
_STEPS = (
    (Path, "replace"),
    (Path, "unlink"),
    (Path, "mkdir"),
    (os, "link"),
    (os, "fsync"),
    (shutil, "rmtree"),
)


def _new_set(folder: Path, *, with_graph: bool) -> tuple[Any, dict[str, bytes]]:
    manifest = read_manifest(folder)
    names = [n for n in manifest.files if with_graph or n != ONNX_FILE]
    files = {n: (folder / n).read_bytes() for n in names}
    files[REPORT_FILE] = b"<p>the new set</p>"
    update: dict[str, Any] = {"name": "new"}
    if not with_graph:
        update["runtime"] = RuntimeSection(default="sklearn", reason="a set without a graph")
    return manifest.model_copy(update=update), files


def _publish_killed_at(folder: Path, step: int, manifest: Any, files: dict[str, bytes]) -> bool:
    """Publish in a forked child that dies (os._exit, no cleanup) at its ``step``-th call;
    return whether it finished before that step."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        calls = [0]

        def wrap(real: Any) -> Any:
            def killed_at_step(*args: Any, **kwargs: Any) -> Any:
                calls[0] += 1
                if calls[0] == step:
                    os._exit(9)
                return real(*args, **kwargs)

            return killed_at_step

        for owner, name in _STEPS:
            setattr(owner, name, wrap(getattr(owner, name)))
        try:
            publish(folder, manifest, files)
        except BaseException:  # noqa: BLE001 - the child reports any failure by its exit
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, 9), f"the save failed on its own (exit {code})"
    return code == 0


@pytest.mark.parametrize("with_graph", [True, False], ids=["same files", "graph removed"])
def test_a_save_killed_at_any_instant_leaves_the_old_or_the_new_set(
    iris_model_dir: Path, tmp_path: Path, with_graph: bool
) -> None:
    seen = set()
    step = 1
    while True:
        folder = Path(shutil.copytree(iris_model_dir, tmp_path / f"kill-{step}"))
        manifest, files = _new_set(folder, with_graph=with_graph)
        finished = _publish_killed_at(folder, step, manifest, files)
        loaded = load_predictor(folder, "sklearn")  # recovers, then checks every file
        assert loaded.name in {manifest.name, read_manifest(iris_model_dir).name}
        if loaded.name == "new":
            assert (folder / REPORT_FILE).read_bytes() == b"<p>the new set</p>"
            assert (folder / ONNX_FILE).exists() == with_graph
        assert loaded.predict_records([IRIS_ROW]).labels
        leftovers = [p.name for p in folder.iterdir() if p.name.startswith((".staging", ".commit"))]
        assert leftovers == []
        seen.add(loaded.name)
        shutil.rmtree(folder)
        if finished:
            break
        step += 1
    assert seen == {"new", read_manifest(iris_model_dir).name}
    assert step > 10  # the kill really landed between the steps of the save


def test_stale_staging_is_removed_by_the_next_save(model_copy: Path) -> None:
    stale = model_copy / f"{STAGING_PREFIX}dead"
    stale.mkdir()
    (stale / MODEL_FILE).write_bytes(b"half")
    manifest, files = _new_set(model_copy, with_graph=True)
    publish(model_copy, manifest, files)
    assert not stale.exists()
    assert read_manifest(model_copy).name == "new"


def test_a_folder_broken_by_release_0_1_0s_swap_is_restored_from_its_staging(
    model_copy: Path,
) -> None:
    """0.1.0 killed after renaming model.onnx but before model.json: the old set comes back."""
    old = read_manifest(model_copy)
    staging = model_copy / f"{STAGING_PREFIX}old"
    (staging / "previous").mkdir(parents=True)
    shutil.copy(model_copy / ONNX_FILE, staging / "previous" / ONNX_FILE)
    (model_copy / ONNX_FILE).write_bytes(b"the new graph, without its manifest")
    (staging / MANIFEST_FILE).write_text("{}")
    predictor = load_predictor(model_copy, "onnx")
    assert predictor.name == old.name
    assert not staging.exists()


def test_a_commit_left_by_a_killed_save_is_finished_by_the_next_load(model_copy: Path) -> None:
    """The state a kill leaves after the commit rename and one file's swap, built by hand."""
    manifest, files = _new_set(model_copy, with_graph=True)
    written = publish(model_copy.parent / "scratch", manifest, files)
    commit = model_copy / f"{COMMIT_PREFIX}byhand"
    shutil.copytree(model_copy.parent / "scratch", commit)
    (commit / REPORT_FILE).replace(model_copy / REPORT_FILE)
    with pytest.raises(ArtifactError):  # without recovery the folder is a mix of two sets
        artifacts.verify_file(model_copy, read_manifest_unrecovered(model_copy), REPORT_FILE)
    assert read_manifest(model_copy).files == written.files
    assert not commit.exists()


def read_manifest_unrecovered(folder: Path) -> Any:
    return artifacts._parse_manifest(folder)
