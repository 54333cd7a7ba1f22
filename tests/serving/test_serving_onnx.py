"""Serving with the ONNX runtime: the runtime is shown, refused when unavailable, and the
whole serving path runs without scikit-learn, scipy, pandas or matplotlib."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from serving_support import IRIS_ROW, PENGUIN_ROW, LiveServer

from mlcontainer.cli import main
from mlcontainer.core.config import Settings
from mlcontainer.serving.app import create_app

#: Libraries the ONNX serving path must never import.
HEAVY = ("sklearn", "scipy", "pandas", "matplotlib")
PENGUIN = PENGUIN_ROW


def _without_onnx(source: Path, target: Path, *, runtime: dict[str, Any] | None) -> Path:
    """Copy a model folder, drop model.onnx, and record ``runtime`` (None: no section at all)."""
    shutil.copytree(source, target)
    (target / "model.onnx").unlink(missing_ok=True)
    manifest = json.loads((target / "model.json").read_text())
    manifest["files"].pop("model.onnx", None)
    if runtime is None:
        manifest.pop("runtime", None)
    else:
        manifest["runtime"] = runtime
    (target / "model.json").write_text(json.dumps(manifest))
    return target


@pytest.fixture(scope="module")
def fallback_dir(iris_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    reason = "skl2onnx cannot convert LogisticRegression: a test says so"
    return _without_onnx(
        iris_model_dir,
        tmp_path_factory.mktemp("fallback") / "model",
        runtime={"default": "sklearn", "reason": reason, "onnx": None},
    )


def test_model_with_verified_onnx_is_served_with_onnx_by_default(iris_model_dir: Path) -> None:
    client = create_app(Settings(model_dir=iris_model_dir)).test_client()
    summary = client.get("/", headers={"Accept": "application/json"}).get_json()
    assert (summary["runtime"], summary["runtime_reason"]) == ("onnx", None)


@pytest.mark.parametrize("runtime", ["onnx", "sklearn"])
def test_summary_page_v2_metadata_and_metrics_name_the_runtime(
    iris_model_dir: Path, runtime: str
) -> None:
    client = create_app(Settings(model_dir=iris_model_dir, runtime=runtime)).test_client()
    summary = client.get("/", headers={"Accept": "application/json"}).get_json()
    assert summary["runtime"] == runtime
    page = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert f'<strong id="runtime">{runtime}</strong>' in page
    meta = client.get(f"/v2/models/{summary['name']}").get_json()
    assert meta["platform"] == f"mlcontainer-{runtime}"
    assert meta["parameters"] == {"runtime": runtime, "runtime_reason": summary["runtime_reason"]}
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'runtime="{runtime}"' in metrics


def test_model_without_onnx_is_served_with_sklearn_and_says_why(fallback_dir: Path) -> None:
    client = create_app(Settings(model_dir=fallback_dir)).test_client()
    summary = client.get("/", headers={"Accept": "application/json"}).get_json()
    assert summary["runtime"] == "sklearn"
    assert "cannot convert LogisticRegression" in summary["runtime_reason"]
    page = client.get("/", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "cannot convert LogisticRegression" in page
    meta = client.get(f"/v2/models/{summary['name']}").get_json()
    assert meta["platform"] == "mlcontainer-sklearn"
    answer = client.post("/predict", json={"instances": [IRIS_ROW]}).get_json()
    assert answer["predictions"] == ["setosa"]


def test_folder_from_before_onnx_is_served_with_sklearn(
    iris_model_dir: Path, tmp_path: Path
) -> None:
    old = _without_onnx(iris_model_dir, tmp_path / "old", runtime=None)
    client = create_app(Settings(model_dir=old)).test_client()
    summary = client.get("/", headers={"Accept": "application/json"}).get_json()
    assert summary["runtime"] == "sklearn"
    answer = client.post("/predict", json={"instances": [IRIS_ROW]}).get_json()
    assert answer["predictions"] == ["setosa"]


def test_serve_with_onnx_on_a_model_without_onnx_refuses_in_one_line(fallback_dir: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--model", str(fallback_dir), "--runtime", "onnx"])
    assert result.exit_code == 1, result.output
    message = result.output.strip()
    assert "onnx" in message.lower()
    assert "cannot convert LogisticRegression" in message
    assert "Traceback" not in message


def test_missing_and_unseen_categories_get_the_same_answer_from_both_runtimes(
    penguins_model_dir: Path,
) -> None:
    body = {
        "instances": [
            PENGUIN,
            {**PENGUIN, "sex": None, "body_mass_g": None},
            {**PENGUIN, "island": None},  # never missing in training
            {**PENGUIN, "island": "Atlantis"},  # never seen in training
        ]
    }
    onnx_app = create_app(Settings(model_dir=penguins_model_dir, runtime="onnx"))
    sklearn_app = create_app(Settings(model_dir=penguins_model_dir, runtime="sklearn"))
    onnx_answer = onnx_app.test_client().post("/predict", json=body).get_json()
    sklearn_answer = sklearn_app.test_client().post("/predict", json=body).get_json()
    assert onnx_answer["predictions"] == sklearn_answer["predictions"]
    for got, want in zip(
        onnx_answer["probabilities"], sklearn_answer["probabilities"], strict=True
    ):
        assert got.keys() == want.keys()
        assert all(abs(got[c] - want[c]) <= 1e-4 for c in got)


_FRESH_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from mlcontainer.core.config import Settings
    from mlcontainer.serving.app import create_app

    row, complete = json.loads(sys.argv[2]), json.loads(sys.argv[3])
    client = create_app(Settings(model_dir=Path(sys.argv[1]), runtime="onnx")).test_client()
    name = client.get("/", headers={"Accept": "application/json"}).get_json()["name"]
    header = ",".join(row)
    values = ",".join("" if v is None else str(v) for v in row.values())
    answers = {
        "page": client.get("/", headers={"Accept": "text/html"}),
        "predict": client.post("/predict", json={"instances": [row]}),
        "split": client.post("/invocations", json={
            "dataframe_split": {"columns": list(row), "data": [list(row.values())]}}),
        "records": client.post("/invocations", json={"dataframe_records": [row]}),
        "instances": client.post("/invocations", json={"instances": [row]}),
        "inputs": client.post("/invocations", json={"inputs": {k: [v] for k, v in row.items()}}),
        "csv": client.post("/invocations", data=header + "\\n" + values + "\\n",
                           content_type="text/csv"),
        "v2": client.post(f"/v2/models/{name}/infer", json={"inputs": [
            {"name": k, "shape": [1],
             "datatype": "BYTES" if isinstance(v, str) else "FP64", "data": [v]}
            for k, v in complete.items()]}),
        "v2_metadata": client.get(f"/v2/models/{name}"),
        "metrics": client.get("/metrics"),
    }
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY})
    print(json.dumps({
        "status": {k: r.status_code for k, r in answers.items()},
        "labels": [answers["predict"].get_json()["predictions"],
                   answers["csv"].get_json()["predictions"],
                   answers["split"].get_json()["predictions"],
                   answers["v2"].get_json()["outputs"][0]["data"]],
        "heavy": heavy,
    }))
    """
).replace("{HEAVY}", repr(set(HEAVY)))


