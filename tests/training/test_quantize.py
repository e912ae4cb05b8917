"""INT8 static quantization: the toy photo model stays close to its float outputs; the card is valid."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from runtime.modeldir import ModelDir
from tests.toy_models import PHOTO_LABELS, write_toy_photo_model
from training.quantize import QuantizeConfig, auc_deltas, quantize_onnx, quantize_photo_model, worst_auc_loss

SIZE = 32


def colour_photos(rng: np.random.Generator, count: int) -> np.ndarray:
    """Mostly-one-colour photos with noise, so each toy flag sees both low and high scores."""
    base = rng.integers(0, 256, size=(count, 3, 1, 1))
    noise = rng.integers(-40, 41, size=(count, 3, SIZE, SIZE))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def run(path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    probabilities, cam = session.run(["probabilities", "cam"], {"image": images})
    return probabilities, cam


@pytest.fixture
def toy_dir(tmp_path):
    return write_toy_photo_model(tmp_path / "float", size=SIZE, pool=8)


@pytest.mark.parametrize(("quant_format", "int8_op"), [("qdq", "DequantizeLinear"), ("qoperator", "QLinearConv")])
def test_quantized_toy_model_stays_close_to_float(toy_dir, tmp_path, quant_format, int8_op):
    rng = np.random.default_rng(7)
    target = quantize_onnx(
        toy_dir / "model.onnx", tmp_path / "int8.onnx", calibration=colour_photos(rng, 64), quant_format=quant_format
    )
    ops = Counter(node.op_type for node in onnx.load(target).graph.node)
    assert ops["QuantizeLinear"] >= 1 and ops[int8_op] >= 1  # the convolution runs on int8
    images = colour_photos(rng, 32)
    float_probabilities, float_cam = run(toy_dir / "model.onnx", images)
    int8_probabilities, int8_cam = run(target, images)
    assert np.abs(int8_probabilities - float_probabilities).max() < 0.02
    assert np.abs(int8_cam - float_cam).max() < 0.1 * np.abs(float_cam).max()
    red = np.zeros((1, 3, SIZE, SIZE), np.uint8)
    red[:, 0] = 255
    assert run(target, red)[0][0, PHOTO_LABELS.index("fire_smoke")] > 0.9


def test_quantize_rejects_unknown_method_and_empty_calibration(toy_dir, tmp_path):
    photos = colour_photos(np.random.default_rng(1), 4)
    with pytest.raises(ValueError, match="calibration method must be one of minmax, percentile, entropy, not 'mse'"):
        quantize_onnx(toy_dir / "model.onnx", tmp_path / "x.onnx", calibration=photos, method="mse")
    with pytest.raises(ValueError, match="calibration needs at least one photo"):
        quantize_onnx(toy_dir / "model.onnx", tmp_path / "x.onnx", calibration=photos[:0])


def test_calibrating_on_test_photos_is_refused(toy_dir, tmp_path):
    config = QuantizeConfig(model_dir=toy_dir, out=tmp_path / "int8", calibration_split="test", evaluate=False)
    with pytest.raises(ValueError, match="calibrating on 'test' would leak evaluation photos; use train"):
        quantize_photo_model(config)
    assert not (tmp_path / "int8").exists()


@pytest.mark.slow
def test_photo_int8_directory_is_a_verified_model_with_quantization_block(toy_dir, photo_set, tmp_path):
    config = QuantizeConfig(
        model_dir=toy_dir, out=tmp_path / "int8", data=photo_set, calibration_count=12, evaluate=False
    )
    card = quantize_photo_model(config)
    loaded = ModelDir.load(tmp_path / "int8")  # sha256 of the new model.onnx matches its card
    float_card = json.loads((toy_dir / "card.json").read_text())
    assert set(float_card) <= set(loaded.card)
    assert card["sha256"] != float_card["sha256"] and card["version"].endswith("-int8")
    block = card["quantization"]
    assert block["calibration"]["split"] == "train" and block["calibration"]["photos"] == 12
    assert block["float_model"]["sha256"] == float_card["sha256"]
    assert "per-channel" in block["method"] and "QOperator" in block["method"]


def test_auc_deltas_and_worst_loss_cover_pooled_and_per_source_scores():
    float_metrics = {
        "fire_smoke": {"roc_auc": 0.99, "per_source": {"a": {"roc_auc": 0.98}, "b": {"roc_auc": None}}},
        "missing_helmet": {"roc_auc": 0.88, "per_source": {"a": {"roc_auc": 0.85}}},
    }
    int8_metrics = {
        "fire_smoke": {"roc_auc": 0.985, "per_source": {"a": {"roc_auc": 0.96}, "b": {"roc_auc": None}}},
        "missing_helmet": {"roc_auc": 0.881, "per_source": {"a": {"roc_auc": 0.845}}},
    }
    deltas = auc_deltas(float_metrics, int8_metrics)
    assert set(deltas["fire_smoke"]) == {"all", "a"}
    assert deltas["missing_helmet"]["all"]["loss"] == pytest.approx(-0.001)
    assert worst_auc_loss(deltas) == (pytest.approx(0.02), "fire_smoke / a")
