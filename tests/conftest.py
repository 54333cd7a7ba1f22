"""Shared fixtures: small models trained once per test session, chained artifact -> predictor."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import FileServer, serve_folder

from mlcontainer.inference.predictor import Predictor, load_predictor
from mlcontainer.training.options import TrainOptions
from mlcontainer.training.workflow import TrainOutcome, run_training

#: The real public datasets in ../shared/datasets, beside the clone (the project root's parent).
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
    return load_predictor(iris_model_dir, "sklearn")


@pytest.fixture(scope="session")
def penguins_predictor(penguins_model_dir: Path) -> Predictor:
    return load_predictor(penguins_model_dir, "sklearn")


@pytest.fixture
def model_copy(iris_model_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the session's iris model folder, free to damage."""
    return Path(shutil.copytree(iris_model_dir, tmp_path / "model"))


@pytest.fixture
def shared_datasets() -> Path:
    """The real public CSVs in ../shared/datasets; skips where that folder is absent."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real datasets folder {SHARED_DATASETS} is absent")
    return SHARED_DATASETS


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[FileServer]:
    """Serve ``tmp_path/served`` over HTTP on a free port of 127.0.0.1, in a thread."""
    root = tmp_path / "served"
    root.mkdir()
    with serve_folder(root) as server:
        yield server
