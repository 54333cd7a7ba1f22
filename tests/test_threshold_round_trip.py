"""One decision on every path: a binary model's tuned threshold (and calibration) and a
multiclass model's class weights turn probabilities into the same label row for row in
`mlcontainer predict` (CSV through both renderings, stdout and a file, both CSV readers; JSON),
/predict, /invocations (every input format), V2 infer, the page in a browser and the
test-split metrics and confusion matrix written at training, under ONNX and scikit-learn; and
that label is the manifest's decision applied to the model's probabilities, not the most
probable class. On imbalanced data the tuned decision beats the plain one."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from sklearn.metrics import confusion_matrix, f1_score
from support import browser_missing, browser_page, serve_app

from mlcontainer.cli import main
from mlcontainer.core.artifacts import METRICS_FILE, Decision
from mlcontainer.core.config import Settings
from mlcontainer.serving.app import create_app
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.workflow import TrainOutcome, run_training

pytestmark = pytest.mark.slow

ROWS = 4_000
RUNTIMES = ("onnx", "sklearn")
#: Rows the page is asked about in the browser (one form submission each).
PAGE_ROWS = 6


def _imbalanced(n: int, seed: int, names: Sequence[str] = ("no", "yes")) -> pd.DataFrame:
    """About 8% positives; the positive class's log-odds are linear in a and b."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    logit = 1.8 * x[:, 0] + 0.9 * x[:, 1] - 3.2
    y = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), names[1], names[0])
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": y})


def _rare_classes(
    n: int, seed: int, names: Sequence[str] = ("common", "rare", "scarce")
) -> pd.DataFrame:
    """Three classes, 80/15/5%, that overlap: argmax rarely names the rare ones."""
    rng = np.random.default_rng(seed)
    y = rng.choice(np.arange(3), size=n, p=[0.8, 0.15, 0.05])
    centre = np.array([(0.0, 0.0), (1.0, 0.3), (0.3, 1.2)])
    xy = centre[y] + rng.normal(size=(n, 2))
    return pd.DataFrame({"a": xy[:, 0], "b": xy[:, 1], "label": np.asarray(names)[y]})


#: The trained models: a threshold and class weights, each with class names that CSV writes
#: plainly (the array-rendered output) and with names it must quote (the csv-module output).
MODELS: dict[str, Callable[[int, int], pd.DataFrame]] = {
    "threshold": _imbalanced,
    "class weights": _rare_classes,
    "threshold, quoted names": lambda n, seed: _imbalanced(n, seed, ("no, thanks", 'yes "x"')),
    "class weights, quoted names": lambda n, seed: _rare_classes(
        n, seed, ("common", "rare, odd", "scarce")
    ),
}


def _train(root: Path, rows: pd.DataFrame) -> TrainOutcome:
    """Train a logistic regression on ``rows`` as `mlcontainer train` does (no time budget)."""
    rows.to_csv(root / "train.csv", index=False)
    options = TrainOptions(
        dataset=str(root / "train.csv"), target="label", models=("logistic_regression",),
        time_budget=0, output=root / "model",
    )  # fmt: skip
    return run_training(options)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], TrainOutcome]:
    """Train each of :data:`MODELS` once, when first asked for."""
    done: dict[str, TrainOutcome] = {}

    def get(kind: str) -> TrainOutcome:
        if kind not in done:
            done[kind] = _train(tmp_path_factory.mktemp("decision"), MODELS[kind](ROWS, 0))
        return done[kind]

    return get


@pytest.fixture(params=list(MODELS))
def trained(request: pytest.FixtureRequest, models: Callable[[str], TrainOutcome]) -> TrainOutcome:
    return models(request.param)


def _by_hand(
    proba: np.ndarray, classes: list[Any], decision: Decision
) -> tuple[np.ndarray, list[Any]]:
    """The manifest's decision applied to raw probabilities, written out here on purpose:
    the probabilities served (calibrated, for a calibrated model) and the labels."""
    if decision.class_weights is not None:
        chosen = np.argmax(proba * np.asarray(decision.class_weights), axis=1)
    else:
        positive = classes.index(decision.positive_class)
        if decision.calibration is not None:
            p = np.clip(proba[:, positive], 1e-12, 1 - 1e-12)
            a, b = decision.calibration.a, decision.calibration.b
            proba = np.zeros_like(proba)
            proba[:, positive] = 1 / (1 + np.exp(-(a * np.log(p / (1 - p)) + b)))
            proba[:, 1 - positive] = 1 - proba[:, positive]
        assert decision.threshold is not None
        chosen = np.where(proba[:, positive] >= decision.threshold, positive, 1 - positive)
    return proba, [classes[i] for i in chosen]


