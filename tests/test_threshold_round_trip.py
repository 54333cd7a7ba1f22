"""A binary model's tuned threshold (and calibration) is applied the same way everywhere:
ONNX and scikit-learn, /predict, /invocations (MLflow JSON and CSV), V2 infer and
`mlcontainer predict` give the same labels row for row, and on imbalanced data the tuned
threshold beats 0.5 on the selection metric."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import f1_score

from mlcontainer.cli import main
from mlcontainer.core.artifacts import read_manifest
from mlcontainer.core.config import Settings
from mlcontainer.serving.app import create_app

pytestmark = pytest.mark.slow

ROWS = 4_000


def _imbalanced(n: int, seed: int) -> pd.DataFrame:
    """About 8% positives; the positive class's log-odds are linear in a and b."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    logit = 1.8 * x[:, 0] + 0.9 * x[:, 1] - 3.2
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": y})


def _train(root: Path, rows: pd.DataFrame) -> tuple[Path, str]:
    """`mlcontainer train` a logistic regression on ``rows``; its folder and console output."""
    rows.to_csv(root / "train.csv", index=False)
    out = root / "model"
    result = CliRunner().invoke(
        main,
        ["train", "-d", str(root / "train.csv"), "-t", "label", "-o", str(out), "--models",
         "logistic_regression", "--time-budget", "0"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _train(tmp_path_factory.mktemp("threshold"), _imbalanced(ROWS, 0))[0]


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    return _imbalanced(600, 1)


def test_the_tuned_threshold_is_stored_and_beats_half_out_of_fold(folder: Path) -> None:
    decision = read_manifest(folder).decision
    assert decision is not None
    assert decision.metric == "f1_macro"
    assert decision.positive_class == "yes"
    assert abs(decision.threshold - 0.5) > 0.05
    assert decision.score_at_threshold is not None
    assert decision.score_at_half is not None
    assert decision.score_at_threshold > decision.score_at_half


def _answers(folder: Path, runtime: str, rows: pd.DataFrame, tmp: Path) -> dict[str, Any]:
    client = create_app(Settings(model_dir=folder, runtime=runtime)).test_client()
    records = rows.drop(columns="label").to_dict(orient="records")
    features = rows.drop(columns="label")
    out: dict[str, Any] = {}
    answer = client.post("/predict", json={"instances": records}).get_json()
    out["/predict"] = answer["predictions"]
    out["probability"] = [p["yes"] for p in answer["probabilities"]]
    split = {"columns": list(features.columns), "data": features.to_numpy().tolist()}
    out["/invocations split"] = client.post(
        "/invocations", json={"dataframe_split": split}
    ).get_json()["predictions"]
    out["/invocations CSV"] = client.post(
        "/invocations", data=features.to_csv(index=False), content_type="text/csv"
    ).get_json()["predictions"]
    v2 = {
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [len(rows)], "data": features[c].tolist()}
            for c in features.columns
        ]
    }
    outputs = client.post(f"/v2/models/{read_manifest(folder).name}/infer", json=v2).get_json()
    out["V2"] = next(o for o in outputs["outputs"] if o["name"] == "label")["data"]
    source = tmp / f"rows-{runtime}.csv"
    features.to_csv(source, index=False)
    result = CliRunner().invoke(
        main, ["predict", "--model", str(folder), "--input", str(source), "--format", "json",
               "--runtime", runtime],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    out["mlcontainer predict"] = [r["prediction"] for r in json.loads(result.stdout)]
    return out


def test_every_runtime_and_protocol_applies_the_same_threshold_row_for_row(
    folder: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    decision = read_manifest(folder).decision
    assert decision is not None
    by_runtime = {r: _answers(folder, r, rows, tmp_path) for r in ("onnx", "sklearn")}
    reference = by_runtime["sklearn"]["/predict"]
    p = np.asarray(by_runtime["sklearn"]["probability"])
    # The labels are the threshold applied to the (calibrated) probabilities, not argmax.
    assert reference == np.where(p >= decision.threshold, "yes", "no").tolist()
    between = (p >= min(decision.threshold, 0.5)) & (p < max(decision.threshold, 0.5))
    assert between.sum() >= 5  # rows the threshold labels differently from 0.5
    for runtime, answers in by_runtime.items():
        for where, labels in answers.items():
            if where != "probability":
                assert labels == reference, f"{runtime} {where}"
    np.testing.assert_allclose(by_runtime["onnx"]["probability"], p, atol=1e-5)


def test_on_unseen_imbalanced_rows_the_tuned_threshold_beats_half(
    folder: Path, rows: pd.DataFrame, tmp_path: Path
) -> None:
    answers = _answers(folder, "sklearn", rows, tmp_path)
    p = np.asarray(answers["probability"])
    truth = rows["label"].to_numpy()
    tuned = f1_score(truth, answers["/predict"], average="macro")
    half = f1_score(truth, np.where(p >= 0.5, "yes", "no"), average="macro")
    assert tuned > half


# --- several classes: class weights ---------------------------------------------------------


def _rare_classes(n: int, seed: int) -> pd.DataFrame:
    """Three classes, 80/15/5%, that overlap: argmax rarely names the rare ones."""
    rng = np.random.default_rng(seed)
    y = rng.choice(np.array(["common", "rare", "scarce"]), size=n, p=[0.8, 0.15, 0.05])
    centre = {"common": (0.0, 0.0), "rare": (1.0, 0.3), "scarce": (0.3, 1.2)}
    xy = np.array([centre[v] for v in y]) + rng.normal(size=(n, 2))
    return pd.DataFrame({"a": xy[:, 0], "b": xy[:, 1], "label": y})


@pytest.fixture(scope="module")
def weighted_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out, printed = _train(tmp_path_factory.mktemp("weights"), _rare_classes(4_000, 0))
    assert "largest weighted probability" in printed
    return out


def test_class_weights_are_applied_alike_by_every_runtime_and_protocol(
    weighted_folder: Path, tmp_path: Path
) -> None:
    manifest = read_manifest(weighted_folder)
    decision = manifest.decision
    assert decision is not None
    assert decision.class_weights is not None
    assert decision.score_at_threshold is not None
    assert decision.score_at_half is not None
    assert decision.score_at_threshold > decision.score_at_half
    rows = _rare_classes(600, 1)
    features = rows.drop(columns="label")
    classes = list(manifest.input_schema.classes)
    answers = {}
    for runtime in ("onnx", "sklearn"):
        client = create_app(Settings(model_dir=weighted_folder, runtime=runtime)).test_client()
        answer = client.post(
            "/predict", json={"instances": features.to_dict(orient="records")}
        ).get_json()
        proba = np.array([[p[c] for c in classes] for p in answer["probabilities"]])
        weighted = np.asarray(classes)[np.argmax(proba * decision.class_weights, axis=1)]
        assert answer["predictions"] == weighted.tolist(), runtime
        assert (weighted != np.asarray(classes)[np.argmax(proba, axis=1)]).sum() >= 5
        answers[f"{runtime} /predict"] = answer["predictions"]
        answers[f"{runtime} CSV"] = client.post(
            "/invocations", data=features.to_csv(index=False), content_type="text/csv"
        ).get_json()["predictions"]
        v2 = {"inputs": [{"name": c, "datatype": "FP64", "shape": [len(rows)],
                          "data": features[c].tolist()} for c in features.columns]}  # fmt: skip
        outputs = client.post(f"/v2/models/{manifest.name}/infer", json=v2).get_json()["outputs"]
        answers[f"{runtime} V2"] = next(o for o in outputs if o["name"] == "label")["data"]
        source = tmp_path / f"rows-{runtime}.csv"
        features.to_csv(source, index=False)
        result = CliRunner().invoke(
            main, ["predict", "--model", str(weighted_folder), "--input", str(source),
                   "--format", "json", "--runtime", runtime],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        answers[f"{runtime} predict"] = [r["prediction"] for r in json.loads(result.stdout)]
    reference = answers["sklearn /predict"]
    for where, labels in answers.items():
        assert labels == reference, where
    truth = rows["label"].to_numpy()
    plain = np.asarray(classes)[np.argmax(proba, axis=1)]
    assert f1_score(truth, reference, average="macro") > f1_score(truth, plain, average="macro")
