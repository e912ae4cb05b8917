"""The released labor-risk model: card, schema, policy floors and the ONNX graph agree with each other."""

import numpy as np
import onnxruntime as ort
import pytest
import yaml

from runtime.modeldir import ModelDir
from runtime.paths import DATASETS_DIR, MODELS_DIR
from runtime.risk.floors import load_policy
from runtime.risk.schema import NUMERIC_TYPES, RiskSchema
from runtime.risk.tiers import cost_matrix

MODEL_DIR = MODELS_DIR / "labor_risk"
CARD_KEYS = {
    "name",
    "version",
    "created",
    "task",
    "tiers",
    "schema",
    "feature_order",
    "input_spec",
    "outputs",
    "strategy",
    "decision",
    "reasons",
    "metrics",
    "sha256",
    "size_bytes",
    "data",
    "training_config",
}


@pytest.fixture(scope="module")
def model():
    if not (MODEL_DIR / "card.json").is_file():
        pytest.fail(f"{MODEL_DIR} has no released model; run `ankang train risk`, then `ankang promote risk`")
    return ModelDir.load(MODEL_DIR)


def test_card_has_the_agreed_keys_and_values(model):
    card = model.card
    assert CARD_KEYS <= set(card)
    assert card["name"] == "labor_risk" and card["tiers"] == [1, 2, 3, 4, 5] and card["strategy"] == "cumulative"
    assert card["decision"]["rule"] == "expected_cost"
    np.testing.assert_allclose(
        card["decision"]["cost_matrix"], cost_matrix(5, under_tier_cost=card["decision"]["under_tier_cost"])
    )
    assert (MODEL_DIR / "model.onnx").stat().st_size == card["size_bytes"] <= 15 * 1024 * 1024
    assert (
        card["metrics"]["onnx_parity"]["max_abs_diff"] <= 1e-4
        and card["metrics"]["onnx_parity"]["identical_tiers"] == 1.0
    )
    assert card["metrics"]["qwk_vs_oracle"] >= 0.97


def test_card_schema_is_the_dataset_schema(model):
    assert model.card["schema"] == yaml.safe_load(
        (DATASETS_DIR / "labor_risk" / "schema.yaml").read_text(encoding="utf-8")
    )


def test_onnx_inputs_and_outputs_match_the_input_spec(model):
    session = ort.InferenceSession(str(model.onnx_path), providers=["CPUExecutionProvider"])
    inputs = {node.name: node.type for node in session.get_inputs()}
    spec = {entry["name"]: entry["dtype"] for entry in model.card["input_spec"]}
    assert list(inputs) == model.card["feature_order"] == list(spec)
    assert all(
        inputs[name] == ("tensor(string)" if dtype == "string" else "tensor(float)") for name, dtype in spec.items()
    )
    assert [node.name for node in session.get_overridable_initializers()] == ["with_reasons"]
    assert [node.name for node in session.get_outputs()] == ["probabilities", "contributions"]


def test_schema_types_and_policy_rules_are_well_formed():
    schema = RiskSchema.load(DATASETS_DIR / "labor_risk" / "schema.yaml")
    assert schema.fields[schema.id_field].required and not schema.fields[schema.id_field].feature
    for spec in schema.fields.values():
        assert spec.type in ("string", "category", *NUMERIC_TYPES)
        assert bool(spec.categories) == (spec.type == "category")
        if spec.type in ("integer", "number"):
            assert spec.min is not None or spec.exclusive_min is not None
    for rule in load_policy():
        field = schema.fields[rule.field]
        assert 1 <= rule.min_tier <= 5 and rule.op in ("eq", "in", "ge", "gt") and rule.description
        if field.type == "category":
            assert rule.value in field.categories
        elif field.type == "boolean":
            assert isinstance(rule.value, bool)


def test_no_middle_tier_is_zeroed_while_its_neighbours_carry_mass(model):
    """The released graph rearranges crossing cumulative probabilities; a running minimum gave P(tier 4) = 0
    with tiers 3 and 5 above 0.001 on 13 of these 2,000 enterprises (model 1.1.0)."""
    from runtime.risk.scoring import RiskModel
    from training.risk.config import RISK_HOLDOUT, GeneratorConfig
    from training.risk.generator import generate

    scorer = RiskModel.load(MODEL_DIR)
    frame = generate(GeneratorConfig(rows=2_000, seed=RISK_HOLDOUT.seed))
    probabilities = scorer.score_frame(frame.drop(columns=["tier"]), text_cells=False, reasons=False).probabilities
    middle = probabilities[:, 1:-1]
    zeroed = (middle == 0) & (probabilities[:, :-2] > 1e-3) & (probabilities[:, 2:] > 1e-3)
    assert int(zeroed.sum()) == 0
