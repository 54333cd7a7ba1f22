"""hadolint on both Dockerfiles: needs no container engine, so it runs everywhere."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from container_support import DEMO_DIR, ROOT


@pytest.mark.parametrize(
    "dockerfile", [ROOT / "Dockerfile", DEMO_DIR / "Dockerfile"], ids=["project", "demo"]
)
def test_hadolint_passes(dockerfile: Path) -> None:
    hadolint = shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint is not installed (the lint group: uv sync --group lint)")
    result = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
