"""The toy photo training run the export, checkpoint and backbone tests share: one epoch on 48 real
photos at 64 px, the whole train -> export -> card path in seconds."""

from pathlib import Path

from training.photo.config import PhotoTrainConfig


def toy_config(photo_set: Path, **overrides) -> PhotoTrainConfig:
    options = dict(
        data=[photo_set],
        image_size=64,
        crop_source_size=0,
        final_size=0,
        epochs=1,
        batch_size=16,
        limit=48,
        seed=7,
        workers=1,
    )
    return PhotoTrainConfig(**{**options, **overrides})
