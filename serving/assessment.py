"""`PhotoAssessment`: the typed hand-off between the photo model, the intake endpoint and the review store.

The model produces it (`serving.photo`), the endpoint answers `to_response()`, and the review store
records it as it is: status, severity and flags are properties here, not re-derived from JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from runtime.taxonomy import HazardType

TRIAGE_LEVELS: tuple[str, ...] = ("clear", "review", "urgent")
SEVERITY_RANK: dict[str, int] = {level: rank for rank, level in enumerate(TRIAGE_LEVELS)}


@dataclass(frozen=True)
class FlaggedHazard:
    """A hazard type at or above its threshold, or with a box drawn on the photo, described from the taxonomy."""

    type: str
    name_zh: str
    name_en: str
    gb6441: str
    osha_focus_four: str | None
    severity: str
    probability: float
    threshold: float
    boxes: int = 0  # boxes of this type drawn on the photo

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)

    @classmethod
    def of(cls, hazard: HazardType, *, probability: float, threshold: float, boxes: int = 0) -> FlaggedHazard:
        return cls(**hazard.describe(), probability=probability, threshold=threshold, boxes=boxes)


@dataclass(frozen=True)
class Detection:
    """One hazard found by box (a person without a helmet or hi-vis, or a machine), in the uploaded photo's
    pixels after EXIF orientation."""

    type: str
    score: float
    box: tuple[float, float, float, float]  # x0, y0, x1, y1

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "score": round(float(self.score), 6),
            "box": [round(float(value), 1) for value in self.box],
        }


@dataclass(frozen=True)
class PhotoAssessment:
    """What the model says of one photo, with what the review store keeps beside it."""

    model_name: str
    model_version: str
    hazards: dict[str, float]
    flagged: tuple[FlaggedHazard, ...]
    triage: str
    thresholds: dict[str, float]
    detections: tuple[Detection, ...] = ()
    cam: np.ndarray | None = field(default=None, repr=False, compare=False)  # K×h×w, for the heatmap

    def __post_init__(self):
        if self.triage not in SEVERITY_RANK:
            raise ValueError(f"triage must be one of {TRIAGE_LEVELS}, not {self.triage!r}")

    @property
    def flagged_types(self) -> list[str]:
        return [item.type for item in self.flagged]

    @property
    def status(self) -> str:
        """The review case's first status: a flagged photo waits for an officer."""
        return "open" if self.flagged else "clear"

    @property
    def severity_rank(self) -> int:
        return SEVERITY_RANK[self.triage]

    @property
    def top_probability(self) -> float:
        return max(self.hazards.values(), default=0.0)

    def to_response(self) -> dict[str, Any]:
        """The API's view: model, hazards, flagged, triage and detections."""
        return {
            "model": {"name": self.model_name, "version": self.model_version},
            "hazards": dict(self.hazards),
            "flagged": [item.to_dict() for item in self.flagged],
            "triage": self.triage,
            "detections": [item.to_dict() for item in self.detections],
        }
