"""Typed readers of model cards, one shared header, and the JSON Schemas every card is checked against.

Every card starts with the same header (`CardHeader`: name, version, created, sha256 of
model.onnx, data fingerprint, training config), written by `card_header` on the training side
and read here; `PhotoCard` and `RiskCard` add what running each model needs. A card is checked
against `runtime/schemas/` when it is read, so a broken card fails at load with its path and field.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
from PIL import Image

from runtime.card_schema import card_schema, check_card
from runtime.errors import ModelIntegrityError
from runtime.modeldir import ModelDir
from runtime.preprocess import to_model_input
from runtime.taxonomy import load_taxonomy

HEADER_FIELDS = ("name", "version", "created", "sha256", "data", "training_config")


def card_header(*, name: str, version: str, created: dt.datetime | str, sha256: str, data: Mapping[str, Any],
                training_config: Mapping[str, Any]) -> dict[str, Any]:
    """The header fields of a new card; `data` holds at least the data `fingerprint`, `sha256` is model.onnx's."""
    created_text = created if isinstance(created, str) else created.astimezone(dt.timezone.utc).isoformat(
        timespec="seconds")
    header = {"name": name, "version": version, "created": created_text, "sha256": sha256, "data": dict(data),
              "training_config": dict(training_config)}
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
    def from_card(cls, card: Mapping[str, Any]) -> "CardHeader":
        return cls(name=str(card["name"]), version=str(card["version"]), created=str(card["created"]),
                   sha256=str(card["sha256"]), data_fingerprint=str(card["data"]["fingerprint"]),
                   training_config=dict(card["training_config"]))


@dataclass(frozen=True)
class PhotoCard:
    """What running the hazard-photo model needs from `models/hazard_photo/card.json`."""

    header: CardHeader
    labels: tuple[str, ...]
    thresholds: dict[str, float]
    size: tuple[int, int]  # (height, width) of the preprocessed input: the card's `preprocess.size`

    @property
    def name(self) -> str:
        return self.header.name

    @property
    def version(self) -> str:
        return self.header.version

    @classmethod
    def from_model_dir(cls, model: ModelDir) -> "PhotoCard":
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
            raise ModelIntegrityError(f"{where}: preprocess.size: {list(size)} differs from the input's "
                                      f"height x width {card['input']['height']} x {card['input']['width']}")
        return cls(header=CardHeader.from_card(card), labels=tuple(card["labels"]),
                   thresholds={label: float(card["thresholds"][label]) for label in card["labels"]},
                   size=(int(size[0]), int(size[1])))

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
    def from_model_dir(cls, model: ModelDir) -> "RiskCard":
        card, where = model.card, model.path / "card.json"
        check_card(card, kind="risk_card", where=where)
        cost = np.asarray(card["decision"]["cost_matrix"], dtype=float)
        if cost.shape != (len(card["tiers"]),) * 2:
            raise ModelIntegrityError(f"{where}: decision.cost_matrix: shape {list(cost.shape)} does not match "
                                      f"{len(card['tiers'])} tiers")
        return cls(header=CardHeader.from_card(card), tiers=tuple(card["tiers"]), schema=card["schema"],
                   feature_order=tuple(card["feature_order"]), cost_matrix=cost)
