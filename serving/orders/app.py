"""HTTP apps of the order loop, mounted into the BentoML service.

`orders_api` (at /v1/orders): rectification orders and supervision cases, their transitions,
proof photos, escalation, dashboard figures (JSON and CSV). `reports_api` (at /v1/reports): a
reporter's receipt lookup, open to anyone, rate limited. `orders_page` (at /orders): the
officers' dashboard page, server-rendered HTML with SVG charts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

from runtime.errors import InputError
from serving.batching import QueueFull
from serving.errors import error_response
from serving.images import decode_photo
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
from serving.orders.worker import LoopWorker
from serving.review.app import json_body, json_errors
from serving.review.decisions import reviewer_of
from serving.settings import ServingSettings

HERE = Path(__file__).resolve().parent
OFFICER_ROLES = ("reviewer", "admin")
MAX_PROOF_BYTES = 16 * 1024 * 1024


class OrdersHolder:
    """The service's order store and photo model, set by `Ankang.__init__` (mounted apps get no lifespan)."""

    store: OrderStore | None = None
    photo: Any = None  # serving.reload.HotSwap of serving.photo.PhotoModel
    lookups = receipts.RateLimiter()
    figures = dashboard.CachedFigures()

    def attach(self, review_store: Any, *, photo: Any, settings: ServingSettings) -> OrderStore:
        """The service's hook: orders on the review store's database, proof photos through `photo`
        (its HotSwap), and the escalation / webhook worker of this process."""
        self.store, self.photo = OrderStore.beside(review_store), photo
        self.lookups = receipts.RateLimiter(redis_url=settings.redis_url)
        LoopWorker.from_settings(self.store, settings, figures=self.figures).start()
        return self.store

    def get(self) -> OrderStore:
        if self.store is None:
            raise InputError("service", "the order store is not ready yet; retry in a moment", status_code=503)
        return self.store

    async def assess(self, data: bytes) -> tuple[dict[str, Any], Any]:
        """The photo model's assessment of a proof photo, through the service's own batcher, and the
        decoded image (for the scene comparison with the original)."""
        if self.photo is None:
            raise InputError("service", "no photo model is loaded on this server", status_code=503)
        model = self.photo.current

        def prepare():
            image = decode_photo(data)
            return image, model.card.preprocess(image)

        image, model_input = await asyncio.to_thread(prepare)
        assessment = await model.assess(model_input, width=image.width, height=image.height)
        return assessment.to_response(), image


holder = OrdersHolder()


def viewer_of(request: Request, *, acting: bool = False) -> Viewer:
    """Officers (reviewer and admin keys; everyone when auth is off) see all orders; an enterprise key
    only its own. The actor is the credential and its holder, never a name the request declares."""
    principal = request.scope.get("ankang.principal")
    role = getattr(principal, "role", None)
    if role == "enterprise":
        enterprise_id = getattr(principal, "enterprise_id", None)
        if not enterprise_id:
            raise InputError("authorization", "this enterprise key is bound to no enterprise_id", status_code=403)
        return Viewer(actor=f"enterprise:{enterprise_id} [key:{principal.key_id}]", enterprise_id=enterprise_id)
    if principal is not None and role not in OFFICER_ROLES:
        raise InputError("authorization", f"role '{role}' may not use orders", status_code=403)
    if not acting:
        return Viewer(actor="")
    reviewer = reviewer_of(principal)
    return Viewer(actor=f"{reviewer.holder} [key:{reviewer.key_id}]" if reviewer.holder else f"key:{reviewer.key_id}")


def officer_of(request: Request) -> Viewer:
    viewer = viewer_of(request)
    if not viewer.is_officer:
        raise InputError(
            "authorization",
            "this is for union officers; an enterprise key sees its own orders at /v1/orders",
            status_code=403,
        )
    return viewer


