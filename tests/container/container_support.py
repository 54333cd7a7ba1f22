"""Helpers for the container tests: the docker CLI, free host ports, polling an HTTP endpoint."""

from __future__ import annotations

import json
import random
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DEMO_DIR = ROOT / "examples" / "flask-docker-demo"
#: Host ports the container tests may publish on (the team's range for them).
PORT_RANGE = (19000, 19999)
#: The image's unprivileged user (Dockerfile: useradd --uid 10001).
APP_UID = 10001


def docker_unavailable_reason() -> str | None:
    """Say why container tests cannot run here, or return None when `docker info` answers."""
    if shutil.which("docker") is None:
        return "no `docker` CLI on PATH"
    try:
        info = subprocess.run(
            ["docker", "info", "--format", "{{json .ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return "`docker info` did not answer within 20 s"
    if info.returncode != 0:
        first = (info.stderr.strip().splitlines() or ["no output"])[0]
        return (
            f"`docker info` failed: {first} (start an engine, e.g. ../shared/container-engine/up)"
        )
    return None


def docker(
    *args: str, input_bytes: bytes | None = None, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess[bytes]:
    """Run the docker CLI; on failure raise with its output, which names what went wrong."""
    result = subprocess.run(
        ["docker", *args], input=input_bytes, capture_output=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout.decode(errors='replace')[-4000:]}\n"
            f"stderr:\n{result.stderr.decode(errors='replace')[-4000:]}"
        )
    return result


def run_once(
    image: str,
    *args: str,
    options: tuple[str, ...] = (),
    input_bytes: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """`docker run` a one-shot container and remove it afterwards, keeping its exit code.

    Not `docker run --rm`: through Podman's Docker API the CLI then reports exit code 0
    whatever the process returned (measured with `sh -c 'exit 3'`).
    """
    name = f"mlcontainer-once-{uuid.uuid4().hex[:10]}"
    interactive = ("-i",) if input_bytes is not None else ()
    try:
        return docker(
            "run", "--name", name, *interactive, *options, image, *args,
            input_bytes=input_bytes, check=check,
        )  # fmt: skip
    finally:
        docker("rm", "-f", name, check=False, timeout=60)


def start(
    containers: list[str],
    image: str,
    *options: str,
    command: tuple[str, ...] = ("serve",),
    port: int = 8080,
) -> tuple[str, int]:
    """Run ``image command`` detached with ``port`` published on a free host port."""
    name = f"mlcontainer-test-{uuid.uuid4().hex[:10]}"
    host_port = free_port()
    docker("run", "-d", "--name", name, "-p", f"{host_port}:{port}", *options, image, *command)
    containers.append(name)
    return name, host_port


def wine_rows(count: int) -> list[dict[str, float]]:
    """``count`` rows of the wine features (the baked model's dataset), as JSON records."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame.drop(columns="target").sample(count, random_state=0)
    return [{str(k): float(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def build(context: Path, tag: str, *args: str) -> str:
    """Build ``context`` as ``tag`` and return the image id."""
    docker("build", "-t", tag, *args, str(context), timeout=1200)
    return inspect(tag)["Id"]


def inspect(ref: str) -> Any:
    """Return `docker inspect` of one object as a dict."""
    return json.loads(docker("inspect", ref).stdout)[0]


def free_port() -> int:
    """Pick a port from PORT_RANGE that nothing on this machine listens on."""
    candidates = list(range(PORT_RANGE[0], PORT_RANGE[1] + 1))
    random.shuffle(candidates)
    for port in candidates:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")


def http(
    url: str, body: Any = None, timeout: float = 10, *, accept: str | None = None
) -> tuple[int, bytes]:
    """GET ``url`` (or POST ``body`` as JSON); return the status and the body, 4xx/5xx too."""
    data = None if body is None else json.dumps(body).encode()
    headers = {} if body is None else {"Content-Type": "application/json"}
    if accept is not None:
        headers["Accept"] = accept
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_http_ok(url: str, container: str, timeout: float = 90) -> float:
    """Poll ``url`` until it answers 200; return the seconds it took, fail with the logs."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if http(url, timeout=2)[0] == 200:
                return time.monotonic() - started
        except (OSError, urllib.error.URLError):
            pass
        state = inspect(container)["State"]
        if not state.get("Running", False):
            break
        time.sleep(0.2)
    logs = docker("logs", container, check=False)
    raise AssertionError(
        f"{url} did not answer 200 within {timeout} s (container state: "
        f"{inspect(container)['State'].get('Status')})\n"
        f"{(logs.stdout + logs.stderr).decode(errors='replace')[-4000:]}"
    )
