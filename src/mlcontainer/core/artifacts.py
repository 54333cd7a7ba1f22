"""The model folder's format: file names, the typed manifest, hashes, atomic publishing, checks.

The only module that knows file names and manifest keys. Training writes a folder with
:func:`publish`; the runtimes, the console, the server and the Docker build read it through
:func:`read_manifest` and :func:`verify_file`. Nothing here imports scikit-learn or skops:
the model file is bytes to this module (see :data:`TRUSTED_TYPES` for what it may hold).

Format version
--------------
``FORMAT_VERSION`` is bumped when a reader of the previous version would misread a folder
of the new one: a key it relies on is renamed, removed or changes meaning, or a new key
changes the answers a runtime must give (a reader that ignored it would predict something
else). A new optional key that readers may ignore (a figure, a note) does not bump it; the
manifest keeps keys it does not know (``extra="allow"``), so they survive reading. Folders
of every version in ``READABLE_VERSIONS`` stay loadable: ``tests/fixtures/`` holds one
written by each release, and the tests load it.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from mlcontainer.core.atomic import write_atomic
from mlcontainer.core.errors import ArtifactError
from mlcontainer.core.recipe import LEGACY, IntakeRecipe
from mlcontainer.core.schema import Label, Schema

FORMAT = "mlcontainer.model"
#: 2 added ``intake`` (how inputs are read: markers, single quotes, header, columns): a
#: version-1 reader ignoring it would read a quoted category differently.
#: 3 added ``decision`` (a binary classifier's calibration and threshold): a version-2 reader
#: ignoring it would give other labels.
FORMAT_VERSION = 3
READABLE_VERSIONS = (1, 2, 3)

#: The fitted scikit-learn pipeline, saved with skops.
MODEL_FILE = "model.skops"
#: The same pipeline compiled to ONNX, present only when it was verified against scikit-learn.
ONNX_FILE: Final = "model.onnx"
MANIFEST_FILE = "model.json"
METRICS_FILE = "metrics.json"
CONFUSION_MATRIX_FILE = "confusion_matrix.png"
REPORT_FILE = "report.html"
#: The model card (Markdown with a YAML metadata header); older folders have none.
CARD_FILE = "README.md"
#: Every file a model folder may hold besides the manifest, in the order they are written.
MODEL_FILES = (MODEL_FILE, METRICS_FILE, CONFUSION_MATRIX_FILE, REPORT_FILE, CARD_FILE, ONNX_FILE)

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


class _Section(BaseModel):
    """A manifest section: keys this version does not know are kept, not refused."""

    model_config = ConfigDict(extra="allow", frozen=True)


class ModelInfo(_Section):
    """Which candidate was selected, in words and as a class name."""

    name: str
    description: str
    estimator: str
    #: The preset its search kept ("default": the registry's configuration) and its
    #: parameters (``set_params`` names of the model step).
    preset: str = "default"
    params: dict[str, Any] = Field(default_factory=dict)


class DatasetInfo(_Section):
    """Where the training data came from and what it held."""

    name: str
    source: str
    rows: int
    features: int
    target: str
    class_counts: dict[str, int]
    fingerprint: str
    dropped_rows: int = 0
    dropped_columns: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    #: Classes left out of training for having too few rows, with their row counts.
    excluded_classes: dict[str, int] = Field(default_factory=dict)
    #: What intake said (no header line, renamed columns, rows without a target ...).
    notes: list[str] = Field(default_factory=list)
    #: A regression target's mean, std, min, max and median (null for classes).
    target_summary: dict[str, float] | None = None


class Selection(_Section):
    """How the model was selected: metric, folds, seed, split sizes, time budget."""

    model: str
    metric: str
    cv: int
    seed: int
    test_size: float
    train_rows: int
    test_rows: int
    fit_rows: int
    time_budget: float | None = None
    #: One line per candidate the time budget cut back, saying what and why.
    budget: list[str] = Field(default_factory=list)
    where: str = "local"
    candidates: list[str] = Field(default_factory=list)
    #: Said when the baseline was selected, or beat the model selected.
    warnings: list[str] = Field(default_factory=list)


class Score(_Section):
    """A cross-validated score: mean and standard deviation over the folds (null if undefined)."""

    mean: float | None
    std: float | None


class BudgetAction(_Section):
    """What the time budget did to a candidate."""

    action: Literal["subsample", "skip"]
    rows: int
    reason: str


class Candidate(_Section):
    """One row of the leaderboard: the candidate with the preset its search kept."""

    name: str
    scores: dict[str, Score]
    fit_seconds: float
    predict_ms_per_row: float
    error: str | None = None
    budget: BudgetAction | None = None
    #: The preset the search kept ("default" when not searched), and its parameters.
    preset: str = "default"
    params: dict[str, Any] = Field(default_factory=dict)
    #: How the preset was found, in one line (presets searched, rounds and rows).
    search: str | None = None
    #: A binary classifier's threshold, tuned out of fold (its scores are at it).
    threshold: float | None = None
    #: Several classes: its class weights, tuned out of fold (its scores are cross-fitted
    #: with them).
    class_weights: list[float] | None = None
    #: The selection metric on each fold, in fold order (empty when it was not run, and in
    #: folders written before the report plotted them).
    fold_scores: list[float | None] = Field(default_factory=list)


class Calibration(_Section):
    """Platt scaling of the positive class's log-odds, fitted on out-of-fold probabilities."""

    method: Literal["sigmoid"] = "sigmoid"
    a: float
    b: float
    #: Out-of-fold Brier score and log loss without and with it (cross-fitted).
    brier_before: float
    brier_after: float
    log_loss_before: float
    log_loss_after: float


