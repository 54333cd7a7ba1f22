"""The image's build-time training entry: same options as `train`, and the model stage's files.

The Dockerfile's model stage copies only the modules `python -m mlcontainer.bake` imports, so
that a change to the CLI, serving or prediction code does not retrain the baked model. These
tests keep that list equal to the entry's import closure, so the split cannot silently rot.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcontainer import bake, workflow
from mlcontainer.cli import main
from mlcontainer.workflow import TrainOptions

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
    assert "--cv: 'five' is not a number" in capsys.readouterr().err


def _module_file(name: str) -> Path:
    parts = name.split(".")[1:]
    path = PACKAGE.joinpath(*parts)
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


def _imports(name: str) -> set[str]:
    """Every ``mlcontainer`` module ``name`` imports, at the top or inside functions."""
    tree = ast.parse(_module_file(name).read_text())
    typing_only = {
        id(node)
        for block in ast.walk(tree)
        if isinstance(block, ast.If) and "TYPE_CHECKING" in ast.unparse(block.test)
        for stmt in block.body
        for node in ast.walk(stmt)
    }
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "mlcontainer"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlcontainer"):
            module = str(node.module)
            found.add(module)
            # `from mlcontainer import console` names a module, not an attribute.
            found |= {
                f"{module}.{a.name}"
                for a in node.names
                if _module_file(f"{module}.{a.name}").exists()
            }
    # Importing a submodule runs its packages' __init__ too.
    return {".".join(m.split(".")[:i]) for m in found for i in range(1, m.count(".") + 2)}


def _import_closure(entry: str) -> set[str]:
    closure, todo = set(), [entry, "mlcontainer"]
    while todo:
        name = todo.pop()
        if name not in closure:
            closure.add(name)
            todo.extend(_imports(name))
    return closure


def _model_stage_modules() -> set[str]:
    """The ``src/mlcontainer/*.py`` files the Dockerfile's model stage copies, as modules."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stage = re.search(r"^FROM \S+ AS model$(.*?)^FROM ", text, re.MULTILINE | re.DOTALL)
    assert stage is not None, "the Dockerfile has no `model` stage"
    files = re.findall(r"src/(mlcontainer/\S+)\.py", stage.group(1))
    assert files, "the model stage copies no module"
    return {f.replace("/", ".").removesuffix(".__init__") for f in files}


def test_model_stage_copies_exactly_the_training_entrys_import_closure() -> None:
    closure = _import_closure(ENTRY)
    listed = _model_stage_modules()
    assert listed >= closure, f"the model stage misses {sorted(closure - listed)}"
    assert listed <= closure, f"training never imports {sorted(listed - closure)}"
    assert {"mlcontainer.cli", "mlcontainer.serving", "mlcontainer.prediction"}.isdisjoint(listed)


def test_training_entry_imports_only_listed_modules_in_a_fresh_interpreter() -> None:
    code = f"import sys, {ENTRY}; print(*[m for m in sys.modules if m.startswith('mlcontainer')])"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = set(out.split())
    assert ENTRY in loaded
    assert loaded <= _model_stage_modules(), sorted(loaded - _model_stage_modules())


@pytest.mark.slow
def test_training_entry_bakes_a_model_from_the_listed_modules_alone(tmp_path: Path) -> None:
    # What the model stage does: only the listed files on the path, a quick bake.
    tree = tmp_path / "train" / "mlcontainer"
    tree.mkdir(parents=True)
    for module in _model_stage_modules():
        source = _module_file(module)
        (tree / source.relative_to(PACKAGE)).write_bytes(source.read_bytes())
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
    assert "Selected: naive_bayes" in result.stdout
    assert (output / "model.skops").is_file()
    assert (output / "model.onnx").is_file()
