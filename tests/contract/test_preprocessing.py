"""One photo, two sides: training's preprocessing and serving's upload path give the same model input."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from runtime.cards import PhotoCard
from runtime.modeldir import ModelDir
from serving.images import decode_photo
from tests.toy_models import write_toy_photo_model
from training.photo.data import preprocess_photo

ROTATED_90_CW = 6  # EXIF Orientation: the camera was turned; viewers rotate the pixels back


def rotated_jpeg(tmp_path) -> bytes:
    pixels = np.random.default_rng(7).integers(0, 255, size=(48, 80, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = ROTATED_90_CW
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=90, exif=exif)
    (tmp_path / "photo.jpg").write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_training_and_serving_preprocess_one_jpeg_identically(tmp_path):
    data = rotated_jpeg(tmp_path)
    card = PhotoCard.from_model_dir(ModelDir.load(write_toy_photo_model(tmp_path / "toy", version="toy-1")))
    served = card.preprocess(decode_photo(data))
    trained = preprocess_photo(tmp_path / "photo.jpg", size=card.size)
    assert served.dtype == trained.dtype == np.uint8 and served.shape == (3, *card.size)
    np.testing.assert_array_equal(served, trained)


def test_the_exif_orientation_is_applied():
    exif = Image.Exif()
    exif[0x0112] = ROTATED_90_CW
    buffer = io.BytesIO()
    Image.new("RGB", (80, 48), (200, 30, 30)).save(buffer, format="JPEG", exif=exif)
    assert decode_photo(buffer.getvalue()).size == (48, 80)
