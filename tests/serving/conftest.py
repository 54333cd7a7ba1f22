"""Serving fixtures: artifact -> app -> client, and a real gunicorn server on a free port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from serving_support import LiveServer, free_port, wait_ready

from mlcontainer.core.config import Settings
from mlcontainer.serving.app import create_app


@pytest.fixture(scope="session")
def iris_app(iris_model_dir: Path) -> Flask:
    """The iris model as `serve` runs it by default: runtime auto, which picks its ONNX graph."""
    return create_app(Settings(model_dir=iris_model_dir, max_rows=50))


@pytest.fixture
def client(iris_app: Flask) -> FlaskClient:
    return iris_app.test_client()


@pytest.fixture(scope="session")
def penguins_app(penguins_model_dir: Path) -> Flask:
    """The penguins model with runtime auto (ONNX): categorical inputs, missing values."""
    return create_app(Settings(model_dir=penguins_model_dir))


@pytest.fixture
def penguins_client(penguins_app: Flask) -> FlaskClient:
    return penguins_app.test_client()


StartServer = Callable[..., LiveServer]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[StartServer]:
    """Start `mlcontainer serve` with options; every server is stopped (SIGTERM) at teardown."""
    started: list[LiveServer] = []

    def start(*args: str, env: dict[str, str] | None = None, wait: bool = True) -> LiveServer:
        port = free_port()
        log_path = tmp_path / f"server-{port}.log"
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("MLCONTAINER_")}
        full_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        full_env.update({"PORT": str(port), **(env or {})})
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "mlcontainer", "serve", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=full_env,
            )
        server = LiveServer(process, int(full_env["PORT"]), log_path)
        started.append(server)
        if wait:
            wait_ready(server)
        return server

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.send_signal(signal.SIGTERM)
            try:
                server.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
