"""One flag rule on both sides: the flags and triage training scores on the audit photos (and the
promotion gate compares) are the ones the API answers, boxes included."""

from pathlib import Path

import numpy as np

from runtime.cards import DetectionHead
from serving.assessment import Detection
from serving.photo import build_assessment
from training.photo.audit import drawn_boxes, suspected_major, triage_of
from training.photo.data import FLAGS

CLASSES = ("missing_helmet", "missing_hi_vis", "heavy_machinery")
BOX_THRESHOLDS = {"missing_helmet": 0.41, "missing_hi_vis": 0.41, "heavy_machinery": 0.95}
FLAG_THRESHOLDS = dict(zip(FLAGS, (0.465, 0.815, 0.11, 0.26, 0.755, 0.05)))


def random_outputs(rng, photos: int = 300, rows: int = 6):
    probabilities = rng.uniform(0, 0.6, (photos, len(FLAGS))).astype(np.float32) ** 2
    detections = np.zeros((photos, rows, 6), np.float32)
    detections[:, :, :4] = np.sort(rng.uniform(0, 1, (photos, rows, 4)), axis=-1)[..., [0, 1, 2, 3]]
    detections[:, :, 4] = rng.choice([0.0, 0.2, 0.41, 0.5, 0.96], (photos, rows))
    detections[:, :, 5] = rng.integers(0, len(CLASSES), (photos, rows))
    detections[detections[:, :, 4] == 0] = 0  # padding rows are all zero
    return probabilities, detections


def test_training_flags_and_triages_every_photo_as_the_api_does(rng):
    probabilities, detections = random_outputs(rng)
    head = DetectionHead.from_card(
        {
            "classes": list(CLASSES),
            "score_thresholds": BOX_THRESHOLDS,
            "max_detections": 6,
            "box_format": "xyxy-normalized",
        },
        where=Path("card.json"),
    )
    boxed = drawn_boxes(detections, BOX_THRESHOLDS, classes=CLASSES)
    flagged = (probabilities >= np.array([FLAG_THRESHOLDS[flag] for flag in FLAGS], np.float32)) | boxed
    triage = triage_of(flagged, suspected_major())
    assert 0 < (boxed & ~(probabilities >= 0.5)).sum() and len(set(triage)) == 3  # the cases are exercised
    for photo in range(len(probabilities)):
        hazards = {flag: float(p) for flag, p in zip(FLAGS, probabilities[photo])}
        answer = build_assessment(
            hazards,
            FLAG_THRESHOLDS,
            model_name="m",
            model_version="v",
            detections=tuple(
                Detection(type=kind, score=score, box=box)
                for kind, score, box in head.in_pixels(detections[photo], width=448, height=298)
            ),
        )
        assert sorted(answer.flagged_types) == sorted(np.asarray(FLAGS)[flagged[photo]].tolist()), photo
        assert answer.triage == triage[photo], photo
