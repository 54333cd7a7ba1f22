"""Compile a fitted pipeline to ONNX and verify it against scikit-learn on held-out rows.

skl2onnx, onnx and onnxruntime are imported only when :func:`export_onnx` runs, so that
importing this module (and ``mlcontainer train`` up to the export) costs nothing extra.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from mlcontainer.core.artifacts import (
    ONNX_FILE,
    OnnxInput,
    OnnxSection,
    OnnxVerification,
    RuntimeSection,
)
from mlcontainer.core.decision import decide
from mlcontainer.core.memory import release_memory
from mlcontainer.core.schema import Schema
from mlcontainer.core.threads import one_native_thread
from mlcontainer.training.export.onnx_ensemble import (
    convert_soft_voting_classifier,
    convert_voting_regressor,
)
from mlcontainer.training.export.versions import package_versions
from mlcontainer.training.search.models import MISSING_CATEGORY

if TYPE_CHECKING:
    import pandas as pd

#: Opsets of the exported graph: ONNX 17 (onnxruntime >= 1.13 runs it) and ai.onnx.ml 3, the
#: first to hold tree thresholds as tensors.
TARGET_OPSET: dict[str, int] = {"": 17, "ai.onnx.ml": 3}
#: Largest difference of any class probability between the runtimes that still counts as equal.
TOLERANCE = 1e-4
LABEL_OUTPUT = "label"
PROBABILITIES_OUTPUT = "probabilities"
#: A regressor's output in skl2onnx's graphs.
VALUE_OUTPUT = "variable"
#: A regressor's predictions agree when within this share of the target's standard deviation.
RELATIVE_TOLERANCE = 1e-4
_VERSIONED = ("skl2onnx", "onnx", "onnxruntime")
_MAX_REASON = 200


@dataclass(frozen=True)
class OnnxExport:
    """The verified ONNX graph (or ``None``) and the manifest's ``runtime`` section."""

    model_bytes: bytes | None
    runtime_section: RuntimeSection

    @property
    def reason(self) -> str | None:
        """Why the model is not served with ONNX, in one line; ``None`` when it is."""
        return self.runtime_section.reason


def export_onnx(
    pipeline: Any,
    schema: Schema,
    X_check: pd.DataFrame,
    *,
    tolerance: float = TOLERANCE,
    target_scale: float = 1.0,
) -> OnnxExport:
    """Convert ``pipeline`` to ONNX and keep it only if it agrees with scikit-learn on ``X_check``.

    A classifier agrees on every label and within ``tolerance`` on every probability; a
    regressor within ``RELATIVE_TOLERANCE`` x ``target_scale`` (the training target's standard
    deviation) on every predicted value. Never raises for a model that cannot be converted or
    that disagrees: the result then has no
    graph, and its runtime section names scikit-learn and says why in one line.
    """
    # skl2onnx and onnxruntime raise many unrelated types (RuntimeError, ValueError, TypeError,
    # NotImplementedError, onnxruntime's Fail/InvalidGraph, which derive from Exception only).
    # Whatever goes wrong here, the scikit-learn model is still good: fall back, saying why.
    if schema.dates:
        return _fallback(
            f"date column(s) {', '.join(map(repr, schema.dates))} are read into calendar "
            "features by mlcontainer's own step, and ONNX has no operator that parses dates"
        )
    try:
        model_bytes, inputs = _convert(pipeline, schema)
    except ImportError as exc:
        return _fallback(f"ONNX export needs {exc.name or 'skl2onnx'}, which is missing")
    except Exception as exc:  # noqa: BLE001
        return _fallback(f"skl2onnx cannot convert {_final_name(pipeline)}: {_line(exc)}")
    release_memory()  # the conversion's objects are gone: the check's session starts lower
    try:
        if schema.is_regression:
            verification = _verify_values(model_bytes, inputs, pipeline, X_check, target_scale)
        else:
            verification = _verify(model_bytes, inputs, pipeline, schema, X_check, tolerance)
    except Exception as exc:  # noqa: BLE001
        return _fallback(
            f"onnxruntime cannot run the converted {_final_name(pipeline)}: {_line(exc)}"
        )
    if isinstance(verification, str):
        return _fallback(verification)
    section = RuntimeSection(
        default="onnx",
        reason=None,
        onnx=OnnxSection(
            file=ONNX_FILE,
            inputs=[OnnxInput.model_validate(spec) for spec in inputs],
            label_output=None if schema.is_regression else LABEL_OUTPUT,
            probabilities_output=None if schema.is_regression else PROBABILITIES_OUTPUT,
            value_output=VALUE_OUTPUT if schema.is_regression else None,
            missing_category=MISSING_CATEGORY,
            verification=verification,
            opset=dict(TARGET_OPSET),
            versions=package_versions(_VERSIONED),
        ),
    )
    return OnnxExport(model_bytes, section)


