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
from contextlib import contextmanager, suppress
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
#: Date columns (a feature's ``date_format``, the intake's ``dates``) needed no bump: the
#: calendar step lives in ``model.skops`` as ``mlcontainer.core.dates.DateFeatures``, a type
#: older readers do not trust, so they refuse such a folder rather than misread it; no
#: ``model.onnx`` is written for it.
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
        "mlcontainer.core.dates.DateFeatures",
        "numpy.dtype",
        "sklearn.calibration._CalibratedClassifier",
        "sklearn.calibration._SigmoidCalibration",
        "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
        "sklearn.metrics._dist_metrics.EuclideanDistance64",
        "sklearn.neighbors._kd_tree.KDTree",
        "sklearn.tree._tree.Tree",
        # A soft-voting ensemble's members by name (``named_estimators_``).
        "sklearn.utils._bunch.Bunch",
    }
)


class _Section(BaseModel):
    """A manifest section: keys this version does not know are kept, not refused."""

    model_config = ConfigDict(extra="allow", frozen=True)


class EnsembleMember(_Section):
    """One member of a weighted ensemble: a compared model, its preset, and its weight."""

    model: str
    preset: str = "default"
    weight: float


class ModelInfo(_Section):
    """Which candidate was selected, in words and as a class name."""

    name: str
    description: str
    estimator: str
    #: The preset its search kept ("default": the registry's configuration) and its
    #: parameters (``set_params`` names of the model step).
    preset: str = "default"
    params: dict[str, Any] = Field(default_factory=dict)
    #: An ensemble's members and weights (None: a single model). Optional: the model file
    #: holds them, so a reader that ignores this key predicts the same.
    members: list[EnsembleMember] | None = None


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
    #: The refit of the selected model on every training row: seconds forecast from its
    #: folds before it started, and seconds it took (older folders have neither).
    refit_forecast_seconds: float | None = None
    refit_seconds: float | None = None


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
    #: The ensemble's members and weights (only the ensemble's row has them).
    members: list[EnsembleMember] | None = None
    #: Mean seconds of one fold's fit + predict: the cost table's estimate, the scheduler's
    #: forecast at the speed it had measured, and the actual time (older folders: none).
    timing: dict[str, float] | None = None


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


class FeatureReference(_Section):
    """One feature of the training split, binned (see :mod:`mlcontainer.core.drift`): a
    numeric feature's cut points and quantiles, or a categorical feature's kept categories;
    and every bin's share of the rows, missing values last."""

    kind: Literal["bins", "categories"]
    #: Numeric: the deciles that cut the value bins (fewer where values tie).
    edges: list[float] = Field(default_factory=list)
    #: Numeric: the 0 %, 5 %, ... 100 % quantiles and the share of values at or below each.
    quantiles: list[float] = Field(default_factory=list)
    cdf: list[float] = Field(default_factory=list)
    #: Categorical: the most frequent categories, kept by name (bins ``0``.. in this order).
    categories: list[str] = Field(default_factory=list)
    #: Numeric: each value bin, then missing. Categorical: each kept category, other,
    #: unseen (0 here), missing.
    shares: list[float]


class PredictionReference(_Section):
    """What the model predicted on the held-out test rows: class shares (schema order), or a
    regressor's decile cut points and the share of predictions in each bin."""

    kind: Literal["classes", "bins"]
    edges: list[float] = Field(default_factory=list)
    shares: list[float]
    rows: int


class Reference(_Section):
    """The drift reference: the training split's features and the held-out predictions, as
    ``mlcontainer drift`` and the server's ``/metrics`` compare new rows with them."""

    rows: int
    features: dict[str, FeatureReference]
    prediction: PredictionReference | None = None


