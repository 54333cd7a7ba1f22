"""The ONNX and scikit-learn runtimes: same answers, typed refusals, no training stack for ONNX."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from mlcontainer.cli import main
from mlcontainer.core.errors import ArtifactError, ConfigError, InputValidationError
from mlcontainer.inference import sklearn_runtime
from mlcontainer.inference.predictor import Predictor, load_predictor
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.workflow import run_training

TRAINING_STACK = ("sklearn", "scipy", "pandas", "matplotlib")
TOLERANCE = 1e-4
IRIS_ROWS = [
    [5.1, 3.5, 1.4, 0.2],
    [6.0, 2.7, 5.1, 1.6],
    [6.9, 3.1, 5.4, 2.1],
    [5.8, None, 4.0, 1.2],
]
PENGUIN_ROWS: list[list[Any]] = [
    ["Biscoe", 48.0, 15.0, 220.0, 5200.0, "male", 2008],
    ["Dream", 39.5, 17.4, 186.0, 3800.0, "female", 2007],
    ["Torgersen", 40.3, 18.0, 195.0, 3250.0, None, 2007],
    ["Dream", 50.0, None, 196.0, None, "male", 2009],
    ["Biscoe", None, None, None, None, "female", None],
]


def _both(model_dir: Path) -> tuple[Predictor, Predictor]:
    return load_predictor(model_dir, "onnx", threads=1), load_predictor(model_dir, "sklearn")


def _assert_same(onnx: Any, sklearn: Any) -> None:
    assert onnx.labels == sklearn.labels
    assert onnx.classes == sklearn.classes
    np.testing.assert_allclose(onnx.probabilities, sklearn.probabilities, atol=TOLERANCE, rtol=0)


def _text(rows: list[list[Any]]) -> list[list[str]]:
    return [["" if v is None else str(v) for v in row] for row in rows]


@pytest.mark.parametrize("dataset", ["iris", "penguins"])
def test_onnx_and_sklearn_agree_on_records_rows_and_text(
    dataset: str, iris_model_dir: Path, penguins_model_dir: Path
) -> None:
    model_dir, rows = {
        "iris": (iris_model_dir, IRIS_ROWS),
        "penguins": (penguins_model_dir, PENGUIN_ROWS),
    }[dataset]
    onnx, sklearn = _both(model_dir)
    assert (onnx.runtime, sklearn.runtime) == ("onnx", "sklearn")
    names = onnx.schema.names
    records = [dict(zip(names, row, strict=True)) for row in rows]
    _assert_same(onnx.predict_records(records), sklearn.predict_records(records))
    _assert_same(onnx.predict_rows(rows), sklearn.predict_rows(rows))
    _assert_same(onnx.predict_text(names, _text(rows)), sklearn.predict_text(names, _text(rows)))


def test_onnx_and_sklearn_agree_on_unseen_and_missing_categories(
    penguins_model_dir: Path,
) -> None:
    onnx, sklearn = _both(penguins_model_dir)
    rows = [["Atlantis", 48.0, 15.0, 220.0, 5200.0, "male", 2008], [None, *PENGUIN_ROWS[0][1:]]]
    _assert_same(onnx.predict_rows(rows), sklearn.predict_rows(rows))


def test_predict_cli_gives_the_same_answers_with_both_runtimes(
    penguins_model_dir: Path, tmp_path: Path
) -> None:
    names = load_predictor(penguins_model_dir, "onnx").schema.names
    source = tmp_path / "in.csv"
    source.write_text("\n".join(",".join(r) for r in [names, *_text(PENGUIN_ROWS)]) + "\n")
    outputs = {}
    for runtime in ("onnx", "sklearn"):
        out = tmp_path / f"{runtime}.json"
        args = ["predict", "--model", str(penguins_model_dir), "-i", str(source), "-o", str(out)]
        result = CliRunner().invoke(main, [*args, "--runtime", runtime])
        assert result.exit_code == 0, result.output
        outputs[runtime] = json.loads(out.read_text())
    assert [r["prediction"] for r in outputs["onnx"]] == [
        r["prediction"] for r in outputs["sklearn"]
    ]
    for a, b in zip(outputs["onnx"], outputs["sklearn"], strict=True):
        assert a["probabilities"] == pytest.approx(b["probabilities"], abs=TOLERANCE)


def test_auto_serves_a_verified_onnx_model(iris_model_dir: Path) -> None:
    predictor = load_predictor(iris_model_dir)
    assert predictor.runtime == "onnx"
    assert predictor.runtime_reason is None
    assert predictor.sha256 == predictor.manifest.to_json()["files"]["model.onnx"]["sha256"]
    session_options = predictor.backend.session.get_session_options()  # type: ignore[attr-defined]
    assert session_options.intra_op_num_threads >= 1
    assert session_options.inter_op_num_threads == 1


def test_threads_set_onnxruntime_intra_op_threads(iris_model_dir: Path) -> None:
    predictor = load_predictor(iris_model_dir, "onnx", threads=1)
    session = predictor.backend.session  # type: ignore[attr-defined]
    assert session.get_session_options().intra_op_num_threads == 1


def test_sklearn_runtime_serves_model_skops_and_says_why(iris_model_dir: Path) -> None:
    predictor = load_predictor(iris_model_dir, "sklearn")
    assert predictor.runtime == "sklearn"
    assert predictor.runtime_reason
    assert predictor.sha256 == predictor.manifest.to_json()["files"]["model.skops"]["sha256"]


@pytest.fixture
def sklearn_only_dir(iris_model_dir: Path, tmp_path: Path) -> Path:
    """The iris folder as a model whose ONNX export failed: no model.onnx, a one-line reason."""
    folder = tmp_path / "sklearn-only"
    shutil.copytree(iris_model_dir, folder)
    manifest = json.loads((folder / "model.json").read_text())
    manifest["runtime"] = {
        "default": "sklearn",
        "reason": "skl2onnx cannot convert FancyClassifier: no converter",
        "onnx": None,
    }
    manifest["files"].pop("model.onnx", None)
    (folder / "model.onnx").unlink(missing_ok=True)
    (folder / "model.json").write_text(json.dumps(manifest))
    return folder


def test_auto_falls_back_to_sklearn_with_the_manifest_reason(sklearn_only_dir: Path) -> None:
    predictor = load_predictor(sklearn_only_dir)
    assert predictor.runtime == "sklearn"
    assert predictor.runtime_reason == "skl2onnx cannot convert FancyClassifier: no converter"
    assert predictor.predict_rows(IRIS_ROWS[:1]).labels == ["setosa"]


def test_onnx_runtime_without_a_verified_model_is_refused_quoting_the_reason(
    sklearn_only_dir: Path,
) -> None:
    with pytest.raises(ConfigError, match=r"no verified ONNX model.*FancyClassifier"):
        load_predictor(sklearn_only_dir, "onnx")
    result = CliRunner().invoke(
        main, ["predict", "--model", str(sklearn_only_dir), "-i", "-", "--runtime", "onnx"]
    )
    assert result.exit_code == 1
    assert "FancyClassifier" in result.output
    assert "Traceback" not in result.output


def test_old_model_folder_without_runtime_section_uses_sklearn(sklearn_only_dir: Path) -> None:
    manifest = json.loads((sklearn_only_dir / "model.json").read_text())
    del manifest["runtime"]
    (sklearn_only_dir / "model.json").write_text(json.dumps(manifest))
    predictor = load_predictor(sklearn_only_dir)
    assert predictor.runtime == "sklearn"
    assert "predates ONNX" in (predictor.runtime_reason or "")


def test_onnx_runtime_needs_only_the_manifest_and_model_onnx(
    iris_model_dir: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "serving-only"
    shutil.copytree(iris_model_dir, folder)
    (folder / "model.skops").unlink()
    predictor = load_predictor(folder, "onnx")
    assert predictor.predict_rows(IRIS_ROWS[:1]).labels == ["setosa"]


def test_a_tampered_model_onnx_is_refused(iris_model_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "tampered"
    shutil.copytree(iris_model_dir, folder)
    with (folder / "model.onnx").open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        load_predictor(folder, "onnx")


def test_sklearn_runtime_without_scikit_learn_is_a_typed_error(
    iris_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        sklearn_runtime.importlib.util,
        "find_spec",
        lambda name, *a: None if name == "sklearn" else real(name, *a),
    )
    with pytest.raises(ConfigError, match=r"needs scikit-learn, which this installation lacks"):
        load_predictor(iris_model_dir, "sklearn")


def test_unknown_runtime_is_refused(iris_model_dir: Path) -> None:
    with pytest.raises(ConfigError, match="valid: auto, onnx, sklearn"):
        load_predictor(iris_model_dir, "tensorflow")


@pytest.mark.parametrize("value", [1e39, -1e300])
def test_onnx_refuses_numbers_beyond_float32_naming_the_row(
    iris_model_dir: Path, value: float
) -> None:
    predictor = load_predictor(iris_model_dir, "onnx")
    rows = [IRIS_ROWS[0], [5.1, value, 1.4, 0.2]]
    with pytest.raises(InputValidationError, match=r"row 1: the model cannot score it") as info:
        predictor.predict_rows(rows)
    assert info.value.details[0]["column"] == "sepal width (cm)"


@pytest.mark.slow
def test_a_gradient_boosting_file_of_close_values_is_served_by_onnx_with_sklearn_s_answers(
    tmp_path: Path,
) -> None:
    """Sizes 3.92 and 3.94 in training, 3.93 asked for: a float32 graph sent it the other way
    and the model fell back to scikit-learn; the double graph serves it with the same answers."""
    rng = np.random.default_rng(0)
    size = rng.choice([3.92, 3.94], 500)
    price = rng.normal(18_000.0, 3_000.0, 500).round(2)
    grade = np.where(size + 1e-4 * price > 5.74, "big", "small")
    source = tmp_path / "stones.csv"
    lines = [f"{s},{p},{g}" for s, p, g in zip(size, price, grade, strict=True)]
    source.write_text("size,price,grade\n" + "\n".join(lines) + "\n")
    run_training(
        TrainOptions(
            dataset=str(source), target="grade", models=("hist_gradient_boosting",), cv=3,
            output=tmp_path / "model", time_budget=0,
        )
    )  # fmt: skip
    onnx, sklearn = _both(tmp_path / "model")
    assert onnx.runtime == "onnx"
    rows = [[3.93, p] for p in np.linspace(16_000.0, 20_000.0, 41)]
    _assert_same(onnx.predict_rows(rows), sklearn.predict_rows(rows))


def test_warm_up_runs_with_both_runtimes(penguins_model_dir: Path) -> None:
    for predictor in _both(penguins_model_dir):
        predictor.warm_up()


_FRESH = """
import sys
{body}
loaded = [m for m in {stack!r} if m in sys.modules]
print("LOADED=" + ",".join(loaded))
"""


def _fresh(body: str) -> str:
    code = _FRESH.format(body=body, stack=TRAINING_STACK)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_onnx_prediction_imports_no_training_stack(iris_model_dir: Path) -> None:
    body = f"""
