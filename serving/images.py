"""Decode uploaded photos safely: checks by content, byte and pixel limits before full decoding."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from serving.errors import InputError

# Magic numbers of the formats we accept; the declared content type and file name are ignored.
_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


@dataclass(frozen=True)
class ImageLimits:
    max_bytes: int = 15 * 1024 * 1024
    max_pixels: int = 40_000_000
    min_side: int = 16


def sniff_format(data: bytes) -> str | None:
    for signature, name in _SIGNATURES.items():
        if data.startswith(signature):
            return name
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def _check_bytes(data: bytes, *, field: str, limits: ImageLimits) -> str:
    if not data:
        raise InputError(field, "the uploaded file is empty (0 bytes)", status_code=400)
    if len(data) > limits.max_bytes:
        raise InputError(
            field, f"the file has {len(data)} bytes; the limit is {limits.max_bytes}", status_code=413
        )
    kind = sniff_format(data)
    if kind is None:
        raise InputError(
            field, "the file is not a JPEG, PNG or WebP image (checked by its content)", status_code=415
        )
    return kind


def _open_checked(data: bytes, kind: str, *, field: str, limits: ImageLimits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit follows
            image = Image.open(io.BytesIO(data), formats=[kind])
    except Image.DecompressionBombError as exc:
        raise InputError(field, f"{exc}; the limit is {limits.max_pixels} pixels", status_code=413) from None
    except (UnidentifiedImageError, OSError) as exc:
        raise InputError(field, f"the {kind} header cannot be read: {exc}", status_code=422) from None
    width, height = image.size
    if width * height > limits.max_pixels:
        raise InputError(
            field,
            f"the image is {width}x{height} = {width * height} pixels; the limit is {limits.max_pixels}",
            status_code=413,
        )
    if min(width, height) < limits.min_side:
        raise InputError(field, f"the image is {width}x{height}; each side must be at least {limits.min_side} px")
    if getattr(image, "n_frames", 1) > 1:
        raise InputError(field, f"animated images are not accepted ({image.n_frames} frames); send one still photo")
    return image


def decode_photo(data: bytes, *, field: str = "photo", limits: ImageLimits = ImageLimits()) -> Image.Image:
    """Return the photo as an upright RGB image, or raise InputError saying what is wrong."""
    kind = _check_bytes(data, field=field, limits=limits)
    image = _open_checked(data, kind, field=field, limits=limits)
    try:
        image.load()
        image = ImageOps.exif_transpose(image)
    except (OSError, ValueError, SyntaxError) as exc:
        raise InputError(field, f"the {kind} data is truncated or corrupt: {exc}") from None
    return image.convert("RGB")


def to_model_input(image: Image.Image, *, size: tuple[int, int]) -> np.ndarray:
    """Stretch to (height, width) with bilinear resampling, as the model card's preprocess says; CHW uint8."""
    height, width = size
    resized = image.resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8).transpose(2, 0, 1)
