"""Same answers everywhere: every candidate model on every built-in dataset gives the same
labels and probabilities (a regressor: the same numbers) through /predict, /invocations, V2
infer and `mlcontainer predict`, whether ONNX or scikit-learn computes them."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from support import candidate_pairs, save_set

from mlcontainer.cli import main
from mlcontainer.core.config import Settings
from mlcontainer.core.decision import decide
from mlcontainer.core.errors import MlcontainerError
from mlcontainer.core.threads import one_native_thread
from mlcontainer.serving.app import create_app
from mlcontainer.training.data.dataset import Dataset, load_dataset
from mlcontainer.training.export.onnx_export import RELATIVE_TOLERANCE, export_onnx
from mlcontainer.training.search.models import MODELS, build_pipeline
from mlcontainer.training.search.split import Split, split_dataset, target_array, target_scale

pytestmark = pytest.mark.slow

RUNTIMES = ("onnx", "sklearn")
#: Test-split rows sent per model (plus one with missing values).
ROWS = 8
TOLERANCE = 1e-4
FEWER_TREES: dict[str, dict[str, Any]] = {
    "random_forest": {"model__n_estimators": 25},
    "extra_trees": {"model__n_estimators": 25},
    "hist_gradient_boosting": {"model__max_iter": 25},
}


@dataclass(frozen=True)
class Case:
    """A saved model folder, the rows to send and what scikit-learn itself answers for them."""

    folder: Path
    name: str
    records: list[dict[str, Any]]
    labels: list[Any]
    probabilities: np.ndarray
    classes: list[Any]
    onnx_reason: str | None
    #: A regressor's: the predicted numbers, and how far ONNX may be from them.
    values: np.ndarray | None = None
    value_tolerance: float = 0.0


def _json_value(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


@pytest.fixture(scope="session")
def case(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], Case]:
    """Fit (no CV), export and save one model folder per (dataset, candidate), on first use."""
    root = tmp_path_factory.mktemp("same-answers")
    data: dict[str, tuple[Dataset, Split]] = {}
    cases: dict[tuple[str, str], Case] = {}

    def get(dataset_name: str, model: str) -> Case:
        if (dataset_name, model) in cases:
            return cases[(dataset_name, model)]
        if dataset_name not in data:
            dataset = load_dataset(dataset_name)
            data[dataset_name] = (
                dataset,
                split_dataset(dataset, test_size=0.25, cv=2, random_state=0),
            )
        dataset, split = data[dataset_name]
        y = target_array(split.y_train, dataset.schema)
        scale = target_scale(y, dataset.schema)
        pipeline = build_pipeline(model, dataset.schema, random_state=0, target_scale=scale)
        # Fewer trees than the registry's: the same converters, a quarter of the time.
        pipeline.set_params(**FEWER_TREES.get(model, {}))
        # One native thread, as training does: OpenMP pools spin for seconds on a busy machine.
        with one_native_thread():
            pipeline.fit(split.X_train, y)
            export = export_onnx(pipeline, dataset.schema, split.X_test, target_scale=scale)
        X = split.X_test.head(ROWS).copy()
        missing = X.iloc[[0]].copy()
        missing.iloc[0, 0] = None  # the first feature missing: imputed by both runtimes
        missing.iloc[0, -1] = None
        X = X.astype(object).where(X.notna(), None)
        rows = [*X.to_dict("records"), *missing.astype(object).to_dict("records")]
        records = [{k: _json_value(v) for k, v in r.items()} for r in rows]
        frame = pd.DataFrame(rows, columns=split.X_test.columns)
        for column, dtype in split.X_test.dtypes.items():
            frame[column] = (
                frame[column].astype(float) if dtype.kind == "f" else frame[column].fillna(np.nan)
            )
        regression = dataset.schema.is_regression
        values = np.asarray(pipeline.predict(frame), dtype=float) if regression else None
        proba = (
            np.empty((len(frame), 0))
            if regression
            else np.asarray(pipeline.predict_proba(frame), dtype=float)
        )
        classes = list(dataset.schema.classes)
        name = f"{dataset_name}-{model}"
        folder = root / name
        save_set(
            folder,
            pipeline,
            dataset.schema,
            name,
            onnx_bytes=export.model_bytes,
            runtime=export.runtime_section,
            model={
                "name": model,
                "description": MODELS[model].describe(dataset.schema.task),
                "estimator": model,
            },
        )
        labels = [] if regression else decide(proba, tuple(classes), None).labels
        cases[(dataset_name, model)] = Case(
            folder=folder,
            name=name,
            records=records,
            labels=[_json_value(c) for c in labels],
            probabilities=proba,
            classes=classes,
            onnx_reason=export.reason,
            values=values,
            # float32 graphs: RELATIVE_TOLERANCE of the spread; scikit-learn: exact up to
            # float64 rounding in the text round trip
            value_tolerance=RELATIVE_TOLERANCE * scale,
        )
        return cases[(dataset_name, model)]

    return get


def _csv_text(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(list(records[0]))
    for record in records:
        writer.writerow(
            ["" if v is None else repr(v) if isinstance(v, float) else v for v in record.values()]
        )
    return buffer.getvalue()


def _check(case: Case, where: str, labels: list[Any], proba: Any = None) -> None:
    if case.values is not None:  # a regressor: numbers, within the verified tolerance
        diff = np.abs(np.asarray(labels, dtype=float) - case.values).max()
        assert diff <= case.value_tolerance, f"{case.name} {where}: values differ by {diff:.2e}"
        assert all(isinstance(v, float) for v in labels), f"{case.name} {where}: not numbers"
        return
    assert labels == case.labels, f"{case.name} {where}: labels differ"
    if proba is not None:
        diff = np.abs(np.asarray(proba, dtype=float) - case.probabilities).max()
        assert diff <= TOLERANCE, f"{case.name} {where}: probabilities differ by {diff:.2e}"


def _v2_inputs(case: Case, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    inputs = []
    for name in records[0]:
        values = [r[name] for r in records]
        kind = "BYTES" if any(isinstance(v, str) for v in values) else "FP64"
        inputs.append({"name": name, "datatype": kind, "shape": [len(values)], "data": values})
    return inputs


def _client(case: Case, runtime: str) -> FlaskClient:
    return create_app(Settings(model_dir=case.folder, runtime=runtime)).test_client()


@pytest.mark.parametrize("runtime", RUNTIMES)
@pytest.mark.parametrize(("model", "dataset"), candidate_pairs())
def test_every_endpoint_and_the_cli_give_the_same_answers(
    case: Callable[[str, str], Case], dataset: str, model: str, runtime: str, tmp_path: Path
) -> None:
    c = case(dataset, model)
    if runtime == "onnx" and c.onnx_reason is not None:
        # No verified graph (it failed to convert or disagreed): onnx is refused, saying why,
        # and auto serves scikit-learn with that reason.
        with pytest.raises(MlcontainerError, match=r"(?i)onnx"):
            _client(c, runtime)
        auto = create_app(Settings(model_dir=c.folder)).test_client()
        summary = auto.get("/", headers={"Accept": "application/json"}).get_json()
        assert (summary["runtime"], summary["runtime_reason"]) == ("sklearn", c.onnx_reason)
        return
    client = _client(c, runtime)
    summary = client.get("/", headers={"Accept": "application/json"}).get_json()
    assert summary["runtime"] == runtime
    columns = list(c.records[0])

    answer = client.post("/predict", json={"instances": c.records}).get_json()
    if c.values is None:
        proba = [[p[str(k)] for k in c.classes] for p in answer["probabilities"]]
        _check(c, f"{runtime} /predict", answer["predictions"], proba)
    else:
        assert "probabilities" not in answer
        _check(c, f"{runtime} /predict", answer["predictions"])

    rows = [list(r.values()) for r in c.records]
    for body in (
        {"dataframe_split": {"columns": columns, "data": rows}},
        {"dataframe_records": c.records},
        {"instances": c.records},
    ):
        answer = client.post("/invocations", json=body).get_json()
        _check(c, f"{runtime} /invocations {next(iter(body))}", answer["predictions"])
    answer = client.post(
        "/invocations", data=_csv_text(c.records), content_type="text/csv"
    ).get_json()
    _check(c, f"{runtime} /invocations CSV", answer["predictions"])

    complete = [i for i, r in enumerate(c.records) if None not in r.values()]
    infer = client.post(
        f"/v2/models/{c.name}/infer",
        json={"inputs": _v2_inputs(c, [c.records[i] for i in complete])},
    ).get_json()
    outputs = {o["name"]: o for o in infer["outputs"]}
    if c.values is not None:
        assert list(outputs) == ["predict"]
        got = np.asarray(outputs["predict"]["data"], dtype=float)
        assert np.abs(got - c.values[complete]).max() <= c.value_tolerance
    else:
        v2_proba = np.asarray(outputs["probabilities"]["data"]).reshape(len(complete), -1)
        assert outputs["label"]["data"] == [c.labels[i] for i in complete]
        assert np.abs(v2_proba - c.probabilities[complete]).max() <= TOLERANCE

    source = tmp_path / "rows.csv"
    source.write_text(_csv_text(c.records))
    result = CliRunner().invoke(
        main,
        [
            "predict",
            "--model",
            str(c.folder),
            "--input",
            str(source),
            "--format",
            "json",
            "--runtime",
            runtime,
        ],
    )
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    if c.values is not None:
        _check(c, f"{runtime} mlcontainer predict", printed["predictions"])
        return
    cli_proba = [[r["probabilities"][str(k)] for k in c.classes] for r in printed]
    _check(c, f"{runtime} mlcontainer predict", [r["prediction"] for r in printed], cli_proba)


def test_model_without_onnx_is_served_with_sklearn_under_auto_and_says_why(
    tmp_path: Path,
) -> None:
    dataset = load_dataset("iris")
    split = split_dataset(dataset, test_size=0.25, cv=2, random_state=0)
    pipeline = build_pipeline("logistic_regression", dataset.schema, random_state=0)
    pipeline.fit(split.X_train, split.y_train)
    reason = "ONNX disagrees with scikit-learn on 2 of 38 test rows"
    save_set(
        tmp_path / "model",
        pipeline,
        dataset.schema,
        "iris-fallback",
        runtime={"default": "sklearn", "reason": reason, "onnx": None},
    )
    client = create_app(Settings(model_dir=tmp_path / "model")).test_client()
    summary = client.get("/", headers={"Accept": "application/json"}).get_json()
    assert (summary["runtime"], summary["runtime_reason"]) == ("sklearn", reason)
    record = {k: float(v) for k, v in split.X_test.iloc[0].items()}
    answer = client.post("/predict", json={"instances": [record]}).get_json()
    expected = decide(
        pipeline.predict_proba(split.X_test.head(1)), dataset.schema.classes, None
    ).labels
    assert answer["predictions"] == [str(expected[0])]
