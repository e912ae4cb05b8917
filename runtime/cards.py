"""Typed readers of model cards, one shared header, and the JSON Schemas every card is checked against.

Every card starts with the same header (`CardHeader`: name, version, created, sha256 of
model.onnx, data fingerprint, training config), written by `card_header` on the training side
and read here; `PhotoCard` and `RiskCard` add what running each model needs. A card is checked
against `runtime/schemas/` when it is read, so a broken card fails at load with its path and field.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from runtime.card_schema import card_schema, check_card
from runtime.errors import ModelIntegrityError
from runtime.modeldir import ModelDir
from runtime.preprocess import to_model_input
from runtime.taxonomy import load_taxonomy

HEADER_FIELDS = ("name", "version", "created", "sha256", "data", "training_config")
BOX_FORMAT = "xyxy-normalized"


def card_header(
    *,
    name: str,
    version: str,
    created: dt.datetime | str,
    sha256: str,
    data: Mapping[str, Any],
    training_config: Mapping[str, Any],
) -> dict[str, Any]:
    """The header fields of a new card; `data` holds at least the data `fingerprint`, `sha256` is model.onnx's."""
    created_text = created if isinstance(created, str) else created.astimezone(dt.UTC).isoformat(timespec="seconds")
    header = {
        "name": name,
        "version": version,
        "created": created_text,
        "sha256": sha256,
        "data": dict(data),
        "training_config": dict(training_config),
    }
    error = next(iter(card_schema("card_header").iter_errors(header)), None)
    if error is not None:
        raise ValueError(f"card header {'.'.join(map(str, error.path)) or ''}: {error.message}")
    return header


@dataclass(frozen=True)
class CardHeader:
    name: str
    version: str
    created: str
    sha256: str
    data_fingerprint: str
    training_config: Mapping[str, Any]

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> CardHeader:
        return cls(
            name=str(card["name"]),
            version=str(card["version"]),
            created=str(card["created"]),
            sha256=str(card["sha256"]),
            data_fingerprint=str(card["data"]["fingerprint"]),
            training_config=dict(card["training_config"]),
        )


@dataclass(frozen=True)
class DetectionHead:
    """The photo card's `detection` block: the class each row of the model's `detections` output names,
    and the score a row needs to count. Rows are (x0, y0, x1, y1, score, class_index), normalised to
    the model input (the upright photo stretched to the input size), score-sorted, padding all zero."""

    classes: tuple[str, ...]
    score_thresholds: dict[str, float]
    max_detections: int

    @classmethod
    def from_card(cls, block: Mapping[str, Any], *, where: Path) -> DetectionHead:
        if block.get("box_format") != BOX_FORMAT:
            raise ModelIntegrityError(
                f"{where}: detection.box_format must be {BOX_FORMAT!r}, not {block.get('box_format')!r}"
            )
        classes = tuple(block["classes"])
        unknown = sorted(set(classes) - set(load_taxonomy()))
        if unknown:
            raise ModelIntegrityError(f"{where}: detection.classes: hazard types missing from the taxonomy: {unknown}")
        missing = [name for name in classes if name not in block.get("score_thresholds", {})]
        if missing:
            raise ModelIntegrityError(f"{where}: detection.score_thresholds: no threshold for {missing}")
        return cls(
            classes=classes,
            score_thresholds={name: float(block["score_thresholds"][name]) for name in classes},
            max_detections=int(block["max_detections"]),
        )

    def drawn(self, rows: np.ndarray) -> np.ndarray:
        """Booleans over the rows (one photo's D×6, or N×D×6): the boxes an answer draws, i.e. a known
        class scoring above 0 and at or above that class's threshold. Training's audit metrics flag by
        the same rows (training/photo/audit.py `drawn_boxes`)."""
        class_index = rows[..., 5].astype(np.int64)
        known = (class_index >= 0) & (class_index < len(self.classes))
        thresholds = np.array([self.score_thresholds[name] for name in self.classes], dtype=np.float32)
        return known & (rows[..., 4] > 0) & (rows[..., 4] >= thresholds[np.where(known, class_index, 0)])

    def in_pixels(self, rows: np.ndarray, *, width: int, height: int) -> list[tuple[str, float, tuple[float, ...]]]:
        """(type, score, (x0, y0, x1, y1)) of the rows at or above their class's threshold, in the
        pixels of the upright photo of width × height."""
        kept = rows[self.drawn(rows)]
        scale = np.array([width, height, width, height], dtype=np.float64)
        boxes = np.clip(kept[:, :4].astype(np.float64), 0.0, 1.0) * scale
        return [
            (self.classes[int(row[5])], float(row[4]), tuple(float(value) for value in box))
            for row, box in zip(kept, boxes)
        ]


