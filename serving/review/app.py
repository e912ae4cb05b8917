"""HTTP routes of the review workflow, mounted into the BentoML service.

`review_api` (at /v1/review): the queue, one case with its history, decisions, photos and
heatmaps. `review_page` (at /review): the officers' page, plain HTML + JS + CSS. Every route
needs the reviewer role (or admin).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as FastPath
from fastapi.responses import FileResponse, Response
from PIL import Image

from runtime.errors import InputError
from runtime.taxonomy import load_taxonomy
from serving import api_models as m
from serving.api.app import AnswerRoute, route_app
from serving.api.dependencies import Backends, backends, principal, role
from serving.api.responses import binary, errors, query
from serving.auth.principals import Principal
from serving.images import sniff_format
from serving.review.decisions import DecisionRequest, reviewer_of
from serving.review.heatmap import overlay_png
from serving.review.queue import parse_filter
from serving.review.store import ReviewStore

HERE = Path(__file__).resolve().parent
IMMUTABLE = {"Cache-Control": "private, max-age=86400, immutable"}


async def review_store(parts: Annotated[Backends, Depends(backends)]) -> ReviewStore:
    return parts.review_store


Store = Annotated[ReviewStore, Depends(review_store)]
Who = Annotated[Principal, Depends(principal)]
PhotoId = Annotated[str, FastPath(description="the case's photo_id (from /v1/photos/assess)")]
Hazard = Annotated[str, FastPath(description="a hazard type the model scored")]
QUEUE_PARAMETERS = (
    query(
        "status",
        "open (default), clear, decided, all, or one decided status",
        {
            "type": "string",
            "enum": ["open", "clear", "decided", "all", "confirmed", "corrected", "dismissed", "rectified"],
        },
    ),
    query("hazard", "only cases flagged with this hazard type", {"type": "string"}),
    query("site", "only cases of this site_id", {"type": "string"}),
    query("from", "first day, YYYY-MM-DD (in `tz`)", {"type": "string", "format": "date"}),
    query("to", "last day, YYYY-MM-DD (in `tz`), inclusive", {"type": "string", "format": "date"}),
    query("tz", "IANA time zone of the dates (default UTC), e.g. Asia/Shanghai", {"type": "string"}),
    query("limit", "cases per page (1..200, default 50)", {"type": "integer", "minimum": 1, "maximum": 200}),
    query("offset", "cases to skip", {"type": "integer", "minimum": 0}),
)
router = APIRouter(dependencies=[Depends(role("reviewer"))], tags=["review"], route_class=AnswerRoute)


@router.get(
    "/queue",
    response_model=m.ReviewQueueBody,
    responses=errors(422, 503),
    summary="The review queue, most urgent first",
    openapi_extra={"parameters": list(QUEUE_PARAMETERS)},
)
def get_queue(request: Request, store: Store) -> dict[str, Any]:
    return store.queue(parse_filter(request.query_params))


@router.get("/taxonomy", response_model=m.TaxonomyBody, summary="The hazard types and the due hours of each severity")
async def get_taxonomy(parts: Annotated[Backends, Depends(backends)]) -> dict[str, Any]:
    """The hazard types, and how many hours each severity gives (the page shows an urgent case's deadline)."""
    due = {name: span.total_seconds() / 3600 for name, span in parts.order_store.policy.due_by_severity.items()}
    return {"types": [hazard.describe() for hazard in load_taxonomy().values()], "due_hours_by_severity": due}


@router.get(
    "/me", response_model=m.SignedInBody, summary="Who the request is signed in as (decisions are recorded as them)"
)
async def get_signed_in(who: Who) -> dict[str, Any]:
    """Who the page is signed in as (the reviewer its decisions are recorded as)."""
    return {**reviewer_of(who).to_dict(), "role": who.role, "via": who.via}


@router.get(
    "/{photo_id}",
    response_model=m.ReviewCaseDetail,
    responses=errors(404, 503),
    summary="One case with its group and decision history",
)
def get_case(photo_id: PhotoId, store: Store) -> dict[str, Any]:
    return store.case(photo_id)


@router.post(
    "/{photo_id}",
    status_code=201,
    response_model=m.DecisionResult,
    responses=errors(400, 404, 422, 503),
    summary="Record a decision on a case (and its group)",
)
def post_decision(photo_id: PhotoId, body: DecisionRequest, store: Store, who: Who) -> dict[str, Any]:
    return store.decide(photo_id, body, reviewer=reviewer_of(who))


def image_answer(store: ReviewStore, photo_id: str, size: str) -> Response:
    digest = store.photo_digest(photo_id)
    if size != "original":
        return Response(store.photos.derived(digest, size), media_type="image/jpeg", headers=IMMUTABLE)
    data = store.photos.read(digest)
    return Response(data, media_type=f"image/{(sniff_format(data) or 'octet-stream').lower()}", headers=IMMUTABLE)


@router.get(
    "/{photo_id}/thumb",
    response_class=Response,
    responses={**binary("image/jpeg"), **errors(404)},
    summary="The case's photo, thumbnail",
)
def get_thumb(photo_id: PhotoId, store: Store) -> Response:
    return image_answer(store, photo_id, "thumb")


@router.get(
    "/{photo_id}/photo",
    response_class=Response,
    responses={**binary("image/jpeg"), **errors(404)},
    summary="The case's photo, display size",
)
def get_display(photo_id: PhotoId, store: Store) -> Response:
    return image_answer(store, photo_id, "display")


@router.get(
    "/{photo_id}/original",
    response_class=Response,
    responses={**binary("image/*"), **errors(404)},
    summary="The photo as uploaded (GPS removed unless kept)",
)
def get_original(photo_id: PhotoId, store: Store) -> Response:
    return image_answer(store, photo_id, "original")


@router.get(
    "/{photo_id}/heatmap/{hazard}",
    response_class=Response,
    responses={**binary("image/png"), **errors(404)},
    summary="Where the model saw one hazard type, over the display photo",
)
def get_heatmap(photo_id: PhotoId, hazard: Hazard, store: Store) -> Response:
    labels, grid, digest = store.cam(photo_id)
    if hazard not in labels:
        raise InputError("hazard", f"the model did not score {hazard!r}; it scored {labels}", status_code=404)
    if grid is None:
        raise InputError("hazard", "this case has no activation maps stored", status_code=404)
    with Image.open(io.BytesIO(store.photos.derived(digest, "display"))) as display:
        width, height = display.size
    png = overlay_png(grid[labels.index(hazard)], width=width, height=height)
    return Response(png, media_type="image/png", headers={"Cache-Control": "private, max-age=86400"})


def not_found(request: Request, status: int) -> InputError:
    routes = "see GET /v1/review/queue, GET|POST /v1/review/{photo_id}"
    if status == 405:
        return InputError("path", f"{request.method} is not allowed here; {routes}", status_code=405)
    return InputError("path", f"no such review endpoint; {routes}", status_code=404)


page_router = APIRouter(dependencies=[Depends(role("reviewer"))], tags=["review"], route_class=AnswerRoute)


@page_router.get("/", include_in_schema=False)
async def get_page() -> FileResponse:
    return FileResponse(HERE / "templates" / "index.html", headers={"Cache-Control": "no-cache"})


review_api = route_app(router, not_found=not_found)
review_page = route_app(page_router, not_found=not_found, static=HERE / "static")