class OnnxInput(_Section):
    """One input of the ONNX graph: its name, the feature it carries and its tensor type
    (``double`` where the model compares numbers in float64, as gradient boosting does)."""

    name: str
    column: str
    type: Literal["float", "double", "string"]


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
    #: The drift reference (optional: older folders have none, and a reader that ignores it
    #: predicts the same; so it needs no new format version).
    reference: Reference | None = None
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
#: How an entry of a folder is opened as a folder: never through a symbolic link.
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def publish(output_dir: Path, manifest: Manifest, files: Mapping[str, bytes]) -> Manifest:
    """Write the model set into ``output_dir`` so that a kill at any instant leaves the
    previous set or the new one, whole.

    ``output_dir`` may be a mounted volume, so the folder itself is never renamed. Every file
    is written in full (and synced) to a staging folder inside it; renaming that folder to
    ``.commit-*`` publishes the set in one step. The files are then renamed into place, the
    manifest last, and the commit folder removed. A process killed before the commit
    rename leaves the previous set untouched (its staging folder is removed by the next
    save); one killed after it leaves a commit folder that the next save, or
    ``mlcontainer recover``, finishes (:func:`recover`); a load refuses the folder meanwhile.
    A rename that fails while this process lives is undone, so the previous set stays
    whole. A file of :data:`MODEL_FILES` that the new set lacks (``model.onnx`` of an
    earlier set) is removed with the swap, so the folder never holds a file its manifest
    does not list. Publishes into one folder are serialised by a lock on it. Returns the
    manifest as written, with the files' hashes.
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
        with _locked(output_dir) as folder:
            _recover_locked(output_dir, folder)
            _publish_locked(output_dir, folder, blobs)
    except OSError as exc:
        raise ArtifactError(f"cannot write to {output_dir}: {exc.strerror or exc}") from None
    finally:
        if created and output_dir.is_dir() and not any(output_dir.iterdir()):
            output_dir.rmdir()  # a failed first save leaves no empty folder behind
    return full


def check_writable(output_dir: Path) -> None:
    """Refuse, before any work, a folder :func:`publish` could not write the set into.

    Probes what a publish does first: create the folder (probed in its nearest existing
    parent) or a staging folder inside it; the probe is removed at once, and a probe left by
    a killed process is named as staging folders are, which the next save removes.
    """
    existing = output_dir
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    try:
        Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=existing)).rmdir()
    except OSError as exc:
        uid = os.geteuid()
        raise ArtifactError(
            f"cannot write to the output folder {output_dir} as user {uid} "
            f"({exc.strerror or exc}), so nothing was trained: make it writable for user "
            f"{uid}. For a folder mounted into a container (-v HOST:{output_dir.absolute()}): add "
            f'--user "$(id -u):$(id -g)" to `docker run`, or give the host folder to the '
            f"image's user (sudo chown 10001:10001 HOST)",
            setting="model_dir",
        ) from None


def _publish_locked(output_dir: Path, folder: int, blobs: Mapping[str, bytes]) -> None:
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=output_dir))
    token = staging.name.removeprefix(STAGING_PREFIX)
    commit_name = COMMIT_PREFIX + token
    try:
        for name, data in blobs.items():
            write_atomic(staging / name, data)
        (staging / _PREVIOUS).mkdir()
        _sync_folder(staging)
        os.rename(staging.name, commit_name, src_dir_fd=folder, dst_dir_fd=folder)
        os.fsync(folder)  # the new set is published: from here on it wins
        commit = os.open(commit_name, _DIR_FLAGS, dir_fd=folder)
        try:
            _roll_forward(folder, commit, keep_previous=True)
        except BaseException:
            _roll_back(folder, commit)
            raise
        finally:
            os.close(commit)
    finally:
        shutil.rmtree(staging.name, dir_fd=folder, ignore_errors=True)
        if _lexists(commit_name, folder):  # rolled forward or back: retire it, then remove it
            done = STAGING_PREFIX + token
            os.rename(commit_name, done, src_dir_fd=folder, dst_dir_fd=folder)
            shutil.rmtree(done, dir_fd=folder, ignore_errors=True)


def _new_names(commit: int) -> set[str] | None:
    """The files of the set in a commit folder; None when its manifest is already in place."""
    try:
        data = _read_at(commit, MANIFEST_FILE)
    except FileNotFoundError:
        return None
    try:
        files = json.loads(data)["files"]
        return {str(n) for n in files}
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise ArtifactError(f"cannot read the interrupted save's manifest: {exc}") from None


def _roll_forward(folder: int, commit: int, *, keep_previous: bool = False) -> None:
    """Put the set of ``commit`` in place, the manifest last. Safe to repeat from any point:
    a file of the new set is either still in ``commit`` or already in place."""
    names = _new_names(commit)
    if names is None:
        return
    previous = os.open(_PREVIOUS, _DIR_FLAGS, dir_fd=commit) if keep_previous else None
    try:
        for name in MODEL_FILES:
            if previous is not None and _lexists(name, folder) and not _lexists(name, previous):
                _keep_copy(name, folder, previous)
            if name not in names:
                _unlink(name, folder)
            elif _lexists(name, commit):
                os.rename(name, name, src_dir_fd=commit, dst_dir_fd=folder)
        os.fsync(folder)
        if previous is not None and _lexists(MANIFEST_FILE, folder):
            _keep_copy(MANIFEST_FILE, folder, previous)
        os.rename(MANIFEST_FILE, MANIFEST_FILE, src_dir_fd=commit, dst_dir_fd=folder)
        os.fsync(folder)
    finally:
        if previous is not None:
            os.close(previous)


def _roll_back(folder: int, commit: int) -> None:
    """Undo a roll forward cut short by an error: each new file goes back into ``commit``
    before the old one returns, so a kill meanwhile still leaves a set to roll forward."""
    names = _new_names(commit)
    if names is None:
        return  # the manifest is in place: the new set is whole
    previous = os.open(_PREVIOUS, _DIR_FLAGS, dir_fd=commit)
    try:
        for name in MODEL_FILES:
            if name in names and not _lexists(name, commit) and _lexists(name, folder):
                os.rename(name, name, src_dir_fd=folder, dst_dir_fd=commit)
            if _lexists(name, previous):
                os.rename(name, name, src_dir_fd=previous, dst_dir_fd=folder)
    finally:
        os.close(previous)


def recover(model_dir: Path) -> list[str]:
    """Finish a save that was killed after it was published; remove staging that never was.

    What a save does first, and ``mlcontainer recover``; a load never does it (it refuses a
    folder with a published save not yet in place, see :func:`read_manifest`), so loading
    writes nothing and reading ``model.json`` tells what a load serves. Only the folder's
    own leftovers are touched: real directories on its device and of its owner, opened
    without following links, their files moved by names relative to the folders' open
    descriptors. Anything else with those names (a link to another folder, a file) is left
    alone. Returns one line per leftover dealt with.
    """
    try:
        with _locked(model_dir) as folder:
            return _recover_locked(model_dir, folder)
    except FileNotFoundError:
        raise ArtifactError(f"no model folder at {model_dir}", setting="model_dir") from None
    except OSError as exc:
        raise ArtifactError(
            f"{model_dir} holds a save that was interrupted, which cannot be finished here: "
            f"{exc.strerror or exc}; run it where the folder is writable, or train again"
        ) from None


def _recover_locked(model_dir: Path, folder: int) -> list[str]:
    done = []
    for name in _leftovers(folder):
        try:
            entry = os.open(name, _DIR_FLAGS, dir_fd=folder)
        except OSError:  # replaced since it was listed (by a link, a file): not ours
            continue
        try:
            if not _own_entry(os.fstat(entry), os.fstat(folder)):
                continue
            if name.startswith(COMMIT_PREFIX):
                _check_commit(model_dir / name, folder, entry)
                _roll_forward(folder, entry)
                done.append(f"finished the save interrupted after it was published ({name})")
            elif _restore_previous(model_dir, folder, entry):
                done.append(f"restored the set a save by release 0.1.0 had set aside ({name})")
            else:
                done.append(f"removed {name}, left by a save that was never published")
        finally:
            os.close(entry)
        shutil.rmtree(name, dir_fd=folder, ignore_errors=True)  # fd-based: follows no link
    return done


def _leftovers(folder: int) -> list[str]:
    """The folder's own staging and commit folders (see :func:`_own_entry`), oldest first."""
    own = os.fstat(folder)
    found = []
    for name in os.listdir(folder):
        if not name.startswith((STAGING_PREFIX, COMMIT_PREFIX)):
            continue
        try:
            info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if _own_entry(info, own):
            found.append((info.st_mtime, name))
    return [name for _, name in sorted(found)]


