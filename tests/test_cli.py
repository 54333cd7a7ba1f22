"""The command line end to end: train on every kind of dataset, predict, and refuse bad input."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import click
import pandas as pd
import pytest
from click.testing import CliRunner, Result
from support import BUILTIN_TASKS, FileServer, tree_snapshot, unwritable_folder

from mlcontainer.cli import main
from mlcontainer.training.data.dataset import load_dataset
from mlcontainer.training.data.sources import BUILTIN_DATASETS

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FAST = ["--models", "logistic_regression,decision_tree", "--cv", "3"]
#: What ``train`` writes for a classifier, besides model.onnx when its export verified.
SET_FILES = {
    "model.skops",
    "model.json",
    "metrics.json",
    "confusion_matrix.png",
    "report.html",
    "README.md",
}
TITANIC_SHA256 = "81787d320d7f7b03df935e91de8bd19e11d45c5bbcab86ef4d4a76dc91b7d4f2"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No model folder from the caller's environment; a private download cache."""
    for name in list(os.environ):
        if name.startswith("MLCONTAINER_") or name == "MODEL_DIR":
            monkeypatch.delenv(name)
    monkeypatch.setenv("MLCONTAINER_CACHE_DIR", str(tmp_path / "cache"))


def run(*args: str | Path, stdin: bytes | None = None, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args], input=stdin, env=env)