def _fallback(reason: str) -> OnnxExport:
    line = " ".join(reason.split())
    if len(line) > _MAX_REASON:
        line = line[: _MAX_REASON - 1] + "…"
    return OnnxExport(None, RuntimeSection(default="sklearn", reason=line, onnx=None))


def _final_name(pipeline: Any) -> str:
    steps = getattr(pipeline, "steps", None)
    return type(steps[-1][1] if steps else pipeline).__name__


def _line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _convert(pipeline: Any, schema: Schema) -> tuple[bytes, list[dict[str, str]]]:
    """Return the serialised graph and its inputs (graph name, column, type), in schema order."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType, StringTensorType
    from skl2onnx.common.shape_calculator import calculate_linear_regressor_output_shapes
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        ExtraTreesRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
        VotingClassifier,
        VotingRegressor,
    )
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    graph_pipeline = pipeline
    # Forests' node tables are added to the finished graph (see _convert_forest).
    tables: dict[str, dict[str, np.ndarray]] = {}
    forest = partial(_convert_forest, tables=tables)
    regression = schema.is_regression
    final = graph_pipeline.steps[-1][1]
    doubles = _compares_in_double()
    members = getattr(final, "estimators_", [final])  # a soft-voting ensemble's, or the model
    number = "double" if any(isinstance(m, doubles) for m in members) else "float"
    tensor = {"string": StringTensorType, "float": FloatTensorType, "double": DoubleTensorType}
    kinds = ["string" if f.kind == "categorical" else number for f in schema.features]
    initial_types = [
        (f.name, tensor[kind]([None, 1])) for f, kind in zip(schema.features, kinds, strict=True)
    ]
    with warnings.catch_warnings(), _marker_imputer(pipeline):
        # Converters read attributes scikit-learn 1.9 deprecates (SVC.probA_): not our concern.
        warnings.simplefilter("ignore", FutureWarning)
        model = convert_sklearn(
            graph_pipeline,
            initial_types=initial_types,
            target_opset=dict(TARGET_OPSET),
            options={} if regression else {id(final): {"zipmap": False}},
            custom_conversion_functions={
                HistGradientBoostingClassifier: _convert_hgb,
                HistGradientBoostingRegressor: _convert_hgb,
                OneHotEncoder: _convert_one_hot,
                SimpleImputer: _convert_imputer,
                RandomForestClassifier: forest,
                ExtraTreesClassifier: forest,
                RandomForestRegressor: forest,
                ExtraTreesRegressor: forest,
                VotingClassifier: partial(convert_soft_voting_classifier, double=doubles),
                VotingRegressor: partial(convert_voting_regressor, double=doubles),
            },
            custom_shape_calculators={
                HistGradientBoostingClassifier: _float_outputs(_hgb_shapes()),
                HistGradientBoostingRegressor: _float_outputs(
                    calculate_linear_regressor_output_shapes
                ),
                OneHotEncoder: _one_hot_shapes,
                RandomForestClassifier: _hgb_shapes(),
                ExtraTreesClassifier: _hgb_shapes(),
                RandomForestRegressor: calculate_linear_regressor_output_shapes,
                ExtraTreesRegressor: calculate_linear_regressor_output_shapes,
            },
        )
    for node in model.graph.node:
        if node.name in tables:
            _add_tables(node, tables.pop(node.name))
    outputs = [o.name for o in model.graph.output]
    expected = [VALUE_OUTPUT] if regression else [LABEL_OUTPUT, PROBABILITIES_OUTPUT]
    if outputs != expected:
        raise ValueError(f"unexpected graph outputs {outputs}")
    names = [i.name for i in model.graph.input]
    if len(names) != len(schema.features):
        raise ValueError(f"graph has {len(names)} inputs for {len(schema.features)} features")
    inputs = [
        {"name": name, "column": f.name, "type": kind}
        for name, f, kind in zip(names, schema.features, kinds, strict=True)
    ]
    return model.SerializeToString(), inputs


@contextmanager
def _marker_imputer(pipeline: Any) -> Iterator[None]:
    """While converting, the categorical imputer reads the missing marker instead of NaN.

    ONNX string tensors cannot hold NaN, so a missing category is fed as the very marker the
    imputer would write: in the graph the imputer maps the marker to itself. The pipeline is
    changed in place and restored (a copy of a large forest cost hundreds of MB).
    """
    preprocess = pipeline.steps[0][1]
    categorical = getattr(preprocess, "named_transformers_", {}).get("categorical")
    if categorical is None:
        yield
        return
    imputer = categorical.named_steps["impute"]
    if imputer.fill_value != MISSING_CATEGORY:
        raise ValueError(f"categorical imputer fills {imputer.fill_value!r}")
    before = imputer.missing_values
    imputer.missing_values = MISSING_CATEGORY
    try:
        yield
    finally:
        imputer.missing_values = before


def _compares_in_double() -> tuple[type, ...]:
    """The models whose answers turn on float64 comparisons of their inputs.

    Their graphs take numeric inputs as double tensors. Gradient boosting compares float64
    inputs with float64 thresholds: with float32 a test value and a threshold closer than
    float32 can tell apart (``z = 3.93`` and the midpoint ``3.9299999999999997``) take
    different branches (diamonds: prices "differ by up to 241"); its graph also carries
    double thresholds. k-nearest neighbours ranks float64 distances: in float32 near ties
    pick other neighbours (diamonds fitted on 1 000 rows: "differ by up to 80.8"; exact
    ties, as on auto_imports, are broken by row order and still differ). Forests and single
    trees compare float32 inputs, as their graphs do (their thresholds are rounded to match,
    see :func:`_float32_at_most`); the other models are smooth, within the tolerance.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

    return (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        KNeighborsClassifier,
        KNeighborsRegressor,
    )