def _predict_cli(folder: Path, source: Path, *args: str) -> str:
    result = CliRunner().invoke(
        main, ["predict", "--model", str(folder), "--input", str(source), *args]
    )
    assert result.exit_code == 0, result.output
    return result.stdout


def _csv_labels(text: str) -> list[str]:
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][0] == "prediction"
    return [row[0] for row in rows[1:]]


@dataclass
class Paths:
    """Every path's labels for the same rows, by where they came from."""

    labels: dict[str, list[Any]]

    def add(self, where: str, labels: list[Any]) -> None:
        self.labels[where] = labels


def _cli_paths(folder: Path, features: pd.DataFrame, runtime: str, tmp: Path, out: Paths) -> None:
    source = tmp / f"rows-{runtime}.csv"
    features.to_csv(source, index=False)
    for reader in ("arrow", "stdlib"):
        common = ("--runtime", runtime, "--csv-reader", reader)
        out.add(f"predict CSV stdout {reader}", _csv_labels(_predict_cli(folder, source, *common)))
    written = tmp / f"out-{runtime}.csv"
    _predict_cli(folder, source, "--runtime", runtime, "-o", str(written))
    out.add("predict CSV -o", _csv_labels(written.read_text()))
    # Chunks of 7 rows: each chunk is rendered on its own, then joined.
    chunked = _predict_cli(folder, source, "--runtime", runtime, "--chunk-size", "7")
    out.add("predict CSV chunked", _csv_labels(chunked))
    as_json = _predict_cli(folder, source, "--runtime", runtime, "--format", "json")
    out.add("predict JSON", [r["prediction"] for r in json.loads(as_json)])
    written = tmp / f"out-{runtime}.json"
    _predict_cli(folder, source, "--runtime", runtime, "-o", str(written))
    out.add("predict JSON -o", [r["prediction"] for r in json.loads(written.read_text())])


def _http_paths(client: Any, name: str, features: pd.DataFrame, out: Paths) -> np.ndarray:
    """Every HTTP route's labels; returns /predict's probabilities (classes in schema order)."""
    records = features.to_dict(orient="records")
    rows = features.to_numpy().tolist()
    answer = client.post("/predict", json={"instances": records}).get_json()
    out.add("/predict records", answer["predictions"])
    out.add(
        "/predict rows",
        client.post("/predict", json={"instances": rows}).get_json()["predictions"],
    )
    split = {"columns": list(features.columns), "data": rows}
    columns = {c: features[c].tolist() for c in features.columns}
    for fmt, body in (
        ("dataframe_split", split),
        ("dataframe_records", records),
        ("instances", records),
        ("inputs", records),
        ("inputs as columns", columns),
    ):
        key = fmt.split(" ")[0]
        reply = client.post("/invocations", json={key: body}).get_json()
        out.add(f"/invocations {fmt}", reply["predictions"])
    reply = client.post(
        "/invocations", data=features.to_csv(index=False), content_type="text/csv"
    ).get_json()
    out.add("/invocations CSV", reply["predictions"])
    v2 = {
        "inputs": [
            {"name": c, "datatype": "FP64", "shape": [len(features)], "data": features[c].tolist()}
            for c in features.columns
        ]
    }
    outputs = client.post(f"/v2/models/{name}/infer", json=v2).get_json()["outputs"]
    out.add("V2 infer", next(o for o in outputs if o["name"] == "label")["data"])
    return np.array([list(p.values()) for p in answer["probabilities"]])


def _page_labels(app: Any, features: pd.DataFrame) -> list[str]:
    """The label the page shows for each row, typed into its form in headless Chromium."""
    shown = []
    with serve_app(app) as url, browser_page() as page:
        page.goto(url)
        for record in features.to_dict(orient="records"):
            page.evaluate("() => { document.querySelector('#result').textContent = ''; }")
            for column, value in record.items():
                page.fill(f"input[data-kind='numeric'][data-feature='{column}']", repr(value))
            page.click("button[type='submit']")
            page.wait_for_selector("#prediction")
            shown.append(page.locator("#prediction").inner_text())
    return shown


