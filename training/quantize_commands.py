"""`ankang export photo-int8`: the INT8 hazard-photo model (heavy imports happen inside the command)."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.config_options import add_dataclass_arguments, dataclass_from_args

DESCRIPTION = """\
Quantize the released float hazard-photo model to INT8 with onnxruntime static quantization
(QDQ, per-channel weights), calibrated on photos of the train split preprocessed exactly as in
serving. Then score val and test with both models (thresholds re-chosen on val by the card's
rule), time decode + resize + onnxruntime in-process for both, and write model.onnx + card.json
with a `quantization` block holding the speed-up, the ROC AUC deltas and `qualifies`
(>= 1.5x faster and <= 0.01 ROC AUC lost on every flag, pooled on test and per source).

The float model stays the default; serve the INT8 one with
  ANKANG_PHOTO_MODEL_DIR=models/hazard_photo_int8 make run

Quick look:   ankang export photo-int8 --calibration-count 64 --no-evaluate --out var/models/int8-quick
Candidate:    ankang export photo-int8          (writes var/candidates/hazard_photo_int8/)
Release:      ankang export photo-int8 --out models/hazard_photo_int8   (after each float release)"""


def register(verb) -> None:
    from training.quantize import HELP, QuantizeConfig

    parser = verb("export").add_parser(
        "photo-int8",
        help="quantize the hazard-photo model to INT8 and measure it",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataclass_arguments(parser, QuantizeConfig, help=HELP)
    parser.set_defaults(func=run_quantize)


def run_quantize(args: argparse.Namespace) -> int:
    from training.quantize import QuantizeConfig, quantize_photo_model

    config = dataclass_from_args(QuantizeConfig, args)
    card = quantize_photo_model(config)
    block = card["quantization"]
    print(
        f"wrote {config.out} (version {card['version']}, "
        f"{(Path(config.out) / 'model.onnx').stat().st_size / 2**20:.1f} MB)"
    )
    if "speed" in block:
        speed, worst = block["speed"], block["worst_roc_auc_loss"]
        print(
            f"  speed: float {speed['float_photos_per_second']} photos/s, int8 {speed['int8_photos_per_second']} "
            f"photos/s = {speed['speedup']}x ({speed['what']})"
        )
        print(f"  worst ROC AUC loss on test: {worst['loss']} ({worst['where']})")
        print(
            f"  qualifies as the default: {'yes' if block['qualifies'] else 'no'} "
            "(needs >= 1.5x and <= 0.01 lost on every flag's ROC AUC and every class's box AP50)"
        )
    return 0
