"""Export the fitted pipeline (imputation + one-hot + four LightGBM models) as ONE ONNX graph.

Inputs: one [N, 1] tensor per schema feature (float32 for numbers and booleans, NaN = missing;
string for categories, "" = missing) and optional `with_reasons` (bool [1], default true). Outputs:
  probabilities  [N, 5] float: P(tier = 1..5), non-crossing cumulative models differenced
  contributions  [N, F] float: per-feature contributions to the summed cumulative logit (Saabas:
                 along each tree path, the change in node value is credited to the split's feature;
                 each leaf's vector is constant, so a TreeEnsembleRegressor with F targets computes
                 them exactly in the graph). They sum, with the card's `reasons.bias`, to the logit.
                 Computed inside an If node only when `with_reasons` is true (it doubles the tree
                 work, and onnxruntime does not skip nodes whose outputs are not fetched).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from serving.risk import RiskSchema

OPSET = 15
ML_OPSET = 3
REASONS_INPUT = "with_reasons"  # bool [1]: compute contributions (an If node) or return a [0, F] tensor


def export_onnx(pipeline: Pipeline, schema: RiskSchema, path: Path) -> dict:
    """Write model.onnx; returns {"bias": ...} for the card's reasons section."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    prep_graph = _convert_preprocessor(pipeline.named_steps["prep"], schema)
    encoded_owner = _encoded_feature_owner(pipeline.named_steps["prep"], schema)
    estimators = pipeline.named_steps["model"].estimators_
    nodes, initializers = list(prep_graph.graph.node), list(prep_graph.graph.initializer)
    features = prep_graph.graph.output[0].name
    exceed = []
    for k, estimator in enumerate(estimators, start=1):
        sub = _convert_lightgbm(estimator, n_inputs=len(encoded_owner))
        renamed = _prefixed(sub.graph, prefix=f"gt{k}_", input_name=features)
        nodes += renamed.node
        initializers += renamed.initializer
        probabilities = next(o.name for o in renamed.output if "prob" in o.name)
        exceed.append(_add_column(nodes, initializers, probabilities, name=f"p_above_{k}"))
    nodes += _tier_nodes(exceed, initializers)
    contribution_node, bias = _contribution_node(estimators, features, encoded_owner, n_targets=len(schema.features))
    nodes.append(_only_if_asked(contribution_node, n_targets=len(schema.features)))
    switch = helper.make_tensor_value_info(REASONS_INPUT, TensorProto.BOOL, [1])
    # an input with an initializer is optional: callers that only feed the features get reasons too
    initializers.append(numpy_helper.from_array(np.array([True]), name=REASONS_INPUT))
    graph = helper.make_graph(
        nodes, "labor_risk", [*prep_graph.graph.input, switch],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 5]),
         helper.make_tensor_value_info("contributions", TensorProto.FLOAT, [None, len(schema.features)])],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
                              producer_name="ankang.training.risk")
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return {"bias": bias}


def _convert_preprocessor(prep, schema: RiskSchema):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types = [(name, StringTensorType([None, 1]) if name in schema.categorical_features else FloatTensorType([None, 1]))
             for name in schema.features]
    return convert_sklearn(prep, initial_types=types, target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET})


def _convert_lightgbm(estimator, *, n_inputs: int):
    from onnxmltools import convert_lightgbm
    from onnxmltools.convert.common.data_types import FloatTensorType

    return convert_lightgbm(estimator, initial_types=[("features", FloatTensorType([None, n_inputs]))],
                            zipmap=False, target_opset=OPSET)


def _prefixed(graph, *, prefix: str, input_name: str):
    """A copy of a sub-graph with every name prefixed and its input wired to `input_name`."""
    from onnx import compose

    renamed = compose.add_prefix_graph(graph, prefix)
    old_input = renamed.input[0].name
    for node in renamed.node:
        for i, name in enumerate(node.input):
            if name == old_input:
                node.input[i] = input_name
    return renamed


def _add_column(nodes: list, initializers: list, probabilities: str, *, name: str) -> str:
    from onnx import helper, numpy_helper

    index = numpy_helper.from_array(np.array([1], dtype=np.int64), name=f"{name}_index")
    initializers.append(index)
    nodes.append(helper.make_node("Gather", [probabilities, index.name], [name], axis=1, name=f"{name}_gather"))
    return name


def _tier_nodes(exceed: list[str], initializers: list) -> list:
    """Running minimum (non-crossing) of P(tier > k), then differences into P(tier = k)."""
    from onnx import helper, numpy_helper

    nodes, monotone = [], [exceed[0]]
    for k, name in enumerate(exceed[1:], start=2):
        nodes.append(helper.make_node("Min", [name, monotone[-1]], [f"above_{k}"], name=f"noncrossing_{k}"))
        monotone.append(f"above_{k}")
    initializers.append(numpy_helper.from_array(np.array([[1.0]], dtype=np.float32), name="one_scalar"))
    nodes += [helper.make_node("Sub", [monotone[0], monotone[0]], ["zero_column"], name="zero_column"),
              helper.make_node("Add", ["zero_column", "one_scalar"], ["one_column"], name="one_column"),
              helper.make_node("Concat", ["one_column", *monotone], ["upper"], axis=1, name="upper"),
              helper.make_node("Concat", [*monotone, "zero_column"], ["lower"], axis=1, name="lower"),
              helper.make_node("Sub", ["upper", "lower"], ["probabilities"], name="tier_probabilities")]
    return nodes


