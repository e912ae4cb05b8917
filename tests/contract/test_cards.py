"""Cards: one header for every model, validated against runtime/schemas/ on load with the card and field named."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields

import pytest

from runtime.cards import CardHeader, PhotoCard, RiskCard, card_header
from runtime.errors import ModelIntegrityError
from runtime.modeldir import ModelDir
from runtime.paths import MODELS_DIR
from serving.photo import PhotoModel
from tests.toy_models import write_toy_photo_model

RELEASED = {"hazard_photo": PhotoCard, "hazard_photo_int8": PhotoCard, "labor_risk": RiskCard}


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_every_released_card_reads_with_the_one_header(name):
    model = ModelDir.load(MODELS_DIR / name)
    card = RELEASED[name].from_model_dir(model)
    assert card.header.sha256 == model.card["sha256"] and card.header.data_fingerprint
    assert card.header.training_config and card.header.created.startswith("2026-")


def test_the_header_names_the_same_facts_alike():
    names = [field.name for field in fields(CardHeader)]
    assert names == ["name", "version", "created", "sha256", "data_fingerprint", "training_config"]
    header = card_header(
        name="x",
        version="1",
        created="2026-12-02T06:00:00Z",
        sha256="a" * 64,
        data={"fingerprint": "b" * 64, "rows": 3},
        training_config={"seed": 1},
    )
    assert CardHeader.from_card(header) == CardHeader("x", "1", "2026-12-02T06:00:00Z", "a" * 64, "b" * 64, {"seed": 1})


def test_a_header_without_a_fingerprint_is_not_written():
    with pytest.raises(ValueError, match="card header data: 'fingerprint' is a required property"):
        card_header(name="x", version="1", created="2026-12-02T06:00:00Z", sha256="a" * 64, data={}, training_config={})


def broken_copy(tmp_path, change) -> tuple:
    model_dir = write_toy_photo_model(tmp_path / "toy", version="toy-1")
    card = json.loads((model_dir / "card.json").read_text())
    change(card)
    (model_dir / "card.json").write_text(json.dumps(card))
    return model_dir, model_dir / "card.json"


def test_a_card_missing_a_header_field_is_refused_naming_it(tmp_path):
    model_dir, card_path = broken_copy(tmp_path, lambda card: card.pop("training_config"))
    expected = f"{card_path}: (top level): 'training_config' is a required property (runtime/schemas/card_header.json)"
    with pytest.raises(ModelIntegrityError) as caught:
        ModelDir.load(model_dir)
    assert str(caught.value) == expected


def test_serving_refuses_a_card_whose_preprocessing_it_does_not_implement(tmp_path):
    model_dir, card_path = broken_copy(tmp_path, lambda card: card["preprocess"].update(interpolation="bicubic"))
    expected = f"{card_path}: preprocess.interpolation: 'bilinear' was expected (runtime/schemas/photo_card.json)"
    with pytest.raises(ModelIntegrityError) as caught:
        PhotoModel(model_dir)
    assert str(caught.value) == expected


def test_serving_resizes_to_the_cards_preprocess_size(tmp_path):
    model_dir, card_path = broken_copy(tmp_path, lambda card: card["preprocess"].update(size=[16, 16]))
    expected = r"preprocess.size: \[16, 16\] differs from the input's height x width 32 x 32"
    with pytest.raises(ModelIntegrityError, match=expected):
        PhotoCard.from_model_dir(ModelDir.load(model_dir))


def test_a_risk_card_with_a_cost_matrix_of_the_wrong_size_is_refused(tmp_path):
    shutil.copytree(MODELS_DIR / "labor_risk", tmp_path / "risk")
    card = json.loads((tmp_path / "risk" / "card.json").read_text())
    card["decision"]["cost_matrix"] = card["decision"]["cost_matrix"][:4]
    (tmp_path / "risk" / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelIntegrityError, match=r"decision.cost_matrix: shape \[4, 5\] does not match 5 tiers"):
        RiskCard.from_model_dir(ModelDir.load(tmp_path / "risk"))