class Decision(_Section):
    """A classifier's decision layer, applied after the model's probabilities by
    :func:`mlcontainer.core.decision.decide` on every path. Binary: calibration, then the
    threshold on the positive class. Several classes: a weight per class, the label the
    largest weighted probability (the probabilities themselves unchanged)."""

    positive_class: Label | None = None
    threshold: float | None = None
    #: What it was tuned for, and the out-of-fold score without it (at 0.5) and with it.
    metric: str
    score_at_half: float | None = None
    score_at_threshold: float | None = None
    calibration: Calibration | None = None
    #: Several classes: one weight per class, in the schema's class order.
    class_weights: list[float] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> Decision:
        binary = self.positive_class is not None and self.threshold is not None
        if binary == (self.class_weights is not None):
            raise ValueError("a decision has a positive class and a threshold, or class weights")
        return self


#: One cell of an example row as the predict API takes it: a number, a category, a boolean,
#: or null for a missing value.
Cell = bool | int | float | str | None


class FeatureSpread(_Section):
    """How a numeric feature spread in the training split: range, 5th-95th percentile, median."""

    min: float
    low: float
    median: float
    high: float
    max: float


class HeldOutRow(_Section):
    """A test-split row: its feature values and the target it really had."""

    values: dict[str, Cell]
    target: Cell


class Examples(_Section):
    """Rows that help fill the page's form: the typical training row, a few held-out rows,
    and each numeric feature's training spread (to put a typed value against)."""

    #: The training split's median (numbers) or most frequent value (categories, booleans).
    typical: dict[str, Cell]
    held_out: list[HeldOutRow] = Field(default_factory=list)
    spreads: dict[str, FeatureSpread] = Field(default_factory=dict)


class ColumnImportance(_Section):
    """How much the score drops when one original column is shuffled (mean and std)."""

    column: str
    mean: float
    std: float


class Importance(_Section):
    """Permutation importance of the original columns on the test split, largest first."""

    #: The score that drops: the selection metric, as a greater-is-better score.
    metric: str
    rows: int
    repeats: int
    columns: list[ColumnImportance]


class OnnxInput(_Section):
    """One input of the ONNX graph: its name, the feature it carries and its tensor type."""

    name: str
    column: str
    type: Literal["float", "string"]


class OnnxVerification(_Section):
    """How the ONNX graph agreed with scikit-learn on the held-out test rows.

    A classifier's check is on labels and probabilities (absolute tolerance); a regressor's
    on the predicted values, within ``tolerance``, which is ``relative_tolerance`` times the
    training target's standard deviation.
    """

    rows: int
    labels_equal: bool = True
    label_mismatches: int = 0
    max_abs_probability_diff: float | None = None
    max_abs_value_diff: float | None = None
    tolerance: float
    relative_tolerance: float | None = None

    @property
    def agrees(self) -> bool:
        """Whether the differences stayed within the tolerance."""
        diff = self.max_abs_value_diff
        if diff is None:
            diff = self.max_abs_probability_diff
        return self.labels_equal and diff is not None and diff <= self.tolerance


