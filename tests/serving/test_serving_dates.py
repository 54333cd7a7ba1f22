"""Date columns end to end: a taxis-like file (pickup and dropoff timestamps) trains with
calendar features inside the saved pipeline, and `mlcontainer predict` on the CSV,
/predict and /invocations give the same numbers row for row."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlcontainer.cli import main
from mlcontainer.core.artifacts import read_manifest
from mlcontainer.core.config import Settings
from mlcontainer.serving.app import create_app
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.workflow import TrainOutcome, run_training

STAMP = "%Y-%m-%d %H:%M:%S"


def taxis_like(rows: int, *, seed: int = 0) -> pd.DataFrame:
    """Trips whose fare depends on the distance, the pickup hour (a rush-hour surcharge) and
    the weekday (weekends cost more): the dates carry signal a model can only get from the
    calendar. A few dropoffs are missing."""
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2019-03-01") + pd.to_timedelta(
        rng.integers(0, 31 * 24 * 3600, rows), unit="s"
    )
    end = start + pd.to_timedelta(rng.uniform(3, 40, rows), unit="m")
    distance = rng.uniform(0.5, 10, rows).round(2)
    rush = (start.hour >= 16) & (start.hour <= 19)
    fare = 2.5 + 2.5 * distance + 8.0 * rush + 4.0 * (start.day_of_week >= 5)
    frame = pd.DataFrame(
        {
            "pickup": start.strftime(STAMP),
            "dropoff": end.strftime(STAMP),
            "distance": distance,
            "payment": rng.choice(["cash", "credit card"], rows),
            "fare": (fare + rng.normal(0, 0.5, rows)).round(2),
        }
    )
    frame.loc[rng.choice(rows, 5, replace=False), "dropoff"] = ""
    return frame


@pytest.fixture(scope="module")
def taxis_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("taxis") / "taxis.csv"
    taxis_like(300).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def taxis_outcome(tmp_path_factory: pytest.TempPathFactory, taxis_file: Path) -> TrainOutcome:
    output = tmp_path_factory.mktemp("taxis-model") / "artifacts"
    options = TrainOptions(
        dataset=str(taxis_file), target="fare", models=("random_forest",), cv=3, output=output
    )
    return run_training(options)


def test_dates_become_calendar_features_recorded_in_the_manifest(
    taxis_outcome: TrainOutcome,
) -> None:
    manifest = read_manifest(taxis_outcome.output)
    assert manifest.schema_.dates == {"pickup": STAMP, "dropoff": STAMP}
    assert manifest.recipe.dates == {"pickup": STAMP, "dropoff": STAMP}
    assert manifest.runtime is not None
    assert manifest.runtime.default == "sklearn"
    assert "date column(s) 'pickup', 'dropoff'" in (manifest.runtime.reason or "")
    assert not any("ID" in w for w in taxis_outcome.dataset.warnings)
    # The calendar carries the surcharges: far better than distance alone could explain.
    assert taxis_outcome.evaluation.metrics["r2"] > 0.9


def test_predict_csv_and_every_route_agree_row_for_row(
    taxis_outcome: TrainOutcome, taxis_file: Path, tmp_path: Path
) -> None:
    rows = pd.read_csv(taxis_file, keep_default_na=False).drop(columns="fare").head(40)
    source = tmp_path / "rows.csv"
    rows.to_csv(source, index=False)
    result = CliRunner().invoke(
        main,
        ["predict", "--model", str(taxis_outcome.output), "--input", str(source), "--format",
         "json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)["predictions"]

    client = create_app(Settings(model_dir=taxis_outcome.output)).test_client()
    records = [{k: (v if v != "" else None) for k, v in r.items()} for r in rows.to_dict("records")]
    native = client.post("/predict", json={"instances": records})
    assert native.status_code == 200, native.get_data(as_text=True)
    mlflow = client.post(
        "/invocations", data=source.read_bytes(), headers={"Content-Type": "text/csv"}
    )
    assert mlflow.status_code == 200, mlflow.get_data(as_text=True)
    assert len(printed) == 40
    assert native.get_json()["predictions"] == pytest.approx(printed, abs=1e-9)
    assert mlflow.get_json()["predictions"] == pytest.approx(printed, abs=1e-9)
    assert len(set(printed)) > 30  # real answers, not one constant


def test_a_value_that_is_not_a_date_predicts_as_a_missing_one(
    taxis_outcome: TrainOutcome,
) -> None:
    client = create_app(Settings(model_dir=taxis_outcome.output)).test_client()
    row = {"pickup": "2019-03-04 17:30:00", "distance": 3.0, "payment": "cash"}
    answers = [
        client.post("/predict", json={"instances": [{**row, "dropoff": value}]}).get_json()
        for value in (None, "yesterday")
    ]
    assert answers[0]["predictions"] == answers[1]["predictions"]