from pathlib import Path
from mlcontainer.inference.csvreader import read_csv_text
from mlcontainer.inference.output import write_predictions
from mlcontainer.inference.predictor import load_predictor
p = load_predictor(Path({str(iris_model_dir)!r}), "onnx")
p.warm_up()
p.predict_records([dict(zip(p.schema.names, [5.1, 3.5, 1.4, 0.2]))])
p.predict_rows([[5.1, 3.5, 1.4, 0.2]])
chunk = read_csv_text(",".join(p.schema.names).encode() + b"\\n5.1,3.5,1.4,0.2\\n")
write_predictions(p.predict_text(chunk.names, chunk.rows), "csv")
"""
    assert _fresh(body) == "LOADED="


@pytest.mark.slow
def test_predict_cli_with_onnx_imports_no_training_stack(
    iris_model_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in.csv"
    names = load_predictor(iris_model_dir, "onnx").schema.names
    source.write_text(",".join(names) + "\n5.1,3.5,1.4,0.2\n6.0,2.7,5.1,1.6\n")
    out = tmp_path / "out.csv"
    body = f"""
from mlcontainer.cli import main
try:
    main.main(["predict", "--model", {str(iris_model_dir)!r}, "-i", {str(source)!r},
               "-o", {str(out)!r}, "--runtime", "onnx"], standalone_mode=False)
finally:
    pass
"""
    assert _fresh(body) == "LOADED="
    assert out.read_text().startswith("prediction,proba_setosa")
