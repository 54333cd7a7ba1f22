"""The terminal output helpers: progress displays stay out of logs and pipes."""

from __future__ import annotations

import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest


def test_an_error_in_a_pipe_is_one_paragraph_with_no_stray_blank_line() -> None:
    # stderr is a pipe here, as in CI logs: the progress display must leave nothing behind.
    done = subprocess.run(
        [sys.executable, "-m", "mlcontainer", "train", "--dataset", "no-such-dataset"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert done.stderr.startswith("Error: unknown dataset 'no-such-dataset'")
    assert done.stderr.count("\n") == 1


def _env() -> dict[str, str]:
    """The caller's environment without buffering switched off: lines must be flushed by us."""
    return {
        k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED" and "MLCONTAINER" not in k
    }


TRAIN = ["-d", "iris", "--models", "naive_bayes,hist_gradient_boosting,k_nearest_neighbors"]


@pytest.mark.slow
def test_piped_training_writes_a_line_per_candidate_as_it_finishes(tmp_path: Path) -> None:
    seen: list[tuple[str, bool]] = []  # each line, and whether the run was still going
    with subprocess.Popen(
        [sys.executable, "-m", "mlcontainer", "train", *TRAIN, "--cv", "2", "-o", "m"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stderr is not None
        assert proc.stdout is not None
        for line in proc.stderr:
            seen.append((line.rstrip("\n"), proc.poll() is None))
        stdout = proc.stdout.read()
    assert proc.wait(timeout=300) == 0, seen
    lines = [text for text, _ in seen]
    compared = [
        text.split("compared ", 1)[1].split(" (")[0] for text in lines if "compared " in text
    ]
    assert sorted(compared) == sorted([*TRAIN[3].split(","), "baseline"])  # each once
    assert [text.split("s  ", 1)[1] for text in lines if "compared" not in text] == [
        "comparing models",
        "evaluating",
        "exporting to ONNX",
        "writing report",
        "saving model",
    ]
    # The first candidate's line came while the run went on: written as it happened.
    assert next(going for text, going in seen if "compared" in text)
    assert not [text for text in lines if "Warning" in text or "warn" in text]
    # Not a terminal: no table is cut to 80 columns, no name shortened.
    assert "│ hist_gradient_boosting" in stdout
    assert not [row for row in stdout.splitlines() if "│" in row and "…" in row]


@pytest.mark.slow
def test_a_terminal_shows_the_candidate_the_fold_and_the_time_left(tmp_path: Path) -> None:
    main, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlcontainer", "train", *TRAIN, "--cv", "2", "-o", "m"],
        cwd=tmp_path,
        env={**_env(), "COLUMNS": "120", "TERM": "xterm"},
        stdout=subprocess.DEVNULL,
        stderr=follower,
    )
    os.close(follower)
    screen = b""
    while True:
        try:
            chunk = os.read(main, 1 << 16)
        except OSError:  # the process closed the terminal
            break
        if not chunk:
            break
        screen += chunk
    os.close(main)
    assert proc.wait(timeout=300) == 0
    text = screen.decode(errors="replace")
    assert re.search(r"comparing models: \w+, fold [12] of 2", text)
    assert re.search(r"\d+ s left of 60 s", text)
    assert "compared " not in text  # the live line says it: no log lines on a terminal


def test_other_libraries_warnings_stay_off_stderr_while_training_shows() -> None:
    # scikit-learn warns about `parallel.delayed` when another thread's catch_warnings has
    # emptied the filters at the moment its Parallel starts: emptied here on purpose.
    script = """
import sys, warnings
from sklearn.utils.parallel import Parallel, delayed
from mlcontainer import console
warnings.resetwarnings()
def run():
    Parallel(n_jobs=1)(delayed(abs)(-1) for _ in range(2))
if sys.argv[1] == "showing":
    with console.training_progress(budget=60.0, cv=5):
        run()
else:
    run()
"""
    outcomes = {
        when: subprocess.run(
            [sys.executable, "-c", script, when], capture_output=True, text=True, check=True
        ).stderr
        for when in ("showing", "alone")
    }
    assert "sklearn.utils.parallel.delayed" in outcomes["alone"]  # the warning is real
    assert outcomes["showing"] == ""


def test_a_table_title_longer_than_its_table_stays_on_one_line_in_a_pipe(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mlcontainer import console

    title = "Selected: hist_gradient_boosting, on 10000 held-out test rows"
    console.show_list(title, [("a", "b")])
    lines = capsys.readouterr().out.splitlines()
    assert any(line.strip() == title for line in lines), lines
