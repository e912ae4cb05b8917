"""Model directories (`models/<name>/model.onnx` + `card.json`): verify and read."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runtime.card_schema import check_card
from runtime.errors import ModelIntegrityError


def file_sha256(path: Path, *, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelDir:
    """A verified model directory: the card's sha256 matched model.onnx when it was loaded."""

    path: Path
    card: dict[str, Any]

    @property
    def onnx_path(self) -> Path:
        return self.path / "model.onnx"

    @property
    def name(self) -> str:
        return str(self.card["name"])

    @property
    def version(self) -> str:
        return str(self.card["version"])

    @classmethod
    def load(cls, path: str | Path) -> ModelDir:
        path = Path(path)
        card_path, onnx_path = path / "card.json", path / "model.onnx"
        for required in (card_path, onnx_path):
            if not required.is_file():
                raise ModelIntegrityError(f"{required} is missing; train or restore the model first")
        try:
            card = json.loads(card_path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ModelIntegrityError(f"{card_path}: not JSON ({error})") from None
        check_card(card, kind="card_header", where=card_path)
        expected, actual = card.get("sha256"), file_sha256(onnx_path)
        if expected != actual:
            raise ModelIntegrityError(
                f"{onnx_path} has sha256 {actual} but {card_path} expects {expected}; "
                "the model file was changed or replaced, so the service refuses to load it"
            )
        return cls(path=path, card=card)
