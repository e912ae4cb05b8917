"""The risk pipeline and its ONNX export: parity, monotonicity, reasons against LightGBM's pred_contrib, card."""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from runtime.modeldir import ModelDir
from runtime.risk.schema import SCHEMA_PATH, load_schema
from runtime.risk.tiers import cost_matrix, decide_tiers
from training.risk.config import GeneratorConfig, RiskModelConfig
from training.risk.export import export_onnx
from training.risk.generator import generate
from training.risk.pipeline import build_pipeline, feature_frame
from training.risk.train import train_risk

SMALL = dict(n_estimators=40, n_jobs=1)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    schema = load_schema()
    train = generate(GeneratorConfig(rows=6_000, seed=21, missing_rate=0.02))
    pipeline = build_pipeline(schema, RiskModelConfig(**SMALL)).fit(
        feature_frame(schema, train.drop(columns=["tier"])), train["tier"].to_numpy()
    )
    path = tmp_path_factory.mktemp("risk_onnx") / "model.onnx"
    info = export_onnx(pipeline, schema, path)
    return schema, pipeline, path, info


@pytest.fixture(scope="module")
def evaluation_rows():
    schema = load_schema()
    frame = generate(GeneratorConfig(rows=10_000, seed=22, missing_rate=0.03))
    return feature_frame(schema, frame.drop(columns=["tier"]))


def onnx_run(path, features, *, with_reasons=True):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {
        name: (
            features[name].to_numpy(np.float32) if features[name].dtype.kind == "f" else features[name].to_numpy(object)
        ).reshape(-1, 1)
        for name in features.columns
    }
    feeds["with_reasons"] = np.array([with_reasons])
    return session.run(["probabilities", "contributions"], feeds)


def test_onnx_matches_native_predict_proba_and_tiers_on_10000_rows(fitted, evaluation_rows):
    _, pipeline, path, _ = fitted
    probabilities, _ = onnx_run(path, evaluation_rows, with_reasons=False)
    native = pipeline.predict_proba(evaluation_rows)
    assert probabilities.shape == (10_000, 5)
    assert np.abs(probabilities - native).max() <= 1e-4
    cost = cost_matrix(5)
    np.testing.assert_array_equal(decide_tiers(probabilities.astype(float), cost), decide_tiers(native, cost))


def test_probabilities_are_distributions_with_non_crossing_cumulatives(fitted, evaluation_rows):
    probabilities, _ = onnx_run(fitted[2], evaluation_rows, with_reasons=False)
    assert (probabilities >= -1e-7).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_more_wage_arrears_never_lowers_risk(fitted, evaluation_rows):
    rows = evaluation_rows.iloc[:500].copy()
    previous = None
    for workers in (0, 1, 3, 10, 30, 100, 400):
        rows["wage_arrears_workers_12m"] = float(workers)
        probabilities, _ = onnx_run(fitted[2], rows, with_reasons=False)
        above_three = probabilities[:, 3:].sum(axis=1)
        if previous is not None:
            assert (above_three >= previous - 1e-6).all()
        previous = above_three


def native_contributions(pipeline, schema, features):
    """LightGBM's TreeSHAP over the four cumulative models, summed back onto schema fields."""
    encoded = pipeline.named_steps["prep"].transform(features)
    shap = sum(
        model.booster_.predict(encoded, pred_contrib=True) for model in pipeline.named_steps["model"].estimators_
    )
    owners = [schema.features.index(n) for n in schema.numeric_features]
    for name in schema.categorical_features:
        owners += [schema.features.index(name)] * len(schema.fields[name].categories)
    per_field = np.zeros((len(features), len(schema.features)))
    np.add.at(per_field.T, owners, shap[:, :-1].T)
    raw = sum(model.booster_.predict(encoded, raw_score=True) for model in pipeline.named_steps["model"].estimators_)
    return per_field, shap[:, -1], raw


def test_reasons_add_up_like_native_contributions_and_rank_the_same_factors(fitted, evaluation_rows):
    schema, pipeline, path, info = fitted
    rows = evaluation_rows.iloc[:2_000]
    _, contributions = onnx_run(path, rows)
    native, expected_value, raw = native_contributions(pipeline, schema, rows)
    assert info["bias"] == pytest.approx(expected_value[0], abs=1e-6)
    np.testing.assert_allclose(contributions.sum(axis=1) + info["bias"], raw, atol=1e-3)
    risky = raw > np.quantile(raw, 0.8)  # the enterprises whose reasons matter
    same_top = np.argmax(contributions[risky], axis=1) == np.argmax(native[risky], axis=1)
    assert same_top.mean() > 0.8
    correlation = np.corrcoef(contributions.ravel(), native.ravel())[0, 1]
    assert correlation > 0.95


def test_reasons_switch_off_returns_empty_contributions(fitted, evaluation_rows):
    probabilities, contributions = onnx_run(fitted[2], evaluation_rows.iloc[:10], with_reasons=False)
    assert contributions.shape == (0, len(fitted[0].features)) and probabilities.shape == (10, 5)


def test_reasons_do_not_change_the_probabilities(fitted, evaluation_rows):
    with_reasons, _ = onnx_run(fitted[2], evaluation_rows, with_reasons=True)
    without_reasons, _ = onnx_run(fitted[2], evaluation_rows, with_reasons=False)
    np.testing.assert_array_equal(with_reasons, without_reasons)


