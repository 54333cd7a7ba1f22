"""The image's build-time training entry: the same options as `train`, from the same fields.

The Dockerfile's model stage copies only this entry, the console, the core and ``training/``
(what they import is checked by ``tests/test_architecture.py``), so that a change to the CLI,
inference or serving code does not retrain the baked model; the container tests check that a
CLI change reuses the layer.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcontainer import bake
from mlcontainer.cli import main
from mlcontainer.training import workflow
from mlcontainer.training.options import TrainOptions

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "mlcontainer"
ENTRY = "mlcontainer.bake"


class _Captured(Exception):  # a signal carrying the options out of the command
    def __init__(self, options: TrainOptions) -> None:
        super().__init__()
        self.options = options


def _cli_options(args: list[str], monkeypatch: pytest.MonkeyPatch) -> TrainOptions:
    """The options `mlcontainer train ARGS` hands to the workflow (which is stopped there)."""

    def capture(options: TrainOptions, **_: object) -> None:
        raise _Captured(options)

    monkeypatch.setattr(workflow, "run_training", capture)
    result = CliRunner().invoke(main, ["train", *args])
    assert isinstance(result.exception, _Captured), result.output
    return result.exception.options


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["--models", "naive_bayes", "--cv", "2"],
        ["--dataset", "iris", "--seed", "7", "--test-size", "0.3", "--jobs", "1",
         "--metric", "accuracy", "--na-values", "?, NA", "--drop", "a, b",
         "--time-budget", "0", "--output", "elsewhere"],
    ],
    ids=["defaults", "quick-bake", "every-kind-of-option"],
)  # fmt: skip
def test_bake_builds_the_same_options_as_train(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert bake.parse_options(args) == _cli_options(args, monkeypatch)


def test_bake_refuses_a_non_number_where_train_wants_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exc:
        bake.parse_options(["--cv", "five"])
    assert exc.value.code == 2
    assert "--cv: 'five' is not a valid integer" in capsys.readouterr().err
    result = CliRunner().invoke(main, ["train", "--cv", "five"])
    assert result.exit_code == 2
    assert "'five' is not a valid integer" in result.output


def test_bake_and_train_offer_the_same_options() -> None:
    bake_help = subprocess.run(
        [sys.executable, "-m", ENTRY, "--help"], capture_output=True, text=True, check=True
    ).stdout
    train_help = CliRunner().invoke(main, ["train", "--help"]).output
    flags = re.compile(r"^\s+(?:-\w, )?(--[a-z][a-z-]+)", re.MULTILINE)
    assert set(flags.findall(bake_help)) - {"--help"} == set(flags.findall(train_help)) - {"--help"}
    assert len(set(flags.findall(train_help))) > 10


@pytest.mark.slow
def test_training_entry_bakes_a_model_and_prints_what_train_prints(tmp_path: Path) -> None:
    # What the model stage does: only these modules, core/ and training/ on the path.
    tree = tmp_path / "train" / "mlcontainer"
    tree.mkdir(parents=True)
    for module in ("__init__.py", "bake.py", "console.py"):
        shutil.copy2(PACKAGE / module, tree / module)
    for folder in ("core", "training"):
        shutil.copytree(PACKAGE / folder, tree / folder)
    code = (
        f"import runpy, sys; sys.path.insert(0, {str(tree.parent)!r}); "
        f"runpy.run_module({ENTRY!r}, run_name='__main__')"
    )
    output = tmp_path / "artifacts"
    args = ["--output", str(output), "--models", "naive_bayes", "--cv", "2"]
    result = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Selected: naive_bayes, on " in result.stdout  # the metrics table's title
    assert "Model comparison" in result.stdout
    assert "compared naive_bayes (2 fits)" in result.stderr  # progress, a line per candidate
    assert (output / "model.skops").is_file()
    assert (output / "model.onnx").is_file()
