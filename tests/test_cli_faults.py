"""`predict` under faults: a full disk, a huge line, SIGTERM: one line, no traceback, no debris."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

HEADER = "sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n"


def _predict(model: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlcontainer", "predict", "--model", str(model), *args],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


@pytest.fixture
def full_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 KiB tmpfs, full once a little output is written (needs root, as CI runs)."""
    mount = tmp_path / "full"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
                          capture_output=True, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=False)


@pytest.fixture(scope="module")
def rows_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rows") / "rows.csv"
    path.write_text(HEADER + "5.1,3.5,1.4,0.2\n" * 20_000)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_predict_onto_a_full_disk_is_a_one_line_error(
    iris_model_dir: Path, rows_file: Path, full_disk: Path, fmt: str
) -> None:
    result = _predict(iris_model_dir, "-i", str(rows_file), "-o", str(full_disk / f"out.{fmt}"))
    assert result.returncode == 1
    assert "No space left on device" in result.stderr
    assert "Traceback" not in result.stderr
    assert list(full_disk.iterdir()) == []  # no .partial left behind


@pytest.mark.slow
def test_predict_to_stdout_on_a_full_disk_fails_instead_of_cutting_the_output(
    iris_model_dir: Path, rows_file: Path, full_disk: Path
) -> None:
    """A buffered stdout returned a short count and the run exited 0 with 64 KiB of 1 MB."""
    with (full_disk / "out.csv").open("wb") as out:
        result = subprocess.run(
            [sys.executable, "-m", "mlcontainer", "predict", "--model", str(iris_model_dir),
             "-i", str(rows_file)],
            stdout=out, stderr=subprocess.PIPE, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert result.returncode == 1
    assert "cannot write the predictions: No space left on device" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("line", ["a", ","], ids=["one field", "empty fields"])
def test_a_line_longer_than_the_limit_is_refused_before_it_is_read_whole(
    iris_model_dir: Path, tmp_path: Path, line: str
) -> None:
    source = tmp_path / "one-line.csv"
    with source.open("w") as out:
        out.write(HEADER if line == "," else "")
        for _ in range(20):
            out.write(line * 1_000_000)
    result = _predict(iris_model_dir, "-i", str(source), "-o", str(tmp_path / "out.csv"))
    assert result.returncode == 1
    assert "the line is longer than 16777216 characters" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_sigterm_during_predict_removes_the_partial_output(
    iris_model_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "big.csv"
    source.write_text(HEADER + "5.1,3.5,1.4,0.2\n" * 400_000)
    output = tmp_path / "out" / "predictions.csv"
    log = tmp_path / "predict.log"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlcontainer", "predict", "--model", str(iris_model_dir),
             "-i", str(source), "-o", str(output), "--chunk-size", "500",
             "--csv-reader", "stdlib"],
            stdout=subprocess.DEVNULL, stderr=err,
        )  # fmt: skip
    deadline = time.monotonic() + 60
    while not list(output.parent.glob(".*.partial")) and time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        time.sleep(0.05)
    assert list(output.parent.glob(".*.partial")), "no partial output appeared"
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 128 + signal.SIGTERM, log.read_text()
    assert list(output.parent.iterdir()) == []
    assert "Traceback" not in log.read_text()


def test_running_out_of_memory_while_reading_is_a_one_line_error(
    iris_model_dir: Path, rows_file: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from click.testing import CliRunner

    from mlcontainer.cli import main
    from mlcontainer.inference import batch

    def exhausted(*args: object, **kwargs: object) -> Iterator[None]:
        raise MemoryError  # on the reader thread, as a huge row would
        yield

    monkeypatch.setattr(batch, "_chunks", exhausted)
    output = tmp_path / "out.csv"
    result = CliRunner().invoke(
        main, ["predict", "--model", str(iris_model_dir), "-i", str(rows_file), "-o", str(output)]
    )
    assert result.exit_code == 1
    assert "out of memory while reading the input" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert list(tmp_path.iterdir()) == []
