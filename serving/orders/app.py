"""HTTP routes of the order loop, mounted into the BentoML service.

`orders_api` (at /v1/orders): rectification orders and supervision cases, their transitions,
proof photos, escalation, dashboard figures (JSON and CSV). `reports_api` (at /v1/reports): a
reporter's receipt lookup, open to anyone, rate limited. `orders_page` (at /orders): the
officers' dashboard page, server-rendered HTML with SVG charts.

Every /v1/orders route takes enterprise keys (scoped to their own enterprise's orders) and officers'
(reviewer, admin); `officers(...)` marks the routes only officers may use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from runtime.errors import InputError
from serving.api.app import route_app
from serving.api.dependencies import Backends, backends, principal, role
from serving.orders import dashboard, receipts
from serving.orders.pages import issue_form, order_page, orders_home
from serving.orders.proof import refuse_the_original, scene_similarity
from serving.orders.requests import (
    Move,
    parse_amendment,
    parse_filter,
    parse_move,
    parse_new_order,
    parse_new_supervision,
)
from serving.orders.states import Viewer, wrong_state
from serving.orders.store import OrderStore, Proof
from serving.pipeline import assess_upload
from serving.review.app import Body
from serving.review.decisions import reviewer_of

HERE = Path(__file__).resolve().parent
OFFICER_ROLES = ("reviewer", "admin")
MAX_PROOF_BYTES = 16 * 1024 * 1024
FOR_OFFICERS = "this is for union officers; an enterprise key sees its own orders at /v1/orders"
Parts = Annotated[Backends, Depends(backends)]


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
router = APIRouter(dependencies=[Depends(role("enterprise"))])


@router.get("/")
def list_orders(request: Request, store: Store, seen: Seen) -> JSONResponse:
    return JSONResponse(store.orders(parse_filter(request.query_params), viewer=seen))


@router.post("/", status_code=201)
def create_order(
    body: Body,
    store: Store,
    acting: Annotated[Viewer, Depends(officers("only union officers issue rectification orders"))],
) -> JSONResponse:
    return JSONResponse(store.create_order(parse_new_order(body), viewer=acting), status_code=201)


@router.get("/overdue")
def list_overdue(request: Request, store: Store, seen: Seen) -> JSONResponse:
    query = parse_filter({**request.query_params, "overdue": "true"})
    return JSONResponse(store.orders(query, viewer=seen))


@router.post("/supervision", status_code=201)
def create_supervision(body: Body, store: Store, acting: Supervisor) -> JSONResponse:
    return JSONResponse(store.create_supervision(parse_new_supervision(body), viewer=acting), status_code=201)


@router.post("/escalate")
def escalate(store: Store, _officer: Officer) -> JSONResponse:
    return JSONResponse({"escalated": store.escalate_overdue()})


@router.get("/dashboard")
def get_dashboard(parts: Parts, _officer: Officer) -> JSONResponse:
    return JSONResponse(dashboard.top_of(parts.order_figures.get(parts.order_store.engine)))


@router.get("/dashboard.csv")
def get_dashboard_csv(parts: Parts, _officer: Officer) -> Response:
    table = dashboard.summary_csv(parts.order_figures.get(parts.order_store.engine))
    return Response(
        table,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="orders_dashboard.csv"'},
    )


@router.get("/{order_id}")
def get_order(order_id: str, store: Store, seen: Seen) -> JSONResponse:
    return JSONResponse(store.order(order_id, viewer=seen))


@router.patch("/{order_id}")
def patch_order(
    order_id: str,
    body: Body,
    store: Store,
    acting: Amender,
) -> JSONResponse:
    changes, comment = parse_amendment(body)
    return JSONResponse(store.amend(order_id, changes, viewer=acting, comment=comment))


@router.post("/{order_id}/transitions", status_code=201)
def post_transition(order_id: str, body: Body, store: Store, acting: Acting) -> JSONResponse:
    return JSONResponse(store.transition(order_id, parse_move(body), viewer=acting), status_code=201)


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
    return data, comment or None


@router.post("/{order_id}/proof", status_code=201)
async def post_proof(
    order_id: str, form: Annotated[tuple[bytes, str | None], Depends(proof_form)], parts: Parts, acting: Acting
) -> JSONResponse:
    """Submit a rectification with its proof photo: assessed by the photo model, then stored and appended."""
    data, comment = form
    store = parts.order_store
    current = await run_in_threadpool(store.order, order_id, viewer=acting)
    if current["state"] != "in_progress":  # say so before spending the model on it
        raise wrong_state("submit", current["state"])
    original_sha256, original_dhash = await run_in_threadpool(store.original_scene, order_id, viewer=acting)
    await run_in_threadpool(refuse_the_original, store.photos, data, original_sha256)
    image, assessment = await assess_upload(data, parts.photo, parts.decode_slots)
    digest = await run_in_threadpool(store.photos.put, data)
    scene = await run_in_threadpool(scene_similarity, image, original_dhash)
    proof = Proof(sha256=digest, assessment=assessment.to_response(), scene=scene)
    result = await run_in_threadpool(
        store.transition, order_id, Move("submit", comment, None), viewer=acting, proof=proof
    )
    return JSONResponse(result, status_code=201)


@router.get("/{order_id}/photos/{which}")
def get_photo(order_id: str, which: str, store: Store, seen: Seen) -> Response:
    if which not in ("original", "proof"):
        raise InputError("photo", f"unknown photo {which!r}; use original or proof", status_code=404)
    digest = store.proof_digest(order_id, which, viewer=seen)
    data = store.photos.derived(digest, "display")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400, immutable"})


def not_found(request: Request, status: int) -> InputError:
    verb = f"{request.method} is not allowed here" if status == 405 else "no such endpoint"
    routes = "GET|POST /v1/orders/, GET /v1/orders/{id}, POST /v1/orders/{id}/transitions, POST /v1/orders/{id}/proof"
    return InputError("path", f"{verb}; see {routes}", status_code=status)


reports_router = APIRouter()


@reports_router.get("/{receipt}")
def get_report(receipt: str, request: Request, parts: Parts) -> JSONResponse:
    """A reporter's receipt: stage and outcome only. No key needed; rate limited per address."""
    if not parts.receipt_lookups.allow(request.client.host if request.client else "unknown"):
        raise InputError("receipt", "too many receipt lookups from this address; wait a minute", status_code=429)
    status = receipts.report_status(parts.order_store.engine, receipt)
    return JSONResponse(status, headers={"Cache-Control": "no-store"})


def no_report(_request: Request, status: int) -> InputError:
    return InputError("receipt", "look a report up with GET /v1/reports/{receipt code}", status_code=status)


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
async def get_order_page(order_id: str, request: Request, parts: Parts) -> HTMLResponse:
    return await order_page(request, parts, order_id)


page_router.get("/{order_id}/photos/{which}")(get_photo)
page_router.post("/{order_id}/transitions", status_code=201)(post_transition)

orders_api = route_app(router, not_found=not_found)
reports_api = route_app(reports_router, not_found=no_report)
orders_page = route_app(page_router, not_found=not_found, static=HERE / "static")
