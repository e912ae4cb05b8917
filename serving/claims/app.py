"""HTTP routes of workers' claims, as FastAPI routers.

`claims_router` (at /v1/claims): filing a claim (intake and informant keys; officers at a window),
the queue of cases, one case, transitions, merge and split, escalation and the figures (JSON and
CSV). `reports_router` (at /v1/reports): a worker's receipt (a claim's or a photo report's) with
its timeline, and the worker's feedback; open to anyone, rate limited per address.
`claims_app()` and `reports_app()` wrap them for mounting until serving has one FastAPI app.

Roles as for orders: officers (reviewer and admin keys) see and act on every case; an enterprise key
sees its own cases once they were dispatched to the enterprise union, without claimant data;
intake and informant keys only file (an informant files through the `informant` channel only).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Match
from starlette.staticfiles import StaticFiles

from runtime.errors import InputError
from serving.claims import figures as claim_figures
from serving.claims.feedback import Receipts
from serving.claims.page import render_figures, render_queue
from serving.claims.requests import (
    parse_case_move,
    parse_feedback,
    parse_filter,
    parse_merge,
    parse_new_claim,
    parse_split,
)
from serving.claims.risk_feed import feed_risk
from serving.claims.states import Viewer
from serving.claims.store import ClaimStore
from serving.claims.worker import EscalationWorker
from serving.errors import error_response
from serving.orders import receipts as order_receipts
from serving.orders.app import holder as orders_holder
from serving.review.app import json_body
from serving.review.decisions import reviewer_of
from serving.settings import ServingSettings

log = logging.getLogger("ankang.claims")
HERE = Path(__file__).resolve().parent
OFFICER_ROLES = ("reviewer", "admin")
FILING_ROLES = ("intake", "informant", *OFFICER_ROLES)


class ClaimsHolder:
    """The service's claims store and what it needs from the rest, set by `Ankang.__init__`."""

    store: ClaimStore | None = None
    receipts: Receipts | None = None
    risk: Any = None  # serving.reload.HotSwap of serving.risk.RiskScorer: rescoring after mass arrears
    pseudonymise: Callable[[str | None], str | None] = staticmethod(lambda raw: None)
    figures = claim_figures.CachedFigures()
    feedback_limiter = order_receipts.RateLimiter(prefix="ankang:receipt-feedback")

    def attach(
        self, order_store: Any, *, risk: Any, settings: ServingSettings, pseudonymise: Callable | None = None
    ) -> ClaimStore:
        """Claims on the order store's database; escalation runs in the orders' worker (same outbox)."""
        self.store = ClaimStore.beside(order_store)
        self.receipts = Receipts(engine=order_store.engine, orders=order_store, policy=self.store.policy)
        self.risk = risk
        if pseudonymise is not None:
            self.pseudonymise = staticmethod(pseudonymise)
        self.feedback_limiter = order_receipts.RateLimiter(
            redis_url=settings.redis_url, prefix="ankang:receipt-feedback"
        )
        EscalationWorker(
            self.store,
            figures=self.figures,
            escalate_every=settings.orders_escalate_seconds,
            refresh_every=settings.orders_deliver_seconds,
        ).start()
        return self.store

    def get(self) -> ClaimStore:
        if self.store is None:
            raise InputError("service", "the claims store is not ready yet; retry in a moment", status_code=503)
        return self.store

    def get_receipts(self) -> Receipts:
        self.get()
        return self.receipts

    def rescore(self, enterprise_id: str) -> dict[str, Any] | None:
        """Score the enterprise by id (its claims and photo hazards filled in); at the supervision tier
        this opens its supervision case. None when no risk model is loaded."""
        if self.risk is None:
            log.warning("claims_rescore_skipped", extra={"enterprise_id": enterprise_id, "why": "no risk model"})
            return None
        scorer = self.risk.current if hasattr(self.risk, "current") else self.risk
        results = feed_risk([{"enterprise_id": enterprise_id}], orders_holder.get(), self.get(), scorer.score_profiles)
        return results[0]


holder = ClaimsHolder()


def _principal_role(request: Request) -> tuple[Any, str | None]:
    principal = request.scope.get("ankang.principal")
    return principal, getattr(principal, "role", None)


def _actor(principal: Any) -> str:
    reviewer = reviewer_of(principal)
    return f"{reviewer.holder} [key:{reviewer.key_id}]" if reviewer.holder else f"key:{reviewer.key_id}"


