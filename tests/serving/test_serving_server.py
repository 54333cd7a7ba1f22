"""A real `mlcontainer serve` (gunicorn) on a free 127.0.0.1 port, called over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from serving_support import IRIS_ROW, PENGUIN_ROW, free_port

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
    server = start_server("--model", str(iris_model_dir), "--workers", "2", "--log-format", "json")

    def predict(_: int) -> int:
        return call(server.url + "/predict", {"instances": [IRIS_ROW] * 200})[0]

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(predict, range(60)))
    assert statuses == [200] * 60
    with urllib.request.urlopen(server.url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    served_by = {
        r["pid"]
        for r in map(json.loads, filter(None, server.log().splitlines()))
        if r.get("logger") == "access" and r["path"] == "/predict"
    }
    assert len(served_by) == 2, "load did not reach both workers"
    line = 'mlcontainer_http_requests_total{endpoint="/predict",method="POST",status="200"}'
    assert f"{line} 60.0" in text
    assert 'mlcontainer_predictions_total{class="setosa"} 12000.0' in text
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
