"""Ankang's HTTP API: a BentoML service over the released ONNX models in `models/`.

Each API worker process holds the photo model's onnxruntime session and batches the photos of
concurrent requests itself (serving/batching.py): the endpoint is async, decoding and the review
store write run in threads, so one worker keeps many requests in flight while the model runs.
Served by `make run` as `bentoml serve serving.service:Ankang`. Every setting comes from one
`ServingSettings` (serving/settings.py), read from the environment once when this module loads.
"""

from __future__ import annotations

import asyncio
import functools
import io
import logging
import threading
import uuid
from pathlib import Path
from typing import Annotated, Any

import bentoml
import pandas as pd
from bentoml.exceptions import BentoMLException
from pydantic import Field
from starlette.responses import Response

from serving import metrics
from serving.api.dependencies import Backends
from serving.api.responses import documented
from serving.api_models import EnterpriseScoresBody, PhotoAssessmentBody, ReloadBody
from serving.auth import ApiKeyAuth, Pseudonymiser, SecurityHeaders
from serving.auth.keys import check_env_key_lengths
from serving.auth.sign_in import SIGN_IN_PATH, SIGN_OUT_PATH
from serving.claims.feedback import Receipts
from serving.claims.risk_feed import feed_risk
from serving.claims.store import ClaimStore
from serving.claims.worker import EscalationWorker as ClaimsWorker
from serving.docs import DOCS_PATHS, ApiDocs
from serving.enterprises.records import ScoreRecords
from serving.errors import client_errors_answered
from serving.forwarded import ForwardedHeaders, tell_uvicorn
from serving.hostile_text import HostileInput, normalised_id, refuse_bad_text
from serving.limits import BodySizeLimit
from serving.logging_setup import RequestLog
from serving.multipart import MAX_IN_MEMORY_UPLOAD, UploadedFile
from serving.multipart import install as install_upload_only_parsers
from serving.orders import receipts
from serving.orders.dashboard import CachedFigures
from serving.orders.store import OrderStore
from serving.orders.worker import LoopWorker
from serving.outages import unavailable_backends
from serving.photo import PhotoModel
from serving.pipeline import assess_upload
from serving.reload import HotSwap
from serving.review.store import ReviewStore
from serving.risk import MAX_UPLOAD_BYTES as RISK_MAX_UPLOAD_BYTES
from serving.risk import RiskScorer
from serving.routes import MOUNTS
from serving.settings import ServingSettings

SETTINGS = ServingSettings.from_env()
tell_uvicorn(SETTINGS.trusted_proxies)  # before any worker builds its server (serving/forwarded.py)
if SETTINGS.auth:
    check_env_key_lengths(SETTINGS.api_keys)  # a short ANKANG_API_KEYS key stops `bentoml serve` as it loads

install_upload_only_parsers()
logger = logging.getLogger("ankang.service")

Text = Annotated[str | None, Field(default=None, max_length=200)]
Note = Annotated[str | None, Field(default=None, max_length=2000)]
# Any item: the scorer names the bad field and enterprise itself (422); the example is what /docs fills in.
Profiles = Annotated[list[Any], Field(examples=[[{"enterprise_id": "E-1", "industry": "services", "headcount": 40}]])]
PHOTO_ROUTE, SCORE_ROUTE, SCORE_FILE_ROUTE, RELOAD_ROUTE = (
    "/v1/photos/assess",
    "/v1/enterprises/score",
    "/v1/enterprises/score-file",
    "/v1/admin/reload",
)


def tiers_of(table: bytes) -> pd.Series:
    return pd.read_csv(io.BytesIO(table), usecols=["tier"])["tier"]


def mounted(cls: type) -> type:
    """The route apps of serving/routes.py, each at its path."""
    for path, (name, app) in MOUNTS.items():
        cls = bentoml.asgi_app(app, path=path, name=name)(cls)
    return cls


