"""Issue 21, item 2: a photo's full-size image lives only inside its decode slot.

16 uploads of a 39.7 MP PNG held 2-3 GB per worker: the decode slots covered the decode only,
and each full-size image then waited through the model queue and the store write. Now the photo
is shrunk to the model input and hashed inside the slot and released there; what waits for the
model is the model input and the upload's bytes. (benchmarks/memory_bombs.py measures the RSS.)
A JPEG whose scan data is far too short for its declared size is truncated: 422, not a grey 200.
"""

from __future__ import annotations

import asyncio
import gc
import io
import struct
import threading
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from runtime.dhash import dhash64
from runtime.errors import InputError
from runtime.preprocess import upright_rgb
from serving.images import PhotoFacts, decode_photo
from serving.pipeline import assess_upload
from tests.serving.conftest import encode_image

SIZE = (2400, 1800)


def jpeg_declaring(width: int, height: int, *, scan_from: tuple[int, int] = (64, 64)) -> bytes:
    """A small JPEG's scan data under a frame header that declares width x height."""
    data = bytearray(encode_image((200, 30, 30), size=scan_from))
    start_of_frame = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, start_of_frame + 5, height, width)
    return bytes(data)


def png(size=SIZE, mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size).save(buffer, format="PNG")
    return buffer.getvalue()


def full_size_images_alive(size=SIZE) -> int:
    gc.collect()
    return sum(1 for item in gc.get_objects() if isinstance(item, Image.Image) and item.size == size)


def test_a_tiny_jpeg_declaring_6000x6000_is_422_truncated():
    data = jpeg_declaring(6000, 6000)
    assert len(data) < 1000  # the file was 692 bytes
    with pytest.raises(InputError) as refused:
        decode_photo(data)
    assert refused.value.status_code == 422 and "truncated or corrupt" in refused.value.message


def test_the_same_jpeg_at_its_true_size_and_real_photos_still_decode():
    assert decode_photo(jpeg_declaring(64, 64)).size == (64, 64)
    assert decode_photo(encode_image((10, 200, 10), size=(1600, 1200))).size == (1600, 1200)
    progressive = io.BytesIO()
    Image.new("RGB", (1600, 1200), (90, 90, 90)).save(progressive, format="JPEG", progressive=True, optimize=True)
    assert decode_photo(progressive.getvalue()).size == (1600, 1200)  # a flat grey: the fewest bits per block


def test_the_api_answers_422_for_it(api):
    response = api.post("/v1/photos/assess", files={"photo": ("x.jpg", jpeg_declaring(6000, 6000), "image/jpeg")})
    assert response.status_code == 422 and response.json()["error"]["field"] == "photo"


def test_the_shrink_runs_inside_the_slot_and_the_full_image_is_released_there():
    slots = threading.BoundedSemaphore(1)
    seen = []

    def shrink(image: Image.Image) -> tuple[int, int]:
        seen.append((slots._value, image))  # 0: the slot is still held
        return image.size

    assert decode_photo(png(), slots=slots, then=shrink) == SIZE
    held, image = seen.pop()
    assert held == 0 and slots._value == 1
    with pytest.raises(ValueError, match="closed"):
        image.getpixel((0, 0))  # closed: its pixels were freed with the slot


def test_nothing_full_size_waits_for_the_model():
    """While a photo waits in the model's queue, no full-size image of it is alive in the process."""
    alive_while_waiting = []

    async def assess(model_input, *, width, height):
        alive_while_waiting.append(full_size_images_alive())
        return SimpleNamespace(width=width, height=height, input_shape=model_input.shape)

    model = SimpleNamespace(card=SimpleNamespace(preprocess=lambda image: np.zeros((3, 8, 8), np.uint8)), assess=assess)
    facts, assessment = asyncio.run(assess_upload(png(), SimpleNamespace(current=model), threading.Semaphore(4)))
    assert alive_while_waiting == [0]
    assert (facts.width, facts.height) == SIZE and assessment.input_shape == (3, 8, 8)
    assert facts.dhash == dhash64(Image.new("RGB", SIZE))


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P"])
def test_the_in_place_upright_is_the_runtime_contract(mode):
    data = png((320, 200), mode)
    decoded = decode_photo(data)
    expected = upright_rgb(Image.open(io.BytesIO(data)))
    assert decoded.mode == "RGB" and np.array_equal(np.asarray(decoded), np.asarray(expected))
    assert PhotoFacts.of(decoded) == PhotoFacts(320, 200, dhash64(expected))


def test_a_photo_over_16_mp_also_holds_one_of_the_two_large_decode_places():
    from serving import images

    seen = []
    decode_photo(png((5000, 3400)), then=lambda image: seen.append(images.LARGE_DECODES._value))
    decode_photo(png((4000, 3000)), then=lambda image: seen.append(images.LARGE_DECODES._value))
    assert seen == [1, 2] and images.LARGE_DECODES._value == 2
