"""The image itself: metadata, what it holds and leaves out, and layer reuse across rebuilds."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from container_support import APP_UID, ROOT, build, docker, inspect, run_once

import mlcontainer

pytestmark = pytest.mark.container

#: What the build context needs (the .dockerignore allowlist), copied to rebuild a variant.
CONTEXT_FILES = (
    "Dockerfile",
    ".dockerignore",
    "pyproject.toml",
    "uv.lock",
    "README.md",
    "docker/trim-venv.sh",
)


def _copy_context(target: Path) -> Path:
    target.mkdir(parents=True, exist_ok=True)
    for name in CONTEXT_FILES:
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
    shutil.copytree(
        ROOT / "src", target / "src", ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
    )
    return target


def _layers(ref: str) -> list[str]:
    return list(inspect(ref)["RootFS"]["Layers"])


def test_image_declares_entrypoint_command_port_volume_user_and_labels(image: str) -> None:
    config = inspect(image)["Config"]
    assert config["Entrypoint"] == ["mlcontainer"]
    assert config["Cmd"] == ["serve"]  # `docker run -p 4000:8080 IMAGE` serves
    assert "8080/tcp" in config["ExposedPorts"]
    assert "/app/artifacts" in config["Volumes"]
    assert config["User"].split(":")[0] not in ("", "0", "root")
    assert "MLCONTAINER_HOST=0.0.0.0" in config["Env"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "mlcontainer"
    assert labels["org.opencontainers.image.version"] == mlcontainer.__version__
    assert labels["org.opencontainers.image.source"].startswith("https://")


def test_container_process_runs_as_the_unprivileged_user(image: str) -> None:
    result = run_once(image, options=("--entrypoint", "id"))
    assert result.stdout.decode().startswith(f"uid={APP_UID}(app) gid={APP_UID}(app)")


def test_image_holds_no_uv_compiler_pip_cache_tests_or_pyarrow(image: str) -> None:
    # Look for each thing by name over the image's file system, not only on PATH.
    script = """
import importlib.util, pathlib, shutil
found = [p for p in ("uv", "uvx", "gcc", "cc", "g++", "make") if shutil.which(p)]
for root in ("/usr", "/opt", "/app", "/root", "/home", "/bin", "/sbin"):
    found += [str(p) for p in pathlib.Path(root).rglob("uv") if p.is_file()]
found += [p for p in ("/root/.cache", "/app/src", "/app/tests") if pathlib.Path(p).exists()]
site = pathlib.Path("/app/.venv/lib/python3.11/site-packages")
found += [str(p) for p in site.glob("*/**/tests") if p.is_dir()]
found += [m for m in ("pyarrow", "pytest", "mypy", "pip") if importlib.util.find_spec(m)]
print("\\n".join(found))
"""
    result = run_once(
        image, "-c", script, options=("--user", "0", "--entrypoint", "/app/.venv/bin/python")
    )
    assert result.stdout.decode().split() == []


def _rebuilt_after_change(
    image: str, context: Path, module: str, *args: str
) -> tuple[list[str], str]:
    """Append a comment to ``module``, rebuild the copied context, return the new layers and
    what the build printed."""
    source = context / "src" / "mlcontainer" / module
    source.write_text(source.read_text() + "\n# a code-only change\n")
    tag = f"{image}-{module.removesuffix('.py').replace('/', '-')}-change"
    try:
        built = docker("build", "-t", tag, *args, str(context), timeout=1200)
        printed = built.stdout.decode(errors="replace") + built.stderr.decode(errors="replace")
        return _layers(tag), printed
    finally:
        docker("rmi", tag, check=False)


#: Runtime image layers after the base image's: the app user, the venv's build id, the
#: dependency venv, the baked model, then the package.
USER, BUILD_ID, VENV, MODEL, PACKAGE = range(5)


@pytest.mark.parametrize("module", ["cli.py", "inference/predictor.py", "serving/app.py"])
def test_a_change_above_training_rebuilds_only_the_package_layer(
    image: str, tmp_path: Path, module: str
) -> None:
    # The model stage copies only core/ and training/: the baked model's layer is reused.
    base = len(_layers("python:3.11-slim"))
    new, _ = _rebuilt_after_change(image, _copy_context(tmp_path), module)
    old = _layers(image)
    assert new[: base + MODEL] == old[: base + MODEL], "a dependency layer was rebuilt"
    assert new[base + MODEL] == old[base + MODEL], "the baked model was retrained"
    assert new[base + PACKAGE] != old[base + PACKAGE], "the package layer did not change"
    assert len(new) == len(old) == base + PACKAGE + 1


def test_training_code_change_retrains_without_rebuilding_dependency_layers(
    image: str, tmp_path: Path
) -> None:
    base = len(_layers("python:3.11-slim"))
    # A one-model bake keeps this rebuild short; the build arg reaches only the model stage.
    new, printed = _rebuilt_after_change(
        image, _copy_context(tmp_path), "training/search/compare.py",
        "--build-arg", "TRAIN_ARGS=--models naive_bayes --cv 2",
    )  # fmt: skip
    old = _layers(image)
    assert new[: base + MODEL] == old[: base + MODEL], "a dependency layer was rebuilt"
    assert new[base + MODEL] != old[base + MODEL]
    assert new[base + PACKAGE] != old[base + PACKAGE]
    # The build prints the training output `docker run IMAGE train` prints.
    for said in ("compared naive_bayes (2 fits)", "Model comparison", "Selected: naive_bayes"):
        assert said in printed, printed[-3000:]


@pytest.mark.slow
def test_lockfile_change_rebuilds_the_dependency_stage(image: str, tmp_path: Path) -> None:
    # Guards the Dockerfile's COPY of uv.lock/pyproject.toml: Buildah leaves bind-mounted
    # files out of its cache key, so a bind mount alone would reuse stale dependencies.
    # The first dependency stage (serving only, the smaller install) is where they are copied.
    original = _copy_context(tmp_path / "original")
    changed = _copy_context(tmp_path / "changed")
    pyproject = changed / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# a metadata-only change\n")
    tags = (f"{image}-deps", f"{image}-deps-changed")
    try:
        before = build(original, tags[0], "--target", "serve-deps")
        after = build(changed, tags[1], "--target", "serve-deps")
    finally:
        docker("rmi", *tags, check=False)
    assert before != after
