"""The lab's hands-on demo (examples/flask-docker-demo), built and run for real."""

from __future__ import annotations

import json
import uuid

import pytest
from container_support import docker, free_port, http, run_once, wait_http_ok

pytestmark = pytest.mark.container


def test_demo_image_answers_index_and_health(demo_image: str, containers: list[str]) -> None:
    name = f"flask-docker-demo-test-{uuid.uuid4().hex[:10]}"
    port = free_port()
    docker("run", "-d", "--name", name, "-p", f"{port}:8080", demo_image)
    containers.append(name)
    wait_http_ok(f"http://127.0.0.1:{port}/health", name)
    assert json.loads(http(f"http://127.0.0.1:{port}/health")[1]) == {"status": "healthy"}
    status, body = http(f"http://127.0.0.1:{port}/")
    assert status == 200
    assert "Docker" in json.loads(body)["message"]
    assert http(f"http://127.0.0.1:{port}/missing")[0] == 404


def test_demo_container_runs_as_non_root(demo_image: str) -> None:
    result = run_once(demo_image, "-u", options=("--entrypoint", "id"))
    assert result.stdout.decode().strip() == "10001"