def test_every_path_gives_the_manifest_decision_row_for_row(
    trained: TrainOutcome, tmp_path: Path
) -> None:
    manifest, folder = trained.manifest, trained.output
    decision = manifest.decision
    assert decision is not None
    classes = list(manifest.input_schema.classes)
    features = trained.result.split.X_test
    truth = trained.result.split.y_test.tolist()
    raw = np.asarray(trained.result.pipeline.predict_proba(features))
    served, expected = _by_hand(raw, classes, decision)
    most_probable = [classes[i] for i in np.argmax(raw, axis=1)]
    differs = [i for i, (a, b) in enumerate(zip(expected, most_probable, strict=True)) if a != b]
    assert len(differs) >= 5, "too few rows where the decision and argmax disagree to tell"

    # Training: the test-split labels, metrics and confusion matrix are the decision's.
    assert list(trained.evaluation.predicted) == expected
    assert manifest.confusion_matrix == confusion_matrix(truth, expected, labels=classes).tolist()
    written = json.loads((folder / METRICS_FILE).read_text())
    accuracy = float(np.mean(np.asarray(expected) == np.asarray(truth)))
    assert written["metrics"]["accuracy"] == pytest.approx(accuracy)
    for sample in trained.evaluation.samples:
        row = features.index.get_loc(sample["row"])
        assert sample["predicted"] == expected[row]
        # The probability shown beside a label is that label's.
        assert sample["probability"] == pytest.approx(served[row, classes.index(expected[row])])

    page_rows = features.iloc[(differs + list(range(len(features))))[:PAGE_ROWS]]
    wrong: dict[str, int] = {}
    for runtime in RUNTIMES:
        paths = Paths({})
        _cli_paths(folder, features, runtime, tmp_path, paths)
        app = create_app(Settings(model_dir=folder, runtime=runtime))
        proba = _http_paths(app.test_client(), manifest.name, features, paths)
        np.testing.assert_allclose(proba, served, atol=1e-5, err_msg=runtime)
        if browser_missing() is None and runtime == "onnx":  # the page's script asks /predict
            want = [expected[features.index.get_loc(i)] for i in page_rows.index]
            assert _page_labels(app, page_rows) == [str(v) for v in want]
        for where, labels in paths.labels.items():
            assert len(labels) == len(expected), f"{runtime} {where}"
            differing = sum(a != b for a, b in zip(labels, expected, strict=True))
            if differing:
                wrong[f"{runtime} {where}"] = differing
    assert not wrong, f"rows whose label is not the decision's, of {len(expected)}: {wrong}"


# --- what the tuned decision buys ------------------------------------------------------------


@pytest.fixture
def threshold_model(models: Callable[[str], TrainOutcome]) -> TrainOutcome:
    return models("threshold")


@pytest.fixture
def weights_model(models: Callable[[str], TrainOutcome]) -> TrainOutcome:
    return models("class weights")


def test_the_tuned_threshold_is_stored_and_beats_half_out_of_fold(
    threshold_model: TrainOutcome,
) -> None:
    decision = threshold_model.manifest.decision
    assert decision is not None
    assert decision.metric == "f1_macro"
    assert decision.positive_class == "yes"
    assert decision.threshold is not None
    assert abs(decision.threshold - 0.5) > 0.05
    assert decision.score_at_threshold is not None
    assert decision.score_at_half is not None
    assert decision.score_at_threshold > decision.score_at_half


def test_on_unseen_imbalanced_rows_the_tuned_threshold_beats_half(
    threshold_model: TrainOutcome,
) -> None:
    rows = _imbalanced(600, 1)
    client = create_app(Settings(model_dir=threshold_model.output)).test_client()
    answer = client.post(
        "/predict", json={"instances": rows.drop(columns="label").to_dict(orient="records")}
    ).get_json()
    p = np.asarray([a["yes"] for a in answer["probabilities"]])
    truth = rows["label"].to_numpy()
    tuned = f1_score(truth, answer["predictions"], average="macro")
    half = f1_score(truth, np.where(p >= 0.5, "yes", "no"), average="macro")
    assert tuned > half


def test_on_unseen_rows_the_tuned_class_weights_beat_the_most_probable_class(
    weights_model: TrainOutcome,
) -> None:
    decision = weights_model.manifest.decision
    assert decision is not None
    assert decision.class_weights is not None
    assert decision.score_at_threshold is not None
    assert decision.score_at_half is not None
    assert decision.score_at_threshold > decision.score_at_half
    rows = _rare_classes(600, 1)
    classes = list(weights_model.manifest.input_schema.classes)
    client = create_app(Settings(model_dir=weights_model.output)).test_client()
    answer = client.post(
        "/predict", json={"instances": rows.drop(columns="label").to_dict(orient="records")}
    ).get_json()
    proba = np.array([[p[c] for c in classes] for p in answer["probabilities"]])
    plain = np.asarray(classes)[np.argmax(proba, axis=1)]
    truth = rows["label"].to_numpy()
    tuned = f1_score(truth, answer["predictions"], average="macro")
    assert tuned > f1_score(truth, plain, average="macro")