class OnnxSection(_Section):
    """How to feed and read the ONNX graph, and the proof that it matches the pipeline."""

    #: Always ``model.onnx``: a manifest cannot point a runtime at any other path.
    file: Literal["model.onnx"] = ONNX_FILE
    inputs: list[OnnxInput]
    #: A classifier's outputs: the label and the class probabilities.
    label_output: str | None = None
    probabilities_output: str | None = None
    #: A regressor's output: the predicted number, one per row.
    value_output: str | None = None
    missing_category: str
    verification: OnnxVerification | None = None
    opset: dict[str, int] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)


class RuntimeSection(_Section):
    """Which runtime serves the model by default, and why not ONNX when it does not."""

    default: Literal["onnx", "sklearn"]
    reason: str | None = None
    onnx: OnnxSection | None = None

    def verified_onnx(self) -> OnnxSection | None:
        """The ONNX section when its graph was verified within its tolerance, else None."""
        check = self.onnx.verification if self.onnx is not None else None
        if check is None:
            return None
        return self.onnx if check.agrees else None

    def why_not_onnx(self) -> str:
        """Why the ONNX graph cannot serve this model, in one line."""
        if self.onnx is None:
            return self.reason or "the model folder has no ONNX model"
        if self.onnx.verification is None:
            return "the ONNX model was never verified against scikit-learn"
        return self.reason or "the ONNX model disagrees with scikit-learn on the test split"


class FileEntry(_Section):
    """A file of the set: its size and SHA-256."""

    sha256: str
    bytes: int


def _schema(value: Any) -> Schema:
    if isinstance(value, Schema):
        return value
    if not isinstance(value, Mapping):
        raise ValueError("the schema must be an object")
    return Schema.from_dict(value)


SchemaField = Annotated[
    Schema, BeforeValidator(_schema), PlainSerializer(lambda s: s.to_dict(), return_type=dict)
]


class Manifest(_Section):
    """``model.json``: what the model is, how it was made and checked, and every file's hash."""

    name: str
    model: ModelInfo
    dataset: DatasetInfo
    schema_: SchemaField = Field(alias="schema")
    selection: Selection
    leaderboard: list[Candidate]
    metrics: dict[str, float | None]
    confusion_matrix: list[list[int]]
    versions: dict[str, str]
    created: str
    #: How the training file was read; absent before format version 2 (see ``recipe``).
    intake: IntakeRecipe | None = None
    #: Absent in folders written before ONNX export: they are served with scikit-learn.
    runtime: RuntimeSection | None = None
    #: A binary classifier's calibration and threshold (absent: the most probable class).
    decision: Decision | None = None
    #: For the page's form; older folders have none (the form then starts empty).
    examples: Examples | None = None
    #: Which columns matter (the top 15); older folders have none.
    importance: Importance | None = None
    format: str = FORMAT
    format_version: int = FORMAT_VERSION
    files: dict[str, FileEntry] = Field(default_factory=dict)

    model_config = ConfigDict(extra="allow", frozen=True, populate_by_name=True)

    @property
    def recipe(self) -> IntakeRecipe:
        """How inputs are read: the training file's recipe, or the legacy one (version 1)."""
        return self.intake if self.intake is not None else LEGACY

    @property
    def input_schema(self) -> Schema:
        """The model's input contract."""
        return self.schema_

    def to_json(self) -> dict[str, Any]:
        """Return the JSON form written to ``model.json`` (and answered by ``GET /model``)."""
        return self.model_dump(mode="json", by_alias=True)

    def sha256(self, name: str) -> str:
        """The recorded SHA-256 of one of the set's files."""
        return self.files[name].sha256

    def default_runtime(self) -> str:
        """``onnx`` when the folder has a verified graph meant to serve it, else ``sklearn``."""
        runtime = self.runtime
        if runtime is not None and runtime.default == "onnx" and runtime.verified_onnx():
            return "onnx"
        return "sklearn"