def viewer_of(request: Request) -> Viewer:
    """Officers see everything; an enterprise key its own dispatched cases; other roles nothing."""
    principal, role = _principal_role(request)
    if role == "enterprise":
        enterprise_id = getattr(principal, "enterprise_id", None)
        if not enterprise_id:
            raise InputError("authorization", "this enterprise key is bound to no enterprise_id", status_code=403)
        return Viewer(actor=f"enterprise:{enterprise_id} [key:{principal.key_id}]", enterprise_id=enterprise_id)
    if role not in OFFICER_ROLES:
        raise InputError(
            "authorization", f"role '{role}' may file claims but not read them; officers read them", status_code=403
        )
    return Viewer(actor=_actor(principal))


def officer_of(request: Request) -> Viewer:
    viewer = viewer_of(request)
    if not viewer.is_officer:
        raise InputError("authorization", "this is for union officers", status_code=403)
    return viewer


def _check_channel(role: str | None, channel: str) -> None:
    if role == "informant" and channel != "informant":
        raise InputError("channel", "an informant key files through the `informant` channel", status_code=403)
    if role == "intake" and channel == "informant":
        raise InputError("channel", "the `informant` channel is for informant keys", status_code=403)


claims_router = APIRouter(tags=["claims"])
reports_router = APIRouter(tags=["reports"])


@claims_router.post("/", status_code=201)
async def file_claim(request: Request) -> JSONResponse:
    """File one worker's claim; it joins the open case of the same enterprise and type (30 days)."""
    principal, role = _principal_role(request)
    if role not in FILING_ROLES:
        raise InputError("authorization", f"role '{role}' may not file claims", status_code=403)
    claim = parse_new_claim(await json_body(request))
    _check_channel(role, claim.channel)
    claim = dataclasses.replace(claim, claimant=holder.pseudonymise(claim.claimant))
    store = holder.get()
    filed = await run_in_threadpool(store.file_claim, claim, received_by=f"{role}:{_actor(principal)}")
    case = filed.pop("case")
    filed["case"] = {key: case[key] for key in ("id", "state", "claimants", "workers", "type")}
    filed["rescored"] = False
    if case["type"] == "wage_arrears" and case["workers"] >= store.policy.mass_workers:
        result = await run_in_threadpool(holder.rescore, claim.enterprise_id)
        filed["rescored"] = result is not None
    return JSONResponse(filed, status_code=201, headers={"Cache-Control": "no-store"})


@claims_router.get("/")
async def list_cases(request: Request) -> JSONResponse:
    query = parse_filter(request.query_params)
    viewer = viewer_of(request)
    return JSONResponse(await run_in_threadpool(holder.get().cases, query, viewer=viewer))


@claims_router.get("/figures")
async def get_figures(request: Request) -> JSONResponse:
    officer_of(request)
    store = holder.get()
    figures, stale = await run_in_threadpool(holder.figures.get, store.engine, mass_workers=store.policy.mass_workers)
    return JSONResponse({**figures, "stale": stale})


@claims_router.get("/figures.csv")
async def get_figures_csv(request: Request) -> Response:
    officer_of(request)
    store = holder.get()
    figures, _ = await run_in_threadpool(holder.figures.get, store.engine, mass_workers=store.policy.mass_workers)
    return Response(
        claim_figures.figures_csv(figures),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="claims_figures.csv"'},
    )


@claims_router.post("/escalate")
async def escalate(request: Request) -> JSONResponse:
    officer_of(request)
    return JSONResponse({"escalated": await run_in_threadpool(holder.get().escalate_overdue)})


@claims_router.get("/{case_id}")
async def get_case(case_id: str, request: Request) -> JSONResponse:
    viewer = viewer_of(request)
    return JSONResponse(await run_in_threadpool(holder.get().case, case_id, viewer=viewer))


@claims_router.post("/{case_id}/transitions", status_code=201)
async def post_transition(case_id: str, request: Request) -> JSONResponse:
    viewer = officer_of(request)
    store = holder.get()
    move = parse_case_move(await json_body(request), store.policy)
    return JSONResponse(await run_in_threadpool(store.transition, case_id, move, viewer=viewer), status_code=201)


@claims_router.post("/{case_id}/merge")
async def post_merge(case_id: str, request: Request) -> JSONResponse:
    viewer = officer_of(request)
    into = parse_merge(await json_body(request))
    return JSONResponse(await run_in_threadpool(holder.get().merge, case_id, into, viewer=viewer))


@claims_router.post("/{case_id}/split")
async def post_split(case_id: str, request: Request) -> JSONResponse:
    viewer = officer_of(request)
    claim_ids = parse_split(await json_body(request))
    return JSONResponse(await run_in_threadpool(holder.get().split, case_id, claim_ids, viewer=viewer))


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@reports_router.get("/{receipt}")
async def get_report(receipt: str, request: Request) -> JSONResponse:
    """A receipt's stage and timeline (claims and photo reports). No key; rate limited per address."""
    if not orders_holder.lookups.allow(_client(request)):
        raise InputError("receipt", "too many receipt lookups from this address; wait a minute", status_code=429)
    status = await run_in_threadpool(holder.get_receipts().status, receipt)
    return JSONResponse(status, headers={"Cache-Control": "no-store"})