def _own_entry(entry: os.stat_result, folder: os.stat_result) -> bool:
    """Whether an entry may be a save's folder: a real directory (not a link to one) on the
    folder's own file system (not a mount) and of the folder's owner."""
    return (
        stat.S_ISDIR(entry.st_mode)
        and entry.st_dev == folder.st_dev
        and entry.st_uid == folder.st_uid
    )


def _check_commit(path: Path, folder: int, commit: int) -> None:
    """Refuse to roll forward a commit folder whose files are not the set its manifest lists:
    each is in the commit folder, or already in place, with its size and SHA-256."""
    try:
        data = json.loads(_read_at(commit, MANIFEST_FILE))
        files = {str(k): FileEntry.model_validate(v) for k, v in data["files"].items()}
    except FileNotFoundError:
        return  # the manifest is in place: the set was rolled forward whole
    except (
        OSError,
        ValueError,
        KeyError,
        TypeError,
        AttributeError,
        RecursionError,
        ArtifactError,
    ) as exc:
        raise _foreign_commit(path, f"its manifest cannot be read ({exc})") from None
    for name, expected in files.items():
        if name not in MODEL_FILES:
            raise _foreign_commit(path, f"its manifest lists {name!r}")
        where = commit if _lexists(name, commit) else folder
        try:
            found = _read_at(where, name)
        except (OSError, ArtifactError) as exc:
            raise _foreign_commit(path, f"{name} cannot be read ({exc})") from None
        if len(found) != expected.bytes or sha256_bytes(found) != expected.sha256:
            raise _foreign_commit(path, f"{name} does not match its manifest")


