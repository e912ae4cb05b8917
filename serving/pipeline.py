"""The one photo pipeline: decode a hostile upload (under the service's decode slots), preprocess it
for the current model, and assess it through that model's batcher. Intake photos
(`POST /v1/photos/assess`) and proof photos (`POST /v1/orders/{id}/proof`) both come through here."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import numpy as np
from PIL import Image

from runtime.errors import InputError
from serving.assessment import PhotoAssessment
from serving.images import decode_photo
from serving.photo import PhotoModel


def decode_for_model(data: bytes, model: PhotoModel, slots: threading.Semaphore) -> tuple[Image.Image, np.ndarray]:
    image = decode_photo(data, slots=slots)
    return image, model.card.preprocess(image)


async def assess_upload(data: bytes, photo: Any, slots: threading.Semaphore) -> tuple[Image.Image, PhotoAssessment]:
    """The upright photo and its assessment by `photo.current` (a `serving.reload.HotSwap`): one model
    for the whole request, whatever reloads meanwhile. Raises `InputError` for a bad upload and
    `serving.batching.QueueFull` when the model's queue is full."""
    if photo is None:
        raise InputError("service", "no photo model is loaded on this server", status_code=503)
    model = photo.current
    image, model_input = await asyncio.to_thread(decode_for_model, data, model, slots)
    return image, await model.assess(model_input, width=image.width, height=image.height)
