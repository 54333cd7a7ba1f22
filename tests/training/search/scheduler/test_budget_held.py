"""The whole `train` command keeps its time budget on a busy machine (two busy loops beside
it), counted from the process's start to its exit, the report and export included."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

#: The budget counts from the `train` command's start (the training stack's imports
#: included); outside it are Python's start with click's import before, and the
#: interpreter's teardown after: 0.5-1.5 s at load 6-12 here; 3 s leaves room for CI.
EXIT_ALLOWANCE = 3.0


def _five_thousand_rows(path: Path) -> Path:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(5_000, 10))
    score = x[:, 0] + 0.7 * x[:, 1] * x[:, 2] + rng.normal(0, 0.5, 5_000)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(10)])
    frame["group"] = rng.choice(["a", "b", "c", "d"], 5_000)
    frame["label"] = np.array(["low", "mid", "high"])[np.digitize(score, [-0.6, 0.6])]
    frame.to_csv(path, index=False)
    return path


@dataclass(frozen=True)
class _Run:
    wall: float
    done: subprocess.CompletedProcess[str]
    model: Path


@pytest.fixture(scope="module")
def busy_run(tmp_path_factory: pytest.TempPathFactory) -> _Run:
    """One `train --time-budget 20` on 5 000 rows with two busy loops beside it."""
    # The promise is for up to 3x oversubscription: with the two loops added, the machine's
    # load must stay within 3 runnable processes per core.
    cores = os.cpu_count() or 1
    if os.getloadavg()[0] + 2 > 3 * cores:
        pytest.skip(f"load {os.getloadavg()[0]:.1f} on {cores} cores is beyond 3x with the loops")
    tmp_path = tmp_path_factory.mktemp("budget")
    data = _five_thousand_rows(tmp_path / "rows.csv")
    exe = Path(sys.executable).parent / "mlcontainer"
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2)]
    try:
        start = time.perf_counter()
        done = subprocess.run(
            [str(exe), "train", "-d", str(data), "-t", "label", "--time-budget", "20",
             "-o", str(tmp_path / "model")],
            capture_output=True, text=True, check=False, timeout=180,
        )  # fmt: skip
        wall = time.perf_counter() - start
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return _Run(wall, done, tmp_path / "model")


@pytest.mark.slow
def test_a_20_s_budget_beside_two_busy_loops_still_refits_on_every_training_row(
    busy_run: _Run,
) -> None:
    assert busy_run.done.returncode == 0, busy_run.done.stdout + busy_run.done.stderr
    selection = json.loads((busy_run.model / "model.json").read_text())["selection"]
    assert selection["fit_rows"] == selection["train_rows"] == 4_000


@pytest.mark.slow
@pytest.mark.xfail(
    strict=False,
    raises=AssertionError,
    reason="issue 22 open: a running fit is not stopped and the report/export are not "
    "budgeted; 50-60 s measured for 20 s at load 2-4 with the loops (bench/README.md)",
)
def test_a_20_s_budget_ends_within_22_s_beside_two_busy_loops(busy_run: _Run) -> None:
    assert busy_run.done.returncode == 0
    assert busy_run.wall <= 20 * 1.1 + EXIT_ALLOWANCE, busy_run.done.stdout