@json_errors
async def list_orders(request: Request) -> Response:
    query = parse_filter(request.query_params)
    viewer = viewer_of(request)
    return JSONResponse(await run_in_threadpool(holder.get().orders, query, viewer=viewer))


@json_errors
async def list_overdue(request: Request) -> Response:
    query = parse_filter({**request.query_params, "overdue": "true"})
    viewer = viewer_of(request)
    return JSONResponse(await run_in_threadpool(holder.get().orders, query, viewer=viewer))


@json_errors
async def create_order(request: Request) -> Response:
    body = await json_body(request)
    order = parse_new_order(body)
    viewer = viewer_of(request, acting=True)
    return JSONResponse(await run_in_threadpool(holder.get().create_order, order, viewer=viewer), status_code=201)


@json_errors
async def create_supervision(request: Request) -> Response:
    body = await json_body(request)
    case = parse_new_supervision(body)
    viewer = viewer_of(request, acting=True)
    return JSONResponse(await run_in_threadpool(holder.get().create_supervision, case, viewer=viewer), status_code=201)


@json_errors
async def escalate(request: Request) -> Response:
    officer_of(request)
    return JSONResponse({"escalated": await run_in_threadpool(holder.get().escalate_overdue)})


@json_errors
async def get_order(request: Request) -> Response:
    viewer = viewer_of(request)
    return JSONResponse(await run_in_threadpool(holder.get().order, request.path_params["order_id"], viewer=viewer))


@json_errors
async def patch_order(request: Request) -> Response:
    body = await json_body(request)
    changes, comment = parse_amendment(body)
    viewer = viewer_of(request, acting=True)
    result = await run_in_threadpool(
        holder.get().amend, request.path_params["order_id"], changes, viewer=viewer, comment=comment
    )
    return JSONResponse(result)


@json_errors
async def post_transition(request: Request) -> Response:
    body = await json_body(request)
    move = parse_move(body)
    viewer = viewer_of(request, acting=True)
    result = await run_in_threadpool(holder.get().transition, request.path_params["order_id"], move, viewer=viewer)
    return JSONResponse(result, status_code=201)


async def _proof_form(request: Request) -> tuple[bytes, str | None]:
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


@json_errors
async def post_proof(request: Request) -> Response:
    """Submit a rectification with its proof photo: assessed by the photo model, then stored and appended."""
    order_id, store = request.path_params["order_id"], holder.get()
    data, comment = await _proof_form(request)
    viewer = viewer_of(request, acting=True)
    current = await run_in_threadpool(store.order, order_id, viewer=viewer)
    if current["state"] != "in_progress":  # say so before spending the model on it
        raise wrong_state("submit", current["state"])
    original_sha256, original_dhash = await run_in_threadpool(store.original_scene, order_id, viewer=viewer)
    await run_in_threadpool(refuse_the_original, store.photos, data, original_sha256)
    try:
        assessment, image = await holder.assess(data)
    except QueueFull:
        body = {"error": {"field": "photo", "message": "the photo model is busy; retry in a second"}}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
    digest = await run_in_threadpool(store.photos.put, data)
    result = await run_in_threadpool(
        store.transition,
        order_id,
        Move("submit", comment, None),
        viewer=viewer,
        proof=Proof(sha256=digest, assessment=assessment, scene=scene_similarity(image, original_dhash)),
    )
    return JSONResponse(result, status_code=201)


@json_errors
async def get_photo(request: Request) -> Response:
    which = request.path_params["which"]
    if which not in ("original", "proof"):
        raise InputError("photo", f"unknown photo {which!r}; use original or proof", status_code=404)
    viewer, store = viewer_of(request), holder.get()
    digest = await run_in_threadpool(store.proof_digest, request.path_params["order_id"], which, viewer=viewer)
    data = await run_in_threadpool(store.photos.derived, digest, "display")
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400, immutable"})