@reports_router.post("/{receipt}/feedback", status_code=201)
async def post_feedback(receipt: str, request: Request) -> JSONResponse:
    """The worker rates a closed stage: {"satisfied": 1-5, "resolved": bool, "comment"?}; not resolved
    reopens it (at most twice, then supervision). No key; rate limited per address."""
    if not holder.feedback_limiter.allow(_client(request)):
        raise InputError("receipt", "too many answers from this address; wait a minute", status_code=429)
    feedback = parse_feedback(await json_body(request))
    answer = await run_in_threadpool(holder.get_receipts().give_feedback, receipt, feedback)
    return JSONResponse(answer, status_code=201, headers={"Cache-Control": "no-store"})


async def _input_error(_request: Request, error: InputError) -> Response:
    return error_response(error)


async def _validation_error(_request: Request, error: RequestValidationError) -> Response:
    problems = [
        {"field": ".".join(str(p) for p in e["loc"][1:]) or "body", "message": e["msg"]} for e in error.errors()
    ]
    first = problems[0] if problems else {"field": "body", "message": "invalid request"}
    return error_response(InputError(first["field"], first["message"], errors=problems))


def _unknown_paths(app: FastAPI, field: str, hint: Callable[[str, bool], str]) -> None:
    """JSON for any path the app does not serve, 405 where the path exists for another method (mounted
    into BentoML, the framework's own 404 there would be plain text)."""

    async def unknown_path(request: Request) -> Response:
        scope = {**request.scope, "path": request.url.path.removeprefix(request.scope.get("root_path", ""))}
        known = any(route.matches(scope)[0] == Match.PARTIAL for route in app.router.routes[:-1])
        return error_response(InputError(field, hint(request.method, known), status_code=405 if known else 404))

    app.add_api_route(
        "/{rest:path}", unknown_path, methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
    )


def _app(router: APIRouter, *, field: str, hint: Callable[[str, bool], str]) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(router)
    _unknown_paths(app, field, hint)
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    return app


claims_page_router = APIRouter(include_in_schema=False)


@claims_page_router.get("/")
async def get_queue_page(request: Request) -> HTMLResponse:
    """The officers' queue: filters, most urgent first (injuries, then mass arrears)."""
    viewer = officer_of(request)
    query = parse_filter(request.query_params)
    store = holder.get()
    page = await run_in_threadpool(store.cases, query, viewer=viewer)
    html = render_queue(page, policy=store.policy, query=dict(request.query_params))
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@claims_page_router.get("/figures")
async def get_figures_page(request: Request) -> HTMLResponse:
    officer_of(request)
    store = holder.get()
    figures, stale = await run_in_threadpool(holder.figures.get, store.engine, mass_workers=store.policy.mass_workers)
    return HTMLResponse(render_figures(figures, stale=stale), headers={"Cache-Control": "no-store"})


def claims_page() -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    app.include_router(claims_page_router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_exception_handler(InputError, _input_error)
    return app


def claims_app() -> FastAPI:
    routes = (
        "POST /v1/claims/, GET /v1/claims/, GET /v1/claims/{case_id}, POST /v1/claims/{case_id}/transitions, "
        "/merge, /split, GET /v1/claims/figures(.csv)"
    )
    return _app(
        claims_router,
        field="path",
        hint=lambda method, known: (
            f"{method} is not allowed here; see {routes}" if known else f"no such endpoint; see {routes}"
        ),
    )


def reports_app() -> FastAPI:
    return _app(
        reports_router,
        field="receipt",
        hint=lambda _method, _known: (
            "look a report up with GET /v1/reports/{receipt code}; "
            "answer a closed one with POST /v1/reports/{receipt code}/feedback"
        ),
    )


def standalone_app(store: ClaimStore, *, receipts: Receipts | None = None) -> Any:
    """The claims API, receipts and pages without BentoML and without keys, every request an officer
    (benchmarks, local trials): the ASGI app with `serving.auth.ANONYMOUS` as every request's principal."""
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from serving.auth import ANONYMOUS

    holder.store = store
    holder.receipts = receipts or Receipts(engine=store.engine, orders=store.orders, policy=store.policy)
    inner = Starlette(
        routes=[Mount("/v1/claims", claims_app()), Mount("/v1/reports", reports_app()), Mount("/claims", claims_page())]
    )

    async def app(scope, receive, send):
        scope["ankang.principal"] = ANONYMOUS
        await inner(scope, receive, send)

    return app
