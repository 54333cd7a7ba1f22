"""Benchmark how fast the command line answers: help, usage errors, missing files.

Usage (from the repository root):

    uv run python bench/cli_bench.py               # 7 runs of each case, both installs
    uv run python bench/cli_bench.py --runs 15
    uv run python bench/cli_bench.py --before 133c7f2   # the same cases on an older commit too

Two installs of the project are made under ~/.cache/mlcontainer-bench (uv sync --no-dev
--extra train --no-editable, the way an image installs it): one with bytecode compiled
(UV_COMPILE_BYTECODE=1), one without any .pyc and run with PYTHONDONTWRITEBYTECODE=1, as
in CI jobs and containers that set it. The standard library keeps its own bytecode in both,
as the python images ship it. Each run is a fresh process; the script prints the median and
the range of each case, and the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mlcontainer-bench"
#: What is timed, and the exit status each case must end with.
CASES = {
    "mlcontainer --help": (["--help"], 0),
    "serve --help": (["serve", "--help"], 0),
    "train --help": (["train", "--help"], 0),
    "usage error (train --bogus)": (["train", "--bogus"], 2),
    "usage error (serve --port x)": (["serve", "--port", "x"], 2),
    "missing dataset (train -d nope.csv)": (["train", "-d", "nope.csv", "-t", "y"], 1),
    "missing input (predict -i nope.csv)": (["predict", "-i", "nope.csv"], 1),
}


def install(name: str, *, bytecode: bool, source: Path = REPO) -> Path:
    """A non-editable install of ``source`` in its own venv; returns its ``mlcontainer``."""
    venv = CACHE / name
    env = {k: v for k, v in os.environ.items() if k not in ("UV_COMPILE_BYTECODE", "VIRTUAL_ENV")}
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    if bytecode:
        env["UV_COMPILE_BYTECODE"] = "1"
    subprocess.run(
        [
            "uv",
            "sync",
            "--locked",
            "--no-dev",
            "--extra",
            "train",
            "--no-editable",
            "--reinstall-package",
            "mlcontainer",
        ],
        cwd=source,
        env=env,
        check=True,
        capture_output=True,
    )
    compiled = any(venv.rglob("*.pyc"))
    if compiled != bytecode:
        raise SystemExit(f"{venv}: expected bytecode={bytecode}, found compiled={compiled}")
    return venv / "bin" / "mlcontainer"


def time_case(exe: Path, args: list[str], code: int, *, bytecode: bool, cwd: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCONTAINER_")}
    if bytecode:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    start = time.perf_counter()
    done = subprocess.run([exe, *args], cwd=cwd, env=env, capture_output=True, check=False)
    took = time.perf_counter() - start
    if done.returncode != code:
        raise SystemExit(f"{args}: exit {done.returncode}, expected {code}: {done.stderr[-500:]!r}")
    return took


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--before", help="a commit to time too, installed from a git worktree")
    args = parser.parse_args()
    installs = {
        "bytecode": install("cli-pyc", bytecode=True),
        "no bytecode": install("cli-nopyc", bytecode=False),
    }
    if args.before:
        tree = CACHE / "cli-before-tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", tree, args.before], cwd=REPO, check=True
        )
        try:
            installs[f"{args.before} bytecode"] = install(
                "cli-before-pyc", bytecode=True, source=tree
            )
            installs[f"{args.before} no bytecode"] = install(
                "cli-before-nopyc", bytecode=False, source=tree
            )
        finally:  # the venvs are non-editable: the tree is no longer needed
            subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=REPO, check=True)
    print(f"load average before: {Path('/proc/loadavg').read_text().strip()}")
    cwd = Path(tempfile.mkdtemp())
    try:
        print(f"| case | {' | '.join(f'{k}: median (range) s' for k in installs)} |")
        print(f"|---|{'---|' * len(installs)}")
        for label, (argv, code) in CASES.items():
            cells = []
            for kind, exe in installs.items():
                bytecode = not kind.endswith("no bytecode")
                time_case(exe, argv, code, bytecode=bytecode, cwd=cwd)  # warm the file cache
                runs = [
                    time_case(exe, argv, code, bytecode=bytecode, cwd=cwd) for _ in range(args.runs)
                ]
                cells.append(f"{statistics.median(runs):.3f} ({min(runs):.3f}-{max(runs):.3f})")
            print(f"| {label} | {' | '.join(cells)} |")
    finally:
        shutil.rmtree(cwd)
    print(f"load average after: {Path('/proc/loadavg').read_text().strip()}")


if __name__ == "__main__":
    main()
