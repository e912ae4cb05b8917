"""Export the fitted pipeline (imputation + one-hot + four cumulative LightGBM models) as ONE ONNX graph.

Inputs: one [N, 1] tensor per schema feature (float32 for numbers and booleans, NaN = missing;
string for categories, "" = missing) and optional `with_reasons` (bool [1], default true). Outputs:
  probabilities  [N, tiers] float: P(tier = k), the cumulative models' curve rearranged (sorted)
                 so it cannot cross, then differenced
  contributions  [N, F] float: per-feature contributions to the summed cumulative logit (Saabas:
                 along each tree path, the change in node value is credited to the split's feature).
                 They sum, with the card's `reasons.bias`, to the logit; [0, F] without reasons.

Every tree of the four models goes into one TreeEnsembleRegressor, walked once per row: each leaf
carries its model's raw score (targets 0..3, the logits of P(tier > k)) and, when reasons are asked
for, its path's contribution vector (targets 4..). That replaced four classifier ensembles plus a
contribution ensemble walking the same trees again (benchmarks/README.md has the speed-up). An If
node on `with_reasons` picks the ensemble with or without the contribution targets (onnxruntime does
not skip nodes whose outputs are not fetched).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.pipeline import Pipeline

from runtime.risk.schema import RiskSchema

OPSET = 15
ML_OPSET = 3
REASONS_INPUT = "with_reasons"  # bool [1]: compute contributions (an If node) or return a [0, F] tensor


def export_onnx(pipeline: Pipeline, schema: RiskSchema, path: Path) -> dict:
    """Write model.onnx; returns {"bias": ...} for the card's reasons section."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    prep_graph = _convert_preprocessor(pipeline.named_steps["prep"], schema)
    owners = _encoded_feature_owner(pipeline.named_steps["prep"], schema)
    estimators = pipeline.named_steps["model"].estimators_
    nodes, initializers = list(prep_graph.graph.node), list(prep_graph.graph.initializer)
    trees, bias = _trees_if_asked(
        estimators, owners, prep_graph.graph.output[0].name, n_features=len(schema.features), initializers=initializers
    )
    nodes += [trees, *_tier_nodes(len(estimators), initializers)]
    switch = helper.make_tensor_value_info(REASONS_INPUT, TensorProto.BOOL, [1])
    # an input with an initializer is optional: callers that only feed the features get reasons too
    initializers.append(numpy_helper.from_array(np.array([True]), name=REASONS_INPUT))
    graph = helper.make_graph(
        nodes,
        "labor_risk",
        [*prep_graph.graph.input, switch],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, schema.n_tiers]),
            helper.make_tensor_value_info("contributions", TensorProto.FLOAT, [None, len(schema.features)]),
        ],
        initializer=initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("ai.onnx.ml", ML_OPSET)],
        producer_name="ankang.training.risk",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save_model(model, str(path))
    return {"bias": bias}


def _convert_preprocessor(prep, schema: RiskSchema):
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType, StringTensorType

    types = [
        (name, StringTensorType([None, 1]) if name in schema.categorical_features else FloatTensorType([None, 1]))
        for name in schema.features
    ]
    return convert_sklearn(prep, initial_types=types, target_opset={"": OPSET, "ai.onnx.ml": ML_OPSET})


def _tier_nodes(n_models: int, initializers: list) -> list:
    """P(tier > k) = sigmoid(logit k), sorted descending in each row (rearrangement: non-crossing without
    zeroing a tier, as `rearranged_tier_probabilities`); differences give P(tier = k)."""
    from onnx import helper, numpy_helper

    initializers.append(numpy_helper.from_array(np.array([[1.0]], dtype=np.float32), name="one_scalar"))
    initializers.append(numpy_helper.from_array(np.array([n_models], dtype=np.int64), name="n_cumulative"))
    return [
        helper.make_node("Sigmoid", ["logits"], ["p_above_raw"], name="p_above_raw"),
        helper.make_node(
            "TopK",
            ["p_above_raw", "n_cumulative"],
            ["p_above", "p_above_order"],
            axis=1,
            largest=1,
            sorted=1,
            name="rearranged_p_above",
        ),
        helper.make_node("ReduceMin", ["p_above"], ["row_minimum"], axes=[1], keepdims=1, name="row_minimum"),
        helper.make_node("Sub", ["row_minimum", "row_minimum"], ["zero_column"], name="zero_column"),
        helper.make_node("Add", ["zero_column", "one_scalar"], ["one_column"], name="one_column"),
        helper.make_node("Concat", ["one_column", "p_above"], ["upper"], axis=1, name="upper"),
        helper.make_node("Concat", ["p_above", "zero_column"], ["lower"], axis=1, name="lower"),
        helper.make_node("Sub", ["upper", "lower"], ["probabilities"], name="tier_probabilities"),
    ]


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
        self.nodes = {
            key: []
            for key in (
                "treeids",
                "nodeids",
                "featureids",
                "modes",
                "values",
                "truenodeids",
                "falsenodeids",
                "missing_value_tracks_true",
            )
        }
        self.targets = {key: [] for key in ("treeids", "nodeids", "ids", "weights")}

    def add_node(self, tree: int, node: int, *, feature=0, mode="LEAF", value=0.0, true=0, false=0) -> None:
        for key, item in zip(self.nodes, (tree, node, feature, mode, value, true, false, 0)):
            self.nodes[key].append(item)

    def add_leaf_vector(self, tree: int, node: int, vector: dict[int, float]) -> None:
        for target, weight in vector.items():
            if weight != 0.0:
                for key, item in zip(self.targets, (tree, node, target, weight)):
                    self.targets[key].append(item)

    def targets_below(self, limit: int) -> _TreeArrays:
        """The same trees with only the leaf weights of targets 0..limit-1."""
        kept = [i for i, target in enumerate(self.targets["ids"]) if target < limit]
        copy = _TreeArrays()
        copy.nodes = self.nodes
        copy.targets = {key: [values[i] for i in kept] for key, values in self.targets.items()}
        return copy


