"""The serving-only image (`docker build --target serve`): ONNX, no training stack."""

from __future__ import annotations

import json
import re

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

#: What the serve target leaves out: the training stack (the `train` extra) and the builders.
TRAINING_MODULES = ("sklearn", "scipy", "pandas", "matplotlib", "skops", "skl2onnx", "onnx")


def test_serve_image_runs_as_non_root_without_training_stack_uv_or_compiler(
    serve_image: str,
) -> None:
    script = f"""
import importlib.util, pathlib, shutil
found = [m for m in {TRAINING_MODULES!r} if importlib.util.find_spec(m)]
found += [p for p in ("uv", "uvx", "gcc", "cc", "g++", "make", "curl") if shutil.which(p)]
for root in ("/usr", "/opt", "/app", "/root", "/bin"):
    found += [str(p) for p in pathlib.Path(root).rglob("uv") if p.is_file()]
found += [p for p in ("/root/.cache", "/app/src", "/app/tests") if pathlib.Path(p).exists()]
print(" ".join(found))
print(" ".join(sorted(p.name for p in pathlib.Path("/app/artifacts").iterdir())))
"""
    # As root, to look into /root too; the image's own user is checked after.
    options = ("--user", "0", "--entrypoint", "python")
    found, model_files = (
        run_once(serve_image, "-c", script, options=options).stdout.decode().splitlines()
    )
    uid = run_once(serve_image, "-u", options=("--entrypoint", "id")).stdout.decode()
    assert int(uid) == APP_UID
    assert found.split() == []
    assert "model.onnx" in model_files.split()
    assert "model.skops" not in model_files.split()
    config = inspect(serve_image)["Config"]
    assert (config["Entrypoint"], config["Cmd"]) == (["mlcontainer"], ["serve"])
    assert config["Labels"]["org.opencontainers.image.title"] == "mlcontainer-serve"


def test_serve_image_answers_health_and_predict_as_the_full_image_does(
    image: str, serve_image: str, containers: list[str]
) -> None:
    # PORT as Cloud Run sets it; the full image serves the same baked model.
    served, port = start(containers, serve_image, "-e", "PORT=9090", command=(), port=9090)
    full, full_port = start(containers, image)
    wait_http_ok(f"http://127.0.0.1:{port}/ready", served)
    wait_http_ok(f"http://127.0.0.1:{full_port}/ready", full)

    rows = wine_rows(5)
    answers = []
    for p in (port, full_port):
        # Both serve with onnxruntime: the full image through the default runtime "auto".
        summary = json.loads(http(f"http://127.0.0.1:{p}/", accept="application/json")[1])
        assert (summary["runtime"], summary["runtime_reason"]) == ("onnx", None)
        status, body = http(f"http://127.0.0.1:{p}/predict", {"instances": rows})
        assert status == 200, body
        answers.append(json.loads(body))
    onnx, reference = answers
    assert onnx["predictions"] == reference["predictions"]
    for ours, theirs in zip(onnx["probabilities"], reference["probabilities"], strict=True):
        assert ours.keys() == theirs.keys()
        assert all(abs(ours[k] - theirs[k]) <= 1e-4 for k in ours)
    status, body = http(f"http://127.0.0.1:{port}/predict", {"instances": [{"alcohol": "x"}]})
    assert 400 <= status < 500, body

    # The image's HEALTHCHECK command, run beside the server (`docker exec` is refused here).
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(r"^HEALTHCHECK .*?CMD (\[.*?\])$", dockerfile, re.MULTILINE | re.DOTALL)
    assert match is not None
    command = json.loads(match.group(1))
    options = ("--network", f"container:{served}", "-e", "PORT=9090", "--entrypoint", command[0])
    assert run_once(serve_image, *command[1:], options=options, check=False).returncode == 0

    docker("stop", "-t", "10", served, timeout=60)
    assert inspect(served)["State"]["ExitCode"] == 0


def test_train_in_the_serve_image_fails_in_one_line_naming_the_extra(serve_image: str) -> None:
    result = run_once(serve_image, "train", check=False)
    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert "mlcontainer[train]" in stderr
    assert "Traceback" not in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_serve_image_predicts_csv_from_stdin_quietly(serve_image: str) -> None:
    header = list(wine_rows(1)[0])
    rows = [",".join(str(row[c]) for c in header) for row in wine_rows(4)]
    csv_text = "\n".join([",".join(header), *rows]) + "\n"
    result = run_once(serve_image, "predict", "--input", "-", input_bytes=csv_text.encode())
    lines = result.stdout.decode().splitlines()
    assert lines[0].startswith("prediction,")
    assert len(lines) == 5
    assert result.stderr.decode().strip() == ""  # no onnxruntime warning either


def test_serve_image_with_a_baked_regressor_answers_numbers(
    regressor_serve_image: str, containers: list[str]
) -> None:
    from sklearn.datasets import load_diabetes

    served, port = start(containers, regressor_serve_image, command=())
    wait_http_ok(f"http://127.0.0.1:{port}/ready", served)
    url = f"http://127.0.0.1:{port}"
    summary = json.loads(http(f"{url}/", accept="application/json")[1])
    assert summary["task"] == "regression"
    assert (summary["runtime"], summary["runtime_reason"]) == ("onnx", None)
    frame = load_diabetes(as_frame=True, scaled=True).frame.drop(columns="target").head(4)
    rows = frame.to_dict(orient="records")
    status, body = http(f"{url}/predict", {"instances": rows})
    assert status == 200, body
    answer = json.loads(body)
    assert "probabilities" not in answer
    assert len(answer["predictions"]) == 4
    assert all(25 <= v <= 346 for v in answer["predictions"])  # the target's range
    status, body = http(f"{url}/invocations", {"dataframe_records": rows})
    assert json.loads(body) == {"predictions": answer["predictions"]}
    meta = json.loads(http(f"{url}/v2/models/{summary['name']}")[1])
    assert meta["outputs"] == [{"name": "predict", "datatype": "FP64", "shape": [-1]}]
    ask = {
        "inputs": [
            {"name": "x", "shape": [1, 10], "datatype": "FP64", "data": [list(rows[0].values())]}
        ],
        "outputs": [{"name": "probabilities"}],
    }
    status, body = http(f"{url}/v2/models/{summary['name']}/infer", ask)
    assert status == 400
    assert "this model is a regressor" in json.loads(body)["error"]
    docker("stop", "-t", "10", served, timeout=60)
    assert inspect(served)["State"]["ExitCode"] == 0


def test_docker_stop_of_a_loaded_onnx_server_exits_0_well_within_its_timeout(
    serve_image: str, containers: list[str]
) -> None:
    """With onnxruntime imported in the master, every stop waited out the graceful timeout."""
    import threading
    import time

    served, port = start(containers, serve_image)
    wait_http_ok(f"http://127.0.0.1:{port}/ready", served)
    rows = wine_rows(50)
    stop = threading.Event()
    statuses: list[int] = []

    def load() -> None:
        while not stop.is_set():
            try:
                statuses.append(http(f"http://127.0.0.1:{port}/predict", {"instances": rows})[0])
            except OSError:
                return  # refused or reset once the container is gone

    clients = [threading.Thread(target=load) for _ in range(8)]
    for client in clients:
        client.start()
    time.sleep(2)
    started = time.monotonic()
    docker("stop", "-t", "10", served, timeout=60)
    took = time.monotonic() - started
    stop.set()
    for client in clients:
        client.join(timeout=30)
    assert inspect(served)["State"]["ExitCode"] == 0
    assert took < 5, f"docker stop took {took:.1f} s"
    assert statuses
    assert set(statuses) <= {200}
