"""Decode uploaded photos safely: checks by content, byte and pixel limits before full decoding."""

from __future__ import annotations

import ctypes
import ctypes.util
import io
import re
import struct
import sys
import threading
import warnings
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from typing import TypeVar

from PIL import Image, ImageOps, UnidentifiedImageError

from runtime.dhash import dhash64
from runtime.errors import InputError
from serving.settings import ServingSettings

T = TypeVar("T")

# Magic numbers of the formats we accept; the declared content type and file name are ignored.
_SIGNATURES = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG"}


# Markup that makes an image file also an HTML/script/PHP document (a polyglot), wherever it hides.
_MARKUP = re.compile(rb"<(?:script|html|body|iframe|svg|object|embed|\?php)[\s>/]", re.IGNORECASE)
# In JPEG entropy-coded data 0xFF is followed by 0x00 (stuffing) or a restart marker; anything else is a marker.
_JPEG_MARKER_IN_SCAN = re.compile(rb"\xff(?![\x00\xd0-\xd7])")
# What Pillow's parsers raise on malformed input (found by tests/serving/test_fuzz_images.py): all mean "corrupt".
_MALFORMED = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    struct.error,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
)


# A photo above LARGE_PIXELS takes ~200 MB while it decodes (Pillow keeps RGB as 4 bytes a pixel, plus
# the grey copy of the dHash): at most two of those at once per process, whatever the decode slots.
LARGE_PIXELS = 16_000_000
LARGE_DECODES = threading.BoundedSemaphore(2)
_LIBC = ctypes.CDLL(ctypes.util.find_library("c")) if sys.platform.startswith("linux") else None

# Full decodes running at once in this process (each up to ~4.3 bytes per pixel of max_pixels at peak);
# the service makes its own from ServingSettings.decode_slots (ANKANG_DECODE_SLOTS).
DEFAULT_DECODE_SLOTS = threading.BoundedSemaphore(ServingSettings.model_fields["decode_slots"].default)


@dataclass(frozen=True)
class PhotoFacts:
    """What the review store keeps of a decoded photo: its upright size and its dHash (grouping)."""

    width: int
    height: int
    dhash: int

    @classmethod
    def of(cls, image: Image.Image) -> PhotoFacts:
        return cls(image.width, image.height, dhash64(image))


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
        raise InputError(field, f"the file has {len(data)} bytes; the limit is {limits.max_bytes}", status_code=413)
    kind = sniff_format(data)
    if kind is None:
        raise InputError(field, "the file is not a JPEG, PNG or WebP image (checked by its content)", status_code=415)
    _check_single_image(data, kind, field=field)
    return kind


def _jpeg_end(data: bytes) -> int | None:
    """Offset just past the JPEG's end-of-image marker, walking segments and scans; None if not found."""
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
        elif marker == 0xD9:
            return position + 2
        elif 0xD0 <= marker <= 0xD7 or marker == 0x01:
            position += 2
        else:
            position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
            if marker == 0xDA:
                found = _JPEG_MARKER_IN_SCAN.search(data, position)
                position = found.start() if found else len(data)
    return None


def _png_end(data: bytes) -> int | None:
    """Offset just past the PNG's IEND chunk; None if the chunk list ends first."""
    position = 8
    while position + 8 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        chunk_type = data[position + 4 : position + 8]
        position += 12 + length
        if chunk_type == b"IEND":
            return position
    return None


def _image_end(data: bytes, kind: str) -> int | None:
    if kind == "JPEG":
        return _jpeg_end(data)
    if kind == "PNG":
        return _png_end(data)
    size = int.from_bytes(data[4:8], "little")
    return 8 + size + (size & 1)


def _check_single_image(data: bytes, kind: str, *, field: str) -> None:
    """Refuse polyglots: markup inside the image, or another file appended after the image ends."""
    if _MARKUP.search(data):
        raise InputError(field, f"the {kind} file carries HTML or script markup (a polyglot file); send a plain photo")
    end = _image_end(data, kind)
    if end is not None and data[end:].strip(b"\x00 \r\n\t"):
        raise InputError(
            field,
            f"the file has {len(data) - end} bytes after the end of its {kind} image (another file appended, "
            "a polyglot or a motion photo); send the still photo only",
        )