@mounted
@bentoml.service(
    name="ankang",
    workers=SETTINGS.api_workers,
    traffic={"timeout": 60, "max_concurrency": 256},
    http={"port": 3000},
    logging={"access": {"enabled": False}},  # serving/logging_setup.py logs requests without client IPs
    metrics={"enabled": False},  # BentoML's request metrics label raw paths; serving/metrics.py serves /metrics
)
class Ankang:
    """Hazard-photo triage and labor-relation risk tiering for trade-union safety programs."""

    def __init__(self, settings: ServingSettings | None = None) -> None:
        self.settings = settings = settings or SETTINGS
        self.decode_slots = threading.BoundedSemaphore(settings.decode_slots)
        self.pseudonymise = Pseudonymiser.from_settings(settings)  # reporters are stored as keyed pseudonyms
        self.photo = HotSwap(
            settings.resolved_photo_model_dir,
            functools.partial(PhotoModel, settings=settings, processes=settings.api_workers),
            on_swap=lambda model: metrics.record_model(model.card.name, model.card.version),
        )
        self.photo.watch(interval_seconds=settings.reload_poll_seconds)
        self.risk = HotSwap(
            settings.resolved_risk_model_dir,
            functools.partial(RiskScorer.load, options=settings.session_options, engine=settings.risk_engine),
            on_swap=lambda scorer: metrics.record_model(scorer.info["name"], scorer.info["version"]),
        )
        self.risk.watch(interval_seconds=settings.reload_poll_seconds)
        self.review_store = ReviewStore.from_settings(settings)  # migrates the schema
        self.order_store = OrderStore.beside(self.review_store)
        self.claim_store = ClaimStore.beside(self.order_store)  # workers' claims (serving/claims/)
        self.score_records = ScoreRecords(self.review_store.engine)  # every score kept (migration 0011)
        self.backends = Backends(  # what the mounted routers use (serving/api/dependencies.py)
            review_store=self.review_store,
            order_store=self.order_store,
            photo=self.photo,
            decode_slots=self.decode_slots,
            receipt_lookups=receipts.RateLimiter(redis_url=settings.redis_url),
            order_figures=CachedFigures(),
            claim_store=self.claim_store,
            claim_receipts=Receipts(engine=self.order_store.engine, orders=self.order_store),
            feedback_limiter=receipts.RateLimiter(redis_url=settings.redis_url, prefix="ankang:receipt-feedback"),
            risk=self.risk,
            score_records=self.score_records,
            pseudonymise=self.pseudonymise,
        )
        LoopWorker.from_settings(self.order_store, settings, figures=self.backends.order_figures).start()
        ClaimsWorker.from_settings(self.claim_store, settings, figures=self.backends.claim_figures).start()

    def __is_ready__(self) -> bool:
        """/readyz: 503 while the database (or Redis, when configured) does not answer; 200 again by itself."""
        down = unavailable_backends(self.backends.review_store.engine, self.settings.redis_url)
        if down:
            logger.warning("not_ready", extra={"unavailable": down})
        return not down

    @bentoml.api(route=PHOTO_ROUTE)
    @documented(
        tag="photos",
        role="intake",
        summary="Assess one site photo",
        ok=PhotoAssessmentBody,
        errors=(400, 413, 415, 422, 503),
    )
    @client_errors_answered
    async def assess_photo(
        self,
        photo: UploadedFile,  # taken in memory, no temporary file (serving/multipart.py)
        site_id: Text = None,
        sector: Text = None,
        channel: Text = None,
        note: Note = None,
        reporter: Text = None,
    ) -> PhotoAssessmentBody:
        """Assess one site photo (JPEG, PNG or WebP): hazard probabilities, flagged types, triage, boxes.

        `reporter` (who took the photo) is stored and returned only as a keyed pseudonym."""
        refuse_bad_text({"site_id": site_id, "sector": sector, "channel": channel, "note": note, "reporter": reporter})
        site_id = normalised_id("site_id", site_id) or None if site_id else None
        data = photo.read_bytes()
        facts, assessment = await assess_upload(data, self.photo, self.decode_slots)
        metadata = {
            "site_id": site_id,
            "sector": sector,
            "channel": channel,
            "note": note,
            "reporter": self.pseudonymise(reporter),
        }
        photo_id = uuid.uuid4().hex
        recorded = await asyncio.to_thread(
            self.review_store.record_assessment,
            photo_id=photo_id,
            data=data,
            image=facts,
            assessment=assessment,
            metadata=metadata,
            also=functools.partial(receipts.record_receipt, photo_id=photo_id),  # one transaction with the case
        )
        receipt = recorded["also"]  # GET /v1/reports/{receipt}
        metrics.record_photo(assessment)
        return PhotoAssessmentBody(photo_id=photo_id, **assessment.to_response(), metadata=metadata, receipt=receipt)

    @bentoml.api(route=RELOAD_ROUTE)
    @documented(tag="admin", role="admin", summary="Reload changed models now", ok=ReloadBody, errors=(400,))
    def reload_models(self) -> ReloadBody:
        """Re-read models/<name>/ now (the service also polls): verify sha256, warm up, swap."""
        photo = {"reloaded": self.photo.reload_if_changed(), "version": self.photo.current.card.version}
        risk = {"reloaded": self.risk.reload_if_changed(), "version": self.risk.current.info["version"]}
        return ReloadBody(hazard_photo=photo, labor_risk=risk)

    # --- risk endpoints (serving/risk.py) ---
    @bentoml.api(route=SCORE_ROUTE)
    @documented(
        tag="enterprises",
        role="intake",
        summary="Risk tiers of up to 10,000 enterprise profiles",
        ok=EnterpriseScoresBody,
        errors=(400, 413, 422),
    )
    @client_errors_answered
    def score_enterprises(self, enterprises: Profiles) -> dict[str, Any]:
        """Labor-relation risk tier (1 lowest .. 5 highest) of up to 10,000 enterprise profiles.

        Each profile needs `enterprise_id`; other fields (datasets/labor_risk/schema.yaml) are
        optional and imputed when missing. Each result has tier (after policy floors), model_tier,
        probabilities, rules_fired, reasons and imputed. A bad value answers 422 naming the field
        and the enterprise; nothing is scored then.
        """
        scorer = self.risk.current
        score = functools.partial(scorer.score_profiles, on_scored=self.score_records.keeper(scorer, source="api"))
        # claims (serving/claims/risk_feed.py) and photo hazards (serving/orders/risk_feed.py) filled in;
        # every score kept (serving/enterprises/records.py)
        results = feed_risk(enterprises, self.order_store, self.claim_store, score)
        metrics.record_tiers(result["tier"] for result in results)
        return {"model": scorer.info, "results": results}

    @bentoml.api(route=SCORE_FILE_ROUTE)
    @documented(
        tag="enterprises",
        role="intake",
        summary="Risk tiers of a CSV or Parquet file (answers CSV)",
        ok="text/csv",
        errors=(400, 413, 422),
    )
    @client_errors_answered
    def score_enterprise_file(self, file: Path) -> Any:
        """Score a CSV or Parquet file (one enterprise per row, up to 200,000 rows); answers text/csv.

        Columns: enterprise_id, tier, model_tier, p_tier_1..5, rules_fired, reasons, imputed.
        A file with bad rows is rejected whole (422) with every bad row listed (first 50).
        """
        scorer = self.risk.current
        keep = self.score_records.keeper(scorer, source="file")
        table = scorer.score_table(file.read_bytes(), filename=file.name, on_scored=keep)
        metrics.record_tiers(tiers_of(table))
        return Response(
            table, media_type="text/csv", headers={"content-disposition": 'attachment; filename="risk_tiers.csv"'}
        )

    # --- end risk endpoints ---