@pytest.mark.slow
def test_onnx_serving_path_imports_no_sklearn_scipy_pandas_or_matplotlib(
    penguins_model_dir: Path,
) -> None:
    row = {**PENGUIN, "sex": None}  # numeric and string tensors, and a missing category
    args = [str(penguins_model_dir), json.dumps(row), json.dumps(PENGUIN)]
    done = subprocess.run(
        [sys.executable, "-c", _FRESH_SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert set(report["status"].values()) == {200}, report["status"]
    assert report["labels"] == [["Gentoo"]] * 4
    assert report["heavy"] == []


def _worker_pids(master: int) -> list[int]:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    return [int(pid) for pid in children]


def _mapped_libraries(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc")
def test_gunicorn_serves_with_onnx_and_its_workers_load_no_sklearn(
    start_server: Any, iris_model_dir: Path
) -> None:
    server: LiveServer = start_server(
        "--model", str(iris_model_dir), "--runtime", "onnx", "--workers", "2"
    )
    for path in ("/health", "/ready"):
        with urllib.request.urlopen(server.url + path, timeout=30) as response:
            assert response.status == 200
    request = urllib.request.Request(
        server.url + "/predict",
        data=json.dumps({"instances": [IRIS_ROW]}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert json.loads(response.read())["predictions"] == ["setosa"]
    summary_request = urllib.request.Request(
        server.url + "/", headers={"Accept": "application/json"}
    )
    with urllib.request.urlopen(summary_request, timeout=30) as response:
        assert json.loads(response.read())["runtime"] == "onnx"
    workers = _worker_pids(server.process.pid)
    assert len(workers) == 2
    # Each worker imports onnxruntime as it boots (the one that answered may be the first).
    deadline = time.monotonic() + 60
    while not all("onnxruntime" in _mapped_libraries(w) for w in workers):
        assert time.monotonic() < deadline, "a worker never loaded onnxruntime"
        time.sleep(0.2)
    # The master never does: its native thread would hang every forked worker's exit.
    assert "onnxruntime" not in _mapped_libraries(server.process.pid)
    for pid in [server.process.pid, *workers]:
        maps = _mapped_libraries(pid)
        for lib in ("/sklearn/", "/scipy/", "/pandas/", "/matplotlib/"):
            assert lib not in maps, f"process {pid} mapped {lib}"


@pytest.mark.slow
def test_serve_with_sklearn_where_scikit_learn_is_missing_refuses_in_one_line(
    iris_model_dir: Path,
) -> None:
    # sys.modules[name] = None makes find_spec and import both say "not installed".
    script = (
        "import sys; sys.modules['sklearn'] = None; from mlcontainer.cli import main; "
        f"main(['serve', '--model', {str(iris_model_dir)!r}, '--runtime', 'sklearn'])"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1
    assert "needs scikit-learn" in done.stderr
    assert "use the onnx runtime" in done.stderr
    assert "set with --runtime or MLCONTAINER_RUNTIME" in done.stderr
    assert "Traceback" not in done.stderr
    assert "Listening" not in done.stderr + done.stdout


@pytest.mark.parametrize(("cores", "workers", "threads"), [(8, 2, 1), (2, 1, 1), (2, 4, 1)])
def test_each_worker_session_uses_one_inference_thread_whatever_the_cores(
    iris_model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    cores: int,
    workers: int,
    threads: int,
) -> None:
    from mlcontainer.inference import predictor as prediction

    asked: list[tuple[str, int | None]] = []
    real = prediction.load_predictor

    def load(model_dir: Path, runtime: str = "auto", *, threads: int | None = None) -> Any:
        asked.append((runtime, threads))
        return real(model_dir, runtime, threads=threads)

    monkeypatch.setattr(prediction, "load_predictor", load)
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    create_app(Settings(model_dir=iris_model_dir, workers=workers, runtime="onnx"))
    assert asked == [("onnx", threads)]
