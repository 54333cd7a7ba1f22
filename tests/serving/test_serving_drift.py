"""Drift in /metrics: gauges near zero on training-like rows, raised for the shifted feature."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from flask.testing import FlaskClient
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from mlcontainer.core.config import Settings
from mlcontainer.core.drift import FeatureBins, compile_profile, psi
from mlcontainer.inference.predictor import Predictor
from mlcontainer.serving.app import create_app
from mlcontainer.serving.drift import DriftMonitor, window_bytes
from mlcontainer.training.workflow import TrainOutcome

FEATURES = (
    "island", "bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g", "sex", "year",
)  # fmt: skip


def _client(model_dir: Path, predictor: Predictor, window: int = 2_000) -> FlaskClient:
    settings = Settings(model_dir=model_dir, drift_window=window, max_rows=10_000)
    return create_app(settings, predictor=predictor).test_client()


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    clean = frame.astype(object).where(frame.notna(), None)
    return [dict(zip(clean.columns, row, strict=True)) for row in clean.itertuples(index=False)]


def _training_like(outcome: TrainOutcome, rows: int, seed: int) -> pd.DataFrame:
    X = outcome.dataset.X
    return X.sample(rows, replace=True, random_state=seed).reset_index(drop=True)


def _gauges(client: FlaskClient) -> dict[str, dict[str, float]]:
    text = client.get("/metrics").get_data(as_text=True)
    out: dict[str, dict[str, float]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, {})[sample.labels.get("feature", "")] = sample.value
    return out


def _send(client: FlaskClient, frame: pd.DataFrame) -> None:
    records = _records(frame)
    for start in range(0, len(records), 500):
        answer = client.post("/predict", json={"instances": records[start : start + 500]})
        assert answer.status_code == 200, answer.get_json()


@pytest.fixture
def penguins_predictor(penguins_model_dir: Path) -> Predictor:
    from mlcontainer.inference.predictor import load_predictor

    return load_predictor(penguins_model_dir)


def test_drift_gauges_stay_near_zero_on_rows_drawn_from_the_training_data(
    penguins_outcome: TrainOutcome, penguins_predictor: Predictor
) -> None:
    client = _client(penguins_outcome.output, penguins_predictor)
    _send(client, _training_like(penguins_outcome, 2_000, seed=0))
    gauges = _gauges(client)
    assert gauges["mlcontainer_drift_window_rows"][""] == 2_000
    assert set(gauges["mlcontainer_feature_drift_psi"]) == set(FEATURES)
    assert max(gauges["mlcontainer_feature_drift_psi"].values()) < 0.1
    assert gauges["mlcontainer_prediction_drift_psi"][""] < 0.1
    assert max(gauges["mlcontainer_feature_unseen_share"].values()) == 0
    assert gauges["mlcontainer_feature_missing_share"]["sex"] < 0.1


@pytest.mark.parametrize(
    ("feature", "change", "gauge"),
    [
        ("body_mass_g", lambda col: col + 1_500, "mlcontainer_feature_drift_psi"),
        ("island", lambda col: col.map(lambda _: "Atlantis"), "mlcontainer_feature_unseen_share"),
        ("sex", lambda col: col.map(lambda _: None), "mlcontainer_feature_missing_share"),
    ],
    ids=["shifted-number", "unseen-category-flood", "missing-value-flood"],
)
def test_drift_gauges_rise_for_the_changed_feature_only(
    penguins_outcome: TrainOutcome,
    penguins_predictor: Predictor,
    feature: str,
    change: Any,
    gauge: str,
) -> None:
    client = _client(penguins_outcome.output, penguins_predictor)
    frame = _training_like(penguins_outcome, 2_000, seed=1)
    frame[feature] = change(frame[feature]).astype(object)
    _send(client, frame)
    gauges = _gauges(client)
    psis = gauges["mlcontainer_feature_drift_psi"]
    assert psis[feature] > 1.0
    assert all(v < 0.1 for name, v in psis.items() if name != feature), psis
    if gauge != "mlcontainer_feature_drift_psi":
        assert gauges[gauge][feature] == 1.0
    others = {k: v for k, v in gauges["mlcontainer_feature_unseen_share"].items() if k != feature}
    assert max(others.values(), default=0.0) == 0


def test_the_window_keeps_only_the_latest_rows(
    penguins_outcome: TrainOutcome, penguins_predictor: Predictor
) -> None:
    client = _client(penguins_outcome.output, penguins_predictor, window=1_000)
    shifted = _training_like(penguins_outcome, 1_000, seed=2)
    shifted["body_mass_g"] = shifted["body_mass_g"] + 1_500
    _send(client, shifted)
    assert _gauges(client)["mlcontainer_feature_drift_psi"]["body_mass_g"] > 1.0
    _send(client, _training_like(penguins_outcome, 1_000, seed=3))  # pushes them all out
    gauges = _gauges(client)
    assert gauges["mlcontainer_drift_window_rows"][""] == 1_000
    assert gauges["mlcontainer_feature_drift_psi"]["body_mass_g"] < 0.1


def test_memory_and_labels_stay_bounded_under_ten_thousand_random_values(
    penguins_outcome: TrainOutcome, penguins_predictor: Predictor
) -> None:
    client = _client(penguins_outcome.output, penguins_predictor, window=500)
    monitor = client.application.extensions["mlcontainer"].metrics.drift
    before = (monitor._ring.nbytes, monitor._counts.nbytes)
    rng = np.random.default_rng(4)
    frame = _training_like(penguins_outcome, 10_000, seed=4)
    frame["island"] = [f"island-{rng.integers(1 << 62)}" for _ in range(10_000)]
    frame["sex"] = [f"sex-{i}" for i in range(10_000)]
    frame["bill_length_mm"] = rng.normal(scale=1e6, size=10_000)
    _send(client, frame)
    text = client.get("/metrics").get_data(as_text=True)
    assert (monitor._ring.nbytes, monitor._counts.nbytes) == before
    assert before[0] + before[1] == window_bytes(monitor.profile, 500)
    assert "island-" not in text
    assert "sex-" not in text
    drift_lines = [line for line in text.splitlines() if line.startswith("mlcontainer_feature")]
    assert len(drift_lines) == len(FEATURES) * 2 + 2  # PSI, missing; unseen for 2 categories
    assert _gauges(client)["mlcontainer_feature_unseen_share"]["island"] == 1.0


def test_drift_tracking_never_fails_a_prediction(
    penguins_outcome: TrainOutcome, penguins_predictor: Predictor, monkeypatch: Any
) -> None:
    client = _client(penguins_outcome.output, penguins_predictor)

    def broken(self: Any, values: Any) -> Any:
        raise RuntimeError("a bug in the drift code")

    monkeypatch.setattr(FeatureBins, "assign", broken)
    monkeypatch.setattr(FeatureBins, "assign_one", broken)
    for rows in (3, 40):  # both ways of adding rows: a few in Python, more with NumPy
        records = _records(penguins_outcome.dataset.X[:rows])
        answer = client.post("/predict", json={"instances": records})
        assert answer.status_code == 200
        assert len(answer.get_json()["predictions"]) == rows
    assert _gauges(client)["mlcontainer_drift_errors_total"][""] == 2


def test_a_zero_window_turns_the_drift_gauges_off(
    penguins_outcome: TrainOutcome, penguins_predictor: Predictor
) -> None:
    client = _client(penguins_outcome.output, penguins_predictor, window=0)
    _send(client, _training_like(penguins_outcome, 10, seed=5))
    assert "mlcontainer_feature_drift_psi" not in client.get("/metrics").get_data(as_text=True)


def test_the_psi_of_several_workers_is_the_psi_of_their_windows_together(
    penguins_outcome: TrainOutcome, penguins_predictor: Predictor, tmp_path: Path
) -> None:
    """Two workers' files summed at scrape time give the PSI of all their rows at once, not
    a sum or mean of each worker's PSI."""
    manifest = penguins_predictor.manifest
    assert manifest.reference is not None
    profile = compile_profile(manifest.reference, penguins_predictor.schema)
    errors = Counter("errors", "errors", registry=CollectorRegistry())
    shifted = _training_like(penguins_outcome, 600, seed=6)
    shifted["body_mass_g"] += 1_500
    plain = _training_like(penguins_outcome, 600, seed=7)
    a = DriftMonitor(profile, window=1_000, errors=errors, folder=tmp_path, pid=1)
    b = DriftMonitor(profile, window=1_000, errors=errors, folder=tmp_path, pid=2)
    alone = DriftMonitor(profile, window=2_000, errors=errors)
    for monitor, frame in ((a, shifted), (b, plain), (alone, shifted), (alone, plain)):
        decoded = penguins_predictor.decode_records(_records(frame))
        monitor.observe(decoded.columns, penguins_predictor.predict(decoded))
    merged = a.counts()
    assert np.array_equal(merged, b.counts())
    assert np.array_equal(merged, alone.counts())
    body = list(profile.features).index(
        next(f for f in profile.features if f.name == "body_mass_g")
    )
    feature = profile.features[body]
    together = psi(feature.expected, merged[body, : len(feature.labels)])
    own = psi(feature.expected, a._counts[body, : len(feature.labels)])
    assert own > together * 1.5  # worker a's own PSI (only shifted rows) is larger
    family = next(f for f in a.collect() if f.name == "mlcontainer_feature_drift_psi")
    gauges = {s.labels["feature"]: s.value for s in family.samples}
    assert gauges["body_mass_g"] == pytest.approx(together)