def _encoded_feature_owner(prep, schema: RiskSchema) -> list[int]:
    """For each encoded column, the index of the schema feature it came from."""
    owners = [schema.features.index(name) for name in schema.numeric_features]
    for name in schema.categorical_features:
        owners += [schema.features.index(name)] * len(schema.fields[name].categories)
    assert len(owners) == prep.transform(_one_row(schema)).shape[1], "encoded width differs from the schema"
    return owners


def _one_row(schema: RiskSchema):
    import pandas as pd

    return pd.DataFrame({name: [""] if name in schema.categorical_features else [np.nan] for name in schema.features})


class _TreeArrays:
    """Attribute lists of an ai.onnx.ml TreeEnsembleRegressor, filled tree by tree."""

    def __init__(self):
        self.nodes = {key: [] for key in ("treeids", "nodeids", "featureids", "modes", "values", "truenodeids",
                                          "falsenodeids", "missing_value_tracks_true")}
        self.targets = {key: [] for key in ("treeids", "nodeids", "ids", "weights")}

    def add_node(self, tree: int, node: int, *, feature=0, mode="LEAF", value=0.0, true=0, false=0) -> None:
        for key, item in zip(self.nodes, (tree, node, feature, mode, value, true, false, 0)):
            self.nodes[key].append(item)

    def add_leaf_vector(self, tree: int, node: int, vector: dict[int, float]) -> None:
        for target, weight in vector.items():
            if weight != 0.0:
                for key, item in zip(self.targets, (tree, node, target, weight)):
                    self.targets[key].append(item)


def _node_mean(node: dict) -> tuple[float, float]:
    """(count-weighted mean of the leaves below, count): the node's expected output, as in TreeSHAP."""
    if "leaf_value" in node:
        return node["leaf_value"], float(node.get("leaf_count", 0))
    left, right = _node_mean(node["left_child"]), _node_mean(node["right_child"])
    count = left[1] + right[1]
    mean = (left[0] * left[1] + right[0] * right[1]) / count if count else (left[0] + right[0]) / 2
    node["_mean"] = mean
    return mean, count


def _walk(arrays: _TreeArrays, tree: int, node: dict, owners: list[int], path: dict[int, float], counter: list[int]) -> int:
    node_id = counter[0]
    counter[0] += 1
    if "leaf_value" in node:
        arrays.add_node(tree, node_id)
        arrays.add_leaf_vector(tree, node_id, path)
        return node_id
    if node.get("decision_type", "<=") != "<=":
        raise ValueError(f"unsupported LightGBM split {node['decision_type']!r}; the pipeline one-hot encodes categories")
    here, feature = node["_mean"], node["split_feature"]
    slot = len(arrays.nodes["nodeids"])
    arrays.add_node(tree, node_id, feature=feature, mode="BRANCH_LEQ", value=float(node["threshold"]))
    children = []
    for child in (node["left_child"], node["right_child"]):
        child_mean = child["leaf_value"] if "leaf_value" in child else child["_mean"]
        owner = owners[feature]
        step = dict(path)
        step[owner] = step.get(owner, 0.0) + child_mean - here
        children.append(_walk(arrays, tree, child, owners, step, counter))
    arrays.nodes["truenodeids"][slot], arrays.nodes["falsenodeids"][slot] = children
    return node_id


def tree_contribution_arrays(estimators: list, owners: list[int]) -> tuple[_TreeArrays, float]:
    arrays, bias, tree_id = _TreeArrays(), 0.0, 0
    for estimator in estimators:
        for info in estimator.booster_.dump_model()["tree_info"]:
            root = info["tree_structure"]
            bias += _node_mean(root)[0]
            _walk(arrays, tree_id, root, owners, {}, [0])
            tree_id += 1
    return arrays, bias


def _contribution_node(estimators: list, features: str, owners: list[int], *, n_targets: int):
    from onnx import helper

    arrays, bias = tree_contribution_arrays(estimators, owners)
    attributes = {f"nodes_{key}": value for key, value in arrays.nodes.items()}
    attributes |= {f"target_{key}": value for key, value in arrays.targets.items()}
    node = helper.make_node("TreeEnsembleRegressor", [features], ["contributions"], domain="ai.onnx.ml",
                            name="saabas_contributions", n_targets=n_targets, aggregate_function="SUM",
                            post_transform="NONE", **attributes)
    return node, bias


def _only_if_asked(contribution_node, *, n_targets: int):
    """Wrap the contribution trees in If(with_reasons): else a [0, n_targets] empty tensor."""
    from onnx import TensorProto, helper, numpy_helper

    output = helper.make_tensor_value_info("contributions", TensorProto.FLOAT, [None, n_targets])
    contribution_node.output[0] = "contributions"
    then_branch = helper.make_graph([contribution_node], "with_reasons", [], [output])
    empty = numpy_helper.from_array(np.zeros((0, n_targets), dtype=np.float32), name="no_contributions")
    else_node = helper.make_node("Constant", [], ["contributions"], value=empty, name="no_contributions")
    else_branch = helper.make_graph([else_node], "without_reasons", [], [output])
    return helper.make_node("If", [REASONS_INPUT], ["contributions"], then_branch=then_branch,
                            else_branch=else_branch, name="contributions_if_asked")
