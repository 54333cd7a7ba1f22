"""The training job end to end: reproducible, parallel-safe, and all-or-nothing on disk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from click.testing import CliRunner

from mlcontainer.cli import main
from mlcontainer.console import runtime_line
from mlcontainer.core.artifacts import RuntimeSection, sha256_bytes
from mlcontainer.core.errors import MlcontainerError
from mlcontainer.inference.predictor import load_predictor
from mlcontainer.training import workflow
from mlcontainer.training.data.dataset import load_dataset
from mlcontainer.training.export import onnx_export
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.search import budget, models
from mlcontainer.training.search.models import ModelSpec
from mlcontainer.training.workflow import run_training

MODELS = ("logistic_regression", "random_forest", "k_nearest_neighbors")


def _train_cli(output: Path, *extra: str) -> None:
    args = ["train", "-d", "penguins", "-m", ",".join(MODELS), "--cv", "3", "-o", str(output)]
    result = CliRunner().invoke(main, [*args, *extra])
    assert result.exit_code == 0, result.output


def _predict_cli(model: Path, rows: Path, fmt: str) -> bytes:
    result = CliRunner().invoke(
        main, ["predict", "--model", str(model), "-i", str(rows), "--format", fmt]
    )
    assert result.exit_code == 0, result.output
    return result.stdout_bytes


def _scores(manifest: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The leaderboard without its wall-clock timings."""
    return [(c["name"], c["scores"]) for c in manifest["leaderboard"]]


def _read(folder: Path, name: str) -> Any:
    return json.loads((folder / name).read_text())


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("repro")
    _train_cli(base / "first")
    _train_cli(base / "second")
    rows = base / "rows.csv"
    # Raw rows with missing values and an unseen category, as a user would send them.
    frame = load_dataset("penguins").X.iloc[:40].copy()
    frame.loc[0, "island"] = "Atlantis"
    frame.to_csv(rows, index=False)
    return base / "first", base / "second", rows


def test_same_command_twice_gives_identical_metrics(two_runs: tuple[Path, Path, Path]) -> None:
    first, second, _ = two_runs
    assert (first / "metrics.json").read_bytes() == (second / "metrics.json").read_bytes()
    assert (first / "confusion_matrix.png").read_bytes() == (
        second / "confusion_matrix.png"
    ).read_bytes()


def test_same_command_twice_gives_identical_leaderboard(two_runs: tuple[Path, Path, Path]) -> None:
    first, second, _ = two_runs
    one, two = _read(first, "model.json"), _read(second, "model.json")
    assert _scores(one) == _scores(two)
    assert one["selection"] == two["selection"]
    assert one["dataset"]["fingerprint"] == two["dataset"]["fingerprint"]


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_same_command_twice_gives_byte_identical_predictions(
    two_runs: tuple[Path, Path, Path], fmt: str
) -> None:
    first, second, rows = two_runs
    out_one = _predict_cli(first, rows, fmt)
    assert out_one == _predict_cli(second, rows, fmt)
    assert out_one == _predict_cli(first, rows, fmt)
    assert len(out_one) > 100


def test_a_different_seed_changes_the_split(two_runs: tuple[Path, Path, Path]) -> None:
    first, _, _ = two_runs
    other = first.parent / "seed7"
    _train_cli(other, "--seed", "7")
    assert _read(other, "model.json")["selection"]["seed"] == 7
    assert _scores(_read(other, "model.json")) != _scores(_read(first, "model.json"))


def test_two_jobs_give_the_same_leaderboard_as_one(tmp_path: Path) -> None:
    options = {"dataset": "wine", "models": MODELS, "cv": 3}
    serial = run_training(TrainOptions(output=tmp_path / "serial", jobs=1, **options))  # type: ignore[arg-type]
    parallel = run_training(TrainOptions(output=tmp_path / "parallel", jobs=2, **options))  # type: ignore[arg-type]
    assert _scores(serial.manifest.to_json()) == _scores(parallel.manifest.to_json())
    assert serial.manifest.to_json()["metrics"] == parallel.manifest.to_json()["metrics"]


def test_leaderboard_is_sorted_by_the_metric_best_first(tmp_path: Path) -> None:
    outcome = run_training(
        TrainOptions(dataset="wine", models=MODELS, cv=3, metric="log_loss", output=tmp_path)
    )
    losses = [c["scores"]["log_loss"]["mean"] for c in outcome.manifest.to_json()["leaderboard"]]
    assert losses == sorted(losses)
    assert (
        outcome.manifest.to_json()["selection"]["model"]
        == outcome.manifest.to_json()["leaderboard"][0]["name"]
    )
    for entry in outcome.manifest.to_json()["leaderboard"]:
        for score in entry["scores"].values():
            assert score["mean"] is None or score["std"] >= 0
        assert entry["fit_seconds"] >= 0
        assert entry["predict_ms_per_row"] >= 0


def test_a_failure_after_training_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_report(*args: object, **kwargs: object) -> str:
        raise MlcontainerError("report failed")

    monkeypatch.setattr(workflow, "render_report", broken_report)
    output = tmp_path / "out"
    with pytest.raises(MlcontainerError, match="report failed"):
        run_training(TrainOptions(dataset="iris", models=("naive_bayes",), cv=2, output=output))
    assert not output.exists()