def _foreign_commit(path: Path, why: str) -> ArtifactError:
    return ArtifactError(
        f"{path} is not a save mlcontainer can finish: {why}; nothing was changed. It was "
        "not written by mlcontainer or was damaged: move it out of the folder, then train again"
    )


def _restore_previous(model_dir: Path, folder: int, staging: int) -> bool:
    """Put back the files release 0.1.0 set aside before its swap was killed, when the
    folder is not whole without them; whether it did."""
    try:
        previous = os.open(_PREVIOUS, _DIR_FLAGS, dir_fd=staging)
    except OSError:
        return False
    try:
        if _is_whole(model_dir):
            return False
        for name in os.listdir(previous):  # noqa: PTH208 - a descriptor: no path to follow
            if name in (*MODEL_FILES, MANIFEST_FILE) and _is_regular(name, previous):
                os.rename(name, name, src_dir_fd=previous, dst_dir_fd=folder)
        return True
    finally:
        os.close(previous)


def _is_whole(model_dir: Path) -> bool:
    try:
        manifest = _parse_manifest(model_dir)
        for name in manifest.files:
            verify_file(model_dir, manifest, name)
    except ArtifactError:
        return False
    return True


@contextmanager
def _locked(folder: Path) -> Iterator[int]:
    """Hold an exclusive lock on ``folder`` (released by the kernel if the process dies);
    yield its open descriptor, which every rename inside it goes through."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)


def _sync_folder(folder: Path) -> None:
    """Make the renames in ``folder`` durable (a crash of the machine, not just the process)."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _lexists(name: str, folder: int) -> bool:
    """Whether ``folder`` has an entry ``name`` (a link counts as itself, never followed)."""
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _is_regular(name: str, folder: int) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def _unlink(name: str, folder: int) -> None:
    with suppress(FileNotFoundError):
        os.unlink(name, dir_fd=folder)


