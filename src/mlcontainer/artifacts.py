"""The on-disk model format: skops file + JSON manifest with hashes; atomic writes, safe loads."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlcontainer.errors import ArtifactError
from mlcontainer.schema import Schema

MODEL_FILE = "model.skops"
#: The same pipeline compiled to ONNX, present only when it was verified against scikit-learn.
ONNX_FILE = "model.onnx"
MANIFEST_FILE = "model.json"
METRICS_FILE = "metrics.json"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
REPORT_FILE = "report.html"
FORMAT = "mlcontainer.model"
FORMAT_VERSION = 1

#: Types skops does not trust by default that our candidate pipelines legitimately contain.
#: A file that needs anything else is refused. Never take this list from the file itself.
TRUSTED_TYPES: frozenset[str] = frozenset(
    {
        "numpy.dtype",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.tree._tree.Tree",
    }
)


@dataclass(frozen=True)
class LoadedModel:
    """A verified model: the fitted pipeline, its manifest and its input schema."""

    pipeline: Any
    manifest: dict[str, Any]
    schema: Schema
    sha256: str
    path: Path

    @property
    def name(self) -> str:
        """The model's display name, e.g. ``wine-logistic_regression``."""
        return str(self.manifest["name"])


def package_versions(names: Iterable[str]) -> dict[str, str]:
    """Return the installed version of each distribution in ``names`` ("unknown" if absent)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = version(name)
        except PackageNotFoundError:  # pragma: no cover - all are dependencies
            out[name] = "unknown"
    return out


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def current_umask() -> int:
    """Return the process umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and a rename: all or nothing.

    The file gets the mode a plain ``open()`` would give (0666 less the umask), not
    mkstemp's 0600: a model trained in a container must stay readable by the host's user.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        Path(tmp).replace(path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(
    output_dir: Path,
    *,
    pipeline: Any,
    manifest: Mapping[str, Any],
    metrics: Mapping[str, Any],
    confusion_matrix_png: bytes,
    report_html: str,
    onnx_bytes: bytes | None = None,
    runtime: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the model set into ``output_dir`` so that a failure leaves the previous set intact.

    Every file is first written in full to a staging folder inside ``output_dir`` (which may
    be a mounted volume, so the folder itself is never renamed); then each is renamed into
    place, the manifest last. If a rename fails, the files already swapped are put back, so
    the previous set stays whole. The manifest holds the hash of every other file, so a set
    cut short by a crash between two renames is detected at load time instead of being used.

    ``onnx_bytes`` (the verified ONNX graph) is written as ``model.onnx``; without it a
    ``model.onnx`` left by an earlier set is removed with the swap, so the folder never holds a
    graph its manifest does not list. ``runtime`` is the manifest's ``runtime`` section; by
    default it names scikit-learn.
    """
    import skops.io

    if output_dir.exists() and not output_dir.is_dir():
        raise ArtifactError(f"--output {output_dir} exists and is not a folder")
    model_bytes = skops.io.dumps(pipeline)
    files: dict[str, bytes] = {
        MODEL_FILE: model_bytes,
        METRICS_FILE: _json_bytes(metrics),
        CONFUSION_MATRIX_FILE: confusion_matrix_png,
        REPORT_FILE: report_html.encode(),
    }
    if onnx_bytes is not None:
        files[ONNX_FILE] = onnx_bytes
    full = dict(manifest)
    full["runtime"] = dict(runtime) if runtime is not None else _sklearn_runtime(onnx_bytes)
    full["format"] = FORMAT
    full["format_version"] = FORMAT_VERSION
    full["files"] = {n: {"sha256": sha256_bytes(b), "bytes": len(b)} for n, b in files.items()}
    files[MANIFEST_FILE] = _json_bytes(full)
    created = not output_dir.exists()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=output_dir))
    except OSError as exc:
        raise ArtifactError(f"cannot write to {output_dir}: {exc.strerror or exc}") from None
    try:
        for name, data in files.items():
            write_atomic(staging / name, data)
        stale = [] if onnx_bytes is not None else [ONNX_FILE]
        _swap_in(staging, output_dir, list(files), remove=stale)  # the manifest comes last
    except OSError as exc:
        raise ArtifactError(f"cannot write to {output_dir}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(output_dir.iterdir()):
            output_dir.rmdir()  # a failed first save leaves no empty folder behind
    return full


def _sklearn_runtime(onnx_bytes: bytes | None) -> dict[str, Any]:
    if onnx_bytes is not None:
        raise ValueError("an ONNX graph needs its runtime section (from onnx_export)")
    return {"default": "sklearn", "reason": "no ONNX export was attempted", "onnx": None}


def _swap_in(staging: Path, output_dir: Path, names: list[str], *, remove: list[str]) -> None:
    """Take ``remove`` out, rename staged files into ``output_dir`` in order; on any failure
    restore the old ones."""
    previous = staging / "previous"
    previous.mkdir()
    removed: list[str] = []
    swapped: list[str] = []
    try:
        for name in remove:
            if (output_dir / name).exists():
                (output_dir / name).replace(previous / name)
                removed.append(name)
        for name in names:
            current = output_dir / name
            if current.exists():
                _keep_copy(current, previous / name)
            (staging / name).replace(current)
            swapped.append(name)
    except BaseException:
        for name in reversed(swapped):
            if (previous / name).exists():
                (previous / name).replace(output_dir / name)
            else:
                (output_dir / name).unlink(missing_ok=True)
        for name in removed:
            (previous / name).replace(output_dir / name)
        raise


def _keep_copy(source: Path, copy: Path) -> None:
    # A hard link keeps the old bytes at no cost; some mounted volumes need a real copy.
    try:
        os.link(source, copy)
    except OSError:
        shutil.copy2(source, copy)


def _json_bytes(data: Mapping[str, Any]) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()


def read_manifest(model_dir: Path) -> dict[str, Any]:
    """Read and check ``model.json``: it must be one of ours, of a version we understand."""
    if not model_dir.is_dir():
        raise ArtifactError(
            f"no model folder at {model_dir}: train one with "
            f"`mlcontainer train --output {model_dir}` or point --model at an existing one"
        )
    path = model_dir / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ArtifactError(
            f"{model_dir} has no {MANIFEST_FILE}: it is not a model folder"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not an mlcontainer manifest (no format {FORMAT!r})")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtifactError(
            f"{path} has format version {manifest.get('format_version')!r}; this mlcontainer "
            f"reads version {FORMAT_VERSION}: retrain the model or use a matching release"
        )
    return manifest


def verify_file(model_dir: Path, manifest: Mapping[str, Any], name: str) -> bytes:
    """Return a file's bytes after checking its size and SHA-256 against the manifest."""
    try:
        expected = manifest["files"][name]
        want_hash, want_size = str(expected["sha256"]), int(expected["bytes"])
    except (KeyError, TypeError, ValueError):
        raise ArtifactError(f"the manifest in {model_dir} does not list {name}") from None
    path = model_dir / name
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing; the model folder is incomplete") from None
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) != want_size or sha256_bytes(data) != want_hash:
        raise ArtifactError(
            f"{path} does not match its manifest (expected {want_size} bytes with SHA-256 "
            f"{want_hash[:16]}…, found {len(data)} bytes with {sha256_bytes(data)[:16]}…): "
            "it was truncated, replaced or tampered with; retrain or restore the folder"
        )
    return data


def load(model_dir: Path) -> LoadedModel:
    """Load a model folder after verifying manifest, hash and the types the file contains."""
    import skops.io
    from skops.io.exceptions import UntrustedTypesFoundException

    manifest = read_manifest(model_dir)
    data = verify_file(model_dir, manifest, MODEL_FILE)
    path = model_dir / MODEL_FILE
    try:
        untrusted = set(skops.io.get_untrusted_types(data=data))
        refused = sorted(untrusted - TRUSTED_TYPES)
        if refused:
            raise ArtifactError(
                f"{path} contains types mlcontainer does not trust: {', '.join(refused)}; "
                "it was not written by mlcontainer's candidate models and will not be loaded"
            )
        pipeline = skops.io.loads(data, trusted=sorted(untrusted))
    except UntrustedTypesFoundException as exc:
        raise ArtifactError(f"{path} was refused by skops: {exc}") from None
    except (zipfile.BadZipFile, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ArtifactError(f"{path} is not a valid skops model file: {exc}") from None
    try:
        schema = Schema.from_dict(manifest["schema"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"the manifest in {model_dir} has no valid schema: {exc}") from None
    classes = [c.item() if hasattr(c, "item") else c for c in getattr(pipeline, "classes_", [])]
    if not hasattr(pipeline, "predict_proba") or classes != list(schema.classes):
        raise ArtifactError(
            f"{path} does not match its manifest: classes {classes} vs {list(schema.classes)}"
        )
    return LoadedModel(
        pipeline=pipeline,
        manifest=manifest,
        schema=schema,
        sha256=manifest["files"][MODEL_FILE]["sha256"],
        path=model_dir,
    )
