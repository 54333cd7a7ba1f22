"""The README's docker commands, run for real: train, serve, health, predict, stop."""

from __future__ import annotations

import io
import json
import re
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from container_support import (
    APP_UID,
    ROOT,
    docker,
    http,
    inspect,
    run_once,
    start,
    wait_http_ok,
    wine_rows,
)

pytestmark = pytest.mark.container

#: The files `train` writes (and the baked model carries).
ARTIFACTS = {
    "model.skops", "model.onnx", "model.json", "metrics.json", "confusion_matrix.png",
    "report.html", "README.md",
}  # fmt: skip
#: The pictures of a regressor's report, by their alt text.
REGRESSION_PICTURES = (
    "Cross-validation scores per candidate", "Predicted vs actual (test split)",
    "Residuals vs predicted (test split)", "Residuals (test split)",
    "Permutation importance (test split)",
)  # fmt: skip


def _wine_rows(count: int) -> pd.DataFrame:
    return pd.DataFrame(wine_rows(count))


def _writable_dir(path: Path) -> Path:
    # The container's user (uid 10001) must be able to write to the bind-mounted folder.
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)
    return path


def test_train_writes_artifacts_to_mounted_folder_as_non_root(image: str, tmp_path: Path) -> None:
    out = _writable_dir(tmp_path / "artifacts")
    result = run_once(
        image, "train", "--models", "logistic_regression,naive_bayes", "--cv", "3",
        options=("-v", f"{out}:/app/artifacts"),
    )  # fmt: skip
    printed = result.stdout.decode()
    assert "Accuracy" in printed
    assert "F1 (macro)" in printed
    assert {p.name for p in out.iterdir()} == ARTIFACTS
    assert {p.stat().st_uid for p in out.iterdir()} == {APP_UID}
    manifest = json.loads((out / "model.json").read_text())
    assert manifest["dataset"]["name"] == "wine"


def test_train_a_regressor_in_the_container_draws_its_plots_quietly(
    image: str, tmp_path: Path
) -> None:
    out = _writable_dir(tmp_path / "artifacts")
    result = run_once(
        image, "train", "--dataset", "diabetes", "--models", "ridge", "--cv", "2",
        options=("-v", f"{out}:/app/artifacts"),
    )  # fmt: skip
    assert "Task: regression" in " ".join(result.stdout.decode().split())
    # matplotlib keeps its font cache under MPLCONFIGDIR (/tmp), not the read-only home
    assert "matplotlib" not in result.stderr.decode().lower()
    report = (out / "report.html").read_text()
    assert report.count("data:image/png;base64,") == len(REGRESSION_PICTURES)
    for alt in REGRESSION_PICTURES:
        assert f'alt="{alt}"' in report
    assert json.loads((out / "model.json").read_text())["schema"]["task"] == "regression"


def test_train_into_unwritable_mounted_folder_fails_before_training_saying_how_to_fix_it(
    image: str, tmp_path: Path
) -> None:
    # A new host folder owned by root (as `docker run -v` creates one), mode 0755.
    out = tmp_path / "root-only"
    out.mkdir(mode=0o755)
    out.chmod(0o755)
    started = time.monotonic()
    result = run_once(
        image, "train", options=("-v", f"{out}:/app/artifacts"), check=False,
    )  # fmt: skip
    seconds = time.monotonic() - started
    stderr = result.stderr.decode()
    assert result.returncode == 1, stderr
    assert "Traceback" not in stderr
    assert "cannot write to the output folder artifacts as user 10001 (Permission denied)" in stderr
    assert '--user "$(id -u):$(id -g)"' in stderr
    assert "-v HOST:/app/artifacts" in stderr
    assert "comparing models" not in stderr  # refused before any training
    assert b"Model comparison" not in result.stdout
    assert seconds < 30, f"{seconds:.1f} s: the default train would have run first"
    assert list(out.iterdir()) == []


def test_train_into_a_root_owned_folder_works_with_the_user_option(
    image: str, tmp_path: Path
) -> None:
    # The fix the error gives: run as the folder's owner (here root, as on a host whose user
    # created the folder; `--user "$(id -u):$(id -g)"` in a shell).
    out = tmp_path / "root-owned"
    out.mkdir(mode=0o755)
    stat = out.stat()
    result = run_once(
        image, "train", "--models", "naive_bayes", "--cv", "2",
        options=("-v", f"{out}:/app/artifacts", "--user", f"{stat.st_uid}:{stat.st_gid}"),
    )  # fmt: skip
    assert "Selected: naive_bayes" in result.stdout.decode()
    assert {p.name for p in out.iterdir()} == ARTIFACTS