#: TreeEnsemble attributes that hold numbers: as FLOATS they are float32; ai.onnx.ml 3 adds a
#: ``*_as_tensor`` twin of each that can hold doubles.
_TREE_NUMBERS = ("nodes_values", "nodes_hitrates", "base_values", "class_weights", "target_weights")


def _convert_hgb(scope: Any, operator: Any, container: Any) -> None:
    """Convert a HistGradientBoosting model with skl2onnx's own converter, bools cast to int,
    and its numbers in double precision when its input is double.

    With scikit-learn 1.9 the converter passes numpy bools in integer attribute lists
    (``nodes_missing_value_tracks_true``), which onnx refuses ("Expected an int, got a
    boolean"). skl2onnx 1.20 writes thresholds and leaf values as FLOATS (float32) whatever
    the input: for a double input they are moved to the ``*_as_tensor`` attributes of
    ai.onnx.ml 3, which onnxruntime reads as doubles for a double input. Native categorical
    splits have no ONNX equivalent: refuse them.
    """
    from onnx import numpy_helper
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.random_forest import (
        convert_sklearn_random_forest_classifier,
        convert_sklearn_random_forest_regressor_converter,
    )

    model = operator.raw_operator
    for predictors in model._predictors:
        for predictor in predictors:
            if np.any(predictor.nodes["is_categorical"]):
                raise NotImplementedError("native categorical splits have no ONNX equivalent")
    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    add_node = container.add_node

    def add_node_typed(*args: Any, **attrs: Any) -> Any:
        for key, value in list(attrs.items()):
            if isinstance(value, list) and any(isinstance(v, (bool, np.bool_)) for v in value):
                attrs[key] = [int(v) for v in value]
            elif double and key in _TREE_NUMBERS:
                del attrs[key]
                values = np.asarray(value, dtype=np.float64).ravel()
                if values.size:
                    attrs[f"{key}_as_tensor"] = numpy_helper.from_array(values, name=key)
        return add_node(*args, **attrs)

    container.add_node = add_node_typed
    version = TARGET_OPSET["ai.onnx.ml"] if double else 1
    try:
        if hasattr(model, "classes_"):
            convert_sklearn_random_forest_classifier(scope, operator, container, op_version=version)
        else:
            convert_sklearn_random_forest_regressor_converter(
                scope, operator, container, op_version=version
            )
    finally:
        del container.add_node  # back to the class's method