def _keep_copy(name: str, source: int, copy: int) -> None:
    """Keep the bytes of ``name`` in ``copy``: a hard link costs nothing; some mounted
    volumes need a real copy."""
    try:
        os.link(name, name, src_dir_fd=source, dst_dir_fd=copy, follow_symlinks=False)
        return
    except OSError:
        pass
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=source)
    with os.fdopen(src, "rb") as reader:
        mode = stat.S_IMODE(os.fstat(src).st_mode)  # it may come back into place as it was
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        with os.fdopen(os.open(name, flags, mode, dir_fd=copy), "wb") as writer:
            shutil.copyfileobj(reader, writer)


def read_manifest(model_dir: Path) -> Manifest:
    """Read and check ``model.json`` and every file of the set present beside it.

    Writes nothing: a folder holding a save that was published but not yet put in place
    (a ``train`` killed mid-swap) is refused, saying how to finish it (:func:`recover`).
    Every file of :data:`MODEL_FILES` in the folder must be listed by the manifest and match
    its hash (a serving-only folder may lack ``model.skops``; a runtime that needs a missing
    file says so when it loads), and be a regular file of the folder with one link.
    """
    if not model_dir.is_dir():
        raise ArtifactError(
            f"no model folder at {model_dir}: train one with `mlcontainer train`, or point "
            "the model folder setting at an existing one",
            setting="model_dir",
        )
    _refuse_unfinished_save(model_dir)
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


def _refuse_unfinished_save(model_dir: Path) -> None:
    """Refuse a folder with a commit folder of its own: its files may be a mix of two sets
    (the hashes would say so) or the old set, which the published one has replaced."""
    try:
        folder = os.open(model_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return  # unreadable: reading the manifest says why
    try:
        pending = [n for n in _leftovers(folder) if n.startswith(COMMIT_PREFIX)]
    except OSError:
        pending = []
    finally:
        os.close(folder)
    if pending:
        raise ArtifactError(
            f"{model_dir} holds a save that was interrupted after it was published "
            f"({pending[0]}): the files in place are not the set it published; finish it with "
            f"`mlcontainer recover --model {model_dir}` (or train again) where the folder is "
            "writable",
            setting="model_dir",
        )


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
    except RecursionError:
        data = None  # nested beyond Python's own limit: refused just below
    if data is None or _deeper_than(data, MAX_DEPTH):
        raise ArtifactError(
            f"{path} is not a valid manifest: it nests more than {MAX_DEPTH} levels deep "
            "(mlcontainer writes fewer than 10)"
        )
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


#: Levels of nested arrays and objects a manifest may have: reading, checking and serving
#: one recurses through them (100 000 levels ended in a RecursionError traceback).
MAX_DEPTH = 64


def _deeper_than(data: Any, limit: int) -> bool:
    """Whether JSON ``data`` nests arrays and objects more than ``limit`` levels deep."""
    level: list[Any] = [data]
    for _ in range(limit + 1):
        inner: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                inner.extend(item.values())
            elif isinstance(item, list):
                inner.extend(item)
        if not inner:
            return False
        level = inner
    return True


def _read_regular(path: Path) -> bytes:
    """Read a file of the folder itself (see :func:`_read_at`)."""
    return _read_at(None, path)


def _read_at(folder: int | None, name: str | Path) -> bytes:
    """Read ``name`` in the folder open as ``folder`` (or a path): never through a symbolic
    link, never a device or pipe, never a file with a second name (a hard link), so nothing
    outside the folder is ever read, described or served."""
    try:
        fd = os.open(
            name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=folder
        )
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ArtifactError(
                f"{name} is a symbolic link; the files of a model folder must be regular "
                "files inside it"
            ) from None
        raise
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ArtifactError(f"{name} is not a regular file")
        if info.st_nlink != 1:
            raise ArtifactError(
                f"{name} has {info.st_nlink} hard links: it is also a file elsewhere, which "
                "could change it; the files of a model folder must have one name (copy the "
                "folder instead of linking its files)"
            )
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