def test_rows_added_a_few_at_a_time_count_as_rows_added_at_once(
    penguins_outcome: TrainOutcome, penguins_predictor: Predictor
) -> None:
    manifest = penguins_predictor.manifest
    assert manifest.reference is not None
    profile = compile_profile(manifest.reference, penguins_predictor.schema)
    errors = Counter("errors", "errors", registry=CollectorRegistry())
    few = DriftMonitor(profile, window=250, errors=errors)
    many = DriftMonitor(profile, window=250, errors=errors)
    frame = _training_like(penguins_outcome, 700, seed=8)
    frame.loc[::7, "island"] = "Atlantis"
    decoded = penguins_predictor.decode_records(_records(frame))
    prediction = penguins_predictor.predict(decoded)
    start = 0
    for size in [1, 5, 16, 3] * 100:  # batches of up to FEW_ROWS rows, past the window's end
        if start >= 700:
            break
        part = {k: v[start : start + size] for k, v in decoded.columns.items()}
        labels = prediction.labels[start : start + size]
        positions = prediction.positions[start : start + size]
        few.observe(part, replace(prediction, labels=labels, positions=positions))
        start += size
    many.observe(decoded.columns, prediction)
    assert few.errors._value.get() == 0  # type: ignore[attr-defined]
    assert np.array_equal(few.counts(), many.counts())
    assert few.counts()[-1, 0] == 250