def test_evaluation_uses_the_held_out_rows_once(tmp_path: Path) -> None:
    outcome = run_training(
        TrainOptions(dataset="iris", models=("naive_bayes",), cv=2, test_size=0.2, output=tmp_path)
    )
    split = outcome.result.split
    assert len(split.X_test) == 30
    assert outcome.evaluation.test_rows == 30
    assert set(split.X_train.index).isdisjoint(split.X_test.index)
    assert sum(sum(r) for r in outcome.evaluation.confusion_matrix) == 30
    per_class = pd.Series(split.y_test).value_counts()
    assert per_class.to_dict() == {"setosa": 10, "versicolor": 10, "virginica": 10}


def test_train_writes_a_verified_onnx_graph_listed_with_its_hash(
    iris_outcome: workflow.TrainOutcome,
) -> None:
    output, manifest = iris_outcome.output, iris_outcome.manifest.to_json()
    data = (output / "model.onnx").read_bytes()
    assert manifest["files"]["model.onnx"] == {"sha256": sha256_bytes(data), "bytes": len(data)}
    runtime = _read(output, "model.json")["runtime"]
    assert runtime["default"] == "onnx"
    assert runtime["reason"] is None
    check = runtime["onnx"]["verification"]
    assert check["rows"] == len(iris_outcome.result.split.X_test)
    assert check["labels_equal"] is True
    assert check["max_abs_probability_diff"] <= check["tolerance"] == 1e-4
    assert "onnx" in iris_outcome.seconds


def test_train_prints_the_runtime_line(iris_outcome: workflow.TrainOutcome) -> None:
    check = iris_outcome.manifest.to_json()["runtime"]["onnx"]["verification"]
    line = runtime_line(iris_outcome.manifest)
    assert line.startswith(f"Runtime: ONNX (verified on {check['rows']} test rows, max |Δp| ")
    fallback = iris_outcome.manifest.model_copy(
        update={"runtime": RuntimeSection(default="sklearn", reason="it disagrees")}
    )
    assert runtime_line(fallback) == "Runtime: scikit-learn (it disagrees)"


@pytest.fixture
def unconvertible_model(monkeypatch: pytest.MonkeyPatch) -> str:
    """Register a candidate skl2onnx has no converter for (label spreading)."""

    def label_spreading(seed: int) -> Any:
        from sklearn.semi_supervised import LabelSpreading

        del seed
        return LabelSpreading()

    spec = ModelSpec(
        "label_spreading", "Label spreading (no ONNX converter)", True, label_spreading
    )
    monkeypatch.setitem(models.MODELS, spec.name, spec)
    monkeypatch.setitem(budget.COSTS, spec.name, budget.Cost(1.0, 1.0, "a small graph"))
    return spec.name


def test_an_unconvertible_model_still_trains_and_is_served_by_sklearn(
    tmp_path: Path, unconvertible_model: str
) -> None:
    output = tmp_path / "out"
    # A verified graph from an earlier run must not survive a run that has none.
    run_training(TrainOptions(dataset="iris", models=("naive_bayes",), cv=2, output=output))
    assert (output / "model.onnx").exists()
    outcome = run_training(
        TrainOptions(dataset="iris", models=(unconvertible_model,), cv=2, output=output)
    )
    assert not (output / "model.onnx").exists()
    assert not list(output.glob(".staging-*"))
    manifest = _read(output, "model.json")
    assert "model.onnx" not in manifest["files"]
    runtime = manifest["runtime"]
    assert runtime["default"] == "sklearn"
    assert runtime["onnx"] is None
    assert runtime["reason"].startswith("skl2onnx cannot convert LabelSpreading: ")
    assert "\n" not in runtime["reason"]
    assert runtime_line(outcome.manifest) == f"Runtime: scikit-learn ({runtime['reason']})"
    loaded = load_predictor(output, "sklearn").backend.pipeline  # type: ignore[attr-defined]
    head = outcome.result.split.X_test.head(5)
    assert loaded.predict(head).tolist() == outcome.result.pipeline.predict(head).tolist()


def test_a_disagreeing_graph_is_not_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = onnx_export.export_onnx
    monkeypatch.setattr(
        workflow,
        "export_onnx",
        lambda pipeline, schema, X, **kw: real(pipeline, schema, X, **kw, tolerance=-1.0),
    )
    outcome = run_training(
        TrainOptions(dataset="iris", models=("naive_bayes",), cv=2, output=tmp_path)
    )
    assert not (tmp_path / "model.onnx").exists()
    runtime = outcome.manifest.to_json()["runtime"]
    assert runtime["default"] == "sklearn"
    assert "probabilities differ from scikit-learn's" in runtime["reason"]


def test_the_training_output_names_the_runtime(tmp_path: Path) -> None:
    args = ["train", "-d", "iris", "-m", "naive_bayes", "--cv", "2", "-o", str(tmp_path)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "Runtime: ONNX (verified on 30 test rows, max |Δp| " in result.output
    assert "model.onnx" in result.output


def test_train_saves_the_drift_reference_in_the_hashed_manifest(
    iris_outcome: workflow.TrainOutcome,
) -> None:
    from mlcontainer.core.artifacts import read_manifest

    manifest = read_manifest(iris_outcome.output)
    reference = manifest.reference
    assert reference is not None
    assert list(reference.features) == manifest.input_schema.names
    assert reference.rows == len(iris_outcome.result.split.X_train)
    assert reference.prediction is not None
    assert reference.prediction.rows == len(iris_outcome.result.split.X_test)
    assert manifest.format_version == 3  # an optional key older readers ignore: no bump
