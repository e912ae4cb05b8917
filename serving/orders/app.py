"""HTTP routes of the order loop, mounted into the BentoML service.

`orders_api` (at /v1/orders): rectification orders and supervision cases, their transitions,
proof photos, escalation, dashboard figures (JSON and CSV). `orders_page` (at /orders): the
officers' dashboard page, server-rendered HTML with SVG charts. A reporter's receipt lookup
(/v1/reports) is served with the workers' claims (serving/claims/app.py), for both kinds of report.

Every /v1/orders route takes enterprise keys (scoped to their own enterprise's orders) and officers'
(reviewer, admin); `officers(...)` marks the routes only officers may use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as FastPath
from fastapi.responses import HTMLResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from runtime.errors import InputError
from serving import api_models as m
from serving.api.app import AnswerRoute, route_app
from serving.api.dependencies import Backends, backends, principal, role
from serving.api.responses import binary, body_model, errors, query
from serving.hostile_text import refuse_bad_text
from serving.orders import dashboard
from serving.orders.pages import issue_form, order_page, orders_home
from serving.orders.proof import refuse_the_original, scene_similarity
from serving.orders.requests import (
    AmendmentRequest,
    MoveRequest,
    NewOrderRequest,
    NewSupervisionRequest,
    parse_filter,
)
from serving.orders.states import Viewer, wrong_state
from serving.orders.store import OrderStore, Proof
from serving.pipeline import assess_upload
from serving.review.decisions import reviewer_of

HERE = Path(__file__).resolve().parent
OFFICER_ROLES = ("reviewer", "admin")
MAX_PROOF_BYTES = 16 * 1024 * 1024
FOR_OFFICERS = "this is for union officers; an enterprise key sees its own orders at /v1/orders"
Parts = Annotated[Backends, Depends(backends)]
OrderId = Annotated[str, FastPath(description="the order's id")]
WhichPhoto = Annotated[
    str,
    FastPath(
        description="original (the case's photo) or proof (the latest proof photo)",
        json_schema_extra={"enum": ["original", "proof"]},
    ),
]
Receipt = Annotated[
    str, FastPath(description="the receipt code of the assessment answer (dashes and case do not matter)")
]
ORDER_FILTERS = (
    query(
        "state",
        "unrectified (default: open, in_progress, submitted), all, or one state",
        {"type": "string", "enum": ["unrectified", "all", "open", "in_progress", "submitted", "verified", "closed"]},
    ),
    query("kind", "rectification or supervision", {"type": "string", "enum": ["rectification", "supervision"]}),
    query("enterprise_id", "only this enterprise's orders", {"type": "string"}),
    query("site", "only orders of this site_id", {"type": "string"}),
    query("district", "only orders of this district", {"type": "string"}),
    query("hazard", "only orders comparing this hazard type", {"type": "string"}),
)
PAGE = (
    query("limit", "orders per page (1..500, default 50)", {"type": "integer", "minimum": 0, "maximum": 500}),
    query("offset", "orders to skip", {"type": "integer", "minimum": 0}),
)
OVERDUE = query("overdue", "only unrectified orders past due", {"type": "boolean"})


async def order_store(parts: Parts) -> OrderStore:
    return parts.order_store


Store = Annotated[OrderStore, Depends(order_store)]


def viewer_of(principal: Any, *, acting: bool = False) -> Viewer:
    """Officers (reviewer and admin keys; everyone when auth is off) see all orders; an enterprise key
    only its own. The actor is the credential and its holder, never a name the request declares."""
    role_name = getattr(principal, "role", None)
    if role_name == "enterprise":
        enterprise_id = getattr(principal, "enterprise_id", None)
        if not enterprise_id:
            raise InputError("authorization", "this enterprise key is bound to no enterprise_id", status_code=403)
        return Viewer(actor=f"enterprise:{enterprise_id} [key:{principal.key_id}]", enterprise_id=enterprise_id)
    if principal is not None and role_name not in OFFICER_ROLES:
        raise InputError("authorization", f"role '{role_name}' may not use orders", status_code=403)
    if not acting:
        return Viewer(actor="")
    reviewer = reviewer_of(principal)
    return Viewer(actor=f"{reviewer.holder} [key:{reviewer.key_id}]" if reviewer.holder else f"key:{reviewer.key_id}")


async def viewer(who: Annotated[Any, Depends(principal)]) -> Viewer:
    return viewer_of(who)


async def actor(who: Annotated[Any, Depends(principal)]) -> Viewer:
    return viewer_of(who, acting=True)


def officers(message: str = FOR_OFFICERS):
    """The dependency of a route only union officers (reviewer, admin) may use; `message` is the 403."""

    async def officer(who: Annotated[Any, Depends(principal)]) -> Viewer:
        acting = viewer_of(who, acting=True)
        if not acting.is_officer:
            raise InputError("authorization", message, status_code=403)
        return acting

    officer.role = "reviewer"  # type: ignore[attr-defined]  (the API document's role of the route)
    return officer


Seen = Annotated[Viewer, Depends(viewer)]
Acting = Annotated[Viewer, Depends(actor)]
Officer = Annotated[Viewer, Depends(officers())]
Issuer = Annotated[Viewer, Depends(officers("only union officers issue rectification orders"))]
Supervisor = Annotated[Viewer, Depends(officers("only union officers open supervision cases"))]
Amender = Annotated[Viewer, Depends(officers("only union officers amend an order"))]
router = APIRouter(dependencies=[Depends(role("enterprise"))], tags=["orders"], route_class=AnswerRoute)


@router.get(
    "/",
    response_model=m.OrderList,
    responses=errors(422, 503),
    summary="Orders and supervision cases, soonest due first, with counts per state",
    openapi_extra={"parameters": [*ORDER_FILTERS, OVERDUE, *PAGE]},
)
def list_orders(request: Request, store: Store, seen: Seen) -> dict[str, Any]:
    return store.orders(parse_filter(request.query_params), viewer=seen)


@router.post(
    "/",
    status_code=201,
    response_model=m.Order,
    responses=errors(400, 404, 409, 422, 503),
    summary="Issue a rectification order for a confirmed case",
)
def create_order(body: NewOrderRequest, store: Store, acting: Issuer) -> dict[str, Any]:
    return store.create_order(body, viewer=acting)


@router.get(
    "/overdue",
    response_model=m.OrderList,
    responses=errors(422, 503),
    summary="Unrectified orders past their due time",
    openapi_extra={"parameters": [*ORDER_FILTERS, *PAGE]},
)
def list_overdue(request: Request, store: Store, seen: Seen) -> dict[str, Any]:
    return store.orders(parse_filter({**request.query_params, "overdue": "true"}), viewer=seen)


@router.post(
    "/supervision",
    status_code=201,
    response_model=m.Order,
    responses=errors(400, 409, 422, 503),
    summary="Open a supervision case (督办) for a high-risk enterprise",
)
def create_supervision(body: NewSupervisionRequest, store: Store, acting: Supervisor) -> dict[str, Any]:
    return store.create_supervision(body, viewer=acting)


@router.post(
    "/escalate",
    response_model=m.EscalatedBody,
    responses=errors(503),
    summary="Escalate overdue orders now (each API process also does every ANKANG_ORDERS_ESCALATE_SECONDS)",
)
def escalate(store: Store, _officer: Officer) -> dict[str, Any]:
    return {"escalated": store.escalate_overdue()}


@router.get(
    "/dashboard",
    response_model=m.DashboardBody,
    responses=errors(503),
    summary="Dashboard figures: by state, overdue, days to rectify, breakdowns, weekly trend",
)
def get_dashboard(parts: Parts, _officer: Officer) -> dict[str, Any]:
    return dashboard.top_of(parts.order_figures.get(parts.order_store.engine))


@router.get(
    "/dashboard.csv",
    response_class=Response,
    responses={**binary("text/csv"), **errors(503)},
    summary="Dashboard figures as one CSV table, every key",
)
def get_dashboard_csv(parts: Parts, _officer: Officer) -> Response:
    table = dashboard.summary_csv(parts.order_figures.get(parts.order_store.engine))
    return Response(
        table,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="orders_dashboard.csv"'},
    )


@router.get(
    "/{order_id}",
    response_model=m.OrderDetail,
    responses=errors(404, 503),
    summary="One order with its history and before / after comparison",
)
def get_order(order_id: OrderId, store: Store, seen: Seen) -> dict[str, Any]:
    return store.order(order_id, viewer=seen)


@router.patch(
    "/{order_id}",
    response_model=m.Order,
    responses=errors(400, 404, 409, 422, 503),
    summary="Amend assignee, officer, measures, notes, district or due time",
)
def patch_order(order_id: OrderId, body: AmendmentRequest, store: Store, acting: Amender) -> dict[str, Any]:
    return store.amend(order_id, body.changes, viewer=acting, comment=body.comment)


@router.post(
    "/{order_id}/transitions",
    status_code=201,
    response_model=m.Order,
    responses=errors(400, 404, 409, 422, 503),
    summary="Take an action: start, submit (supervision), verify, reject, close",
)
def post_transition(order_id: OrderId, body: MoveRequest, store: Store, acting: Acting) -> dict[str, Any]:
    return store.transition(order_id, body, viewer=acting)


async def proof_form(request: Request) -> tuple[bytes, str | None]:
    """The multipart form of a proof: the photo (at most 16 MiB) and an optional comment."""
    try:
        form = await request.form(max_files=1, max_fields=4)
    except HTTPException as error:  # Starlette's answer to a malformed multipart body
        raise InputError(
            "photo", f"send multipart/form-data with a `photo` file ({error.detail})", status_code=400
        ) from None
    photo, comment = form.get("photo"), form.get("comment")
    if not isinstance(photo, UploadFile):
        raise InputError("photo", "send the proof photo as the multipart file field `photo`")
    data = await photo.read(MAX_PROOF_BYTES + 1)
    if len(data) > MAX_PROOF_BYTES:
        raise InputError("photo", f"the proof photo is over {MAX_PROOF_BYTES // 2**20} MiB", status_code=413)
    if comment is not None and (not isinstance(comment, str) or len(comment) > 4000):
        raise InputError("comment", "comment must be text of at most 4000 characters")
    refuse_bad_text({"comment": comment})
    return data, comment or None


@router.post(
    "/{order_id}/proof",
    status_code=201,
    response_model=m.Order,
    responses=errors(400, 404, 409, 413, 415, 422, 503),
    summary="Submit a rectification with its proof photo (assessed by the photo model; the original photo itself "
    "is refused with 422, and the scene's similarity to the original is recorded)",
    openapi_extra=body_model(m.ProofForm, "multipart/form-data"),
)
async def post_proof(
    order_id: OrderId, form: Annotated[tuple[bytes, str | None], Depends(proof_form)], parts: Parts, acting: Acting
) -> dict[str, Any]:
    """Submit a rectification with its proof photo: assessed by the photo model, then stored and appended."""
    data, comment = form
    store = parts.order_store
    current = await run_in_threadpool(store.order, order_id, viewer=acting)
    if current["state"] != "in_progress":  # say so before spending the model on it
        raise wrong_state("submit", current["state"])
    original_sha256, original_dhash = await run_in_threadpool(store.original_scene, order_id, viewer=acting)
    await run_in_threadpool(refuse_the_original, store.photos, data, original_sha256)
    facts, assessment = await assess_upload(data, parts.photo, parts.decode_slots)
    digest = await run_in_threadpool(store.photos.put, data)
    scene = scene_similarity(facts.dhash, original_dhash)
    proof = Proof(sha256=digest, assessment=assessment.to_response(), scene=scene)
    submit = MoveRequest.model_construct(action="submit", comment=comment, outcome=None)  # the form is checked
    return await run_in_threadpool(store.transition, order_id, submit, viewer=acting, proof=proof)


@router.get(
    "/{order_id}/photos/{which}",
    response_class=Response,
    responses={**binary("image/jpeg"), **errors(404, 503)},
    summary="The order's original or proof photo, display size",
)
def get_photo(order_id: OrderId, which: WhichPhoto, store: Store, seen: Seen) -> Response:
    if which not in ("original", "proof"):
        raise InputError("photo", f"unknown photo {which!r}; use original or proof", status_code=404)
    digest = store.proof_digest(order_id, which, viewer=seen)
    data = store.photos.derived(digest, "display")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400, immutable"})


def not_found(request: Request, status: int) -> InputError:
    verb = f"{request.method} is not allowed here" if status == 405 else "no such endpoint"
    routes = "GET|POST /v1/orders/, GET /v1/orders/{id}, POST /v1/orders/{id}/transitions, POST /v1/orders/{id}/proof"
    return InputError("path", f"{verb}; see {routes}", status_code=status)


# The pages (serving/orders/pages.py) for officers and enterprises, their photos and actions under
# /orders, where a signed-in session is accepted. Each page tells the roles apart itself.
page_router = APIRouter(dependencies=[Depends(role("enterprise"))], include_in_schema=False)


@page_router.get("/")
async def get_page(request: Request, parts: Parts) -> HTMLResponse:
    """Officers: the dashboard. An enterprise: its own orders."""
    return await orders_home(request, parts)


@page_router.get("/new")
async def get_issue_form(request: Request, parts: Parts) -> HTMLResponse:
    """Officers: issue a rectification order from a confirmed review case (?photo_id=)."""
    return await issue_form(request, parts)


@page_router.get("/{order_id}")
async def get_order_page(order_id: OrderId, request: Request, parts: Parts) -> HTMLResponse:
    return await order_page(request, parts, order_id)


page_router.get("/{order_id}/photos/{which}")(get_photo)
page_router.post("/{order_id}/transitions", status_code=201)(post_transition)

orders_api = route_app(router, not_found=not_found)
orders_page = route_app(page_router, not_found=not_found, static=HERE / "static")