def _open_checked(data: bytes, kind: str, *, field: str, limits: ImageLimits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own limit follows
            image = Image.open(io.BytesIO(data), formats=[kind])
    except Image.DecompressionBombError as exc:
        declared = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"{declared.group(1)} pixels" if declared else "too many pixels"
        raise InputError(
            field, f"the image declares {size}; the limit is {limits.max_pixels} pixels", status_code=413
        ) from None
    except (UnidentifiedImageError, *_MALFORMED) as exc:
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
    try:
        frames = getattr(image, "n_frames", 1)
    except _MALFORMED as exc:
        raise InputError(field, f"the {kind} frame data cannot be read: {exc}") from None
    if frames > 1:
        raise InputError(field, f"animated images are not accepted ({frames} frames); send one still photo")
    return image


def _upright_rgb_in_place(image: Image.Image) -> Image.Image:
    """`runtime.preprocess.upright_rgb`, the same pixels, without its two full-size copies (a 40 MP
    photo is 120 MB a copy): the EXIF turn happens in place and an RGB image is not converted."""
    ImageOps.exif_transpose(image, in_place=True)
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_photo(
    data: bytes,
    *,
    field: str = "photo",
    limits: ImageLimits = ImageLimits(),
    slots: threading.Semaphore = DEFAULT_DECODE_SLOTS,
    then: Callable[[Image.Image], T] | None = None,
) -> Image.Image | T:
    """Return the photo as an upright RGB image, or raise InputError saying what is wrong.

    At most `slots`' count of photos decode at once (callers beyond wait). With `then`, the upright
    image goes to `then` inside the slot and only its result comes back: the full-size image is
    released before the slot is, so what a process holds is bounded by the slots, not by how many
    photos wait for the model (16 uploads of a 39.7 MP PNG held 2-3 GB per worker that way)."""
    kind = _check_bytes(data, field=field, limits=limits)
    image = _open_checked(data, kind, field=field, limits=limits)
    if kind == "JPEG":
        _check_jpeg_scan_size(data, image.size, field=field)
    large = image.size[0] * image.size[1] > LARGE_PIXELS
    with slots, LARGE_DECODES if large else nullcontext():  # a 0.6 MB JPEG may decode to 170 MB
        try:
            image.load()
            upright = _upright_rgb_in_place(image)
        except _MALFORMED as exc:
            raise InputError(field, f"the {kind} data is truncated or corrupt: {exc}") from None
        if then is None:
            return upright
        try:
            return then(upright)
        finally:
            upright.close()
            image.close()
            if large:
                _return_freed_memory()


def _return_freed_memory() -> None:
    """Hand a large image's freed pages back to the system: glibc keeps freed heap memory for reuse,
    so a worker that decoded 16 photos of 40 MP stayed at 1 GB after the burst without this."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


# Huffman-coded JPEG frames (baseline, extended, progressive): every 8x8 block costs at least one bit.
_HUFFMAN_FRAMES = {0xC0, 0xC1, 0xC2}


def _jpeg_blocks_and_scan_bytes(data: bytes) -> tuple[int | None, int]:
    """(8x8 blocks the frame header declares, or None if not Huffman-coded; bytes of entropy-coded data)."""
    blocks, scan_bytes, position = None, 0, 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            break
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1
            continue
        if marker == 0xD9:
            break
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            position += 2
            continue
        length = int.from_bytes(data[position + 2 : position + 4], "big")
        segment = data[position + 4 : position + 2 + length]
        if marker in _HUFFMAN_FRAMES and len(segment) >= 6:
            blocks = _frame_blocks(segment)
        position += 2 + length
        if marker == 0xDA:
            found = _JPEG_MARKER_IN_SCAN.search(data, position)
            end = found.start() if found else len(data)
            scan_bytes += end - position
            position = end
    return blocks, scan_bytes


def _frame_blocks(segment: bytes) -> int:
    height, width, count = int.from_bytes(segment[1:3], "big"), int.from_bytes(segment[3:5], "big"), segment[5]
    factors = [(segment[7 + 3 * i] >> 4, segment[7 + 3 * i] & 15) for i in range(count) if 8 + 3 * i <= len(segment)]
    if not factors:
        return 0
    h_max, v_max = max(max(h for h, _ in factors), 1), max(max(v for _, v in factors), 1)
    mcus = -(-width // (8 * h_max)) * -(-height // (8 * v_max))
    return mcus * sum(h * v for h, v in factors)


def _check_jpeg_scan_size(data: bytes, size: tuple[int, int], *, field: str) -> None:
    """A JPEG whose scan data is too short for its declared size is truncated: libjpeg would fill the
    missing blocks with grey and answer 200 (a 692-byte file declaring 6000x6000 decodes to 108 MB)."""
    blocks, scan_bytes = _jpeg_blocks_and_scan_bytes(data)
    if blocks and scan_bytes * 8 < blocks // 2:  # half a bit a block: room for padding and interleaving
        raise InputError(
            field,
            f"the JPEG data is truncated or corrupt: {size[0]}x{size[1]} needs at least {blocks // 16} bytes of "
            f"image data; the file has {scan_bytes}",
        )
