"""HTTP apps of the review workflow, mounted into the BentoML service.

`review_api` (at /v1/review): the queue, one case with its history, decisions, photos and
heatmaps. `review_page` (at /review): the officers' page, plain HTML + JS + CSS.
"""

from __future__ import annotations

import io
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from PIL import Image
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp

from runtime.errors import InputError
from runtime.taxonomy import load_taxonomy
from serving.auth import ApiKeyAuth, SecurityHeaders
from serving.errors import error_response
from serving.images import sniff_format
from serving.review.decisions import parse_decision, reviewer_of
from serving.review.heatmap import overlay_png
from serving.review.queue import parse_filter
from serving.review.store import ReviewStore
from serving.settings import ServingSettings

HERE = Path(__file__).resolve().parent
Handler = Callable[[Request], Awaitable[Response]]


class StoreHolder:
    """The service's store, set by `Ankang.__init__` (mounted apps get no lifespan of their own)."""

    store: ReviewStore | None = None

    def get(self) -> ReviewStore:
        if self.store is None:
            raise InputError("service", "the review store is not ready yet; retry in a moment", status_code=503)
        return self.store


holder = StoreHolder()


def json_errors(handler: Handler) -> Handler:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except InputError as error:
            return error_response(error)

    return wrapped


@json_errors
async def get_queue(request: Request) -> Response:
    query = parse_filter(request.query_params)
    return JSONResponse(await run_in_threadpool(holder.get().queue, query))


@json_errors
async def get_case(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(holder.get().case, request.path_params["photo_id"]))


async def json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("body", f"the body is not valid JSON: {exc}", status_code=400) from None


@json_errors
async def post_decision(request: Request) -> Response:
    body = await json_body(request)
    decision = parse_decision(body)
    reviewer = reviewer_of(request.scope.get("ankang.principal"))
    result = await run_in_threadpool(holder.get().decide, request.path_params["photo_id"], decision, reviewer=reviewer)
    return JSONResponse(result, status_code=201)


def _image_bytes(photo_id: str, size: str) -> tuple[bytes, str]:
    store = holder.get()
    digest = store.photo_digest(photo_id)
    if size != "original":
        return store.photos.derived(digest, size), "image/jpeg"
    data = store.photos.read(digest)
    return data, f"image/{(sniff_format(data) or 'octet-stream').lower()}"


def image_route(size: str) -> Handler:
    @json_errors
    async def get_image(request: Request) -> Response:
        data, media_type = await run_in_threadpool(_image_bytes, request.path_params["photo_id"], size)
        return Response(data, media_type=media_type, headers={"Cache-Control": "private, max-age=86400, immutable"})

    return get_image


def _heatmap(photo_id: str, hazard: str) -> bytes:
    store = holder.get()
    labels, grid, digest = store.cam(photo_id)
    if hazard not in labels:
        raise InputError("hazard", f"the model did not score {hazard!r}; it scored {labels}", status_code=404)
    if grid is None:
        raise InputError("hazard", "this case has no activation maps stored", status_code=404)
    with Image.open(io.BytesIO(store.photos.derived(digest, "display"))) as display:
        width, height = display.size
    return overlay_png(grid[labels.index(hazard)], width=width, height=height)


@json_errors
async def get_heatmap(request: Request) -> Response:
    png = await run_in_threadpool(_heatmap, request.path_params["photo_id"], request.path_params["hazard"])
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


async def get_signed_in(request: Request) -> Response:
    """Who the page is signed in as (the reviewer its decisions are recorded as)."""
    principal = request.scope.get("ankang.principal")
    return JSONResponse({**reviewer_of(principal).to_dict(), "role": principal.role, "via": principal.via})


async def get_taxonomy(_request: Request) -> Response:
    """The hazard types, and how many hours each severity gives (the page shows an urgent case's deadline)."""
    from serving.orders.policy import load_policy  # the rectification policy file; orders import review, not back

    due = {name: span.total_seconds() / 3600 for name, span in load_policy().due_by_severity.items()}
    return JSONResponse(
        {"types": [hazard.describe() for hazard in load_taxonomy().values()], "due_hours_by_severity": due}
    )


async def not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    message = "no such review endpoint; see GET /v1/review/queue, GET|POST /v1/review/{photo_id}"
    if status == 405:
        message = f"{request.method} is not allowed here; see GET /v1/review/queue, GET|POST /v1/review/{{photo_id}}"
    return error_response(InputError("path", message, status_code=status))


async def unknown_path(request: Request) -> Response:
    """JSON instead of Starlette's plain-text 404 (or 405 when the path exists for another method)."""
    known = any(route.matches(request.scope)[0] == Match.PARTIAL for route in review_api.routes[:-1])
    return await not_found(request, HTTPException(405 if known else 404))


review_api = Starlette(
    exception_handlers={404: not_found, 405: not_found},
    routes=[
        Route("/queue", get_queue, methods=["GET"]),
        Route("/taxonomy", get_taxonomy, methods=["GET"]),
        Route("/me", json_errors(get_signed_in), methods=["GET"]),
        Route("/{photo_id}", get_case, methods=["GET"]),
        Route("/{photo_id}", post_decision, methods=["POST"]),
        Route("/{photo_id}/thumb", image_route("thumb"), methods=["GET"]),
        Route("/{photo_id}/photo", image_route("display"), methods=["GET"]),
        Route("/{photo_id}/original", image_route("original"), methods=["GET"]),
        Route("/{photo_id}/heatmap/{hazard}", get_heatmap, methods=["GET"]),
        Route("/{rest:path}", unknown_path, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ],
)


async def get_page(_request: Request) -> Response:
    return FileResponse(HERE / "templates" / "index.html", headers={"Cache-Control": "no-cache"})


review_page = Starlette(
    routes=[
        Route("/", get_page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
)


def standalone_app(store: ReviewStore, *, settings: ServingSettings) -> ASGIApp:
    """The review API and page without the photo model (benchmarks, a review-only host), behind the
    same keys, sessions and security headers as the service."""
    holder.store = store
    app = Starlette(routes=[Mount("/v1/review", review_api), Mount("/review", review_page)])
    return SecurityHeaders(ApiKeyAuth(app, settings=settings))
