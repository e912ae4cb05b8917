"""Typed readers of model cards: what running each exported model needs from its card.json."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from runtime.modeldir import ModelDir
from runtime.preprocess import to_model_input
from runtime.taxonomy import load_taxonomy


@dataclass(frozen=True)
class PhotoCard:
    """What running the hazard-photo model needs from `models/hazard_photo/card.json`."""

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
        """An upright RGB image (serving's `decode_photo`, or `runtime.preprocess.upright_rgb`) as model input."""
        return to_model_input(image, size=self.size)
