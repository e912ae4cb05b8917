"""`ankang train photo-rerelease`: a released model's weights, read back from its model.onnx, released
again under today's release rules, at another served input size if asked.

The network is fully convolutional (mean-pooled flags, a CenterNet head), so the same weights can be
served at a larger input: at 448 px a hardhat-workers photo (416-448 px wide) is seen at its own
pixels instead of shrunk to 320, and a small head keeps its size. No training happens: the card
records the weights' own training run and what this release changed."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pandas as pd

from runtime.paths import recorded_path
from training.photo.config import DEFAULT_CACHE, PhotoTrainConfig


def register(verb) -> None:
    parser = verb("train").add_parser(
        "photo-rerelease",
        help="release a released photo model's weights again (new release rules, another input size)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--from", dest="source", type=Path, required=True, help="released model directory")
    parser.add_argument("--out", type=Path, required=True, help="model directory to write")
    parser.add_argument("--final-size", type=int, default=448, help="served input side (default: 448)")
    parser.add_argument("--data", type=Path, action="append", default=None, help="dataset folder(s)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="decoded-photo cache folder")
    parser.add_argument("--threads", type=int, default=2, help="onnxruntime/torch threads")
    parser.add_argument("--workers", type=int, default=2, help="processes decoding photos")
    parser.add_argument(
        "--no-machinery-from-boxes",
        dest="machinery_from_boxes",
        action="store_false",
        help="do not label heavy_machinery from `machinery` boxes in val, test and threshold calibration",
    )
    parser.set_defaults(func=run_rerelease)


def rerelease_config(
    card: dict, *, out: Path, final_size: int, data: list[Path] | None, **overrides
) -> PhotoTrainConfig:
    """The weights' own training options with the released size, output and data replaced."""
    fields = set(PhotoTrainConfig.__dataclass_fields__)
    options = {key: value for key, value in card["training_config"].items() if key in fields}
    options.update(
        out=Path(out),
        final_size=final_size,
        pretrained=False,
        release=True,
        release_only=False,
        resume=False,
        data=[Path(folder) for folder in (data or options["data"])],
        checkpoint_dir=None,
        **overrides,
    )
    options["cache_dir"] = Path(options["cache_dir"])
    return PhotoTrainConfig(**options)


def calibration_photos(config: PhotoTrainConfig, frame: pd.DataFrame, trained_config: dict):
    """Train photos labelled heavy_machinery by boxes now whose cell was blank when the weights were
    trained (they never supervised that flag there): the construction photos val lacks."""
    from training.photo.data import FLAGS, cached_images, load_photos
    from training.photo.release import HeldOut

    if not config.machinery_from_boxes or trained_config.get("machinery_from_boxes"):
        return None
    trained = load_photos(config.data, limit=config.limit).set_index("path")
    blank_then = frame["path"].map(trained["heavy_machinery"]).isna().to_numpy()
    rows = np.flatnonzero(
        (frame["split"] == "train").to_numpy() & blank_then & frame["heavy_machinery"].notna().to_numpy()
    )
    if not len(rows):
        return None
    picked = frame.iloc[rows].reset_index(drop=True)
    picked[[flag for flag in FLAGS if flag != "heavy_machinery"]] = np.nan
    images = cached_images(
        list(frame["path"]), size=config.export_size, cache_dir=config.cache_dir, workers=config.workers
    )
    return HeldOut(picked, images[rows])


def rerelease(
    source: Path,
    *,
    out: Path,
    final_size: int,
    data: list[Path] | None,
    cache_dir: Path,
    threads: int,
    workers: int,
    machinery_from_boxes: bool = True,
) -> dict:
    import torch

    from training.photo.data import load_photos, read_boxes
    from training.photo.data import machinery_from_boxes as label_machinery
    from training.photo.from_onnx import net_from_onnx
    from training.photo.release import held_out_sets, release_model

    card = json.loads((Path(source) / "card.json").read_text(encoding="utf-8"))
    config = rerelease_config(
        card,
        out=out,
        final_size=final_size,
        data=data,
        cache_dir=cache_dir,
        threads=threads,
        workers=workers,
        machinery_from_boxes=machinery_from_boxes,
    )
    torch.set_num_threads(threads)
    net = net_from_onnx(Path(source) / "model.onnx", detection_stride=config.det_stride).eval()
    frame = load_photos(config.data, limit=config.limit)
    if config.machinery_from_boxes:
        frame = label_machinery(frame, pd.concat([read_boxes(folder) for folder in config.data], ignore_index=True))
    trained = card["training_config"]
    training = {
        key: trained[key] for key in ("seconds", "cpu_seconds", "epochs_run", "best_epoch", "history") if key in trained
    }
    recipe = {
        "weights_from": {"version": card["version"], "sha256": card["sha256"], "path": recorded_path(Path(source))},
        "served_size": {"before": card["input"]["height"], "after": final_size},
        "trained": False,
        "changes": [
            f"served input {card['input']['height']} -> {final_size} px (same weights: fully convolutional)",
            "box score thresholds: precision >= 0.90 on val with the best recall (were: the image-level capped rule)",
            "suspected-major (urgent) thresholds: recall >= 0.97 on val (were: the capped false-alarm rule)",
            "heavy_machinery labelled from construction-site-safety machinery boxes (val/test), and its "
            "threshold calibrated on that source's train photos, which the weights never saw labelled",
        ],
    }
    return release_model(
        net,
        config,
        frame=frame,
        splits=held_out_sets(config, frame),
        training=training,
        resolution_study=card.get("resolution_study", []),
        calibration=calibration_photos(config, frame, trained),
        recipe=recipe,
    )


def run_rerelease(args: argparse.Namespace) -> int:
    card = rerelease(
        args.source,
        out=args.out,
        final_size=args.final_size,
        data=args.data,
        cache_dir=args.cache_dir,
        threads=args.threads,
        workers=args.workers,
        machinery_from_boxes=args.machinery_from_boxes,
    )
    print(f"wrote {args.out} (version {card['version']}, {card['input']['height']} px)")
    print(f"  thresholds {card['thresholds']}; box thresholds {card['detection']['score_thresholds']}")
    return 0
