"""Prometheus metrics for operators, with bounded labels, right under BentoML's multiprocess setup.

`bentoml serve` starts each API worker with PROMETHEUS_MULTIPROC_DIR set (bentoml.serving.
ensure_prometheus_dir), so prometheus_client, imported in the worker, keeps every value in that
directory and `/metrics` (answered here by `Metrics`, whichever worker gets the scrape) sums the
live workers. Route labels are route templates, never raw paths: any other path is "other", so a
path scan cannot grow the number of series. BentoML's own request metrics are switched off in the
service (they label by raw path).
"""

from __future__ import annotations

import asyncio
import functools
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import prometheus_client
import sqlalchemy as sa
from prometheus_client import multiprocess
from starlette.routing import Mount, Route, compile_path

from runtime.taxonomy import load_taxonomy
from serving.assessment import TRIAGE_LEVELS, PhotoAssessment
from serving.review.decisions import STATUSES

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]

OTHER = "other"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

REQUESTS = prometheus_client.Counter(
    "ankang_http_requests_total",
    "HTTP requests answered, by route template, method and status class "
    '(2xx..5xx); paths that are no route count as route="other"',
    ["route", "method", "status_class"],
)
REQUEST_SECONDS = prometheus_client.Histogram(
    "ankang_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
PHOTOS_ASSESSED = prometheus_client.Counter(
    "ankang_photos_assessed_total", "Photos assessed by /v1/photos/assess, by triage", ["triage"]
)
PHOTO_FLAGS = prometheus_client.Counter(
    "ankang_photo_flags_total", "Hazard flags raised on assessed photos, by hazard type", ["hazard"]
)
PHOTO_DETECTIONS = prometheus_client.Counter(
    "ankang_photo_detections_total", "Boxes answered on assessed photos, by hazard type", ["hazard"]
)
MODEL_INFO = prometheus_client.Gauge(
    "ankang_model_info",
    "1 for the model name and version a worker serves; 0 for one it served before a reload",
    ["model", "version"],
    multiprocess_mode="livemax",
)
BATCH_SIZE = prometheus_client.Histogram(
    "ankang_photo_batch_size", "Photos in one run of the photo model", buckets=(1, 2, 4, 8, 16, 32, 64, 128)
)
QUEUE_DEPTH = prometheus_client.Gauge(
    "ankang_photo_queue_depth",
    "Photos waiting for the photo model (sum over live workers)",
    multiprocess_mode="livesum",
)
REVIEW_CASES = prometheus_client.Gauge(
    "ankang_review_cases",
    "Review cases by status, counted in the review store at scrape time (at most REVIEW_COUNT_SECONDS old)",
    ["status"],
    multiprocess_mode="mostrecent",
)
ENTERPRISES_SCORED = prometheus_client.Counter(
    "ankang_enterprises_scored_total", "Enterprises scored by /v1/enterprises/*, by final tier", ["tier"]
)

REVIEW_COUNT_SECONDS = 15.0

for _triage in TRIAGE_LEVELS:  # series exist from the start, so rate() sees the first photo
    PHOTOS_ASSESSED.labels(triage=_triage)
for _hazard in load_taxonomy():
    PHOTO_FLAGS.labels(hazard=_hazard)


def record_photo(assessment: PhotoAssessment) -> None:
    PHOTOS_ASSESSED.labels(triage=assessment.triage).inc()
    for hazard in assessment.flagged_types:
        PHOTO_FLAGS.labels(hazard=hazard).inc()
    for detection in assessment.detections:
        PHOTO_DETECTIONS.labels(hazard=detection.type).inc()


def record_tiers(tiers: Iterable[int]) -> None:
    counts: dict[int, int] = {}
    for tier in tiers:
        counts[int(tier)] = counts.get(int(tier), 0) + 1
    for tier, count in counts.items():
        ENTERPRISES_SCORED.labels(tier=str(tier)).inc(count)


_served_models: dict[str, str] = {}
_models_lock = threading.Lock()


def record_model(name: str, version: str) -> None:
    """Mark `version` as the model `name` this worker serves (the one before it drops to 0)."""
    with _models_lock:
        previous = _served_models.get(name)
        if previous is not None and previous != version:
            MODEL_INFO.labels(model=name, version=previous).set(0)
        MODEL_INFO.labels(model=name, version=version).set(1)
        _served_models[name] = version


def observe_batch(size: int) -> None:
    BATCH_SIZE.observe(size)


def set_queue_depth(depth: int) -> None:
    QUEUE_DEPTH.set(depth)


def review_case_counts(engine: sa.Engine) -> dict[str, int]:
    """Cases per status: one grouped count over the indexed status column."""
    from serving.review.schema import cases

    with engine.connect() as connection:
        rows = connection.execute(sa.select(cases.c.status, sa.func.count()).group_by(cases.c.status)).all()
    return {status: int(count) for status, count in rows}


class RouteLabels:
    """Maps a request path to its route template: exact routes, and the routes of mounted Starlette
    apps (`/v1/review/{photo_id}`); anything else, including catch-all routes, is "other"."""

    def __init__(self, *, exact: Iterable[str], mounts: dict[str, Any], prefixes: Iterable[str] = ()):
        self.exact = frozenset(exact)
        self.mounts = dict(mounts)
        self.prefixes = tuple(prefixes)

    def __call__(self, path: str, method: str) -> str:
        if path in self.exact:
            return path
        for prefix in self.prefixes:
            if path.startswith(prefix + "/"):
                return prefix + "/*"
        for prefix, app in self.mounts.items():
            if path == prefix or path.startswith(prefix + "/"):
                return self._mounted(prefix, app, path[len(prefix) :] or "/", method)
        return OTHER

    @staticmethod
    def _mounted(prefix: str, app: Any, rest: str, method: str) -> str:
        for template, route in _route_templates(getattr(app, "routes", ())):
            if _template_regex(template, mount=isinstance(route, Mount)).match(rest):
                if ":path}" in template:  # a catch-all answers 404 for any path: no label of its own
                    return OTHER
                return prefix + template + ("/*" if isinstance(route, Mount) else "")
        return OTHER


def _route_templates(routes: Iterable[Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    """(path template, route) of every route, in routing order. FastAPI keeps an included router as
    one route of its own (`original_router` plus the include's prefix), so look inside it."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            yield from _route_templates(included.routes, prefix + getattr(route.include_context, "prefix", ""))
        elif isinstance(route, (Route, Mount)):
            yield prefix + route.path, route


@functools.lru_cache(maxsize=1024)
def _template_regex(template: str, *, mount: bool) -> re.Pattern[str]:
    regex, _format, _convertors = compile_path(template.rstrip("/") + "/{path:path}" if mount else template)
    return regex


def exposition() -> bytes:
    """The text format of every worker's metrics (one process's when not served by `bentoml serve`)."""
    # BentoML's variable (set for its workers), not an Ankang setting.
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = prometheus_client.CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return prometheus_client.generate_latest(registry)
    return prometheus_client.generate_latest()


class Metrics:
    """Outermost middleware: answers GET /metrics, and counts and times every other request."""

    def __init__(self, app: Callable, *, routes: RouteLabels, engine: Callable[[], sa.Engine | None] = lambda: None):
        self.app = app
        self.routes = routes
        self.engine = engine
        self._counted_at = float("-inf")
        self._lock = threading.Lock()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "GET") if scope.get("method") in METHODS else OTHER
        route = self.routes(scope.get("path", ""), method)
        started, status = time.perf_counter(), [500]

        async def send_with_status(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            if route == "/metrics" and method in ("GET", "HEAD"):
                await self._answer_metrics(send_with_status)
            else:
                await self.app(scope, receive, send_with_status)
        finally:
            REQUESTS.labels(route=route, method=method, status_class=f"{status[0] // 100}xx").inc()
            REQUEST_SECONDS.labels(route=route).observe(time.perf_counter() - started)

    async def _answer_metrics(self, send: Send) -> None:
        body = await asyncio.to_thread(self._scrape)
        headers = [
            (b"content-type", prometheus_client.CONTENT_TYPE_LATEST.encode()),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _scrape(self) -> bytes:
        self._count_review_cases()
        return exposition()

    def _count_review_cases(self) -> None:
        engine = self.engine()
        with self._lock:
            if engine is None or time.monotonic() - self._counted_at < REVIEW_COUNT_SECONDS:
                return
            counts = review_case_counts(engine)
            for status in (*STATUSES, *counts):
                REVIEW_CASES.labels(status=status).set(counts.get(status, 0))
            self._counted_at = time.monotonic()