def test_plain_run_with_the_labs_port_mapping_serves_health_and_predict_then_stops_on_sigterm(
    image: str, containers: list[str]
) -> None:
    # The lab's `docker run -p 4000:8080 IMAGE`: no command, so the image's default (serve).
    name, port = start(containers, image, command=())
    wait_http_ok(f"http://127.0.0.1:{port}/ready", name)
    status, body = http(f"http://127.0.0.1:{port}/health")
    assert (status, json.loads(body)) == (200, {"status": "healthy"})

    rows = wine_rows(3)
    status, body = http(f"http://127.0.0.1:{port}/predict", {"instances": rows})
    assert status == 200, body
    answer = json.loads(body)
    assert len(answer["predictions"]) == 3
    assert set(answer["predictions"]) <= {"class_0", "class_1", "class_2"}
    assert all(abs(sum(p.values()) - 1) < 1e-6 for p in answer["probabilities"])

    status, body = http(f"http://127.0.0.1:{port}/predict", {"instances": [{"alcohol": "x"}]})
    assert 400 <= status < 500, body

    started = time.monotonic()
    docker("stop", "-t", "10", name, timeout=60)
    assert time.monotonic() - started < 10
    assert inspect(name)["State"]["ExitCode"] == 0


def test_healthcheck_command_passes_against_a_serving_container_and_needs_no_curl(
    image: str, containers: list[str]
) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*?\])$", dockerfile, re.MULTILINE | re.DOTALL)
    assert match is not None
    command = json.loads(match.group(1))
    # PORT as Cloud Run sets it: the server and the health check both follow it.
    name, port = start(containers, image, "-e", "PORT=9090", port=9090)
    wait_http_ok(f"http://127.0.0.1:{port}/health", name)

    # `docker exec` is refused by this sandbox's runtime, so the check runs in a second
    # container of the same image that shares the server's network namespace.
    def check(port_env: str) -> int:
        options = ("--network", f"container:{name}", "-e", port_env, "--entrypoint", command[0])
        return run_once(image, *command[1:], options=options, check=False).returncode

    assert check("PORT=9090") == 0
    assert check("PORT=9091") != 0  # nothing listens there: the check can fail
    no_curl = run_once(image, "-c", "command -v curl || command -v wget",
                       options=("--entrypoint", "sh"), check=False)  # fmt: skip
    assert no_curl.returncode != 0


def test_predict_reads_csv_from_stdin_with_the_baked_model(image: str) -> None:
    rows = _wine_rows(5)
    result = run_once(
        image, "predict", "--input", "-", input_bytes=rows.to_csv(index=False).encode()
    )
    predictions = pd.read_csv(io.BytesIO(result.stdout))
    assert len(predictions) == 5
    assert set(predictions.iloc[:, 0]) <= {"class_0", "class_1", "class_2"}


def test_predict_rejects_rows_with_a_missing_column_without_a_traceback(image: str) -> None:
    rows = _wine_rows(2).drop(columns="proline")
    result = run_once(
        image, "predict", "--input", "-", input_bytes=rows.to_csv(index=False).encode(),
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "proline" in result.stderr.decode()
    assert "Traceback" not in result.stderr.decode()


def test_mounted_model_replaces_the_baked_model(
    image: str, iris_model_dir: Path, tmp_path: Path
) -> None:
    model = tmp_path / "iris"
    shutil.copytree(iris_model_dir, model)
    for path in [model, *model.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    iris = pd.DataFrame(
        [[5.1, 3.5, 1.4, 0.2]],
        columns=["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"],
    )
    for mount, env in (("/app/artifacts", ()), ("/models", ("-e", "MODEL_DIR=/models"))):
        result = run_once(
            image, "predict", "--input", "-", options=("-v", f"{model}:{mount}:ro", *env),
            input_bytes=iris.to_csv(index=False).encode(),
        )  # fmt: skip
        assert pd.read_csv(io.BytesIO(result.stdout)).iloc[0, 0] == "setosa", mount
