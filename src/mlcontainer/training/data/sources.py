"""Where a dataset comes from: a built-in table, a local file, or a checksummed download.

Importable without pandas or scikit-learn (the loaders import them when called), so that
``train`` checks its ``--dataset`` before it loads them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcontainer.core.errors import DatasetError
from mlcontainer.core.formats import COMPRESSIONS, KINDS, check_file
from mlcontainer.core.suggest import did_you_mean

if TYPE_CHECKING:
    import pandas as pd

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class BuiltinDataset:
    """A dataset shipped by an installed package: nothing is downloaded."""

    name: str
    description: str
    loader: Callable[[], tuple[pd.DataFrame, str]]


def _sklearn_frame(name: str) -> tuple[pd.DataFrame, str]:
    from sklearn import datasets

    loaders = {
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
        "digits": datasets.load_digits,
        "diabetes": datasets.load_diabetes,
    }
    bunch = loaders[name](as_frame=True)
    frame: pd.DataFrame = bunch.frame.copy()
    if name not in ("digits", "diabetes"):  # digits' labels are the digits; diabetes: a number
        names = [str(n) for n in bunch.target_names]
        frame["target"] = [names[i] for i in frame["target"]]
    return frame, "target"


def _penguins_frame() -> tuple[pd.DataFrame, str]:
    import palmerpenguins

    return palmerpenguins.load_penguins(), "species"


BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    "iris": BuiltinDataset(
        "iris",
        "Iris flowers: 150 rows, 4 numeric features, 3 species",
        lambda: _sklearn_frame("iris"),
    ),
    "wine": BuiltinDataset(
        "wine",
        "Wine cultivars: 178 rows, 13 numeric features, 3 classes",
        lambda: _sklearn_frame("wine"),
    ),
    "breast_cancer": BuiltinDataset(
        "breast_cancer",
        "Breast cancer Wisconsin: 569 rows, 30 numeric features, 2 classes",
        lambda: _sklearn_frame("breast_cancer"),
    ),
    "digits": BuiltinDataset(
        "digits",
        "Handwritten digits: 1797 rows, 64 pixel features, 10 classes",
        lambda: _sklearn_frame("digits"),
    ),
    "diabetes": BuiltinDataset(
        "diabetes",
        "Diabetes progression: 442 rows, 10 numeric features, a number to predict (regression)",
        lambda: _sklearn_frame("diabetes"),
    ),
    "penguins": BuiltinDataset(
        "penguins",
        "Palmer penguins: 344 rows, numeric + categorical features with missing values, 3 species",
        _penguins_frame,
    ),
}


def looks_like_path(spec: str) -> bool:
    """Tell whether a dataset argument names a file rather than a built-in dataset."""
    suffix = Path(spec).suffix.lower()
    named = "/" in spec or "\\" in spec or suffix in KINDS or suffix in COMPRESSIONS
    return named or (spec not in BUILTIN_DATASETS and Path(spec).exists())


def is_url(spec: str) -> bool:
    """Tell whether a dataset argument is an http(s) URL to download."""
    return spec.startswith(("http://", "https://"))


def check_spec(spec: str) -> None:
    """Refuse a dataset argument that names no built-in, no URL and no readable file."""
    if spec in BUILTIN_DATASETS or is_url(spec):
        return
    if looks_like_path(spec):
        check_file(Path(spec), DatasetError, what="dataset file")
        return
    raise DatasetError(
        f"unknown dataset {spec!r}{did_you_mean(spec, BUILTIN_DATASETS)}: valid built-in names "
        f"are {', '.join(BUILTIN_DATASETS)}; or give a path to a data file (.csv, .xlsx, "
        ".json, .parquet, ...) or an http(s) URL"
    )


def download(
    url: str, *, sha256: str | None, cache_dir: Path | None, progressbar: Any = False
) -> Path:
    """Download ``url`` once into ``cache_dir`` and verify its SHA-256; a bad file is not kept."""
    if not sha256:
        raise DatasetError(
            f"--sha256 is required for a URL dataset ({url}): give the file's SHA-256 "
            "(e.g. from `sha256sum FILE`) so a changed or tampered download is refused"
        )
    digest = check_sha256(sha256)
    import pooch
    import requests

    folder = cache_dir or Path(pooch.os_cache("mlcontainer"))
    name = url.rstrip("/").rsplit("/", 1)[-1].split("?", 1)[0] or "dataset"
    try:
        fetched = pooch.retrieve(
            url,
            known_hash=f"sha256:{digest}",
            fname=f"{digest[:12]}-{name}",
            path=folder,
            progressbar=progressbar,
        )
    except ValueError as exc:  # pooch's hash mismatch; it has already deleted the download
        raise DatasetError(f"download of {url} was refused: {exc}".replace("\n", " ")) from None
    except requests.RequestException as exc:
        raise DatasetError(f"could not download {url}: {exc}") from None
    except OSError as exc:
        raise DatasetError(f"could not save the download of {url} in {folder}: {exc}") from None
    return Path(fetched)


def check_sha256(sha256: str) -> str:
    digest = sha256.strip().lower().removeprefix("sha256:")
    if not _SHA256.match(digest):
        raise DatasetError(f"--sha256 must be 64 hexadecimal characters, got {sha256!r}")
    return digest


def verify_sha256(path: Path, sha256: str) -> None:
    """Refuse a local file whose SHA-256 differs from the one given."""
    expected = check_sha256(sha256)
    actual = file_sha256(path)
    if actual != expected:
        raise DatasetError(f"{path} has SHA-256 {actual}, expected {expected}")


def file_sha256(path: Path) -> str:
    """Return the hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
    except FileNotFoundError:
        raise DatasetError(f"dataset file not found: {path}") from None
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc.strerror or exc}") from None
    return digest.hexdigest()