def run_ok(
    *args: str | Path, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> Result:
    result = run(*args, stdin=stdin, env=env)
    assert result.exit_code == 0, result.output
    return result


def _manifest(folder: Path) -> dict[str, object]:
    return json.loads((folder / "model.json").read_text())  # type: ignore[no-any-return]


def _set_files(folder: Path) -> set[str]:
    """The files a model set holds: model.onnx too when the ONNX export was verified."""
    runtime = _manifest(folder).get("runtime")
    onnx = isinstance(runtime, dict) and runtime.get("onnx") is not None
    return SET_FILES | ({"model.onnx"} if onnx else set())


def _features_csv(dataset: str, path: Path, rows: int = 8) -> Path:
    ds = load_dataset(dataset)
    ds.X.iloc[:rows].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def iris_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One CLI-trained iris model for the predict and bad-input tests (never modified)."""
    output = tmp_path_factory.mktemp("cli") / "iris"
    run_ok("train", "--dataset", "iris", *FAST, "--output", output)
    return output


@pytest.fixture
def good_output(iris_dir: Path, tmp_path: Path) -> Path:
    """A copy of a good model folder that a failing run must leave as it is."""
    return Path(shutil.copytree(iris_dir, tmp_path / "artifacts"))


# --- train: every built-in dataset, files, URLs --------------------------------------------


@pytest.mark.parametrize("dataset", [d for d, t in BUILTIN_TASKS.items() if t == "classification"])
def test_train_then_predict_on_every_builtin_dataset(dataset: str, tmp_path: Path) -> None:
    output = tmp_path / "out"
    result = run_ok("train", "--dataset", dataset, *FAST, "--output", output)
    assert "Model comparison" in result.stdout
    assert "Confusion matrix" in result.stdout
    assert {p.name for p in output.iterdir()} == _set_files(output)
    manifest = _manifest(output)
    # FAST compares logistic regression and a tree; their greedy ensemble may beat both.
    compared = {"logistic_regression", "decision_tree"}
    if manifest["selection"]["model"] == "ensemble":  # type: ignore[index]
        members = manifest["model"]["members"]  # type: ignore[index]
        assert {m["model"] for m in members} <= compared
    else:
        assert manifest["selection"]["model"] in compared  # type: ignore[index]
    assert manifest["dataset"]["name"] == dataset  # type: ignore[index]
    rows = _features_csv(dataset, tmp_path / "rows.csv")
    predicted = run_ok("predict", "--model", output, "--input", rows, "--format", "json")
    records = json.loads(predicted.stdout)
    classes = {str(c) for c in manifest["schema"]["classes"]}  # type: ignore[index]
    assert len(records) == 8
    assert {str(r["prediction"]) for r in records} <= classes
    assert all(set(r["probabilities"]) == classes for r in records)


def test_train_then_predict_on_the_builtin_regression_dataset(tmp_path: Path) -> None:
    output = tmp_path / "out"
    fast = ["--models", "ridge,decision_tree", "--cv", "3"]
    result = run_ok("train", "--dataset", "diabetes", *fast, "--output", output)
    words = " ".join(result.stdout.split())  # rich wraps titles at the terminal's width
    assert "Task: regression" in words
    assert "(rmse: lower is better)" in words
    assert "Confusion matrix" not in result.stdout
    names = {p.name for p in output.iterdir()}
    assert "confusion_matrix.png" not in names
    assert names == _set_files(output) - {"confusion_matrix.png"}  # pictures are in the report
    report = (output / "report.html").read_text()
    assert "Predicted vs actual" in report
    # Fold scores, the three regression plots and the permutation importance.
    assert report.count("data:image/png;base64,") == 5
    for name in ("fold_scores", "predicted_vs_actual", "residuals", "permutation_importance"):
        assert f'id="figure-{name}"' in report
    manifest = _manifest(output)
    assert manifest["schema"]["task"] == "regression"  # type: ignore[index]
    assert manifest["schema"]["classes"] == []  # type: ignore[index]
    assert manifest["selection"]["metric"] == "rmse"  # type: ignore[index]
    # the ridge line beats predicting the mean of the training targets on held-out rows
    scored = json.loads((output / "metrics.json").read_text())
    assert set(scored) == {"task", "test_rows", "metrics", "warnings"}
    assert scored["test_rows"] == 89
    assert set(scored["metrics"]) == {"rmse", "mae", "r2", "median_ae", "mape"}
    assert 0.3 < scored["metrics"]["r2"] < 1
    rows = _features_csv("diabetes", tmp_path / "rows.csv")
    predicted = run_ok("predict", "--model", output, "--input", rows, "--format", "json")
    answer = json.loads(predicted.stdout)
    assert set(answer) == {"predictions"}
    values = answer["predictions"]
    assert len(values) == 8
    assert all(isinstance(v, float) for v in values)
    # diabetes progression scores run from 25 to 346: predictions stay in a plausible range
    assert all(0 < v < 400 for v in values)
    as_csv = run_ok("predict", "--model", output, "--input", rows).stdout.splitlines()
    assert as_csv[0] == "prediction"
    assert [float(v) for v in as_csv[1:]] == pytest.approx(values, rel=1e-5)


def test_a_model_for_the_other_task_is_refused_naming_the_valid_ones(tmp_path: Path) -> None:
    result = run("train", "-d", "diabetes", "-m", "logistic_regression", "-o", tmp_path / "o")
    assert result.exit_code != 0
    assert "--models names 'logistic_regression', which is not for regression" in result.output
    assert "valid for regression: " in result.output
    assert "ridge" in result.output
    assert not (tmp_path / "o").exists()


def test_train_on_a_local_csv_with_target(tmp_path: Path) -> None:
    data = load_dataset("penguins")
    frame = data.X.assign(species=data.y)
    frame.to_csv(tmp_path / "penguins.csv", index=False)
    output = tmp_path / "out"
    run_ok("train", "-d", tmp_path / "penguins.csv", "-t", "species", *FAST, "-o", output)
    manifest = _manifest(output)
    assert manifest["dataset"]["source"] == str(tmp_path / "penguins.csv")  # type: ignore[index]
    assert manifest["dataset"]["rows"] == 344  # type: ignore[index]
    assert manifest["schema"]["target"] == "species"  # type: ignore[index]


def test_train_on_a_parquet_file_with_target(tmp_path: Path) -> None:
    data = load_dataset("wine")
    data.X.assign(cultivar=data.y).to_parquet(tmp_path / "wine.parquet", index=False)
    output = tmp_path / "out"
    run_ok("train", "-d", tmp_path / "wine.parquet", "-t", "cultivar", *FAST, "-o", output)
    assert _manifest(output)["dataset"]["fingerprint"] == data.fingerprint  # type: ignore[index]


def test_train_on_a_url_downloads_once_into_the_cache(
    file_server: FileServer, tmp_path: Path
) -> None:
    _features_csv("iris", file_server.root / "iris.csv", rows=150)
    frame = pd.read_csv(file_server.root / "iris.csv").assign(kind=load_dataset("iris").y)
    frame.to_csv(file_server.root / "iris.csv", index=False)
    digest = hashlib.sha256((file_server.root / "iris.csv").read_bytes()).hexdigest()
    url = file_server.url("iris.csv")
    for run_no in (1, 2):
        run_ok("train", "-d", url, "--sha256", digest, "-t", "kind", *FAST, "-o", tmp_path / "o")
        assert file_server.hits == {"/iris.csv": 1}, f"run {run_no}"
    assert _manifest(tmp_path / "o")["dataset"]["source"] == url  # type: ignore[index]
    assert len(list((tmp_path / "cache").rglob("*.csv"))) == 1


def test_train_refuses_a_url_with_a_wrong_checksum_and_keeps_nothing(
    file_server: FileServer, tmp_path: Path, good_output: Path
) -> None:
    _features_csv("iris", file_server.root / "iris.csv")
    before = tree_snapshot(good_output)
    url = file_server.url("iris.csv")
    result = run("train", "-d", url, "--sha256", "0" * 64, "-t", "x", *FAST, "-o", good_output)
    assert result.exit_code == 1
    assert "was refused" in result.stderr
    assert "Traceback" not in result.output
    assert tree_snapshot(good_output) == before
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_train_on_real_titanic_served_over_http(
    shared_datasets: Path, file_server: FileServer, tmp_path: Path
) -> None:
    shutil.copy(shared_datasets / "titanic.csv", file_server.root / "titanic.csv")
    output = tmp_path / "out"
    url = file_server.url("titanic.csv")
    run_ok("train", "-d", url, "--sha256", TITANIC_SHA256, "-t", "survived", *FAST, "-o", output)
    manifest = _manifest(output)
    assert manifest["dataset"]["rows"] == 891  # type: ignore[index]
    assert manifest["schema"]["classes"] == [0, 1]  # type: ignore[index]
    assert 0.5 <= manifest["metrics"]["accuracy"] <= 1.0  # type: ignore[index]


# --- real processes ------------------------------------------------------------------------


def _process(args: Sequence[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCONTAINER_")}
    env["MLCONTAINER_CACHE_DIR"] = str(cwd / "cache")
    return subprocess.run(
        [str(a) for a in args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_mlcontainer_console_script_trains_and_predicts(tmp_path: Path) -> None:
    exe = BIN / "mlcontainer"
    done = _process([exe, "train", "-d", "wine", *FAST], tmp_path)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "artifacts").iterdir()} == _set_files(
        tmp_path / "artifacts"
    )
    rows = _features_csv("wine", tmp_path / "rows.csv")
    done = _process([exe, "predict", "--input", rows, "--output", "preds.csv"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "preds.csv").read_text().startswith("prediction,proba_class_0,")


def test_python_train_py_is_mlcontainer_train(tmp_path: Path) -> None:
    done = _process([sys.executable, REPO / "train.py", "-d", "iris", *FAST, "-o", "m"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert _manifest(tmp_path / "m")["dataset"]["name"] == "iris"  # type: ignore[index]


def test_real_process_error_is_one_paragraph_without_traceback(tmp_path: Path) -> None:
    done = _process([BIN / "mlcontainer", "train", "-d", "nope.csv", "-t", "y"], tmp_path)
    assert done.returncode == 1
    assert "Error: dataset file not found: nope.csv" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "artifacts").exists()


def test_python_m_mlcontainer_shows_help(tmp_path: Path) -> None:
    done = _process([sys.executable, "-m", "mlcontainer", "--help"], tmp_path)
    assert done.returncode == 0
    for command in ("train", "predict", "datasets", "models"):
        assert command in done.stdout


@pytest.mark.slow
def test_default_train_runs_every_candidate_with_five_folds(tmp_path: Path) -> None:
    done = _process([BIN / "mlcontainer", "train"], tmp_path)
    assert done.returncode == 0, done.stderr
    manifest = _manifest(tmp_path / "artifacts")
    from mlcontainer.training.search.models import models_for

    assert manifest["dataset"]["name"] == "wine"  # type: ignore[index]
    assert manifest["selection"]["cv"] == 5  # type: ignore[index]
    assert manifest["selection"]["metric"] == "f1_macro"  # type: ignore[index]
    classifiers = sorted(models_for("classification", None))  # the baseline included
    assert sorted(c["name"] for c in manifest["leaderboard"]) == classifiers  # type: ignore[attr-defined]
    assert all(c["error"] is None for c in manifest["leaderboard"])  # type: ignore[attr-defined]
    assert "report.html" in done.stdout


# --- train refuses bad input and writes nothing ----------------------------------------------


def _bad_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    files = {
        "empty": folder / "empty.csv",
        "header": folder / "header.csv",
        "binary": folder / "binary.csv",
        "one_class": folder / "one_class.csv",
        "tiny_class": folder / "tiny_class.csv",
        "few_for_cv": folder / "few_for_cv.csv",
        "dir": folder / "dir.csv",
    }
    files["empty"].write_bytes(b"")
    files["header"].write_text("a,b,y\n")
    files["binary"].write_bytes(b"\xff\xfe\x00\x81garbage\n\x80\x81\n")
    files["one_class"].write_text("a,y\n" + "".join(f"{i},x\n" for i in range(20)))
    files["tiny_class"].write_text("a,y\n" + "".join(f"{i},x\n" for i in range(20)) + "99,z\n")
    few = "".join(f"{i},x\n" for i in range(20)) + "".join(f"{i},z\n" for i in range(4))
    files["few_for_cv"].write_text("a,y\n" + few)
    files["dir"].mkdir(exist_ok=True)
    return files


BAD_TRAIN = [
    (
        ["-d", "winez"],
        1,
        "unknown dataset 'winez' (did you mean 'wine'?): valid built-in names are iris, wine",
    ),
    (["-d", "{missing}", "-t", "y"], 1, "dataset file not found"),
    (["-d", "{dir}", "-t", "y"], 1, "it is a folder, not a file"),
    (["-d", "{binary}", "-t", "y"], 1, "cannot read"),
    (["-d", "{empty}", "-t", "y"], 1, "the file is empty"),
    (["-d", "{header}", "-t", "y"], 1, "header but no data rows"),
    (["-d", "{one_class}", "-t", "zz"], 1, "target column 'zz' is not in"),
    (["-d", "{one_class}", "-t", "y"], 1, "single class ('x')"),
    (["-d", "{one_class}"], 1, "--target is required"),
    # A class too small to split and fold is left out; with one class left, nothing trains.
    (["-d", "{tiny_class}", "-t", "y"], 1, "'z' (1 rows)), too few to split off test rows"),
    (["-d", "{tiny_class}", "-t", "y"], 1, "every class needs at least 2 rows"),
    (["-d", "{few_for_cv}", "-t", "y", "--cv", "5"], 1, "--cv 3 keeps a second class"),
    (["-d", "iris", "--cv", "50"], 1, "--cv 40 keeps a second class"),
    (
        ["-d", "{few_for_cv}", "-t", "y", "--cv", "5", "--min-class-rows", "2"],
        1,
        "too few rows for 5-fold cross-validation: class(es) 'z' (3 rows) in the training split",
    ),
    (["-d", "{few_for_cv}", "-t", "y", "--cv", "5", "--min-class-rows", "2"], 1, "--cv 3 works"),
    (["--metric", "f2"], 1, "unknown metric 'f2'; valid: accuracy"),
    (
        ["--models", "svm,forest"],
        1,
        "unknown model 'forest' (did you mean 'random_forest'?); valid: logistic_r",
    ),
    (["--models", " , "], 1, "--models names no model; valid: logistic_regression"),
    (["--cv", "1"], 1, "--cv must be at least 2"),
    (["--cv", "five"], 2, "'five' is not a valid integer"),
    (["--test-size", "0"], 1, "--test-size must be between 0 and 1"),
    (["--test-size", "1.5"], 1, "--test-size must be between 0 and 1"),
    (["--test-size", "0.01"], 1, "each side of the split needs a row of every class"),
    (["--jobs", "0"], 1, "--jobs must not be 0"),
    (["-d", "https://127.0.0.1:9/x.csv", "-t", "y"], 1, "--sha256 is required"),
    (["-d", "http://127.0.0.1:9/x.csv", "--sha256", "abc", "-t", "y"], 1, "64 hexadecimal"),
]


@pytest.mark.parametrize(
    ("args", "code", "message"), BAD_TRAIN, ids=[" ".join(a) for a, _, _ in BAD_TRAIN]
)
def test_train_refuses_bad_input_and_writes_nothing(
    args: list[str], code: int, message: str, tmp_path: Path, good_output: Path
) -> None:
    files = {k: str(v) for k, v in _bad_files(tmp_path / "data").items()}
    files["missing"] = str(tmp_path / "data" / "missing.csv")
    argv = [a.format(**files) for a in args]
    fresh = tmp_path / "fresh"
    for output in (fresh, good_output):
        before = tree_snapshot(output)
        models = [] if "--models" in argv else ["--models", "naive_bayes"]
        result = run("train", *argv, *models, "--output", output)
        assert result.exit_code == code, result.output
        assert message in result.stderr
        assert "Traceback" not in result.output
        assert tree_snapshot(output) == before
    assert not fresh.exists()


def test_train_refuses_an_output_that_is_a_file(tmp_path: Path) -> None:
    target = tmp_path / "artifacts"
    target.write_text("keep")
    result = run("train", "-d", "iris", "--models", "naive_bayes", "-o", target)
    assert result.exit_code == 1
    assert "exists and is not a folder" in result.stderr
    assert target.read_text() == "keep"


def test_train_refuses_an_unwritable_output_before_training_and_says_how_to_fix_a_mount(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mlcontainer.training import workflow

    def must_not_train(*_: object, **__: object) -> None:
        raise AssertionError("trained although the output folder cannot be written to")

    monkeypatch.setattr(workflow, "run_training", must_not_train)
    with unwritable_folder() as folder:
        result = run("train", "-d", "iris", "--models", "naive_bayes", "-o", folder / "model")
        uid = os.geteuid()
    assert result.exit_code == 1, result.output
    assert f"cannot write to the output folder {folder / 'model'} as user {uid}" in result.stderr
    assert "Permission denied" in result.stderr
    assert '--user "$(id -u):$(id -g)"' in result.stderr
    assert "chown 10001:10001" in result.stderr
    assert "Traceback" not in result.output


# --- predict -------------------------------------------------------------------------------


def _iris_csv(path: Path, rows: int = 5) -> Path:
    return _features_csv("iris", path, rows)


def test_predict_csv_to_stdout_by_default(iris_dir: Path, tmp_path: Path) -> None:
    result = run_ok("predict", "--model", iris_dir, "--input", _iris_csv(tmp_path / "in.csv"))
    lines = result.stdout.splitlines()
    assert lines[0] == "prediction,proba_setosa,proba_versicolor,proba_virginica"
    assert len(lines) == 6
    assert all(line.split(",")[0] == "setosa" for line in lines[1:])


def test_predict_reads_stdin_dash(iris_dir: Path, tmp_path: Path) -> None:
    data = _iris_csv(tmp_path / "in.csv").read_bytes()
    from_stdin = run_ok("predict", "--model", iris_dir, "--input", "-", stdin=data)
    from_file = run_ok("predict", "--model", iris_dir, "--input", tmp_path / "in.csv")
    assert from_stdin.stdout == from_file.stdout


def test_predict_writes_json_when_asked(iris_dir: Path, tmp_path: Path) -> None:
    result = run_ok(
        "predict",
        "--model",
        iris_dir,
        "--input",
        _iris_csv(tmp_path / "in.csv"),
        "--format",
        "json",
    )
    records = json.loads(result.stdout)
    assert [r["prediction"] for r in records] == ["setosa"] * 5


@pytest.mark.parametrize(("name", "starts"), [("p.json", "["), ("p.csv", "prediction,")])
def test_predict_output_format_follows_the_suffix(
    iris_dir: Path, tmp_path: Path, name: str, starts: str
) -> None:
    out = tmp_path / "preds" / name
    result = run_ok("predict", "--model", iris_dir, "-i", _iris_csv(tmp_path / "in.csv"), "-o", out)
    assert result.stdout == ""
    assert out.read_text().startswith(starts)
    assert [p.name for p in out.parent.iterdir()] == [name]


@pytest.mark.parametrize("name", ["p.parquet", "p.pq"])
def test_predict_writes_parquet_when_the_output_name_says_so(
    iris_dir: Path, tmp_path: Path, name: str
) -> None:
    out = tmp_path / name
    source = _iris_csv(tmp_path / "in.csv")
    run_ok("predict", "--model", iris_dir, "-i", source, "-o", out)
    as_csv = run_ok("predict", "--model", iris_dir, "-i", source).stdout
    table = pd.read_parquet(out)
    assert table["prediction"].tolist() == pd.read_csv(io.StringIO(as_csv))["prediction"].tolist()
    assert out.read_bytes()[:4] == b"PAR1"


def test_predict_output_with_unknown_suffix_needs_format(iris_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds.txt"
    result = run("predict", "--model", iris_dir, "-i", _iris_csv(tmp_path / "in.csv"), "-o", out)
    assert result.exit_code == 2
    assert "add --format" in result.stderr
    assert not out.exists()


def test_predict_failure_leaves_an_existing_output_file_unchanged(
    iris_dir: Path, tmp_path: Path
) -> None:
    out = tmp_path / "preds.csv"
    out.write_text("previous\n")
    bad = tmp_path / "bad.csv"
    bad.write_text("sepal length (cm),sepal width (cm)\n1,2\n")
    result = run("predict", "--model", iris_dir, "-i", bad, "-o", out)
    assert result.exit_code == 1
    assert out.read_text() == "previous\n"
    assert {p.name for p in tmp_path.iterdir()} == {"preds.csv", "bad.csv"}


def test_predict_missing_column_is_named(iris_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("sepal length (cm),sepal width (cm),petal length (cm)\n1,2,3\n")
    result = run("predict", "--model", iris_dir, "-i", bad)
    assert result.exit_code == 1
    assert "missing feature(s) 'petal width (cm)'" in result.stderr
    assert result.stdout == ""


def test_predict_extra_column_is_ignored_with_a_warning(iris_dir: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(_iris_csv(tmp_path / "in.csv")).assign(comment="hello")
    frame.to_csv(tmp_path / "extra.csv", index=False)
    result = run_ok("predict", "--model", iris_dir, "-i", tmp_path / "extra.csv")
    assert "Warning: ignored unknown column(s) 'comment'" in result.stderr
    assert len(result.stdout.splitlines()) == 6


def test_predict_wrong_type_names_column_and_row(iris_dir: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(_iris_csv(tmp_path / "in.csv")).astype(object)
    frame.loc[3, "petal length (cm)"] = "long"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    result = run("predict", "--model", iris_dir, "-i", tmp_path / "bad.csv")
    assert result.exit_code == 1
    # Data row 3 is line 5: the header is line 1.
    assert "column 'petal length (cm)', line 5: expected a number, got 'long'" in result.stderr


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("5.1,3.5\n", "line 119992: it has 2 fields for 4 columns"),
        ("5.1,3.5,1.4,0.2 caf\xe9\n", "line 119992: it is not UTF-8 text: byte 0xe9"),
    ],
    ids=["row cut short", "Latin-1 byte"],
)
@pytest.mark.parametrize("reader", ["arrow", "stdlib"])
def test_predict_names_the_line_of_a_bad_row_near_the_end_of_a_large_file(
    iris_dir: Path, tmp_path: Path, reader: str, fault: str, message: str
) -> None:
    lines = [b"5.1,3.5,1.4,0.2\n"] * 120_000  # three chunks of 50 000 rows
    lines[119_990] = fault.encode("latin-1")  # line 119 992 of the file (the header is line 1)
    source = tmp_path / "big.csv"
    header = b"sepal length (cm),sepal width (cm),petal length (cm),petal width (cm)\n"
    source.write_bytes(header + b"".join(lines))
    out = tmp_path / "preds.csv"
    result = run("predict", "--model", iris_dir, "-i", source, "-o", out, "--csv-reader", reader)
    assert result.exit_code == 1
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.csv"]  # no output, no temporary


@pytest.mark.parametrize("content", [b"", b"sepal length (cm),sepal width (cm)\n"])
def test_predict_refuses_empty_input(iris_dir: Path, content: bytes) -> None:
    result = run("predict", "--model", iris_dir, "-i", "-", stdin=content)
    assert result.exit_code == 1
    assert "empty" in result.stderr


def test_predict_refuses_a_missing_model_folder(tmp_path: Path) -> None:
    result = run("predict", "--model", tmp_path / "none", "-i", "-", stdin=b"a\n1\n")
    assert result.exit_code == 1
    assert "no model folder at" in result.stderr


def test_predict_refuses_a_missing_input_file(iris_dir: Path, tmp_path: Path) -> None:
    result = run("predict", "--model", iris_dir, "-i", tmp_path / "none.csv")
    assert result.exit_code == 1
    assert "input file not found" in result.stderr


# --- listings and help -----------------------------------------------------------------------


def test_datasets_lists_every_builtin_and_marks_the_default() -> None:
    result = run_ok("datasets")
    for name in BUILTIN_DATASETS:
        assert name in result.stdout
    assert "wine (default)" in result.stdout


def test_models_lists_every_candidate_and_the_tasks_it_serves() -> None:
    from mlcontainer.training.search.models import MODELS

    result = run_ok("models", env={"COLUMNS": "200"})
    rows = {
        cells[0]: cells[1:]
        for line in result.stdout.splitlines()
        if (cells := [c.strip() for c in line.strip("│ ").split("│")]) and cells[0] in MODELS
    }
    assert set(rows) == set(MODELS)
    assert rows["logistic_regression"] == ["Logistic regression (L2, lbfgs)", "-"]
    assert rows["naive_bayes"][1] == "-"
    assert rows["ridge"][0] == "-"
    assert rows["svm"][1].startswith("Support vector regression")
    assert rows["baseline"] == [
        "Baseline: the training split's class frequencies, whatever the features",
        "Baseline: the training split's mean, whatever the features",
    ]


def test_recover_finishes_an_interrupted_save_that_predict_refuses(
    good_output: Path, tmp_path: Path
) -> None:
    # A killed train's state after the commit rename: the new set waits in .commit-*.
    commit = good_output / ".commit-killed"
    shutil.copytree(good_output, commit)
    (commit / "previous").mkdir()
    stale = good_output / ".staging-dead"
    stale.mkdir()
    os.utime(commit, (1_000_000, 1_000_000))  # dealt with oldest first
    source = _features_csv("iris", tmp_path / "in.csv")
    refused = run("predict", "--model", good_output, "-i", source)
    assert refused.exit_code == 1
    assert "interrupted after it was published (.commit-killed)" in refused.stderr
    assert f"mlcontainer recover --model {good_output}" in refused.stderr
    assert "Traceback" not in refused.output
    done = run_ok("recover", "--model", good_output).stdout.splitlines()
    assert done == [
        "Finished the save interrupted after it was published (.commit-killed)",
        "Removed .staging-dead, left by a save that was never published",
    ]
    assert not commit.exists()
    assert not stale.exists()
    run_ok("predict", "--model", good_output, "-i", source)
    assert run_ok("recover", "--model", good_output).stdout == (
        f"Nothing to recover in {good_output}\n"
    )


def test_recover_refuses_a_missing_folder(tmp_path: Path) -> None:
    result = run("recover", "--model", tmp_path / "none")
    assert result.exit_code == 1
    assert "no model folder at" in result.stderr


@pytest.mark.parametrize("command", ["train", "predict", "recover", "datasets", "models"])
def test_every_option_of_every_command_has_help(command: str) -> None:
    cmd = main.commands[command]
    text = run_ok(command, "--help").stdout
    assert cmd.help
    assert cmd.help.split("\n")[0] in text
    for param in cmd.params:
        if isinstance(param, click.Option):
            assert param.help, f"{command} {param.opts} has no help"
            assert param.opts[0] in text


def test_train_puts_the_regression_suggestion_on_the_first_line(tmp_path: Path) -> None:
    """abalone's rings: 28 whole numbers taken as classes; the first line says how to predict
    them as a number, before any progress line."""
    import numpy as np

    rng = np.random.default_rng(0)
    rings = np.repeat(np.arange(3, 17), 30)  # 14 whole numbers, 30 rows each
    path = tmp_path / "abalone.csv"
    pd.DataFrame({"shell": rings * 0.03 + rng.normal(0, 0.05, len(rings)), "rings": rings}).to_csv(
        path, index=False
    )
    args = ["train", "-d", str(path), "-t", "rings", "-m", "naive_bayes", "--cv", "2"]
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "model")])
    assert result.exit_code == 0, result.output
    first = result.output.splitlines()[0]
    assert first.startswith("Note: Task: classification (target 'rings' holds 14 distinct")
    assert first.endswith("use --task regression to predict them as a number")
