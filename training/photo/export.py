"""ONNX export (one file, opset 17) and the model card written after it."""

from __future__ import annotations

import datetime as dt
import json
import warnings
from pathlib import Path

import torch

from runtime.cards import card_header
from runtime.modeldir import file_sha256
from training.photo.model import ExportedHazardPhoto, HazardPhotoNet

OPSET = 17
MAX_MODEL_BYTES = 15 * 1024 * 1024


def export_onnx(net: HazardPhotoNet, path: Path, *, size: int, tta_flip: bool, ppe_modes: dict | None = None) -> Path:
    """Write `path` (single file, weights inside): input `image` uint8 N×3×size×size, outputs
    `probabilities` N×K, `cam` N×K×h×w and `detections` N×D×6, dynamic batch axis `N`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    wrapper = ExportedHazardPhoto(net, tta_flip=tta_flip, ppe_modes=ppe_modes).eval()
    example = torch.zeros(2, 3, size, size, dtype=torch.uint8)
    partial = path.with_name(path.name + ".partial")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            (example,),
            str(partial),
            input_names=["image"],
            output_names=["probabilities", "cam", "detections"],
            opset_version=OPSET,
            dynamo=False,
            dynamic_axes={"image": {0: "N"}, "probabilities": {0: "N"}, "cam": {0: "N"}, "detections": {0: "N"}},
            external_data=False,
        )
    size_bytes = partial.stat().st_size
    if size_bytes > MAX_MODEL_BYTES:
        partial.unlink()
        raise ValueError(f"exported model is {size_bytes / 2**20:.1f} MB; the limit is 15 MB")
    partial.replace(path)
    return path


def write_card(model_dir: Path, fields: dict) -> dict:
    """card.json for model_dir/model.onnx, written after the model so its sha256 matches; `fields` holds
    the header's `data` and `training_config` and the photo card's own fields."""
    sha256 = file_sha256(model_dir / "model.onnx")
    now = dt.datetime.now(dt.UTC)
    header = card_header(
        name="hazard_photo",
        version=f"{now:%Y.%m.%d}-{sha256[:8]}",
        created=now,
        sha256=sha256,
        data=fields["data"],
        training_config=fields["training_config"],
    )
    card = {**header, **{key: value for key, value in fields.items() if key not in header}}
    partial = model_dir / "card.json.partial"
    partial.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    partial.replace(model_dir / "card.json")
    return card
