"""The hazard-photo model in serving: preprocessing by the card, inference, thresholds and triage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from runtime.cards import PhotoCard
from runtime.modeldir import ModelDir
from runtime.session import SessionOptions, create_session
from runtime.taxonomy import HazardType, load_taxonomy
from serving.batching import MicroBatcher
from serving.settings import ServingSettings


class PhotoModel:
    """One onnxruntime session over a verified model directory, warmed up when loaded, with its own
    batcher: requests preprocessed for this model's card are batched for this model, so a hot
    swap lets queued photos finish on the model they were prepared for."""

    def __init__(self, model_dir: str | Path, *, max_batch_size: int = 32, max_queue: int = 256,
                 session_options: SessionOptions | None = None):
        self.model_dir = ModelDir.load(model_dir)
        self.card = PhotoCard.from_model_dir(self.model_dir)
        options = session_options or ServingSettings.from_env().session_options
        self.session = create_session(self.model_dir.onnx_path, options=options)
        self.input_name = self.session.get_inputs()[0].name
        self.predict(np.zeros((1, 3, *self.card.size), dtype=np.uint8))
        self.batcher = MicroBatcher(self.assess_batch, max_batch_size=max_batch_size, max_queue=max_queue)

    def predict(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (N×K) and class activation maps (N×K×h×w) from one run of the graph."""
        probabilities, cam = self.session.run(["probabilities", "cam"], {self.input_name: images})
        return probabilities, cam

    def assess_batch(self, images: np.ndarray) -> list[dict[str, Any]]:
        """Assessments for a batch preprocessed by this model's card; each also carries, for the review
        store, the CAM grid (`cam`, K×h×w float32) and the `thresholds` of the model that produced it."""
        probabilities, cam = self.predict(images)
        return [
            {**assess(row, self.card), "cam": maps, "thresholds": dict(self.card.thresholds)}
            for row, maps in zip(probabilities, cam)
        ]


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