def _convert_imputer(scope: Any, operator: Any, container: Any) -> None:
    """Fill the missing values of double columns with the medians, in double precision.

    skl2onnx's converter uses the ai.onnx.ml Imputer, whose values are float32 and which
    onnxruntime runs on float32 inputs only; a double input is filled with ``IsNaN`` and
    ``Where`` instead. Other inputs (the categorical imputer's strings) go to skl2onnx.
    """
    from onnx import TensorProto
    from skl2onnx.common.data_types import DoubleTensorType
    from skl2onnx.operator_converters.common import concatenate_variables
    from skl2onnx.operator_converters.imputer_op import convert_sklearn_imputer

    if not isinstance(operator.inputs[0].type, DoubleTensorType):
        convert_sklearn_imputer(scope, operator, container)
        return
    imputer = operator.raw_operator
    missing = imputer.missing_values
    if not (isinstance(missing, float) and np.isnan(missing)):
        raise NotImplementedError(f"an imputer of {missing!r} (not NaN) is not supported")
    column = concatenate_variables(scope, operator.inputs, container)
    medians = scope.get_unique_variable_name("medians")
    values = np.asarray(imputer.statistics_, dtype=np.float64)
    container.add_initializer(medians, TensorProto.DOUBLE, [values.size], values.tolist())
    isnan = scope.get_unique_variable_name("isnan")
    container.add_node("IsNaN", column, isnan, name=scope.get_unique_operator_name("IsNaN"))
    container.add_node(
        "Where",
        [isnan, medians, column],
        operator.outputs[0].full_name,
        name=scope.get_unique_operator_name("Where"),
    )


def _convert_forest(
    scope: Any, operator: Any, container: Any, *, tables: dict[str, dict[str, np.ndarray]]
) -> None:
    """Convert a random forest or extra-trees classifier from whole NumPy arrays.

    skl2onnx's own converter walks every node in Python and lists a weight for every class
    at every leaf: for 100 fully grown trees on 4 000 rows of 7 classes it took 640 MB (the
    default `train` peaked at 1.3 GB). Here the trees' arrays are concatenated as they are,
    and a leaf lists only the classes it gives a probability to (most leaves are pure).
    The node is added without its node tables, which go into ``tables`` under the node's
    name and onto the finished graph (skl2onnx copies the graph as it builds the model).
    Probabilities as scikit-learn computes them: each tree's leaf fractions, averaged.
    """
    forest = operator.raw_operator
    if getattr(forest, "n_outputs_", 1) != 1:
        raise NotImplementedError("multi-output forests are not supported")
    if not hasattr(forest, "classes_"):
        _convert_forest_regressor(scope, operator, container, tables)
        return
    classes = forest.classes_
    parts: dict[str, list[np.ndarray]] = {}
    weight = 1.0 / len(forest.estimators_)
    for tree_id, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        nodes = _node_tables(tree, tree_id)
        leaf = nodes["leaf"]
        values = tree.value[:, 0, :]
        fractions = values / np.maximum(values.sum(axis=1, keepdims=True), 1e-300)
        # Two classes: both listed at every leaf (onnxruntime reads a binary ensemble that
        # lists one class as a single score); more: only the classes a leaf gives weight to.
        given = fractions > 0 if len(classes) > 2 else np.ones_like(fractions, dtype=bool)
        node, cls = np.nonzero(leaf[:, None] & given)
        nodes["class_treeids"] = np.full(node.size, tree_id, dtype=np.int64)
        nodes["class_nodeids"] = node.astype(np.int64)
        nodes["class_ids"] = cls.astype(np.int64)
        nodes["class_weights"] = (fractions[node, cls] * weight).astype(np.float32)
        for key, array in nodes.items():
            parts.setdefault(key, []).append(array)
    labels: dict[str, Any] = (
        {"classlabels_int64s": [int(c) for c in classes]}
        if all(isinstance(c, (int, np.integer)) for c in classes)
        else {"classlabels_strings": [str(c) for c in classes]}
    )
    name = scope.get_unique_operator_name("TreeEnsembleClassifier")
    container.add_node(
        "TreeEnsembleClassifier",
        operator.input_full_names,
        [operator.outputs[0].full_name, operator.outputs[1].full_name],
        op_domain="ai.onnx.ml",
        op_version=1,
        name=name,
        post_transform="NONE",
        **labels,
    )
    tables[name] = {k: np.concatenate(v) for k, v in parts.items()}


