"""Container fixtures: the engine (or a skip), the project's image built once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from container_support import DEMO_DIR, ROOT, build, docker, docker_unavailable_reason


@pytest.fixture(scope="session")
def engine() -> None:
    """Skip, with the reason, when no Docker-compatible engine answers `docker info`."""
    reason = docker_unavailable_reason()
    if reason is not None:
        pytest.skip(f"container engine unavailable: {reason}")


@contextmanager
def _built(context: Path, name: str, *args: str) -> Iterator[str]:
    # One tag per test session, so parallel sessions never retag each other's image; the
    # layers stay in the engine's cache for the next session.
    tag = f"{name}:test-{os.getpid()}"
    build(context, tag, *args)
    try:
        yield tag
    finally:
        docker("rmi", tag, check=False)


@pytest.fixture(scope="session")
def image(engine: None) -> Iterator[str]:
    """The project's Dockerfile built from the working tree (warm cache: seconds)."""
    with _built(ROOT, "mlcontainer-test") as tag:
        yield tag


@pytest.fixture(scope="session")
def serve_image(engine: None) -> Iterator[str]:
    """The serving-only target (`--target serve`): shares every builder layer with `image`."""
    with _built(ROOT, "mlcontainer-serve-test", "--target", "serve") as tag:
        yield tag


@pytest.fixture(scope="session")
def regressor_serve_image(engine: None) -> Iterator[str]:
    """The serving-only target with a regressor baked in (diabetes; two fast candidates)."""
    train_args = "TRAIN_ARGS=--dataset diabetes --models ridge,decision_tree --cv 3"
    with _built(
        ROOT, "mlcontainer-serve-regressor-test", "--target", "serve", "--build-arg", train_args
    ) as tag:
        yield tag


@pytest.fixture(scope="session")
def demo_image(engine: None) -> Iterator[str]:
    """The lab's hands-on demo image from examples/flask-docker-demo."""
    with _built(DEMO_DIR, "flask-docker-demo") as tag:
        yield tag


@pytest.fixture
def containers() -> Iterator[list[str]]:
    """Names of containers a test started; each is removed (forced) at teardown."""
    names: list[str] = []
    yield names
    for name in names:
        docker("rm", "-f", name, check=False, timeout=60)
