"""Ankang's HTTP API: BentoML services over the released ONNX models in `models/`.

`PhotoInference` owns the photo model's onnxruntime session and batches concurrent requests
(BentoML adaptive batching); `Ankang` is the public API that validates input, decodes photos
and builds responses. Served by `make run` as `bentoml serve serving.service:Ankang`.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Annotated, Any

import bentoml
import numpy as np
from pydantic import Field
from starlette.responses import JSONResponse

from serving.errors import InputError
from serving.images import decode_photo
from serving.limits import BodySizeLimit
from serving.modelcard import ModelDir, model_path
from serving.multipart import install as install_upload_only_parsers
from serving.photo import PhotoCard, PhotoModel, assess, pack_predictions, unpack_prediction

MAX_BATCH_SIZE = int(os.environ.get("ANKANG_MAX_BATCH_SIZE", "32"))
MAX_LATENCY_MS = int(os.environ.get("ANKANG_MAX_LATENCY_MS", "1000"))

install_upload_only_parsers()

Text = Annotated[str | None, Field(default=None, max_length=200)]
Note = Annotated[str | None, Field(default=None, max_length=2000)]


def photo_model_dir() -> Path:
    return Path(os.environ.get("ANKANG_PHOTO_MODEL_DIR", model_path("hazard_photo")))


def error_response(error: InputError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.status_code)


@bentoml.service(name="ankang-photo-model", workers=1, traffic={"timeout": 30})
class PhotoInference:
    """The photo CNN on onnxruntime: one session per worker, created once."""

    def __init__(self) -> None:
        self.model = PhotoModel(photo_model_dir())

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH_SIZE, max_latency_ms=MAX_LATENCY_MS)
    def predict(self, images: np.ndarray) -> np.ndarray:
        """Rows of probabilities followed by the flattened class activation maps (`pack_predictions`)."""
        return pack_predictions(*self.model.predict(images))


@bentoml.service(
    name="ankang",
    workers=1,
    traffic={"timeout": 60, "max_concurrency": 256},
    http={"port": 3000},
)
class Ankang:
    """Hazard-photo triage and labor-relation risk tiering for trade-union safety programs."""

    photo_inference = bentoml.depends(PhotoInference)

    def __init__(self) -> None:
        self.photo_card = PhotoCard.from_model_dir(ModelDir.load(photo_model_dir()))

    @bentoml.api(route="/v1/photos/assess")
    def assess_photo(
        self,
        photo: Path,
        site_id: Text = None,
        sector: Text = None,
        channel: Text = None,
        note: Note = None,
    ) -> dict[str, Any]:
        """Assess one site photo (JPEG, PNG or WebP): hazard probabilities, flagged types, triage."""
        try:
            image = decode_photo(photo.read_bytes())
        except InputError as error:
            return error_response(error)
        batch = self.photo_card.preprocess(image)[np.newaxis]
        row = self.photo_inference.predict(batch)[0]
        probabilities, cam = unpack_prediction(row, labels=len(self.photo_card.labels))
        metadata = {"site_id": site_id, "sector": sector, "channel": channel, "note": note}
        return {"photo_id": uuid.uuid4().hex, **assess(probabilities, self.photo_card), "metadata": metadata}

    # --- risk endpoints (serving/risk.py) ---
    # --- end risk endpoints ---


Ankang.add_asgi_middleware(
    BodySizeLimit,
    default_limit=32 * 1024 * 1024,
    path_limits={"/v1/photos/assess": 16 * 1024 * 1024},
)