def _node_tables(tree: Any, tree_id: int) -> dict[str, np.ndarray]:
    """One tree's node attributes for a TreeEnsemble operator, leaves as ``LEAF`` nodes."""
    n = tree.node_count
    left, right = tree.children_left, tree.children_right
    leaf = left == -1
    return {
        "nodes_treeids": np.full(n, tree_id, dtype=np.int64),
        "nodes_nodeids": np.arange(n, dtype=np.int64),
        "nodes_featureids": np.where(leaf, 0, tree.feature).astype(np.int64),
        "nodes_values": _float32_at_most(np.where(leaf, 0.0, tree.threshold)),
        "nodes_truenodeids": np.where(leaf, 0, left).astype(np.int64),
        "nodes_falsenodeids": np.where(leaf, 0, right).astype(np.int64),
        "leaf": leaf,
    }


def _convert_forest_regressor(
    scope: Any, operator: Any, container: Any, tables: dict[str, dict[str, np.ndarray]]
) -> None:
    """A random forest or extra-trees regressor as a TreeEnsembleRegressor: each tree's leaf
    values, averaged (see :func:`_convert_forest`)."""
    forest = operator.raw_operator
    parts: dict[str, list[np.ndarray]] = {}
    weight = 1.0 / len(forest.estimators_)
    for tree_id, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        nodes = _node_tables(tree, tree_id)
        leaves = np.flatnonzero(nodes["leaf"])
        nodes["target_treeids"] = np.full(leaves.size, tree_id, dtype=np.int64)
        nodes["target_nodeids"] = leaves.astype(np.int64)
        nodes["target_ids"] = np.zeros(leaves.size, dtype=np.int64)
        nodes["target_weights"] = (tree.value[leaves, 0, 0] * weight).astype(np.float32)
        for key, values in nodes.items():
            parts.setdefault(key, []).append(values)
    name = scope.get_unique_operator_name("TreeEnsembleRegressor")
    container.add_node(
        "TreeEnsembleRegressor",
        operator.input_full_names,
        operator.outputs[0].full_name,
        op_domain="ai.onnx.ml",
        op_version=1,
        name=name,
        n_targets=1,
        post_transform="NONE",
        aggregate_function="SUM",
    )
    tables[name] = {k: np.concatenate(v) for k, v in parts.items()}


def _add_tables(node: Any, table: dict[str, np.ndarray]) -> None:
    """Put a forest's node tables on its graph node, one attribute at a time (only one
    Python list of an attribute's values lives at once)."""
    from onnx import AttributeProto

    modes = AttributeProto(name="nodes_modes", type=AttributeProto.STRINGS)
    modes.strings.extend([b"LEAF" if x else b"BRANCH_LEQ" for x in table.pop("leaf").tolist()])
    node.attribute.append(modes)
    for key in list(table):
        values = table.pop(key)
        attribute = AttributeProto(name=key)
        if values.dtype.kind == "f":
            attribute.type = AttributeProto.FLOATS
            attribute.floats.extend(values.tolist())
        else:
            attribute.type = AttributeProto.INTS
            attribute.ints.extend(values.tolist())
        node.attribute.append(attribute)


def _float32_at_most(values: np.ndarray) -> np.ndarray:
    """The largest float32 not above each value: scikit-learn compares float32 inputs with
    float64 thresholds (``x <= t``), and a threshold rounded up to the next float32 would send
    an input equal to it down the other branch."""
    out = values.astype(np.float32)
    above = out.astype(np.float64) > values
    out[above] = np.nextafter(out[above], np.float32(-np.inf))
    return out


