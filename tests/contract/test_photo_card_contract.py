"""The released hazard-photo model: card keys and the ONNX graph's inputs/outputs agree."""

import re

import numpy as np
import pytest

from runtime.modeldir import ModelDir
from runtime.paths import MODELS_DIR
from runtime.session import create_session

MODEL_DIR = MODELS_DIR / "hazard_photo"
CARD_KEYS = {
    "name",
    "version",
    "created",
    "task",
    "architecture",
    "labels",
    "trained_types",
    "thresholds",
    "threshold_rule",
    "input",
    "outputs",
    "preprocess",
    "metrics",
    "resolution_study",
    "sha256",
    "data",
    "training_config",
}
METRIC_KEYS = {"roc_auc", "average_precision", "f1", "tp", "fp", "fn", "tn", "n", "per_source"}


@pytest.fixture(scope="module")
def model():
    if not (MODEL_DIR / "card.json").is_file():
        pytest.fail(f"{MODEL_DIR} has no released model; run `ankang train photo`")
    return ModelDir.load(MODEL_DIR)


def test_card_has_the_agreed_keys_and_values(model):
    card = model.card
    assert CARD_KEYS <= set(card)
    assert card["name"] == "hazard_photo" and card["architecture"] == "mobilenet_v2"
    assert re.fullmatch(rf"\d{{4}}\.\d{{2}}\.\d{{2}}-{card['sha256'][:8]}", card["version"])
    assert card["labels"] == card["trained_types"] and len(card["labels"]) == 6
    assert set(card["thresholds"]) == set(card["labels"])
    assert all(0.05 <= t <= 0.95 for t in card["thresholds"].values())
    size = card["input"]["height"]
    assert card["input"] == {
        "name": "image",
        "dtype": "uint8",
        "layout": "NCHW",
        "color": "RGB",
        "height": size,
        "width": size,
        "batch": "dynamic",
    }
    assert card["preprocess"] == {
        "exif_transpose": True,
        "color": "RGB",
        "resize": "stretch",
        "interpolation": "bilinear",
        "size": [size, size],
    }
    for split in ("val", "test"):
        assert set(card["metrics"][split]) == set(card["labels"])
        for entry in card["metrics"][split].values():
            assert METRIC_KEYS <= set(entry)
    assert set(card["data"]) >= {"fingerprint", "images", "splits"}
    assert {"seconds", "epochs_run", "best_epoch", "torch", "image_size"} <= set(card["training_config"])
    assert MODEL_DIR.joinpath("model.onnx").stat().st_size <= 15 * 1024 * 1024


def test_onnx_inputs_and_outputs_match_the_card(model):
    card = model.card
    session = create_session(model.onnx_path)
    (image,) = session.get_inputs()
    size, k = card["input"]["height"], len(card["labels"])
    assert (image.name, image.type) == ("image", "tensor(uint8)")
    assert isinstance(image.shape[0], str) and image.shape[1:] == [3, size, size]
    outputs = {o.name: o for o in session.get_outputs()}
    assert set(outputs) == {"probabilities", "cam", "detections"}
    assert all(o.type == "tensor(float)" for o in outputs.values())
    assert card["outputs"]["probabilities"]["shape"] == ["N", k]
    cam_shape = card["outputs"]["cam"]["shape"]
    assert cam_shape[:2] == ["N", k] and outputs["cam"].shape[1:] == cam_shape[1:]
    detection = card["detection"]
    d = detection["max_detections"]
    assert card["outputs"]["detections"]["shape"] == ["N", d, 6] and outputs["detections"].shape[1:] == [d, 6]
    assert detection["box_format"] == "xyxy-normalized" and set(detection["classes"]) <= set(card["labels"])
    assert set(detection["score_thresholds"]) == set(detection["classes"])
    assert all(0 < t < 1 for t in detection["score_thresholds"].values())
    probabilities, cam, detections = session.run(None, {"image": np.zeros((2, 3, size, size), np.uint8)})
    assert probabilities.shape == (2, k) and list(cam.shape) == [2, *cam_shape[1:]]
    assert detections.shape == (2, d, 6) and (np.diff(detections[:, :, 4], axis=1) <= 0).all()
    real = detections[:, :, 4] > 0
    assert ((detections[..., :4][real] >= 0) & (detections[..., :4][real] <= 1)).all()
    assert (detections[~real] == 0).all()  # padding rows are all zero
    assert set(np.unique(detections[..., 5][real])) <= set(range(len(detection["classes"])))
