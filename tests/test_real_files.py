"""Real public files as their publishers ship them, untouched: train, predict the file's own
rows, serve one row. The four UCI copies in ../shared/datasets have no header line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlcontainer.cli import main
from mlcontainer.core.config import Settings
from mlcontainer.serving.app import create_app

pytestmark = pytest.mark.slow

#: File, target as `train` names it, expected classes, rows.
CLASSIFICATION = [
    ("pima-indians-diabetes.csv", "column_9", [0, 1], 768),
    ("sonar.csv", "column_61", ["M", "R"], 208),
    ("winequality-red.csv", "column_12", [3, 4, 5, 6, 7, 8], 1599),
    ("titanic.csv", "survived", [0, 1], 891),
]


@pytest.mark.parametrize(("name", "target", "classes", "rows"), CLASSIFICATION)
def test_a_public_file_trains_predicts_and_serves_untouched(
    shared_datasets: Path, tmp_path: Path, name: str, target: str, classes: list[object], rows: int
) -> None:
    source = shared_datasets / name
    model = tmp_path / "model"
    runner = CliRunner()
    trained = runner.invoke(
        main,
        ["train", "-d", str(source), "-t", target, "-o", str(model),
         "--models", "logistic_regression,random_forest", "--cv", "3"],
    )  # fmt: skip
    assert trained.exit_code == 0, trained.output
    manifest = json.loads((model / "model.json").read_text())
    assert manifest["schema"]["classes"] == classes
    assert manifest["dataset"]["rows"] == rows
    if target.startswith("column_"):
        assert "has no header line" in " ".join(trained.output.split())
        assert manifest["intake"]["header"] is False

    out = tmp_path / "predictions.csv"
    predicted = runner.invoke(
        main, ["predict", "--model", str(model), "-i", str(source), "-o", str(out)]
    )
    assert predicted.exit_code == 0, predicted.output
    lines = out.read_text().splitlines()
    assert len(lines) == rows + 1  # every row of the file, the header line of the output
    assert lines[0].startswith("prediction,proba_")

    client = create_app(Settings(model_dir=model)).test_client()
    first = source.read_text().splitlines()[0 if target.startswith("column_") else 1]
    answer = client.post(
        "/invocations", data=first.encode() + b"\n", headers={"Content-Type": "text/csv"}
    )
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert len(answer.get_json()["predictions"]) == 1
    assert str(answer.get_json()["predictions"][0]) == lines[1].split(",")[0]
