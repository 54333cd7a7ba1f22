"""Convert a soft-voting ensemble to ONNX: its members' graphs combined with their weights.

skl2onnx's own voting converters multiply each member's output by its weight in the
ensemble's number type; members whose converters answer in another type (the forests and
gradient boosting here answer in float32, the linear models in float64 when the inputs are
double, as they are when a member needs them) make a graph onnxruntime refuses ("Mul bound
to different types"). Here each member's output is cast to the ensemble's type first.
"""

from __future__ import annotations

from typing import Any


def _members(
    scope: Any, operator: Any, container: Any, outputs: int, double: tuple[type, ...]
) -> list[str]:
    """Declare each member on the ensemble's inputs; return its weighted output, cast to the
    ensemble's number type (``outputs``: 2 for a classifier, label and probabilities).

    The inputs are double when a member compares in double (``double``: those models); the
    others get them as float, as they would alone (an SVM has no double kernel in
    onnxruntime)."""
    from onnx import TensorProto
    from skl2onnx._supported_operators import sklearn_operator_name_map
    from skl2onnx.common._apply_operation import apply_cast, apply_mul
    from skl2onnx.common.data_types import (
        DoubleTensorType,
        FloatTensorType,
        Int64TensorType,
        guess_proto_type,
    )

    voting = operator.raw_operator
    value = operator.outputs[outputs - 1]
    proto = guess_proto_type(value.type)
    weights = voting.weights / voting.weights.sum()
    weighted = []
    source = operator.inputs[0]
    as_float = None
    for i, estimator in enumerate(voting.estimators_):
        member = scope.declare_local_operator(sklearn_operator_name_map[type(estimator)], estimator)
        member.inputs = operator.inputs
        if isinstance(source.type, DoubleTensorType) and not isinstance(estimator, double):
            if as_float is None:
                as_float = scope.declare_local_variable("as_float", FloatTensorType())
                apply_cast(scope, source.onnx_name, as_float.onnx_name, container,
                           to=TensorProto.FLOAT)  # fmt: skip
            member.inputs = [as_float]
        if outputs == 2:
            member.outputs.append(scope.declare_local_variable(f"label_{i}", Int64TensorType()))
        out = scope.declare_local_variable(f"member_{i}", value.type.__class__())
        member.outputs.append(out)
        cast = scope.get_unique_variable_name(f"cast_{i}")
        apply_cast(scope, out.onnx_name, cast, container, to=proto)
        weight = scope.get_unique_variable_name(f"w{i}")
        container.add_initializer(weight, proto, [1], [float(weights[i])])
        product = scope.get_unique_variable_name(f"weighted_{i}")
        apply_mul(scope, [cast, weight], product, container, broadcast=1)
        if outputs == 1:  # a regressor's member may answer (N,) or (N, 1)
            flat = scope.get_unique_variable_name(f"flat_{i}")
            container.add_node("Flatten", product, flat, name=scope.get_unique_operator_name("F"))
            product = flat
        weighted.append(product)
    return weighted


def convert_soft_voting_classifier(
    scope: Any, operator: Any, container: Any, *, double: tuple[type, ...]
) -> None:
    """A soft ``VotingClassifier``: the weighted sum of the members' probabilities, and the
    class of the largest as the label."""
    from skl2onnx.common.data_types import guess_proto_type
    from skl2onnx.common.utils_classifier import _finalize_converter_classes

    weighted = _members(scope, operator, container, 2, double)
    probabilities = operator.outputs[1].full_name
    container.add_node("Sum", weighted, probabilities, name=scope.get_unique_operator_name("Sum"))
    argmax = scope.get_unique_variable_name("argmax")
    container.add_node(
        "ArgMax", probabilities, argmax, name=scope.get_unique_operator_name("ArgMax"), axis=1
    )
    proto = guess_proto_type(operator.outputs[1].type)
    _finalize_converter_classes(
        scope, argmax, operator.outputs[0].full_name, container, operator.raw_operator.classes_,
        proto,
    )  # fmt: skip


def convert_voting_regressor(
    scope: Any, operator: Any, container: Any, *, double: tuple[type, ...]
) -> None:
    """A ``VotingRegressor``: the weighted sum of the members' predictions."""
    weighted = _members(scope, operator, container, 1, double)
    container.add_node(
        "Sum", weighted, operator.outputs[0].full_name, name=scope.get_unique_operator_name("Sum")
    )
