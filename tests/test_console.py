"""The terminal output helpers: progress displays stay out of logs and pipes."""

from __future__ import annotations

import subprocess
import sys


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