def test_each_branch_walks_the_trees_once(fitted):
    """Scores and contributions come from one ensemble per branch: 4 models x their trees, no classifiers."""
    import onnx

    schema, pipeline, path, _ = fitted
    graph = onnx.load(str(path)).graph
    assert not [node for node in graph.node if node.op_type.startswith("TreeEnsemble")]
    branches = {
        attribute.name: attribute.g for node in graph.node if node.op_type == "If" for attribute in node.attribute
    }
    n_trees = sum(model.booster_.num_trees() for model in pipeline.named_steps["model"].estimators_)
    for name, n_targets in (("then_branch", 4 + len(schema.features)), ("else_branch", 4)):
        ensembles = [node for node in branches[name].node if node.op_type.startswith("TreeEnsemble")]
        assert [node.op_type for node in ensembles] == ["TreeEnsembleRegressor"]
        attributes = {attribute.name: attribute for attribute in ensembles[0].attribute}
        assert attributes["n_targets"].i == n_targets
        assert len(set(attributes["nodes_treeids"].ints)) == n_trees


def test_train_risk_writes_a_verified_model_dir_with_a_complete_card(tmp_path):
    result = train_risk(
        RiskModelConfig(out=tmp_path / "labor_risk", **SMALL), generator=GeneratorConfig(rows=5_000, seed=8)
    )
    model = ModelDir.load(result.model_dir)
    card = model.card
    assert (
        card["name"] == "labor_risk"
        and card["version"] == f"{card['created'][:10].replace('-', '.')}-{card['sha256'][:8]}"
    )
    assert card["schema"] == yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert card["feature_order"] == [spec["name"] for spec in card["input_spec"]]
    assert card["metrics"]["onnx_parity"]["identical_tiers"] == 1.0
    assert 0.8 < card["metrics"]["oracle"]["qwk"] < 0.95 and card["metrics"]["qwk_vs_oracle"] > 0.9
    assert card["size_bytes"] < 15 * 1024 * 1024 and card["data"]["fingerprint"]
    assert result.seconds >= result.fit_seconds > 0
    assert not list(result.model_dir.glob(".*partial"))
    json.dumps(card)


def test_every_trained_model_has_its_own_version_and_cards_record_no_absolute_path(tmp_path):
    """Every model was "1.1.0" until re-released by hand, so responses could not tell two models apart;
    cards recorded the machine's absolute output folder."""
    first, second = (
        train_risk(
            RiskModelConfig(out=tmp_path / name, seed=seed, **SMALL), generator=GeneratorConfig(rows=2_000, seed=8)
        ).card
        for name, seed in (("a", 1), ("b", 2))
    )
    assert first["version"] != second["version"]
    assert first["training_config"]["out"] == "a" and str(tmp_path) not in json.dumps(first)
    named = train_risk(
        RiskModelConfig(out=tmp_path / "c", version="2.0.0-rc1", **SMALL), generator=GeneratorConfig(rows=2_000)
    )
    assert named.card["version"] == "2.0.0-rc1"


def test_the_card_compares_rearrangement_with_the_running_minimum_on_the_same_trees(tmp_path):
    card = train_risk(RiskModelConfig(out=tmp_path, **SMALL), generator=GeneratorConfig(rows=3_000, seed=9)).card
    comparison = card["metrics"]["noncrossing"]
    assert comparison["rearrangement"]["log_loss"] == card["metrics"]["log_loss"]
    assert comparison["rearrangement"]["rows_with_a_zero_tier_between_non_zero_ones"] == 0
    assert set(comparison["running_minimum"]) == {"log_loss", "qwk", "rows_with_a_zero_tier_between_non_zero_ones"}


def test_other_strategies_do_not_export(tmp_path):
    with pytest.raises(ValueError, match="strategy 'multiclass' is for comparison only"):
        train_risk(RiskModelConfig(strategy="multiclass", out=tmp_path), generator=GeneratorConfig(rows=100))


CROSSING = np.array(
    [
        [0.9, 0.6, 0.05, 0.2],  # P(tier > 4) above P(tier > 3): the two models cross
        [0.99, 0.5, 0.5, 0.01],  # a tie is not a crossing
        [0.3, 0.4, 0.35, 0.1],
    ]
)
REARRANGED = np.array(
    [
        [0.1, 0.3, 0.4, 0.15, 0.05],  # the sorted curve: tier 4 keeps 0.2 - 0.05
        [0.01, 0.49, 0.0, 0.49, 0.01],
        [0.6, 0.05, 0.05, 0.2, 0.1],
    ]
)


def test_crossing_cumulative_probabilities_are_rearranged_not_clamped_to_a_zero_tier():
    """A running minimum turned P(>3) = 0.05 < P(>4) = 0.2 into P(tier 4) = 0 while tiers 3 and 5 kept mass;
    sorting the curve (Chernozhukov, Fernández-Val and Galichon's rearrangement) keeps every tier's share."""
    from training.risk.pipeline import rearranged_tier_probabilities

    np.testing.assert_allclose(rearranged_tier_probabilities(CROSSING), REARRANGED, atol=1e-12)


def test_the_onnx_graph_rearranges_crossing_cumulative_probabilities_like_the_pipeline():
    from onnx import TensorProto, helper

    from training.risk.export import OPSET, _tier_nodes

    initializers = []
    nodes = _tier_nodes(4, initializers)
    graph = helper.make_graph(
        nodes,
        "tiers",
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 5])],
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    logits = np.log(CROSSING / (1 - CROSSING)).astype(np.float32)
    [probabilities] = session.run(["probabilities"], {"logits": logits})
    np.testing.assert_allclose(probabilities, REARRANGED, atol=1e-6)
