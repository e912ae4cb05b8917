"""HTTP routes of the review workflow, mounted into the BentoML service.

`review_api` (at /v1/review): the queue, one case with its history, decisions, photos and
heatmaps. `review_page` (at /review): the officers' page, plain HTML + JS + CSS. Every route
needs the reviewer role (or admin).
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from PIL import Image

from runtime.errors import InputError
from runtime.taxonomy import load_taxonomy
from serving.api.app import route_app
from serving.api.dependencies import Backends, backends, principal, role
from serving.auth.principals import Principal
from serving.images import sniff_format
from serving.review.decisions import parse_decision, reviewer_of
from serving.review.heatmap import overlay_png
from serving.review.queue import parse_filter
from serving.review.store import ReviewStore

HERE = Path(__file__).resolve().parent
IMMUTABLE = {"Cache-Control": "private, max-age=86400, immutable"}


async def review_store(parts: Annotated[Backends, Depends(backends)]) -> ReviewStore:
    return parts.review_store


Store = Annotated[ReviewStore, Depends(review_store)]
Who = Annotated[Principal, Depends(principal)]
router = APIRouter(dependencies=[Depends(role("reviewer"))])


async def json_body(request: Request) -> Any:
    """The request's JSON body (null when empty): the route's parser names what is wrong in it."""
    try:
        return json.loads(await request.body() or b"null")
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("body", f"the body is not valid JSON: {exc}", status_code=400) from None


Body = Annotated[Any, Depends(json_body)]


@router.get("/queue")
def get_queue(request: Request, store: Store) -> JSONResponse:
    return JSONResponse(store.queue(parse_filter(request.query_params)))


@router.get("/taxonomy")
async def get_taxonomy(parts: Annotated[Backends, Depends(backends)]) -> JSONResponse:
    """The hazard types, and how many hours each severity gives (the page shows an urgent case's deadline)."""
    due = {name: span.total_seconds() / 3600 for name, span in parts.order_store.policy.due_by_severity.items()}
    return JSONResponse(
        {"types": [hazard.describe() for hazard in load_taxonomy().values()], "due_hours_by_severity": due}
    )


@router.get("/me")
async def get_signed_in(who: Who) -> JSONResponse:
    """Who the page is signed in as (the reviewer its decisions are recorded as)."""
    return JSONResponse({**reviewer_of(who).to_dict(), "role": who.role, "via": who.via})


@router.get("/{photo_id}")
def get_case(photo_id: str, store: Store) -> JSONResponse:
    return JSONResponse(store.case(photo_id))


@router.post("/{photo_id}", status_code=201)
def post_decision(
    photo_id: str, body: Body, store: Store, who: Annotated[Principal, Depends(principal)]
) -> JSONResponse:
    decision = parse_decision(body)
    return JSONResponse(store.decide(photo_id, decision, reviewer=reviewer_of(who)), status_code=201)


def image_answer(store: ReviewStore, photo_id: str, size: str) -> Response:
    digest = store.photo_digest(photo_id)
    if size != "original":
        return Response(store.photos.derived(digest, size), media_type="image/jpeg", headers=IMMUTABLE)
    data = store.photos.read(digest)
    return Response(data, media_type=f"image/{(sniff_format(data) or 'octet-stream').lower()}", headers=IMMUTABLE)


@router.get("/{photo_id}/thumb")
def get_thumb(photo_id: str, store: Store) -> Response:
    return image_answer(store, photo_id, "thumb")


@router.get("/{photo_id}/photo")
def get_display(photo_id: str, store: Store) -> Response:
    return image_answer(store, photo_id, "display")


@router.get("/{photo_id}/original")
def get_original(photo_id: str, store: Store) -> Response:
    return image_answer(store, photo_id, "original")


@router.get("/{photo_id}/heatmap/{hazard}")
def get_heatmap(photo_id: str, hazard: str, store: Store) -> Response:
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


page_router = APIRouter(dependencies=[Depends(role("reviewer"))])


@page_router.get("/", include_in_schema=False)
async def get_page() -> FileResponse:
    return FileResponse(HERE / "templates" / "index.html", headers={"Cache-Control": "no-cache"})


review_api = route_app(router, not_found=not_found)
review_page = route_app(page_router, not_found=not_found, static=HERE / "static")
