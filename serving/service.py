"""Ankang's HTTP API: a BentoML service over the released ONNX models in `models/`.

Each API worker process holds the photo model's onnxruntime session and batches the photos of
concurrent requests itself (serving/batching.py): the endpoint is async, decoding and the review
store write run in threads, so one worker keeps many requests in flight while the model runs.
Served by `make run` as `bentoml serve serving.service:Ankang`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from pathlib import Path
from typing import Annotated, Any

import bentoml
import numpy as np
from PIL import Image
from pydantic import Field
from starlette.responses import JSONResponse, Response

from serving.auth import ApiKeyAuth, SecurityHeaders, pseudonymise
from serving.batching import QueueFull
from runtime.errors import InputError
from serving.errors import error_response
from serving.images import decode_photo
from serving.limits import BodySizeLimit
from serving.logging_setup import RequestLog
from serving.multipart import install as install_upload_only_parsers
from serving.orders.app import holder as orders_holder, orders_api, orders_page, reports_api
from serving.orders.risk_feed import feed_risk
from serving.photo import PhotoModel
from serving.review.app import holder as review_holder, review_api, review_page
from serving.review.store import ReviewStore
from serving.reload import HotSwap
from serving.risk import MAX_UPLOAD_BYTES as RISK_MAX_UPLOAD_BYTES, RiskScorer
from serving.settings import ServingSettings

MAX_BATCH_SIZE = int(os.environ.get("ANKANG_MAX_BATCH_SIZE", "32"))
# Photos waiting for the model in one worker beyond which new ones get 503 + Retry-After.
MAX_QUEUE = int(os.environ.get("ANKANG_MAX_QUEUE", "256"))
API_WORKERS = int(os.environ.get("ANKANG_API_WORKERS", "2"))
RELOAD_POLL_SECONDS = float(os.environ.get("ANKANG_RELOAD_POLL_SECONDS", "5"))

install_upload_only_parsers()
logger = logging.getLogger("ankang.service")

Text = Annotated[str | None, Field(default=None, max_length=200)]
Note = Annotated[str | None, Field(default=None, max_length=2000)]


def photo_model_dir() -> Path:
    return ServingSettings.from_env().resolved_photo_model_dir


def risk_model_dir() -> Path:
    return ServingSettings.from_env().resolved_risk_model_dir


def model_unavailable_response(error: QueueFull) -> JSONResponse:
    """The photo model's queue is full: ask the client to retry, not a 500."""
    logger.warning("photo model busy: %s", error)
    body = {"error": {"field": "photo", "message": "the photo model is busy; retry in a second"}}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})


def load_photo_model(path: Path) -> PhotoModel:
    return PhotoModel(path, max_batch_size=MAX_BATCH_SIZE, max_queue=MAX_QUEUE)


def decode_for_model(data: bytes, model: PhotoModel) -> tuple[Image.Image, np.ndarray]:
    image = decode_photo(data)
    return image, model.card.preprocess(image)


