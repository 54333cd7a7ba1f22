"""Shared fixtures: small models trained once per test session, chained artifact -> predictor."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from mlcontainer.prediction import Predictor
from mlcontainer.workflow import TrainOptions, TrainOutcome, run_training

SHARED_DATASETS = Path(__file__).resolve().parents[2] / "shared" / "datasets"


def _train(tmp_path_factory: pytest.TempPathFactory, name: str, **options: object) -> TrainOutcome:
    output = tmp_path_factory.mktemp(name) / "artifacts"
    return run_training(TrainOptions(output=output, **options))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def iris_outcome(tmp_path_factory: pytest.TempPathFactory) -> TrainOutcome:
    """A logistic regression on iris (numeric features only), 3-fold CV."""
    return _train(tmp_path_factory, "iris", dataset="iris", models=("logistic_regression",), cv=3)


@pytest.fixture(scope="session")
def penguins_outcome(tmp_path_factory: pytest.TempPathFactory) -> TrainOutcome:
    """A random forest on penguins: numeric + categorical features with missing values."""
    return _train(tmp_path_factory, "penguins", dataset="penguins", models=("random_forest",), cv=3)


@pytest.fixture(scope="session")
def iris_model_dir(iris_outcome: TrainOutcome) -> Path:
    return iris_outcome.output


@pytest.fixture(scope="session")
def penguins_model_dir(penguins_outcome: TrainOutcome) -> Path:
    return penguins_outcome.output


@pytest.fixture(scope="session")
def iris_predictor(iris_model_dir: Path) -> Predictor:
    return Predictor.from_dir(iris_model_dir)


@pytest.fixture(scope="session")
def penguins_predictor(penguins_model_dir: Path) -> Predictor:
    return Predictor.from_dir(penguins_model_dir)


@pytest.fixture
def shared_datasets() -> Path:
    """The real public CSVs in ../shared/datasets; skips where that folder is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real datasets folder {SHARED_DATASETS} is absent")
    return SHARED_DATASETS


class _CountingHandler(SimpleHTTPRequestHandler):
    """Serves files from the server's folder and counts each GET per path."""

    def do_GET(self) -> None:
        self.server.hits[self.path] = self.server.hits.get(self.path, 0) + 1  # type: ignore[attr-defined]
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        del format, args


@dataclass
class FileServer:
    """A real HTTP server on 127.0.0.1 serving one folder; ``hits`` counts requests per path."""

    root: Path
    base_url: str
    hits: dict[str, int]

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """Serve ``tmp_path/served`` over HTTP on a free port of 127.0.0.1, in a thread."""
    root = tmp_path / "served"
    root.mkdir()
    handler = functools.partial(_CountingHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.hits = {}  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield FileServer(root, f"http://127.0.0.1:{server.server_port}", server.hits)  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def tree_snapshot(root: Path) -> dict[str, bytes] | None:
    """Every file under ``root`` (relative path -> bytes), or None if ``root`` does not exist."""
    if not root.exists():
        return None
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
