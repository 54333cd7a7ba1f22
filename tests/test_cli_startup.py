"""The command line answers help, usage errors and missing files without loading what it does
not need: checked on the modules a real process imports (``python -X importtime``), not on
the clock (bench/cli_bench.py times it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: What a run that only answers must not import: the training and serving stacks.
HEAVY = {
    "numpy",
    "pandas",
    "sklearn",
    "scipy",
    "pydantic",
    "onnxruntime",
    "flask",
    "matplotlib",
    "rich",
    "mlcontainer.training.search",
    "mlcontainer.training.workflow",
    "mlcontainer.inference",
    "mlcontainer.serving",
}


def _imported(args: list[str], cwd: Path) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``python -m mlcontainer ARGS`` and return it with every module it imported."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCONTAINER_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mlcontainer", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
        timeout=120,
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    return done, modules


def _heavy(modules: set[str]) -> set[str]:
    return {m for m in modules if m in HEAVY or any(m.startswith(h + ".") for h in HEAVY)}


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--help"], 0, "Commands:"),
        (["serve", "--help"], 0, "--workers"),
        (["predict", "--help"], 0, "--chunk-size"),
        (["train", "--help"], 0, "--time-budget"),
        (["train", "--bogus"], 2, "No such option"),  # click 8.2.0 words it without quotes
        (["train", "--cv", "five"], 2, "'five' is not a valid integer"),
        (["serve", "--port", "x"], 2, "'x' is not a valid integer"),
        (["nope"], 2, "No such command 'nope'"),
        (["train", "-d", "missing.csv", "-t", "y"], 1, "dataset file not found: missing.csv"),
        (["train", "-d", "data.txt", "-t", "y"], 1, "unsupported file type '.txt'"),
        (["train", "-d", "winee"], 1, "unknown dataset 'winee' (did you mean 'wine'?)"),
        (["predict", "-i", "missing.csv"], 1, "input file not found: missing.csv"),
    ],
)
def test_answers_without_loading_the_training_or_serving_stack(
    args: list[str], code: int, says: str, tmp_path: Path
) -> None:
    (tmp_path / "data.txt").write_text("a,y\n1,x\n")
    done, modules = _imported(args, tmp_path)
    assert done.returncode == code, done.stderr[-2000:]
    assert says in done.stdout + done.stderr
    assert "mlcontainer.cli" in modules  # the check sees the real imports
    assert not _heavy(modules)


def test_a_bad_option_value_is_refused_before_the_data_is_read(tmp_path: Path) -> None:
    # The file exists and the option is wrong: refused from the options alone.
    (tmp_path / "d.csv").write_text("a,y\n1,x\n2,z\n")
    done, modules = _imported(["train", "-d", "d.csv", "-t", "y", "--jobs", "0"], tmp_path)
    assert done.returncode == 1
    assert "--jobs must not be 0" in done.stderr
    assert not _heavy(modules)
