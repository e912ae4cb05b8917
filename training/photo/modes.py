"""The image-level PPE probability under each scoring mode, from the exported graph's outputs."""

from __future__ import annotations

import numpy as np

from training.photo.data import DETECTION_CLASSES, FLAGS
from training.photo.model import PPE_SCORE_MODES


def detection_peaks(detections: np.ndarray) -> np.ndarray:
    """N×C: the highest detection score of each class (the heat map's maximum; 0 when none)."""
    peaks = np.zeros((len(detections), len(DETECTION_CLASSES)), np.float32)
    for cls in range(len(DETECTION_CLASSES)):
        scores = np.where(detections[:, :, 5] == cls, detections[:, :, 4], 0.0)
        peaks[:, cls] = scores.max(axis=1) if detections.shape[1] else 0.0
    return peaks


def ppe_mode_probabilities(image_probabilities: np.ndarray, detections: np.ndarray) -> dict[str, np.ndarray]:
    """{mode: N×K probabilities} for every mode of `PPE_SCORE_MODES`, from image-mode probabilities."""
    peaks = detection_peaks(detections)
    result = {}
    for mode in PPE_SCORE_MODES:
        probabilities = image_probabilities.copy()
        for cls, hazard in enumerate(DETECTION_CLASSES):
            column = FLAGS.index(hazard)
            if mode == "peak":
                probabilities[:, column] = peaks[:, cls]
            elif mode == "mean":
                probabilities[:, column] = (image_probabilities[:, column] + peaks[:, cls]) / 2
        result[mode] = probabilities
    return result