def sha256_bytes(data: bytes) -> str:
    """Return the hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def json_bytes(data: Mapping[str, Any]) -> bytes:
    """Render a JSON document the way every file of the set is written."""
    return (json.dumps(data, indent=2, sort_keys=False, allow_nan=False) + "\n").encode()


#: A publish writes the new set into ``.staging-XXXX`` inside the folder; renaming that to
#: ``.commit-XXXX`` is the one step that publishes it. See :func:`publish`.
STAGING_PREFIX = ".staging-"
COMMIT_PREFIX = ".commit-"
_PREVIOUS = "previous"


def publish(output_dir: Path, manifest: Manifest, files: Mapping[str, bytes]) -> Manifest:
    """Write the model set into ``output_dir`` so that a kill at any instant leaves the
    previous set or the new one, whole.

    ``output_dir`` may be a mounted volume, so the folder itself is never renamed. Every file
    is written in full (and synced) to a staging folder inside it; renaming that folder to
    ``.commit-*`` publishes the set in one step. The files are then renamed into place, the
    manifest last, and the commit folder removed. A process killed before the commit
    rename leaves the previous set untouched (its staging folder is removed by the next
    load or train); one killed after it leaves a commit folder that the next load or train
    finishes (:func:`recover`). A rename that fails while this process lives is undone,
    so the previous set stays whole. A file of :data:`MODEL_FILES` that the new set lacks
    (``model.onnx`` of an earlier set) is removed with the swap, so the folder never holds
    a file its manifest does not list. Publishes into one folder are serialised by a lock
    on it. Returns the manifest as written, with the files' hashes.
    """
    unknown = sorted(set(files) - set(MODEL_FILES))
    if unknown:
        raise ValueError(f"not files of a model set: {unknown}")
    runtime = manifest.runtime or RuntimeSection(
        default="sklearn", reason="no ONNX export was attempted"
    )
    if ONNX_FILE in files and runtime.onnx is None:
        raise ValueError("an ONNX graph needs its runtime section (from onnx_export)")
    if output_dir.exists() and not output_dir.is_dir():
        raise ArtifactError(
            f"the output folder {output_dir} exists and is not a folder", setting="model_dir"
        )
    entries = {n: FileEntry(sha256=sha256_bytes(b), bytes=len(b)) for n, b in files.items()}
    full = manifest.model_copy(
        update={
            "runtime": runtime,
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "files": entries,
        }
    )
    blobs = {**files, MANIFEST_FILE: json_bytes(full.to_json())}
    created = not output_dir.exists()
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with _locked(output_dir):
            _recover_locked(output_dir)
            _publish_locked(output_dir, blobs)
    except OSError as exc:
        raise ArtifactError(f"cannot write to {output_dir}: {exc.strerror or exc}") from None
    finally:
        if created and output_dir.is_dir() and not any(output_dir.iterdir()):
            output_dir.rmdir()  # a failed first save leaves no empty folder behind
    return full


def _publish_locked(output_dir: Path, blobs: Mapping[str, bytes]) -> None:
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=output_dir))
    commit = output_dir / (COMMIT_PREFIX + staging.name.removeprefix(STAGING_PREFIX))
    try:
        for name, data in blobs.items():
            write_atomic(staging / name, data)
        (staging / _PREVIOUS).mkdir()
        _sync_folder(staging)
        staging.replace(commit)  # the new set is published: from here on it wins
        _sync_folder(output_dir)
        try:
            _roll_forward(output_dir, commit, keep_previous=True)
        except BaseException:
            _roll_back(output_dir, commit)
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if commit.exists():  # rolled forward or back: retire it before removing it
            done = output_dir / (STAGING_PREFIX + commit.name.removeprefix(COMMIT_PREFIX))
            commit.replace(done)
            shutil.rmtree(done, ignore_errors=True)


def _new_names(commit: Path) -> set[str] | None:
    """The files of the set in a commit folder; None when its manifest is already in place."""
    path = commit / MANIFEST_FILE
    if not path.exists():
        return None
    try:
        files = json.loads(path.read_bytes())["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"cannot read the interrupted save in {commit}: {exc}") from None
    return {n for n in files if n in MODEL_FILES}


def _roll_forward(output_dir: Path, commit: Path, *, keep_previous: bool = False) -> None:
    """Put the set of ``commit`` in place, the manifest last. Safe to repeat from any point:
    a file of the new set is either still in ``commit`` or already in place."""
    names = _new_names(commit)
    if names is None:
        return
    previous = commit / _PREVIOUS
    for name in MODEL_FILES:
        current = output_dir / name
        if keep_previous and os.path.lexists(current) and not (previous / name).exists():
            _keep_copy(current, previous / name)
        if name not in names:
            current.unlink(missing_ok=True)
        elif (commit / name).exists():
            (commit / name).replace(current)
    _sync_folder(output_dir)
    if keep_previous and (output_dir / MANIFEST_FILE).exists():
        _keep_copy(output_dir / MANIFEST_FILE, previous / MANIFEST_FILE)
    (commit / MANIFEST_FILE).replace(output_dir / MANIFEST_FILE)
    _sync_folder(output_dir)


def _roll_back(output_dir: Path, commit: Path) -> None:
    """Undo a roll forward cut short by an error: each new file goes back into ``commit``
    before the old one returns, so a kill meanwhile still leaves a set to roll forward."""
    names = _new_names(commit)
    if names is None:
        return  # the manifest is in place: the new set is whole
    previous = commit / _PREVIOUS
    for name in MODEL_FILES:
        current = output_dir / name
        if name in names and not (commit / name).exists() and current.exists():
            current.replace(commit / name)
        if (previous / name).exists():
            (previous / name).replace(current)


def recover(model_dir: Path) -> None:
    """Finish a save that was killed after it was published; remove staging that never was.

    Cheap when there is nothing to do (one listing of the folder); otherwise it waits for a
    save in progress (the folder's lock) before it looks again.
    """
    try:
        leftovers = any(
            p.name.startswith((STAGING_PREFIX, COMMIT_PREFIX)) for p in model_dir.iterdir()
        )
    except OSError:
        return
    if not leftovers:
        return
    try:
        with _locked(model_dir):
            _recover_locked(model_dir)
    except OSError as exc:
        raise ArtifactError(
            f"{model_dir} holds a save that was interrupted, which cannot be finished here: "
            f"{exc.strerror or exc}; run `mlcontainer train` again, or load it once where "
            "the folder is writable"
        ) from None


def _recover_locked(model_dir: Path) -> None:
    entries = sorted(
        (p for p in model_dir.iterdir() if p.name.startswith((STAGING_PREFIX, COMMIT_PREFIX))),
        key=lambda p: p.stat().st_mtime,
    )
    for entry in entries:
        if entry.name.startswith(COMMIT_PREFIX):
            _roll_forward(model_dir, entry)
        elif (entry / _PREVIOUS).is_dir() and not _is_whole(model_dir):
            _restore_previous(model_dir, entry / _PREVIOUS)  # a kill in 0.1.0's swap
        shutil.rmtree(entry, ignore_errors=True)


def _is_whole(model_dir: Path) -> bool:
    try:
        manifest = _parse_manifest(model_dir)
        for name in manifest.files:
            verify_file(model_dir, manifest, name)
    except ArtifactError:
        return False
    return True


def _restore_previous(model_dir: Path, previous: Path) -> None:
    """Put back the files release 0.1.0 set aside before its swap was killed."""
    for old in previous.iterdir():
        if old.name in (*MODEL_FILES, MANIFEST_FILE) and old.is_file():
            old.replace(model_dir / old.name)


@contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (released by the kernel if the process dies)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (a crash of the machine, not just the process)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _keep_copy(source: Path, copy: Path) -> None:
    # A hard link keeps the old bytes at no cost; some mounted volumes need a real copy.
    try:
        os.link(source, copy)
    except OSError:
        shutil.copy2(source, copy)


def read_manifest(model_dir: Path) -> Manifest:
    """Read and check ``model.json`` and every file of the set present beside it.

    A save that was interrupted is finished or discarded first (:func:`recover`). Every
    file of :data:`MODEL_FILES` in the folder must be listed by the manifest and match its
    hash (a serving-only folder may lack ``model.skops``; a runtime that needs a missing
    file says so when it loads).
    """
    if not model_dir.is_dir():
        raise ArtifactError(
            f"no model folder at {model_dir}: train one with `mlcontainer train`, or point "
            "the model folder setting at an existing one",
            setting="model_dir",
        )
    recover(model_dir)
    manifest = _parse_manifest(model_dir)
    foreign = sorted(set(manifest.files) - set(MODEL_FILES))
    if foreign:
        raise ArtifactError(
            f"the manifest in {model_dir} lists {', '.join(map(repr, foreign))}, which are "
            f"not files of a model folder (those are {', '.join(MODEL_FILES)})"
        )
    for name in MODEL_FILES:
        if name in manifest.files:
            if os.path.lexists(model_dir / name):
                verify_file(model_dir, manifest, name)
        elif os.path.lexists(model_dir / name):
            raise ArtifactError(
                f"{model_dir / name} is not listed by the folder's manifest: it was added "
                "or the folder was tampered with; retrain or restore the folder"
            )
    return manifest


def _parse_manifest(model_dir: Path) -> Manifest:
    path = model_dir / MANIFEST_FILE
    try:
        text = _read_regular(path).decode("utf-8")
        data = json.loads(text)
    except FileNotFoundError:
        raise ArtifactError(
            f"{model_dir} has no {MANIFEST_FILE}: it is not a model folder"
        ) from None
    except ArtifactError:
        raise
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ArtifactError(f"{path} is not an mlcontainer manifest (no format {FORMAT!r})")
    if data.get("format_version") not in READABLE_VERSIONS:
        raise ArtifactError(
            f"{path} has format version {data.get('format_version')!r}; this mlcontainer "
            f"reads version {FORMAT_VERSION}: retrain the model or use a matching release"
        )
    try:
        return Manifest.model_validate(data)
    except PydanticValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ArtifactError(
            f"{path} is not a valid manifest: {where or 'the document'}: {first['msg']}"
        ) from None


def _read_regular(path: Path) -> bytes:
    """Read a file of the folder itself: never through a symbolic link, never a device or
    pipe (so nothing outside the folder is ever read or described)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ArtifactError(
                f"{path} is a symbolic link; the files of a model folder must be regular "
                "files inside it"
            ) from None
        raise
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ArtifactError(f"{path} is not a regular file")
        return handle.read()


def verify_file(model_dir: Path, manifest: Manifest, name: str) -> bytes:
    """Return a file's bytes after checking its size and SHA-256 against the manifest.

    Only the names of :data:`MODEL_FILES` are read, as regular files of the folder itself.
    """
    if name not in MODEL_FILES:
        raise ArtifactError(
            f"{name!r} is not a file of a model folder (those are {', '.join(MODEL_FILES)})"
        )
    expected = manifest.files.get(name)
    if expected is None:
        raise ArtifactError(f"the manifest in {model_dir} does not list {name}")
    path = model_dir / name
    try:
        data = _read_regular(path)
    except FileNotFoundError:
        raise ArtifactError(f"{path} is missing; the model folder is incomplete") from None
    except OSError as exc:
        raise ArtifactError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(data) != expected.bytes or sha256_bytes(data) != expected.sha256:
        raise ArtifactError(
            f"{path} does not match its manifest (expected {expected.bytes} bytes with SHA-256 "
            f"{expected.sha256[:16]}…, found {len(data)} bytes with {sha256_bytes(data)[:16]}…): "
            "it was truncated, replaced or tampered with; retrain or restore the folder"
        )
    return data


def serving_files(model_dir: Path, manifest: Manifest) -> list[str]:
    """The files an ONNX-only server needs from the folder: all but ``model.skops``.

    Refuses a folder whose default runtime is not a verified ONNX graph: without
    scikit-learn nothing could serve it.
    """
    if manifest.default_runtime() != "onnx":
        why = manifest.runtime.why_not_onnx() if manifest.runtime else "no runtime section"
        raise ArtifactError(
            f"{model_dir} has no verified ONNX model, so an ONNX-only server cannot serve it: {why}"
        )
    return [MANIFEST_FILE, *(n for n in MODEL_FILES if n in manifest.files and n != MODEL_FILE)]


def read_optional(model_dir: Path, manifest: Manifest, name: str) -> bytes | None:
    """Return a listed file's verified bytes, or None when the set has no such file."""
    if name not in manifest.files:
        return None
    return verify_file(model_dir, manifest, name)