def _float_outputs(calculate: Any) -> Any:
    """A shape calculator whose numeric outputs are float: ai.onnx.ml 3's tree ensembles
    compute in double for a double input but always answer float32."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    def calculate_float(operator: Any) -> None:
        calculate(operator)
        for output in operator.outputs:
            if isinstance(output.type, DoubleTensorType):
                output.type = FloatTensorType(output.type.shape)

    return calculate_float


def _hgb_shapes() -> Any:
    from skl2onnx.shape_calculators.ensemble_shapes import calculate_tree_classifier_output_shapes

    return calculate_tree_classifier_output_shapes


#: A value no category can equal (strings from data files hold no NUL): asks the fitted
#: encoder where it puts a category it has never seen.
_UNSEEN = "\x00unseen"


def _one_hot_columns(encoder: Any) -> list[tuple[list[str], list[int], int, int]]:
    """Ask the fitted encoder, per feature, which output column each category and an unseen
    value go to: (categories, their columns, the unseen value's column or -1, width).

    skl2onnx's own converter sends an unseen value to an error (``handle_unknown=
    "infrequent_if_exist"`` becomes ``zeros=0``) where scikit-learn uses the infrequent column
    or none; asking ``transform`` itself keeps the graph to scikit-learn's rules.
    """
    if encoder.drop_idx_ is not None:
        raise NotImplementedError("OneHotEncoder(drop=...) is not supported")
    categories = [[str(c) for c in cats] for cats in encoder.categories_]
    widths = [len(encoder._compute_transformed_categories(i)) for i in range(len(categories))]
    out = []
    start = 0
    for i, cats in enumerate(categories):
        probe = np.array([[c[0] for c in categories]] * (len(cats) + 1), dtype=object)
        probe[:, i] = [*cats, _UNSEEN]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "found unknown categories"
            block = np.asarray(encoder.transform(probe))[:, start : start + widths[i]]
        if not set(np.unique(block.sum(axis=1))) <= {0.0, 1.0}:
            raise ValueError(f"OneHotEncoder feature {i} does not encode one column per value")
        columns = [int(np.argmax(row)) if row.any() else -1 for row in block]
        out.append((cats, columns[:-1], columns[-1], widths[i]))
        start += widths[i]
    return out


def _one_hot_shapes(operator: Any) -> None:
    from skl2onnx.common.data_types import FloatTensorType

    width = sum(w for *_, w in _one_hot_columns(operator.raw_operator))
    rows = operator.inputs[0].get_first_dimension()
    operator.outputs[0].type = FloatTensorType([rows, width])


def _convert_one_hot(scope: Any, operator: Any, container: Any) -> None:
    """Convert a OneHotEncoder on string columns, unseen values placed as scikit-learn does.

    Per column: LabelEncoder (category -> output column, unseen -> its column or -1), then
    the ai.onnx.ml OneHotEncoder over those column numbers (-1 gives all zeros).
    """
    from skl2onnx.common.data_types import StringTensorType

    if any(not isinstance(i.type, StringTensorType) for i in operator.inputs):
        raise NotImplementedError("OneHotEncoder is converted for string inputs only")
    columns = []
    for inp in operator.inputs:
        width = inp.type.shape[1]
        if not isinstance(width, int):
            raise RuntimeError("OneHotEncoder input columns must be known")
        columns += [(inp.full_name, j, width) for j in range(width)]
    mapping = _one_hot_columns(operator.raw_operator)
    if len(mapping) != len(columns):
        raise RuntimeError(f"{len(columns)} input columns for {len(mapping)} encoded features")
    blocks = []
    for (name, j, width), (cats, targets, unseen, size) in zip(columns, mapping, strict=True):
        column = name
        if width > 1:
            index = scope.get_unique_variable_name("column_index")
            container.add_initializer(index, 7, [1], [j])  # 7: INT64
            column = scope.get_unique_variable_name("column")
            container.add_node(
                "Gather",
                [name, index],
                column,
                axis=1,
                name=scope.get_unique_operator_name("Gather"),
            )
        positions = scope.get_unique_variable_name("positions")
        container.add_node(
            "LabelEncoder",
            column,
            positions,
            op_domain="ai.onnx.ml",
            op_version=2,
            keys_strings=cats,
            values_int64s=targets,
            default_int64=unseen,
            name=scope.get_unique_operator_name("LabelEncoder"),
        )
        block = scope.get_unique_variable_name("onehot")
        container.add_node(
            "OneHotEncoder",
            positions,
            block,
            op_domain="ai.onnx.ml",
            cats_int64s=list(range(size)),
            zeros=1,
            name=scope.get_unique_operator_name("OneHotEncoder"),
        )
        blocks.append(block)
    joined = blocks[0]
    if len(blocks) > 1:
        joined = scope.get_unique_variable_name("onehot_all")
        container.add_node(
            "Concat", blocks, joined, axis=-1, name=scope.get_unique_operator_name("Concat")
        )
    shape = scope.get_unique_variable_name("shape")
    container.add_initializer(shape, 7, [2], [-1, sum(m[3] for m in mapping)])
    container.add_node(
        "Reshape",
        [joined, shape],
        operator.outputs[0].full_name,
        name=scope.get_unique_operator_name("Reshape"),
    )


def feeds(inputs: list[dict[str, str]], X: pd.DataFrame) -> dict[str, np.ndarray]:
    """Turn a feature frame into the graph's input tensors, as the contract describes."""
    out: dict[str, np.ndarray] = {}
    for spec in inputs:
        column = X[spec["column"]]
        if spec["type"] == "string":
            text = column.astype(object).where(column.notna(), MISSING_CATEGORY).map(str)
            out[spec["name"]] = text.to_numpy(dtype=object).reshape(-1, 1)
        else:
            dtype = np.float64 if spec["type"] == "double" else np.float32
            out[spec["name"]] = column.to_numpy(dtype=dtype, na_value=np.nan).reshape(-1, 1)
    return out


