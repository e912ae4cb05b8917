"""The hazard-photo model in serving: preprocessing by the card, inference, thresholds and triage."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from serving.images import to_model_input
from serving.modelcard import ModelDir
from serving.onnx_session import create_session
from serving.taxonomy import HazardType, load_taxonomy

TRIAGE_LEVELS = ("clear", "review", "urgent")


@dataclass(frozen=True)
class PhotoCard:
    """What serving needs from `models/hazard_photo/card.json`."""

    name: str
    version: str
    labels: tuple[str, ...]
    thresholds: dict[str, float]
    size: tuple[int, int]

    @classmethod
    def from_model_dir(cls, model: ModelDir) -> "PhotoCard":
        card = model.card
        unknown = set(card["labels"]) - set(load_taxonomy())
        if unknown:
            raise ValueError(f"{model.path}/card.json names hazard types missing from the taxonomy: {sorted(unknown)}")
        return cls(
            name=model.name,
            version=model.version,
            labels=tuple(card["labels"]),
            thresholds={label: float(card["thresholds"][label]) for label in card["labels"]},
            size=(int(card["input"]["height"]), int(card["input"]["width"])),
        )

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return to_model_input(image, size=self.size)


class PhotoModel:
    """One onnxruntime session over a verified model directory."""

    def __init__(self, model_dir: str | Path):
        self.model_dir = ModelDir.load(model_dir)
        self.card = PhotoCard.from_model_dir(self.model_dir)
        self.session = create_session(self.model_dir.onnx_path)
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (N×K) and class activation maps (N×K×h×w) from one run of the graph."""
        probabilities, cam = self.session.run(["probabilities", "cam"], {self.input_name: images})
        return probabilities, cam


def pack_predictions(probabilities: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """One N×(K + K·h·w) array, so BentoML's batcher can split a batch's results by row."""
    return np.concatenate([probabilities, cam.reshape(len(cam), -1)], axis=1)


def unpack_prediction(row: np.ndarray, *, labels: int) -> tuple[np.ndarray, np.ndarray]:
    probabilities, flat_cam = row[:labels], row[labels:]
    side = int(round((flat_cam.size / labels) ** 0.5))
    return probabilities, flat_cam.reshape(labels, side, flat_cam.size // (labels * side))


def triage(flagged: list[HazardType]) -> str:
    """`urgent` if a flagged type is suspected major (疑似重大), `review` if any is flagged, else `clear`."""
    if any(hazard.is_suspected_major for hazard in flagged):
        return "urgent"
    return "review" if flagged else "clear"


def assess(probabilities: np.ndarray, card: PhotoCard) -> dict[str, Any]:
    """Turn one row of probabilities into the API's hazards, flagged list and triage."""
    taxonomy = load_taxonomy()
    hazards = {label: round(float(p), 6) for label, p in zip(card.labels, probabilities)}
    flagged_types = [taxonomy[label] for label in card.labels if hazards[label] >= card.thresholds[label]]
    flagged_types.sort(key=lambda hazard: (not hazard.is_suspected_major, -hazards[hazard.id]))
    flagged = [
        {**hazard.describe(), "probability": hazards[hazard.id], "threshold": card.thresholds[hazard.id]}
        for hazard in flagged_types
    ]
    return {
        "model": {"name": card.name, "version": card.version},
        "hazards": hazards,
        "flagged": flagged,
        "triage": triage(flagged_types),
    }
