"""A real `mlcontainer serve` (gunicorn) on a free 127.0.0.1 port, called over HTTP."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256
from pathlib import Path
from typing import Any

import pytest
from serving_support import IRIS_ROW, PENGUIN_ROW, free_port, wait_workers_ready

pytestmark = pytest.mark.slow

PENGUIN = PENGUIN_ROW


def call(url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """POST ``body`` as JSON (already-encoded bytes are sent as they are), or GET without one."""
    data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_serve_reads_port_and_model_from_the_environment_and_options_win(
    start_server: Any, iris_model_dir: Path
) -> None:
    port = free_port()
    server = start_server(
        "--port",
        str(port),
        "--log-format",
        "json",
        env={
            "PORT": "1",  # overridden by --port
            "MODEL_DIR": str(iris_model_dir),
            "MLCONTAINER_HOST": "127.0.0.1",
            "MLCONTAINER_LOG_FORMAT": "text",  # overridden by --log-format
        },
        wait=False,
    )
    server.port = port
    from serving_support import wait_ready

    wait_ready(server)
    assert call(server.url + "/health") == (200, {"status": "healthy"})
    status, body = call(
        server.url + "/predict", {"instances": [IRIS_ROW]}, {"X-Request-ID": "trace-42"}
    )
    assert (status, body["predictions"]) == (200, ["setosa"])
    status, body = call(server.url + "/predict", {"instances": [{"bad": 1}]})
    assert status == 422
    assert server.stop() == 0
    records = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    access = [r for r in records if r["logger"] == "access"]
    assert {
        "method": "POST",
        "path": "/predict",
        "status": 200,
        "request_id": "trace-42",
    }.items() <= (next(r for r in access if r["request_id"] == "trace-42").items())
    assert any(r["status"] == 422 and len(r["request_id"]) == 32 for r in access)
    assert any("Listening at: http://127.0.0.1:" in r.get("message", "") for r in records)


def test_serve_exits_non_zero_before_binding_when_the_model_cannot_load(tmp_path: Path) -> None:
    port = free_port()
    broken = tmp_path / "artifacts"
    broken.mkdir()
    (broken / "model.json").write_text("{not json")
    result = subprocess.run(
        [sys.executable, "-m", "mlcontainer", "serve", "--model", str(broken), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert "Error: cannot read" in result.stderr
    assert "model.json" in result.stderr
    assert "Listening" not in result.stderr + result.stdout
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0


#: `mlcontainer serve` with scikit-learn's pipeline load slowed by 4 s (in every process).
_SLOW_LOAD = """
import sys, time
from mlcontainer.inference import sklearn_runtime
real = sklearn_runtime.load_pipeline
def slow(*args, **kwargs):
    time.sleep(4)
    return real(*args, **kwargs)
sklearn_runtime.load_pipeline = slow
from mlcontainer.cli import main
main(["serve", *sys.argv[1:]])
"""


def _status(url: str) -> tuple[int, dict[str, str], Any] | None:
    """Status, headers and JSON body; None when nothing answered within 2 s."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def test_the_port_answers_at_once_and_ready_is_503_until_the_model_is_loaded(
    tmp_path: Path, iris_model_dir: Path
) -> None:
    """The model was loaded twice before the port was bound, then /ready hung while it was
    loaded again: a probe got no answer at all for the whole load."""
    port = free_port()
    log = tmp_path / "server.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCONTAINER_")}
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _SLOW_LOAD, "--model", str(iris_model_dir), "--port",
             str(port), "--runtime", "sklearn"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    seen: list[int | None] = []
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            answer = _status(url + "/ready")
            seen.append(None if answer is None else answer[0])
            if answer is not None and answer[0] == 503:
                assert answer[1]["Retry-After"] == "1"
                assert answer[2]["error"]["code"] == "not_ready"
                health = _status(url + "/health")
                assert health is not None
                assert (health[0], health[2]) == (200, {"status": "healthy"})
            if answer is not None and answer[0] == 200:
                break
            time.sleep(0.05)
        assert seen[-1] == 200, log.read_text()
        # Answered while loading: 503, never a probe left waiting for the load.
        answered = [s for s in seen if s is not None]
        assert answered[0] == 503, seen
        assert None not in seen[seen.index(503) :], seen
        assert call(url + "/predict", {"instances": [IRIS_ROW]})[0] == 200
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


#: Two workers: the first to load takes 1 s more, the other 12 s more.
_UNEVEN_LOAD = """
import os, sys, time
from mlcontainer.inference import sklearn_runtime
real = sklearn_runtime.load_pipeline
first = sys.argv.pop(1)
def uneven(*args, **kwargs):
    try:
        os.close(os.open(first, os.O_CREAT | os.O_EXCL))
        time.sleep(1)
    except FileExistsError:
        time.sleep(12)
    return real(*args, **kwargs)
sklearn_runtime.load_pipeline = uneven
from mlcontainer.cli import main
main(["serve", *sys.argv[1:]])
"""