@bentoml.asgi_app(review_api, path="/v1/review", name="review_api")
@bentoml.asgi_app(review_page, path="/review", name="review_page")
@bentoml.asgi_app(orders_api, path="/v1/orders", name="orders_api")
@bentoml.asgi_app(reports_api, path="/v1/reports", name="reports_api")
@bentoml.asgi_app(orders_page, path="/orders", name="orders_page")
@bentoml.service(
    name="ankang",
    workers=API_WORKERS,
    traffic={"timeout": 60, "max_concurrency": 256},
    http={"port": 3000},
    logging={"access": {"enabled": False}},  # serving/logging_setup.py logs requests without client IPs
)
class Ankang:
    """Hazard-photo triage and labor-relation risk tiering for trade-union safety programs."""

    def __init__(self) -> None:
        self.photo = HotSwap(photo_model_dir(), load_photo_model)
        self.photo.watch(interval_seconds=RELOAD_POLL_SECONDS)
        self.risk = HotSwap(risk_model_dir(), RiskScorer.load)
        self.risk.watch(interval_seconds=RELOAD_POLL_SECONDS)
        settings = ServingSettings.from_env()
        self.review_store = review_holder.store = ReviewStore.from_settings(settings)  # migrates the schema
        self.order_store = orders_holder.attach(self.review_store, photo=self.photo, settings=settings)

    @bentoml.api(route="/v1/photos/assess")
    async def assess_photo(
        self,
        photo: Path,
        site_id: Text = None,
        sector: Text = None,
        channel: Text = None,
        note: Note = None,
        reporter: Text = None,
    ) -> dict[str, Any]:
        """Assess one site photo (JPEG, PNG or WebP): hazard probabilities, flagged types, triage.

        `reporter` (who took the photo) is stored and returned only as a keyed pseudonym."""
        data = photo.read_bytes()
        model = self.photo.current  # one model for the whole request, whatever reloads meanwhile
        try:
            image, model_input = await asyncio.to_thread(decode_for_model, data, model)
            assessment = await model.batcher.submit(model_input)
        except InputError as error:
            return error_response(error)
        except QueueFull as error:
            return model_unavailable_response(error)
        metadata = {"site_id": site_id, "sector": sector, "channel": channel, "note": note,
                    "reporter": pseudonymise(reporter)}
        photo_id = uuid.uuid4().hex
        cam, thresholds = assessment.pop("cam"), assessment.pop("thresholds")
        await asyncio.to_thread(self.review_store.record_assessment, photo_id=photo_id, data=data, image=image,
                                assessment=assessment, metadata=metadata, cam=cam, thresholds=thresholds)
        receipt = await asyncio.to_thread(self.order_store.issue_receipt, photo_id)  # GET /v1/reports/{receipt}
        return {"photo_id": photo_id, **assessment, "metadata": metadata, "receipt": receipt}

    @bentoml.api(route="/v1/admin/reload")
    def reload_models(self) -> dict[str, Any]:
        """Re-read models/<name>/ now (the service also polls): verify sha256, warm up, swap."""
        photo = {"reloaded": self.photo.reload_if_changed(), "version": self.photo.current.card.version}
        risk = {"reloaded": self.risk.reload_if_changed(), "version": self.risk.current.info["version"]}
        return {"hazard_photo": photo, "labor_risk": risk}

    # --- risk endpoints (serving/risk.py) ---
    @bentoml.api(route="/v1/enterprises/score")
    def score_enterprises(self, enterprises: list[Any]) -> dict[str, Any]:
        """Labor-relation risk tier (1 lowest .. 5 highest) of up to 10,000 enterprise profiles.

        Each profile needs `enterprise_id`; other fields (datasets/labor_risk/schema.yaml) are
        optional and imputed when missing. Each result has tier (after policy floors), model_tier,
        probabilities, rules_fired, reasons and imputed. A bad value answers 422 naming the field
        and the enterprise; nothing is scored then.
        """
        scorer = self.risk.current
        try:
            results = feed_risk(enterprises, self.order_store, scorer.score_profiles)  # serving/orders/risk_feed.py
        except InputError as error:
            return error_response(error)
        return {"model": scorer.info, "results": results}

    @bentoml.api(route="/v1/enterprises/score-file")
    def score_enterprise_file(self, file: Path) -> Any:
        """Score a CSV or Parquet file (one enterprise per row, up to 200,000 rows); answers text/csv.

        Columns: enterprise_id, tier, model_tier, p_tier_1..5, rules_fired, reasons, imputed.
        A file with bad rows is rejected whole (422) with every bad row listed (first 50).
        """
        scorer = self.risk.current
        try:
            table = scorer.score_table(file.read_bytes(), filename=file.name)
        except InputError as error:
            return error_response(error)
        return Response(table, media_type="text/csv",
                        headers={"content-disposition": 'attachment; filename="risk_tiers.csv"'})
    # --- end risk endpoints ---


# Outermost first: request ids and JSON logs, then keys and roles, then body limits.
Ankang.add_asgi_middleware(RequestLog)
Ankang.add_asgi_middleware(SecurityHeaders)
Ankang.add_asgi_middleware(ApiKeyAuth)
Ankang.add_asgi_middleware(
    BodySizeLimit,
    default_limit=32 * 1024 * 1024,
    path_limits={"/v1/photos/assess": 16 * 1024 * 1024, "/v1/enterprises/score-file": RISK_MAX_UPLOAD_BYTES},
)
