"""Boxes of person-level hazards: from the model's `detections` output to the uploaded photo's pixels
after EXIF orientation; a model without the output answers `detections: []` (issue 17.2)."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from runtime.errors import ModelIntegrityError
from serving.photo import PhotoModel
from tests.toy_models import write_toy_detection_model

ROWS = np.array(
    [
        [0.25, 0.50, 0.75, 1.00, 0.90, 0],  # missing_helmet, kept
        [0.00, 0.00, 0.50, 0.25, 0.60, 1],  # missing_hi_vis, kept
        [0.10, 0.10, 0.20, 0.20, 0.40, 0],  # under its class's threshold (0.5)
        [0.00, 0.00, 0.00, 0.00, 0.00, 0],  # padding
    ],
    dtype=np.float32,
)
ORIENTATION = 0x0112


def rotated_upload() -> bytes:
    """Stored 64 wide × 48 high, EXIF orientation 6 (turn 90° clockwise): upright it is 48 × 64."""
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (128, 128, 128)).save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()


@pytest.fixture
def boxes_model(tmp_path: Path) -> Path:
    return write_toy_detection_model(tmp_path / "hazard_photo", rows=ROWS)


def test_rows_at_or_above_their_threshold_become_boxes_in_the_photos_pixels(boxes_model):
    model = PhotoModel(boxes_model)
    outputs = model.run_batch(np.zeros((1, 3, 32, 32), dtype=np.uint8))[0]
    found = model.assessment(outputs, width=48, height=64).detections
    assert [(d.type, round(d.score, 2), d.box) for d in found] == [
        ("missing_helmet", 0.9, (12.0, 32.0, 36.0, 64.0)),
        ("missing_hi_vis", 0.6, (0.0, 0.0, 24.0, 16.0)),
    ]


def test_a_card_and_graph_that_disagree_about_boxes_are_refused(boxes_model):
    card = json.loads((boxes_model / "card.json").read_text())
    del card["detection"]
    (boxes_model / "card.json").write_text(json.dumps(card))
    with pytest.raises(
        ModelIntegrityError, match="the graph has a `detections` output but card.json lacks a `detection` block"
    ):
        PhotoModel(boxes_model)


def test_an_unknown_box_format_is_refused(boxes_model):
    card = json.loads((boxes_model / "card.json").read_text())
    card["detection"]["box_format"] = "cxcywh"
    (boxes_model / "card.json").write_text(json.dumps(card))
    with pytest.raises(ModelIntegrityError, match="detection.box_format must be 'xyxy-normalized', not 'cxcywh'"):
        PhotoModel(boxes_model)


def test_the_api_answers_boxes_on_the_upright_photo(api, toy_photo_model, tmp_path):
    upload = {"photo": ("turned.jpg", rotated_upload(), "image/jpeg")}
    assert api.post("/v1/photos/assess", files=upload).json()["detections"] == []  # a model without boxes
    original = {name: (toy_photo_model / name).read_bytes() for name in ("model.onnx", "card.json")}
    staging = write_toy_detection_model(tmp_path / "staging", rows=ROWS)
    try:
        for name in original:
            shutil.copy(staging / name, toy_photo_model / name)
        assert api.post("/v1/admin/reload", json={}).json()["hazard_photo"]["version"] == "toy-boxes-1"
        body = api.post("/v1/photos/assess", files=upload).json()
        assert body["detections"] == [
            {"type": "missing_helmet", "score": 0.9, "box": [12.0, 32.0, 36.0, 64.0]},
            {"type": "missing_hi_vis", "score": 0.6, "box": [0.0, 0.0, 24.0, 16.0]},
        ]
        # the toy's probabilities are under every threshold: the two boxes alone flag their types
        assert body["triage"] == "review"
        assert {(flag["type"], flag["boxes"]) for flag in body["flagged"]} == {
            ("missing_helmet", 1),
            ("missing_hi_vis", 1),
        }
    finally:
        for name, data in original.items():
            (toy_photo_model / name).write_bytes(data)
        assert api.post("/v1/admin/reload", json={}).json()["hazard_photo"]["version"] == "toy-1"


def test_a_drawn_box_flags_its_type_even_under_the_flag_threshold():
    """A photo that shows the officer a bare head is never triaged `clear`: the box flags missing_helmet
    with the model's own probability beside the threshold it did not reach, and how many boxes."""
    from serving.assessment import Detection
    from serving.photo import build_assessment

    hazards = {"missing_helmet": 0.30, "missing_hi_vis": 0.20, "fire_smoke": 0.01}
    thresholds = dict.fromkeys(hazards, 0.5)
    boxes = (
        Detection(type="missing_helmet", score=0.6, box=(1.0, 2.0, 3.0, 4.0)),
        Detection(type="missing_helmet", score=0.55, box=(5.0, 6.0, 7.0, 8.0)),
    )
    plain = build_assessment(hazards, thresholds, model_name="m", model_version="v")
    assert (plain.triage, plain.flagged) == ("clear", ())
    boxed = build_assessment(hazards, thresholds, model_name="m", model_version="v", detections=boxes)
    assert boxed.triage == "review" and boxed.status == "open"
    [flag] = boxed.flagged
    assert (flag.type, flag.probability, flag.threshold, flag.boxes) == ("missing_helmet", 0.30, 0.5, 2)
    assert boxed.to_response()["flagged"][0]["boxes"] == 2
