"""The selected ensemble refitted as one soft-voting model: its cost, and that it trains,
saves, loads and predicts the same through the CLI, every HTTP protocol and both runtimes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from mlcontainer.cli import main
from mlcontainer.console import show_training
from mlcontainer.core.config import Settings
from mlcontainer.serving.app import create_app
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.search.ensemble import ENSEMBLE, Blend, Member
from mlcontainer.training.search.ensemble_model import member_names, refit_seconds
from mlcontainer.training.search.scheduler.reserve import measured_refit
from mlcontainer.training.search.tuning import DEFAULT, Preset
from mlcontainer.training.workflow import run_training


def _member(model: str, seconds: float, rows: int, preset: Preset = DEFAULT) -> Member:
    return Member(model, preset, np.zeros((1, 1)), fit_seconds=seconds, fit_rows=rows)


def test_refit_cost_grows_each_member_with_the_rows_as_its_family_grows() -> None:
    blend = Blend((_member("ridge", 1.0, 1000), _member("random_forest", 2.0, 1000)), (0.5, 0.5))
    expected = measured_refit("ridge", fold_seconds=1.0, fold_rows=1000, rows=2000) + (
        measured_refit("random_forest", fold_seconds=2.0, fold_rows=1000, rows=2000)
    )
    assert refit_seconds(blend, 2000) == pytest.approx(expected)
    assert refit_seconds(blend, 2000) > 2 * 3.0  # both grow at least as fast as the rows


def test_members_of_one_family_get_numbered_step_names() -> None:
    blend = Blend(
        (
            _member("ridge", 1, 1),
            _member("random_forest", 1, 1),
            _member("ridge", 1, 1, Preset("alpha=10", {"alpha": 10.0})),
        ),
        (0.4, 0.4, 0.2),
    )
    assert member_names(blend) == ["ridge", "random_forest", "ridge_2"]


def _two_groups(path: Path, rows: int = 480) -> Path:
    """A target that is a sum over ten features (a linear model's strength) plus a step on an
    interaction of two others (a forest's): each family alone captures half of it."""
    rng = np.random.default_rng(0)
    lin = rng.normal(size=(rows, 10))
    step = rng.uniform(-1, 1, size=(rows, 2))
    y = lin.sum(axis=1) / np.sqrt(10) + 2 * np.sign(step[:, 0]) * (step[:, 1] > 0)
    frame = pd.DataFrame(
        np.column_stack([lin, step]), columns=[*(f"l{i}" for i in range(10)), "s0", "s1"]
    )
    frame["y"] = y + 0.2 * rng.normal(size=rows)
    frame.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_an_ensemble_that_wins_trains_saves_loads_and_predicts_the_same_everywhere(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _two_groups(tmp_path / "two_groups.csv")
    outcome = run_training(
        TrainOptions(
            dataset=str(data), target="y", models=("ridge", "random_forest"), cv=3,
            output=tmp_path / "model",
        )  # type: ignore[call-arg]
    )  # fmt: skip
    board = {c.name: c for c in outcome.result.leaderboard}
    assert outcome.result.selected == ENSEMBLE
    assert board[ENSEMBLE].means["rmse"] < min(
        board[m].means["rmse"] for m in ("ridge", "random_forest")
    )
    manifest = outcome.manifest
    assert manifest.model.members is not None
    assert {m.model for m in manifest.model.members} == {"ridge", "random_forest"}
    assert sum(m.weight for m in manifest.model.members) == pytest.approx(1.0, abs=1e-5)
    assert manifest.runtime.default == "onnx", manifest.runtime.reason
    show_training(outcome)
    shown = capsys.readouterr().out
    assert "Weighted ensemble (greedy selection, soft voting) of " in shown
    card = (outcome.output / "README.md").read_text()
    report = (outcome.output / "report.html").read_text()
    for member in manifest.model.members:
        assert member.model in card
        assert member.model in report

    rows = pd.read_csv(data).drop(columns="y").head(6)
    records = rows.to_dict("records")
    source = tmp_path / "rows.csv"
    rows.to_csv(source, index=False)
    answers = {}
    for runtime in ("onnx", "sklearn"):
        printed = CliRunner().invoke(
            main, ["predict", "--model", str(outcome.output), "--input", str(source),
                   "--format", "json", "--runtime", runtime],
        )  # fmt: skip
        assert printed.exit_code == 0, printed.output
        answers[f"cli {runtime}"] = json.loads(printed.stdout)["predictions"]
        client = create_app(Settings(model_dir=outcome.output, runtime=runtime)).test_client()
        answers[f"/predict {runtime}"] = client.post(
            "/predict", json={"instances": records}
        ).get_json()["predictions"]
        answers[f"/invocations {runtime}"] = client.post(
            "/invocations", json={"dataframe_records": records}
        ).get_json()["predictions"]
        inputs = [
            {"name": c, "datatype": "FP64", "shape": [len(rows)], "data": rows[c].tolist()}
            for c in rows.columns
        ]
        infer = client.post(f"/v2/models/{manifest.name}/infer", json={"inputs": inputs})
        answers[f"v2 {runtime}"] = infer.get_json()["outputs"][0]["data"]
    expected = np.asarray(answers["cli sklearn"], dtype=float)
    spread = float(np.std(pd.read_csv(data)["y"]))
    for where, values in answers.items():
        assert np.abs(np.asarray(values, dtype=float) - expected).max() <= 1e-4 * spread, where