def _session(model_bytes: bytes) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(
        model_bytes, sess_options=options, providers=["CPUExecutionProvider"]
    )


def _verify_values(
    model_bytes: bytes,
    inputs: list[dict[str, str]],
    pipeline: Any,
    X_check: pd.DataFrame,
    target_scale: float,
) -> OnnxVerification | str:
    """Compare a regressor's predictions in both runtimes on ``X_check``."""
    rows = len(X_check)
    if rows == 0:
        return "no test rows to verify the ONNX model on"
    (onnx_values,) = _session(model_bytes).run([VALUE_OUTPUT], feeds(inputs, X_check))
    with one_native_thread():
        sk_values = np.asarray(pipeline.predict(X_check), dtype=np.float64)
    onnx_values = np.asarray(onnx_values, dtype=np.float64).ravel()
    if onnx_values.shape != sk_values.shape or not np.isfinite(onnx_values).all():
        return f"ONNX gives no valid predictions (shape {onnx_values.shape}) on {rows} test rows"
    tolerance = RELATIVE_TOLERANCE * (target_scale if target_scale > 0 else 1.0)
    diff = float(np.max(np.abs(onnx_values - sk_values)))
    if not diff <= tolerance:
        return (
            f"ONNX predictions differ from scikit-learn's by up to {diff:.3g} (tolerance "
            f"{tolerance:.3g}: {RELATIVE_TOLERANCE:g} of the target's spread) on {rows} test rows"
        )
    return OnnxVerification(
        rows=rows,
        max_abs_value_diff=float(f"{diff:.3g}"),
        tolerance=float(f"{tolerance:.6g}"),
        relative_tolerance=RELATIVE_TOLERANCE,
    )


def _verify(
    model_bytes: bytes,
    inputs: list[dict[str, str]],
    pipeline: Any,
    schema: Schema,
    X_check: pd.DataFrame,
    tolerance: float,
) -> OnnxVerification | str:
    """Compare both runtimes on ``X_check``: the verification record, or why it failed."""

    classes = list(schema.classes)
    fitted = [c.item() if hasattr(c, "item") else c for c in getattr(pipeline, "classes_", [])]
    if fitted != classes:
        return f"the model's classes {fitted} differ from the schema's {classes}"
    rows = len(X_check)
    if rows == 0:
        return "no test rows to verify the ONNX model on"
    (onnx_proba,) = _session(model_bytes).run([PROBABILITIES_OUTPUT], feeds(inputs, X_check))
    with one_native_thread():  # as in training: OpenMP threads spin on a busy machine
        sk_proba = np.asarray(pipeline.predict_proba(X_check), dtype=np.float64)
    onnx_proba = np.asarray(onnx_proba, dtype=np.float64)
    if onnx_proba.shape != sk_proba.shape or not np.isfinite(onnx_proba).all():
        return f"ONNX gives no valid probabilities (shape {onnx_proba.shape}) on {rows} test rows"
    mismatches = int(
        np.sum(decide(onnx_proba, classes, None).labels != decide(sk_proba, classes, None).labels)
    )
    diff = float(np.max(np.abs(onnx_proba - sk_proba)))
    if mismatches:
        return f"ONNX disagrees with scikit-learn on {mismatches} of {rows} test rows"
    if not diff <= tolerance:
        return (
            f"ONNX probabilities differ from scikit-learn's by up to {diff:.1e} "
            f"(tolerance {tolerance:g}) on {rows} test rows"
        )
    return OnnxVerification(
        rows=rows,
        labels_equal=True,
        label_mismatches=0,
        max_abs_probability_diff=float(f"{diff:.3g}"),
        tolerance=tolerance,
    )