ROUTE_LABELS = metrics.RouteLabels(
    exact=(
        PHOTO_ROUTE,
        SCORE_ROUTE,
        SCORE_FILE_ROUTE,
        RELOAD_ROUTE,
        SIGN_IN_PATH,
        SIGN_OUT_PATH,
        "/livez",
        "/readyz",
        "/healthz",
        "/metrics",
        "/schema.json",
        *DOCS_PATHS,
    ),
    mounts={path: app for path, (_name, app) in MOUNTS.items()},
    prefixes=("/docs",),
)


# Outermost first: metrics, request ids and JSON logs, headers, docs, then keys and roles, then body limits.
def service_engine():
    """The running service's database (its review case counts go to /metrics); None before start-up."""
    try:
        return bentoml.get_current_service().review_store.engine
    except BentoMLException:
        return None


Ankang.add_asgi_middleware(ForwardedHeaders, proxies=SETTINGS.trusted_proxies)  # the client, by trusted proxies only
Ankang.add_asgi_middleware(metrics.Metrics, routes=ROUTE_LABELS, engine=service_engine)
Ankang.add_asgi_middleware(RequestLog, level=SETTINGS.log_level)
Ankang.add_asgi_middleware(SecurityHeaders)
Ankang.add_asgi_middleware(ApiDocs, service=Ankang)
Ankang.add_asgi_middleware(ApiKeyAuth, settings=SETTINGS)
Ankang.add_asgi_middleware(
    BodySizeLimit,
    default_limit=32 * 1024 * 1024,
    path_limits={PHOTO_ROUTE: MAX_IN_MEMORY_UPLOAD, SCORE_FILE_ROUTE: RISK_MAX_UPLOAD_BYTES},
)
Ankang.add_asgi_middleware(HostileInput)  # NUL, lone surrogates, deep JSON: a 4xx naming the field (issue 21)