@dataclass(frozen=True)
class PhotoCard:
    """What running the hazard-photo model needs from `models/hazard_photo/card.json`."""

    header: CardHeader
    labels: tuple[str, ...]
    thresholds: dict[str, float]
    size: tuple[int, int]  # (height, width) of the preprocessed input: the card's `preprocess.size`
    detection: DetectionHead | None = None  # the card's `detection` block: the model also answers boxes

    @property
    def name(self) -> str:
        return self.header.name

    @property
    def version(self) -> str:
        return self.header.version

    @classmethod
    def from_model_dir(cls, model: ModelDir) -> PhotoCard:
        card, where = model.card, model.path / "card.json"
        check_card(card, kind="photo_card", where=where)
        unknown = set(card["labels"]) - set(load_taxonomy())
        if unknown:
            raise ModelIntegrityError(f"{where}: labels: hazard types missing from the taxonomy: {sorted(unknown)}")
        missing = [label for label in card["labels"] if label not in card["thresholds"]]
        if missing:
            raise ModelIntegrityError(f"{where}: thresholds: no threshold for {missing}")
        size = tuple(card["preprocess"]["size"])
        if size != (card["input"]["height"], card["input"]["width"]):
            raise ModelIntegrityError(
                f"{where}: preprocess.size: {list(size)} differs from the input's "
                f"height x width {card['input']['height']} x {card['input']['width']}"
            )
        detection = DetectionHead.from_card(card["detection"], where=where) if card.get("detection") else None
        return cls(
            header=CardHeader.from_card(card),
            labels=tuple(card["labels"]),
            thresholds={label: float(card["thresholds"][label]) for label in card["labels"]},
            size=(int(size[0]), int(size[1])),
            detection=detection,
        )

    def preprocess(self, image: Image.Image) -> np.ndarray:
        """An upright RGB image (serving's `decode_photo`, or `runtime.preprocess.upright_rgb`) as the
        card's `preprocess` block says: stretched to `preprocess.size` with bilinear resampling."""
        return to_model_input(image, size=self.size)


@dataclass(frozen=True)
class RiskCard:
    """What running the labor-risk model needs from `models/labor_risk/card.json`."""

    header: CardHeader
    tiers: tuple[int, ...]
    schema: Mapping[str, Any]
    feature_order: tuple[str, ...]
    cost_matrix: np.ndarray

    @classmethod
    def from_model_dir(cls, model: ModelDir) -> RiskCard:
        card, where = model.card, model.path / "card.json"
        check_card(card, kind="risk_card", where=where)
        cost = np.asarray(card["decision"]["cost_matrix"], dtype=float)
        if cost.shape != (len(card["tiers"]),) * 2:
            raise ModelIntegrityError(
                f"{where}: decision.cost_matrix: shape {list(cost.shape)} does not match {len(card['tiers'])} tiers"
            )
        return cls(
            header=CardHeader.from_card(card),
            tiers=tuple(card["tiers"]),
            schema=card["schema"],
            feature_order=tuple(card["feature_order"]),
            cost_matrix=cost,
        )
