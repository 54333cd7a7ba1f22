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
def diabetes_outcome(tmp_path_factory: pytest.TempPathFactory) -> TrainOutcome:
    """A ridge regression on scikit-learn's diabetes data (numeric features, a number)."""
    return _train(tmp_path_factory, "diabetes", dataset="diabetes", models=("ridge",), cv=3)


@pytest.fixture(scope="session")
def diabetes_model_dir(diabetes_outcome: TrainOutcome) -> Path:
    return diabetes_outcome.output


@pytest.fixture(scope="session")
def auto_imports_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random forest on the headerless UCI auto_imports file, price (column_26) as target:
    text columns, `?` markers, a whole-number target taken as a quantity."""
    if not SHARED_DATASETS.is_dir():
        pytest.skip(f"real datasets folder {SHARED_DATASETS} is absent")
    outcome = _train(
        tmp_path_factory, "auto_imports", dataset=str(SHARED_DATASETS / "auto_imports.csv"),
        target="column_26", models=("random_forest",), cv=3,
    )  # fmt: skip
    return outcome.output


def uci_text(rows: int = 120, *, seed: int = 5) -> str:
    """A file as UCI publishes them: no header line, `?` for missing numbers, categories in
    single quotes (as ARFF exports write), the class in the last column."""
    import numpy as np

    rng = np.random.default_rng(seed)
    lines = []
    for i in range(rows):
        a, b, c = rng.normal(size=3)
        cat = "'hi'" if a + rng.normal(scale=0.3) > 0 else "'lo'"
        label = "R" if a + 0.5 * b > 0 else "M"
        cells = [f"{a:.4f}", "?" if i % 9 == 4 else f"{b:.4f}", f"{c:.4f}", f"{i % 13}", cat, label]
        lines.append(",".join(cells))
    return "\n".join(lines)  # no final newline, as pima and auto_imports end


@pytest.fixture(scope="session")
def uci_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("uci") / "uci.csv"
    path.write_text(uci_text())
    return path


@pytest.fixture(scope="session")
def uci_model_dir(tmp_path_factory: pytest.TempPathFactory, uci_file: Path) -> Path:
    """A logistic regression trained on the headerless UCI-like file, untouched."""
    output = tmp_path_factory.mktemp("uci-model") / "artifacts"
    options = TrainOptions(
        dataset=str(uci_file), target="column_6", models=("logistic_regression",), cv=3,
        output=output,
    )  # fmt: skip
    run_training(options)
    return output


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