def _node_mean(node: dict) -> tuple[float, float]:
    """(count-weighted mean of the leaves below, count): the node's expected output, as in TreeSHAP."""
    if "leaf_value" in node:
        return node["leaf_value"], float(node.get("leaf_count", 0))
    left, right = _node_mean(node["left_child"]), _node_mean(node["right_child"])
    count = left[1] + right[1]
    mean = (left[0] * left[1] + right[0] * right[1]) / count if count else (left[0] + right[0]) / 2
    node["_mean"] = mean
    return mean, count


@dataclass(frozen=True)
class _TreeSlot:
    """Where one LightGBM tree goes: its id in the ensemble, its model's logit target, and the first
    contribution target."""

    tree: int
    model: int
    owners: list[int]
    contribution_offset: int


def _walk(arrays: _TreeArrays, slot: _TreeSlot, node: dict, path: dict[int, float], counter: list[int]) -> int:
    node_id = counter[0]
    counter[0] += 1
    if "leaf_value" in node:
        arrays.add_node(slot.tree, node_id)
        contributions = {slot.contribution_offset + owner: value for owner, value in path.items()}
        arrays.add_leaf_vector(slot.tree, node_id, {slot.model: node["leaf_value"], **contributions})
        return node_id
    if node.get("decision_type", "<=") != "<=":
        raise ValueError(
            f"unsupported LightGBM split {node['decision_type']!r}; the pipeline one-hot encodes categories"
        )
    here, feature = node["_mean"], node["split_feature"]
    index = len(arrays.nodes["nodeids"])
    arrays.add_node(slot.tree, node_id, feature=feature, mode="BRANCH_LEQ", value=float(node["threshold"]))
    children = []
    for child in (node["left_child"], node["right_child"]):  # LightGBM goes left when value <= threshold
        child_mean = child["leaf_value"] if "leaf_value" in child else child["_mean"]
        owner = slot.owners[feature]
        step = dict(path)
        step[owner] = step.get(owner, 0.0) + child_mean - here
        children.append(_walk(arrays, slot, child, step, counter))
    arrays.nodes["truenodeids"][index], arrays.nodes["falsenodeids"][index] = children
    return node_id


def tree_arrays(estimators: list, owners: list[int]) -> tuple[_TreeArrays, float]:
    """Every tree of the cumulative models in one ensemble: target k is model k's raw score (logit),
    target len(estimators) + f the contribution of schema feature f. Also returns the contributions'
    bias (the sum of the trees' expected outputs)."""
    arrays, bias, tree_id = _TreeArrays(), 0.0, 0
    offset = len(estimators)
    for model, estimator in enumerate(estimators):
        for info in estimator.booster_.dump_model()["tree_info"]:
            root = info["tree_structure"]
            bias += _node_mean(root)[0]
            _walk(arrays, _TreeSlot(tree_id, model, owners, offset), root, {}, [0])
            tree_id += 1
    return arrays, bias


def _ensemble_node(arrays: _TreeArrays, features: str, output: str, *, n_targets: int):
    from onnx import helper

    attributes = {f"nodes_{key}": value for key, value in arrays.nodes.items()}
    attributes |= {f"target_{key}": value for key, value in arrays.targets.items()}
    return helper.make_node(
        "TreeEnsembleRegressor",
        [features],
        [output],
        domain="ai.onnx.ml",
        name=output,
        n_targets=n_targets,
        aggregate_function="SUM",
        post_transform="NONE",
        **attributes,
    )


def _trees_if_asked(estimators: list, owners: list[int], features: str, *, n_features: int, initializers: list):
    """If(with_reasons): one walk yielding logits and contributions, else one yielding logits only
    and an empty [0, n_features] contributions tensor. Returns (the If node, the bias)."""
    from onnx import TensorProto, helper, numpy_helper

    n_models = len(estimators)
    with_reasons, bias = tree_arrays(estimators, owners)
    logits_only = with_reasons.targets_below(n_models)
    initializers.append(numpy_helper.from_array(np.array([n_models, n_features], dtype=np.int64), name="logit_split"))

    def branch(name: str, nodes: list, outputs: tuple[str, str]):
        shapes = ([None, n_models], [None, n_features])
        return helper.make_graph(
            nodes,
            name,
            [],
            [helper.make_tensor_value_info(output, TensorProto.FLOAT, shape) for output, shape in zip(outputs, shapes)],
        )

    then_branch = branch(
        "with_reasons",
        [
            _ensemble_node(with_reasons, features, "logits_and_contributions", n_targets=n_models + n_features),
            helper.make_node(
                "Split",
                ["logits_and_contributions", "logit_split"],
                ["reasons_logits", "reasons_contributions"],
                axis=1,
                name="split_logits_from_contributions",
            ),
        ],
        ("reasons_logits", "reasons_contributions"),
    )
    empty = numpy_helper.from_array(np.zeros((0, n_features), dtype=np.float32), name="no_contributions")
    else_branch = branch(
        "without_reasons",
        [
            _ensemble_node(logits_only, features, "plain_logits", n_targets=n_models),
            helper.make_node("Constant", [], ["no_contributions"], value=empty, name="no_contributions"),
        ],
        ("plain_logits", "no_contributions"),
    )
    node = helper.make_node(
        "If",
        [REASONS_INPUT],
        ["logits", "contributions"],
        then_branch=then_branch,
        else_branch=else_branch,
        name="trees_with_or_without_reasons",
    )
    return node, bias
