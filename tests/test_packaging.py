"""The pip path of the README: a clean venv, requirements.txt, the wheel pip builds, then use it.

uv builds with its own bundled backend and never asks the package index for `uv_build`; pip
does, so only a pip install shows that the build requirement is one the index can satisfy.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import tree_snapshot

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
#: Fast training options: one quick candidate, two folds (seconds, not a minute).
FAST_TRAIN = ["--models", "naive_bayes", "--cv", "2"]
#: Does pip's index answer for the build backend? (pip says "No matching distribution" whether
#: the index is unreachable or lacks it; a bound it cannot satisfy still fails the build below.)
#: No retries: pip's default waits 15 s x 5 for an unreachable index.
PROBE = ["index", "versions", "uv_build", "--retries", "0", "--timeout", "10"]


def _env(tmp: Path) -> dict[str, str]:
    """The caller's environment without what would leak the checkout or a model into the venv."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MLCONTAINER_", "UV_")) and k not in {"MODEL_DIR", "PYTHONPATH"}
    }
    env.pop("VIRTUAL_ENV", None)
    env |= {"PIP_DISABLE_PIP_VERSION_CHECK": "1", "MLCONTAINER_CACHE_DIR": str(tmp / "cache")}
    return env


def _run(*args: str | Path, env: dict[str, str], timeout: float, cwd: Path) -> str:
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def pip_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean venv with requirements.txt installed by pip; skips when the index is unreachable."""
    tmp = tmp_path_factory.mktemp("pip-venv")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip, env = venv / "bin" / "pip", _env(tmp)
    probe = subprocess.run(
        [pip, *PROBE], cwd=tmp, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    if probe.returncode != 0:
        last = (probe.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"pip cannot reach an index that serves uv_build (PyPI): {last}")
    _run(pip, "install", "-r", ROOT / "requirements.txt", env=env, timeout=900, cwd=tmp)
    return venv


def test_pip_builds_the_wheel_with_the_index_backend_and_leaves_the_checkout_untouched(
    pip_venv: Path, tmp_path: Path
) -> None:
    before = tree_snapshot(ROOT / "src")
    wheels = tmp_path / "wheels"
    _run(
        pip_venv / "bin" / "pip", "wheel", "--no-deps", "--wheel-dir", wheels, ROOT,
        env=_env(tmp_path), timeout=300, cwd=tmp_path,
    )  # fmt: skip
    assert [p.name for p in wheels.iterdir()] == ["mlcontainer-0.1.0-py3-none-any.whl"]
    assert tree_snapshot(ROOT / "src") == before
    assert not (ROOT / "build").exists()
    assert not list(ROOT.glob("*.egg-info"))


def test_pip_installed_project_trains_and_predicts(pip_venv: Path, tmp_path: Path) -> None:
    env, bin_dir = _env(tmp_path), pip_venv / "bin"
    wheels = tmp_path / "wheels"
    _run(
        bin_dir / "pip", "wheel", "--no-deps", "--wheel-dir", wheels, ROOT,
        env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = wheels.glob("mlcontainer-*.whl")
    _run(bin_dir / "pip", "install", "--no-deps", wheel, env=env, timeout=300, cwd=tmp_path)
    # The installed package, not the checkout's src/, is what runs.
    location = _run(
        bin_dir / "python", "-c", "import mlcontainer; print(mlcontainer.__file__)",
        env=env, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert Path(location.strip()).is_relative_to(pip_venv)

    artifacts = tmp_path / "artifacts"
    trained = _run(
        bin_dir / "mlcontainer", "train", *FAST_TRAIN, "--output", artifacts,
        env=env, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert "Selected: naive_bayes" in trained
    assert {"model.skops", "model.json", "metrics.json", "report.html"} <= {
        p.name for p in artifacts.iterdir()
    }
    assert json.loads((artifacts / "model.json").read_text())["dataset"]["name"] == "wine"

    rows = list(csv.DictReader(io.StringIO((ROOT / "examples" / "new_rows.csv").read_text())))
    predicted = _run(
        bin_dir / "mlcontainer", "predict", "--model", artifacts,
        "--input", ROOT / "examples" / "new_rows.csv",
        env=env, timeout=300, cwd=tmp_path,
    )  # fmt: skip
    out = list(csv.DictReader(io.StringIO(predicted)))
    assert len(out) == len(rows) == 5
    assert {row["prediction"] for row in out} <= {"class_0", "class_1", "class_2"}
    for row in out:
        probabilities = [float(v) for k, v in row.items() if k.startswith("proba_")]
        assert abs(sum(probabilities) - 1.0) < 1e-5