@json_errors
async def get_dashboard(request: Request) -> Response:
    officer_of(request)
    figures = await run_in_threadpool(holder.figures.get, holder.get().engine)
    return JSONResponse(dashboard.top_of(figures))


@json_errors
async def get_dashboard_csv(request: Request) -> Response:
    officer_of(request)
    figures = await run_in_threadpool(holder.figures.get, holder.get().engine)
    table = await run_in_threadpool(dashboard.summary_csv, figures)
    return Response(
        table,
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="orders_dashboard.csv"'},
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@json_errors
async def get_report(request: Request) -> Response:
    """A reporter's receipt: stage and outcome only. No key needed; rate limited per address."""
    if not holder.lookups.allow(_client(request)):
        raise InputError("receipt", "too many receipt lookups from this address; wait a minute", status_code=429)
    status = await run_in_threadpool(receipts.report_status, holder.get().engine, request.path_params["receipt"])
    return JSONResponse(status, headers={"Cache-Control": "no-store"})


async def not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    verb = f"{request.method} is not allowed here" if status == 405 else "no such endpoint"
    routes = "GET|POST /v1/orders/, GET /v1/orders/{id}, POST /v1/orders/{id}/transitions, POST /v1/orders/{id}/proof"
    return error_response(InputError("path", f"{verb}; see {routes}", status_code=status))


async def no_report(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    return error_response(
        InputError("receipt", "look a report up with GET /v1/reports/{receipt code}", status_code=status)
    )


def catch_all(handler, app: Callable[[], Starlette]) -> Route:
    """JSON for unknown paths inside a mounted app (Starlette's own 404 there is plain text): 405 when
    the path exists for another method."""

    async def unknown_path(request: Request) -> Response:
        known = any(route.matches(request.scope)[0] == Match.PARTIAL for route in app().routes[:-1])
        return await handler(request, HTTPException(405 if known else 404))

    return Route("/{rest:path}", unknown_path, methods=["GET", "POST", "PUT", "PATCH", "DELETE"])


orders_api = Starlette(
    exception_handlers={404: not_found, 405: not_found},
    routes=[
        Route("/", list_orders, methods=["GET"]),
        Route("/", create_order, methods=["POST"]),
        Route("/overdue", list_overdue, methods=["GET"]),
        Route("/supervision", create_supervision, methods=["POST"]),
        Route("/escalate", escalate, methods=["POST"]),
        Route("/dashboard", get_dashboard, methods=["GET"]),
        Route("/dashboard.csv", get_dashboard_csv, methods=["GET"]),
        Route("/{order_id}", get_order, methods=["GET"]),
        Route("/{order_id}", patch_order, methods=["PATCH"]),
        Route("/{order_id}/transitions", post_transition, methods=["POST"]),
        Route("/{order_id}/proof", post_proof, methods=["POST"]),
        Route("/{order_id}/photos/{which}", get_photo, methods=["GET"]),
        catch_all(not_found, lambda: orders_api),
    ],
)


reports_api = Starlette(
    exception_handlers={404: no_report, 405: no_report},
    routes=[
        Route("/{receipt}", get_report, methods=["GET"]),
        catch_all(no_report, lambda: reports_api),
    ],
)


# The pages (serving/orders/pages.py), their photos and actions under /orders.
orders_page = Starlette(
    routes=[
        Route("/", orders_home, methods=["GET"]),
        Route("/new", issue_form, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        Route("/{order_id}", order_page, methods=["GET"]),
        Route("/{order_id}/photos/{which}", get_photo, methods=["GET"]),
        Route("/{order_id}/transitions", post_transition, methods=["POST"]),
    ]
)


def standalone_app(store: OrderStore, *, photo: Any = None) -> Starlette:
    """The order API, receipts and page without BentoML (browser tests, benchmarks)."""
    holder.store, holder.photo = store, photo
    return Starlette(
        routes=[Mount("/v1/orders", orders_api), Mount("/v1/reports", reports_api), Mount("/orders", orders_page)]
    )