def test_once_a_worker_is_ready_one_still_loading_leaves_it_the_requests(
    tmp_path: Path, iris_model_dir: Path
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLCONTAINER_")}
    with (tmp_path / "server.log").open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", _UNEVEN_LOAD, str(tmp_path / "first"), "--model",
             str(iris_model_dir), "--port", str(port), "--runtime", "sklearn", "--workers", "2"],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while (answer := _status(url + "/ready")) is None or answer[0] != 200:
            assert time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.05)
        # The other worker is still loading (for about 11 s more): none of these reach it.
        statuses = []
        for _ in range(40):
            statuses.append(call(url + "/predict", {"instances": [IRIS_ROW]})[0])
            time.sleep(0.05)
        assert statuses == [200] * 40
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def test_a_model_that_fails_to_load_in_a_worker_stops_the_server_with_its_error(
    tmp_path: Path, iris_model_dir: Path
) -> None:
    """A model.skops whose hash matches but which holds a type mlcontainer does not trust:
    only loading it can tell, in the worker, after the port was bound."""
    import datetime

    import skops.io

    folder = Path(shutil.copytree(iris_model_dir, tmp_path / "model"))
    data = skops.io.dumps(datetime.date(2020, 1, 1))
    (folder / "model.skops").write_bytes(data)
    manifest = json.loads((folder / "model.json").read_text())
    manifest["files"]["model.skops"] = {"sha256": sha256(data).hexdigest(), "bytes": len(data)}
    (folder / "model.json").write_text(json.dumps(manifest))
    result = subprocess.run(
        [sys.executable, "-m", "mlcontainer", "serve", "--model", str(folder), "--port",
         str(free_port()), "--runtime", "sklearn"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "Error: " in result.stderr
    assert "contains types mlcontainer does not trust: datetime.date" in result.stderr
    assert "Traceback" not in result.stderr


def test_sigterm_lets_in_flight_requests_finish_and_exits_zero(
    start_server: Any, penguins_model_dir: Path
) -> None:
    # scikit-learn: ONNX answers 40 000 rows before SIGTERM can be sent; draining is the same.
    server = start_server(
        "--model", str(penguins_model_dir), "--workers", "2", "--threads", "2",
        "--max-rows", "100000", "--graceful-timeout", "30", "--runtime", "sklearn",
    )  # fmt: skip
    # About 1.4-1.6 s of validation + random forest per request, four at once (2 workers x 2
    # threads). Encoded once, up front: the requests reach the server at once, and the wait
    # before the signal is not spent in the client's json.dumps (which made it tight).
    body = json.dumps({"instances": [PENGUIN] * 40_000}).encode()
    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(call, server.url + "/predict", body) for _ in range(4)]
        time.sleep(0.3)  # all four are being read or computed by now (the first ends at ~1.4 s)
        assert all(not f.done() for f in futures), "requests finished before SIGTERM was sent"
        sent = time.monotonic()
        server.process.send_signal(signal.SIGTERM)
        results = [f.result() for f in futures]
    assert [status for status, _ in results] == [200] * 4
    assert all(len(body["predictions"]) == 40_000 for _, body in results)
    assert server.process.wait(timeout=40) == 0
    assert time.monotonic() - sent < 35
    assert "Handling signal: term" in server.log()


def test_metrics_add_up_over_several_workers(start_server: Any, iris_model_dir: Path) -> None:
    server = start_server(
        "--model", str(iris_model_dir), "--workers", "2", "--log-format", "json",
        "--drift-window", "1000000",  # larger than all the rows a worker can be sent
    )  # fmt: skip
    # A worker still loading leaves new connections to a ready one: load both before the test.
    wait_workers_ready(server, 2)

    def predict(_: int) -> int:
        return call(server.url + "/predict", {"instances": [IRIS_ROW] * 200})[0]

    def served_by() -> set[int]:
        return {
            r["pid"]
            for r in map(json.loads, filter(None, server.log().splitlines()))
            if r.get("logger") == "access" and r["path"] == "/predict"
        }

    # Which worker accepts a connection is the kernel's choice: one idle worker can take a
    # whole burst on a busy machine. Send rounds until both have served (bounded), then check
    # the sums over everything sent.
    sent = 0
    with ThreadPoolExecutor(8) as pool:
        for _ in range(40):
            statuses = list(pool.map(predict, range(20)))
            assert statuses == [200] * 20
            sent += 20
            if len(served_by()) == 2:
                break
    assert len(served_by()) == 2, f"{sent} requests did not reach both workers"
    with urllib.request.urlopen(server.url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    line = 'mlcontainer_http_requests_total{endpoint="/predict",method="POST",status="200"}'
    assert f"{line} {float(sent)}" in text
    assert f'mlcontainer_predictions_total{{class="setosa"}} {200.0 * sent}' in text
    # Every worker's drift window, summed: all the rows sent, whichever worker took them.
    assert f"mlcontainer_drift_window_rows {200.0 * sent}" in text
    assert text.count("mlcontainer_feature_drift_psi{") == 4
    assert 'mlcontainer_model_info{estimator="Logistic regression (L2, lbfgs)"' in text


def test_a_worker_leaving_keeps_the_shared_metrics_folder(
    iris_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlcontainer.core.config import Settings
    from mlcontainer.serving import server

    seen: dict[str, Any] = {}

    def run(self: Any) -> None:
        worker = os.fork()
        if worker == 0:
            sys.exit(0)  # as a gunicorn worker leaves: SystemExit up the master's stack
        os.waitpid(worker, 0)
        seen["kept"] = self.metrics_dir.is_dir()
        seen["dir"] = self.metrics_dir

    monkeypatch.delenv(server.MULTIPROC_ENV, raising=False)
    monkeypatch.setattr(server._Server, "run", run)
    master = os.getpid()
    try:
        server.serve(Settings(model_dir=iris_model_dir, runtime="onnx"))
    finally:
        if os.getpid() != master:  # the forked "worker": stop here, silently
            os._exit(0)
    assert seen["kept"]
    assert not Path(seen["dir"]).exists()  # the master removes it when gunicorn returns
    # ... and stops pointing children of this process at it.
    assert server.MULTIPROC_ENV not in os.environ
