"""`mlcontainer drift`: the ranked table, the report file and the exit code of the gate."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcontainer.cli import main
from mlcontainer.training.workflow import TrainOutcome

FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="module")
def batches(penguins_outcome: TrainOutcome, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("batches")
    frame = penguins_outcome.dataset.X.sample(1_000, replace=True, random_state=2)
    frame.to_csv(folder / "same.csv", index=False)
    frame["flipper_length_mm"] += 40
    frame.to_csv(folder / "shifted.csv", index=False)
    return folder


def _drift(model: Path, data: Path, *extra: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(
        main, ["drift", "--model", str(model), "--input", str(data), *extra]
    )
    return result.exit_code, result.stdout, result.stderr


def test_drift_exits_3_above_the_gate_and_ranks_the_shifted_feature_first(
    penguins_outcome: TrainOutcome, batches: Path
) -> None:
    report = batches / "shifted.html"
    code, out, err = _drift(
        penguins_outcome.output, batches / "shifted.csv", "--fail-above", "0.25",
        "--report", str(report),
    )  # fmt: skip
    assert code == 3, out + err
    table = [line for line in out.splitlines() if "_mm" in line or "body_mass" in line]
    assert "flipper_length_mm" in table[0]
    assert "Drift above 0.25" in err
    assert report.read_text().count("<img ") >= 1


def test_drift_exits_0_below_the_gate(penguins_outcome: TrainOutcome, batches: Path) -> None:
    report = batches / "same.html"
    code, out, err = _drift(
        penguins_outcome.output, batches / "same.csv", "--fail-above", "0.25",
        "--report", str(report),
    )  # fmt: skip
    assert code == 0, out + err
    assert "Drift of 1000 rows" in out
    assert report.is_file()


def test_drift_refuses_a_missing_input_before_loading_the_model(tmp_path: Path) -> None:
    code, _, err = _drift(tmp_path / "no-model", tmp_path / "absent.csv")
    assert code == 1
    assert "absent.csv" in err
