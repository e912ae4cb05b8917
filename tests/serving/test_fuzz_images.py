"""Hypothesis against the photo decoder: whatever the bytes, `decode_photo` returns an RGB image or raises
InputError."""

from __future__ import annotations

import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from runtime.errors import InputError
from serving.images import ImageLimits, decode_photo

SIGNATURES = [b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"GIF89a", b""]
LIMITS = ImageLimits(max_bytes=256 * 1024, max_pixels=2_000_000)
FUZZ = settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _seed_image(fmt: str, width: int, height: int, colour: int) -> bytes:
    """A small image carrying EXIF (orientation, a text tag) so mutations also reach the EXIF parser."""
    image = Image.new("RGB", (width, height), (colour, 255 - colour, colour // 2))
    exif = image.getexif()
    exif[0x0112], exif[0x010E] = 1 + colour % 8, "site photo"
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, exif=exif.tobytes())
    return buffer.getvalue()


@st.composite
def mutated_images(draw) -> bytes:
    """A valid JPEG/PNG/WebP with bytes flipped, cut, duplicated or inserted."""
    data = bytearray(
        _seed_image(
            draw(st.sampled_from(["JPEG", "PNG", "WEBP"])),
            draw(st.integers(1, 80)),
            draw(st.integers(1, 80)),
            draw(st.integers(0, 255)),
        )
    )
    for _ in range(draw(st.integers(1, 6))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "cut", "insert", "repeat"]))
        if action == "flip":
            data[position] ^= 1 << draw(st.integers(0, 7))
        elif action == "cut":
            del data[position : position + draw(st.integers(1, 64))]
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        else:
            data[position:position] = data[position : position + draw(st.integers(1, 32))]
        if not data:
            break
    return bytes(data)


def assert_image_or_input_error(data: bytes) -> None:
    try:
        image = decode_photo(data, limits=LIMITS)
    except InputError as error:
        assert 400 <= error.status_code < 500
        assert error.field == "photo" and error.message
        return
    assert image.mode == "RGB" and min(image.size) >= LIMITS.min_side


@FUZZ
@given(prefix=st.sampled_from(SIGNATURES), tail=st.binary(max_size=2048))
def test_random_bytes_behind_image_signatures(prefix, tail):
    assert_image_or_input_error(prefix + tail)


@FUZZ
@given(data=mutated_images())
def test_mutated_real_images(data):
    assert_image_or_input_error(data)


# Found by this file's fuzzing: Pillow raised ValueError("Truncated IHDR chunk"), which became a 500.
TRUNCATED_IHDR = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0cIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
    b"\x00\x00\x002eXIfMM\x00*\x00\x00\x00\x08\x00\x02\x01\x0e\x00\x02\x00\x00\x00\x0b\x00\x00\x00&\x01"
    b"\x12\x00\x03\x00\x00\x00\x01\x00\x01\x00\x00\x00\x00\x00\x00site photo\x00\x00\xec\xbcy@\x00\x00\x00\x0c"
    b"IDATx\x9cc`\xf8\xcf\x00\x00\x02\x02\x01\x00{\t\x81x\x00\x00\x00\x00IEND\xaeB`\x82"
)


def test_truncated_png_header_is_an_input_error():
    with pytest.raises(InputError, match="the PNG header cannot be read: Truncated IHDR chunk") as caught:
        decode_photo(TRUNCATED_IHDR)
    assert caught.value.status_code == 422
