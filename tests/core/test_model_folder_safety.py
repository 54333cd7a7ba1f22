"""Crafted model folders and killed saves: nothing read outside the folder, no half-saved set."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

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
    recover,
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
    (os, "rename"),
    (os, "replace"),
    (os, "unlink"),
    (os, "mkdir"),
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
    old_name = read_manifest(iris_model_dir).name
    while True:
        folder = Path(shutil.copytree(iris_model_dir, tmp_path / f"kill-{step}"))
        manifest, files = _new_set(folder, with_graph=with_graph)
        finished = _publish_killed_at(folder, step, manifest, files)
        before = _snapshot(folder)
        # A load writes nothing: it serves a whole set or refuses the folder.
        assert _load_name(folder) in {manifest.name, old_name, "refused"}
        assert _snapshot(folder) == before
        recover(folder)
        loaded = load_predictor(folder, "sklearn")
        assert loaded.name in {manifest.name, old_name}
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
    with pytest.raises(ArtifactError, match=r"model\.onnx does not match"):
        load_predictor(model_copy, "onnx")  # a load puts nothing back
    assert recover(model_copy) == [
        f"restored the set a save by release 0.1.0 had set aside ({staging.name})"
    ]
    predictor = load_predictor(model_copy, "onnx")
    assert predictor.name == old.name
    assert not staging.exists()


def _load_name(folder: Path) -> str:
    """The name of the set a load serves, or "refused" for a refusal saying why."""
    try:
        return load_predictor(folder, "sklearn").name
    except ArtifactError as exc:
        if "mlcontainer recover" in exc.message or "does not match" in exc.message:
            return "refused"
        raise


def _snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (links as their targets' names), to compare whole."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_symlink():
            out[str(path.relative_to(folder))] = str(path.readlink()).encode()
        elif path.is_file():
            out[str(path.relative_to(folder))] = path.read_bytes()
    return out


def _commit_by_hand(model_copy: Path) -> tuple[Path, Any]:
    """The state a kill leaves after the commit rename and one file's swap."""
    manifest, files = _new_set(model_copy, with_graph=True)
    written = publish(model_copy.parent / "scratch", manifest, files)
    commit = model_copy / f"{COMMIT_PREFIX}byhand"
    shutil.copytree(model_copy.parent / "scratch", commit)
    (commit / REPORT_FILE).replace(model_copy / REPORT_FILE)
    return commit, written


def test_a_load_never_finishes_a_commit_it_refuses_the_folder_saying_how(
    model_copy: Path,
) -> None:
    """Recovery at load swapped in whatever a `.commit-*` folder held: model.json did not
    tell what would be served."""
    commit, written = _commit_by_hand(model_copy)
    before = _snapshot(model_copy)
    with pytest.raises(ArtifactError, match="interrupted after it was published") as caught:
        load_predictor(model_copy, "sklearn")
    assert f"mlcontainer recover --model {model_copy}" in caught.value.message
    assert _snapshot(model_copy) == before  # nothing moved, nothing removed
    assert recover(model_copy) == [
        f"finished the save interrupted after it was published ({commit.name})"
    ]
    assert read_manifest(model_copy).files == written.files
    assert not commit.exists()
    assert recover(model_copy) == []


# --- only the folder's own entries: links, foreign entries, hard links ----------------------


@pytest.fixture
def victim(iris_model_dir: Path, tmp_path: Path) -> Path:
    """Another model folder, which nothing done to the loaded one may touch."""
    return Path(shutil.copytree(iris_model_dir, tmp_path / "victim"))


@pytest.mark.parametrize("prefix", [COMMIT_PREFIX, STAGING_PREFIX])
def test_a_leftover_linked_to_another_model_folder_leaves_that_folder_intact(
    model_copy: Path, victim: Path, prefix: str
) -> None:
    """A `.commit-*` link made `predict` move the other folder's files into this one."""
    (victim / "previous").mkdir()  # what a 0.1.0 staging folder held
    shutil.copy(victim / REPORT_FILE, victim / "previous" / REPORT_FILE)
    untouched = _snapshot(victim)
    manifest, files = _new_set(model_copy, with_graph=True)
    link = model_copy / f"{prefix}x"
    link.symlink_to(victim)
    (model_copy / REPORT_FILE).write_text("damaged")  # not whole: tempts a 0.1.0 restore
    with pytest.raises(ArtifactError, match=r"report\.html does not match"):
        load_predictor(model_copy, "sklearn")
    assert recover(model_copy) == []  # a link is not a save's folder: left alone
    publish(model_copy, manifest, files)  # a train into the folder
    assert load_predictor(model_copy, "sklearn").name == "new"
    assert link.is_symlink()
    assert _snapshot(victim) == untouched
    assert load_predictor(victim, "sklearn").predict_records([IRIS_ROW]).labels


