"""The one photo pipeline: decode a hostile upload (under the service's decode slots), preprocess it
for the current model, and assess it through that model's batcher. Intake photos
(`POST /v1/photos/assess`) and proof photos (`POST /v1/orders/{id}/proof`) both come through here."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.errors import InputError
from serving.assessment import PhotoAssessment
from serving.images import PhotoFacts, decode_photo
from serving.photo import PhotoModel


@dataclass(frozen=True)
class PreparedPhoto:
    """All a request keeps of a decoded photo while it waits for the model: the model input
    (3 x size x size bytes) and the facts the store needs; never the full-size image."""

    facts: PhotoFacts
    model_input: np.ndarray


def prepare_for_model(data: bytes, model: PhotoModel, slots: threading.Semaphore) -> PreparedPhoto:
    """Decode, shrink to the model input and hash inside the decode slot; the full image is released there."""
    return decode_photo(
        data, slots=slots, then=lambda image: PreparedPhoto(PhotoFacts.of(image), model.card.preprocess(image))
    )


async def assess_upload(data: bytes, photo: Any, slots: threading.Semaphore) -> tuple[PhotoFacts, PhotoAssessment]:
    """The photo's facts (upright size, dHash) and its assessment by `photo.current` (a
    `serving.reload.HotSwap`): one model for the whole request, whatever reloads meanwhile. Raises
    `InputError` for a bad upload and `serving.batching.QueueFull` when the model's queue is full."""
    if photo is None:
        raise InputError("service", "no photo model is loaded on this server", status_code=503)
    model = photo.current
    prepared = await asyncio.to_thread(prepare_for_model, data, model, slots)
    facts = prepared.facts
    return facts, await model.assess(prepared.model_input, width=facts.width, height=facts.height)
