"""The package map: dependencies point one way, with no cycles, over the real import graph.

core <- training, core <- inference <- serving, and the command line on top; ``training`` and
``inference`` never import each other; the core imports no subpackage and never Flask or
click. Every import counts: at the top of a module, inside a function, or for typing only.
"""

from __future__ import annotations

import ast
import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "mlcontainer"

#: What each layer may import of the package (a layer may always import itself).
ALLOWED = {
    "core": {"core"},
    "training": {"core", "training"},
    "inference": {"core", "inference"},
    "serving": {"core", "inference", "serving"},
    "cli": {"core", "training", "inference", "serving", "cli"},
}
#: Third-party packages a layer must never import.
FORBIDDEN_LIBRARIES = {
    "core": {"flask", "click", "werkzeug", "gunicorn", "sklearn", "pandas", "skops"},
    "training": {"flask", "click", "werkzeug", "gunicorn"},
    "inference": {"flask", "click", "werkzeug", "gunicorn"},
    "serving": {"click"},
    "cli": set(),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] in ("__main__", "bake", "cli", "console"):
        return "cli"  # the package's __init__ holds only __version__; it imports nothing
    return parts[1]


def _runtime_nodes(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node of ``tree`` except those under ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in (
            "TYPE_CHECKING",
            "typing.TYPE_CHECKING",
        ):
            for other in node.orelse:
                yield other
                yield from _runtime_nodes(other)
            continue
        yield node
        yield from _runtime_nodes(node)


def _imports(path: Path, modules: set[str], *, runtime_only: bool = False) -> set[str]:
    """Every module ``path`` imports: package modules by name, libraries by top-level name
    (``runtime_only``: leaving out the imports for type checking)."""
    found: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in _runtime_nodes(tree) if runtime_only else ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            # `from mlcontainer.inference import decoding` names a module, not an attribute.
            found |= {f"{node.module}.{a.name}" for a in node.names} & modules
    return found


@functools.cache
def _graph() -> dict[str, set[str]]:
    modules = _modules()
    names = set(modules)
    return {name: _imports(path, names) for name, path in modules.items()}


def _package_imports(imports: set[str]) -> set[str]:
    return {m for m in imports if m == "mlcontainer" or m.startswith("mlcontainer.")}


@pytest.mark.parametrize("module", sorted(_modules()))
def test_each_module_imports_only_the_layers_below_it(module: str) -> None:
    layer = _layer(module)
    imports = _graph()[module]
    wrong = sorted(
        m
        for m in _package_imports(imports)
        if m != "mlcontainer" and _layer(m) not in ALLOWED[layer]
    )
    assert not wrong, f"{module} ({layer}) imports {wrong}"
    libraries = {m.split(".")[0] for m in imports} & FORBIDDEN_LIBRARIES[layer]
    assert not libraries, f"{module} ({layer}) imports {sorted(libraries)}"


def test_the_import_graph_has_no_cycle() -> None:
    graph = {
        m: {i for i in _package_imports(deps) if i in _graph()} for m, deps in _graph().items()
    }
    # A module depends on its package (importing mlcontainer.x.y runs mlcontainer.x first),
    # which is fine as long as the package's __init__ imports nothing: checked below.
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_package_inits_import_nothing_of_the_package() -> None:
    for name, path in _modules().items():
        if path.name == "__init__.py":
            assert not _package_imports(_imports(path, set(_modules()))), name


#: What the Dockerfile's model stage copies: the build-time entry, the console it prints
#: with, the core and training; never the CLI, inference or serving.
MODEL_STAGE = {"__init__.py", "bake.py", "console.py", "core", "training"}


def _in_model_stage(module: str) -> bool:
    parts = module.split(".")
    return len(parts) == 1 or parts[1] in {name.removesuffix(".py") for name in MODEL_STAGE}


def test_the_model_stage_copies_what_the_bake_imports_and_nothing_above_it() -> None:
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    stage = re.search(r"^FROM \S+ AS model$(.*?)^FROM ", text, re.MULTILINE | re.DOTALL)
    assert stage is not None, "the Dockerfile has no `model` stage"
    copied = set(re.findall(r"src/mlcontainer/(\S+)", stage.group(1)))
    assert copied == MODEL_STAGE, copied
    # The baked model then runs on nothing else: no CLI, inference or serving (imports for type
    # checking only never run, so they may name them).
    modules = _modules()
    for module, path in modules.items():
        if _in_model_stage(module):
            imports = _package_imports(_imports(path, set(modules), runtime_only=True))
            outside = {m for m in imports if not _in_model_stage(m)}
            assert not outside, f"{module} imports {sorted(outside)}, not in the model stage"