def test_a_commit_link_does_not_stop_the_folder_from_loading(
    model_copy: Path, victim: Path
) -> None:
    (model_copy / f"{COMMIT_PREFIX}x").symlink_to(victim)
    before, untouched = _snapshot(model_copy), _snapshot(victim)
    assert load_predictor(model_copy, "sklearn").predict_records([IRIS_ROW]).labels
    assert _snapshot(model_copy) == before
    assert _snapshot(victim) == untouched


@pytest.mark.parametrize("kind", ["file", "fifo"])
def test_a_leftover_that_is_not_a_folder_is_left_alone_without_blocking(
    model_copy: Path, kind: str
) -> None:
    entry = model_copy / f"{COMMIT_PREFIX}x"
    if kind == "fifo":
        os.mkfifo(entry)
    else:
        entry.write_text("{}")
    assert load_predictor(model_copy, "sklearn").predict_records([IRIS_ROW]).labels
    assert recover(model_copy) == []
    assert os.path.lexists(entry)


def test_a_commit_whose_file_links_elsewhere_is_refused_and_nothing_moves(
    model_copy: Path, victim: Path
) -> None:
    """A real commit folder whose model.skops is a link to another folder's: never moved in."""
    commit, _ = _commit_by_hand(model_copy)
    (commit / MODEL_FILE).unlink()
    (commit / MODEL_FILE).symlink_to(victim / MODEL_FILE)
    data = json.loads((commit / MANIFEST_FILE).read_text())
    content = (victim / MODEL_FILE).read_bytes()
    data["files"][MODEL_FILE] = {"sha256": sha256_bytes(content), "bytes": len(content)}
    (commit / MANIFEST_FILE).write_text(json.dumps(data))
    before, untouched = _snapshot(model_copy), _snapshot(victim)
    with pytest.raises(ArtifactError, match=r"is not a save mlcontainer can finish: model\.skops"):
        recover(model_copy)
    assert _snapshot(model_copy) == before
    assert _snapshot(victim) == untouched


@pytest.mark.parametrize("name", [REPORT_FILE, MODEL_FILE, MANIFEST_FILE])
def test_a_file_with_a_second_hard_link_is_refused(
    model_copy: Path, tmp_path: Path, name: str
) -> None:
    """A hard link to a file elsewhere, its hash in the manifest, was served by /report."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes((model_copy / name).read_bytes())
    (model_copy / name).unlink()
    os.link(elsewhere, model_copy / name)
    with pytest.raises(ArtifactError, match=f"{name} has 2 hard links"):
        load_predictor(model_copy, "sklearn")


# --- crafted manifests: typed errors, never a traceback ----------------------------------------


@pytest.mark.parametrize("depth", [100, 100_000])
def test_a_manifest_nested_too_deep_is_refused_in_one_line(model_copy: Path, depth: int) -> None:
    """100 000 levels ended in a RecursionError traceback."""
    text = (model_copy / MANIFEST_FILE).read_text().rstrip().removesuffix("}")
    (model_copy / MANIFEST_FILE).write_text(f'{text}, "extra": {"[" * depth}{"]" * depth}}}')
    with pytest.raises(ArtifactError, match="nests more than 64 levels deep"):
        load_predictor(model_copy, "sklearn")


@pytest.mark.parametrize("runtime", ["sklearn", "onnx"])
def test_a_manifest_without_features_is_refused(model_copy: Path, runtime: str) -> None:
    """With the scikit-learn runtime: a TypeError traceback from inside scikit-learn."""
    _rewrite_manifest(model_copy, lambda d: d["schema"].update(features=[]))
    with pytest.raises(ArtifactError, match="the schema lists no features"):
        load_predictor(model_copy, runtime)


def test_a_manifest_naming_other_features_than_the_pipeline_is_refused(model_copy: Path) -> None:
    def rename(data: dict[str, Any]) -> None:
        data["schema"]["features"][0]["name"] = "renamed"

    _rewrite_manifest(model_copy, rename)
    with pytest.raises(ArtifactError, match=r"reads the features \['sepal length \(cm\)'"):
        load_predictor(model_copy, "sklearn")


@pytest.mark.parametrize(
    ("runtime", "said"),
    [
        ("sklearn", r"classes \['setosa', 'versicolor', 'virginica'\] vs \['c0', .*100000 in all"),
        ("onnx", "it gives 3 class probabilities, the manifest lists 100000 classes"),
    ],
)
def test_a_manifest_with_100_000_class_names_is_refused_in_a_short_message(
    model_copy: Path, runtime: str, said: str
) -> None:
    """ONNX served it, labelling every row 'c0'..'c2'; scikit-learn's refusal quoted all
    100 000 names (1 MB of message)."""
    classes = [f"c{i}" for i in range(100_000)]
    _rewrite_manifest(model_copy, lambda d: d["schema"].update(classes=classes))
    with pytest.raises(ArtifactError, match=said) as caught:
        load_predictor(model_copy, runtime)
    assert len(caught.value.message) < 400
