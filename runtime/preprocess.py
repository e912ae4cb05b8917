"""THE photo preprocessing, used by training, evaluation, quantization and serving alike.

Decoding and checking hostile uploads is serving's job (serving/images.py); this module starts
from a decoded Pillow image.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

PREPROCESS_VERSION = "exif-rgb-stretch-bilinear-v1"


def preprocess_spec(size: int) -> dict:
    """The card's `preprocess` entry, describing exactly what `preprocess_photo` does."""
    return {
        "exif_transpose": True,
        "color": "RGB",
        "resize": "stretch",
        "interpolation": "bilinear",
        "size": [size, size],
    }


def upright_rgb(image: Image.Image) -> Image.Image:
    """The photo as the camera held it (EXIF orientation applied), in RGB."""
    return ImageOps.exif_transpose(image).convert("RGB")


def to_model_input(image: Image.Image, *, size: int | tuple[int, int]) -> np.ndarray:
    """An upright RGB image stretched to (height, width) with bilinear resampling; CHW uint8."""
    height, width = (size, size) if isinstance(size, int) else size
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1))


def preprocess_photo(image: str | Path | Image.Image, *, size: int | tuple[int, int]) -> np.ndarray:
    """The preprocessing contract: EXIF-upright RGB stretched to size (bilinear), CHW uint8."""
    if not isinstance(image, Image.Image):
        with Image.open(image) as opened:
            return preprocess_photo(opened, size=size)
    return to_model_input(upright_rgb(image), size=size)
