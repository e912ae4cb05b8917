"""HTTP routes of workers' claims, as FastAPI routers mounted from serving/routes.py.

`claims_api` (at /v1/claims): filing a claim (intake and informant keys; officers at a window),
the queue of cases, one case, transitions, merge and split, escalation and the figures (JSON and
CSV). `reports_api` (at /v1/reports): a worker's receipt (a claim's or a photo report's) with its
timeline, and the worker's feedback; open to anyone, rate limited per address. `claims_page` (at
/claims): the officers' queue and figures pages.

Roles as for orders: officers (reviewer and admin keys) see and act on every case; an enterprise key
sees its own cases once they were dispatched to the enterprise union, without claimant data;
intake and informant keys only file (an informant files through the `informant` channel only).
"""

from __future__ import annotations

import functools
import logging
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, Response

from runtime.errors import InputError
from serving import api_models as m
from serving.api.app import AnswerRoute, route_app
from serving.api.dependencies import Backends, backends, principal, role
from serving.api.responses import binary, errors
from serving.claims import figures as claim_figures
from serving.claims.feedback import Receipts
from serving.claims.page import render_figures, render_queue
from serving.claims.requests import (
    CaseMoveRequest,
    FeedbackRequest,
    MergeRequest,
    NewClaimRequest,
    SplitRequest,
    parse_filter,
)
from serving.claims.risk_feed import feed_risk
from serving.claims.states import Viewer
from serving.claims.store import ClaimStore
from serving.review.decisions import reviewer_of

log = logging.getLogger("ankang.claims")
HERE = Path(__file__).resolve().parent
OFFICER_ROLES = ("reviewer", "admin")
FILING_ROLES = ("intake", "informant", *OFFICER_ROLES)
Parts = Annotated[Backends, Depends(backends)]
Who = Annotated[Any, Depends(principal)]


async def claim_store(parts: Parts) -> ClaimStore:
    if parts.claim_store is None:
        raise InputError("service", "the claims store is not ready yet; retry in a moment", status_code=503)
    return parts.claim_store


async def claim_receipts(parts: Parts) -> Receipts:
    if parts.claim_receipts is None:
        raise InputError("service", "the receipts are not ready yet; retry in a moment", status_code=503)
    return parts.claim_receipts


Store = Annotated[ClaimStore, Depends(claim_store)]
Lookups = Annotated[Receipts, Depends(claim_receipts)]


def rescore(parts: Backends, store: ClaimStore, enterprise_id: str) -> dict[str, Any] | None:
    """Score the enterprise by id (its claims and photo hazards filled in); at the supervision tier
    this opens its supervision case. None when no risk model is loaded here."""
    if parts.risk is None:
        log.warning("claims_rescore_skipped", extra={"enterprise_id": enterprise_id, "why": "no risk model"})
        return None
    scorer = parts.risk.current if hasattr(parts.risk, "current") else parts.risk
    score = scorer.score_profiles
    if parts.score_records is not None:  # kept like every score, as source `claims`
        score = functools.partial(score, on_scored=parts.score_records.keeper(scorer, source="claims"))
    return feed_risk([{"enterprise_id": enterprise_id}], parts.order_store, store, score)[0]


def _actor(who: Any) -> str:
    reviewer = reviewer_of(who)
    return f"{reviewer.holder} [key:{reviewer.key_id}]" if reviewer.holder else f"key:{reviewer.key_id}"


def viewer_of(who: Any) -> Viewer:
    """Officers see everything; an enterprise key its own dispatched cases; other roles nothing."""
    role_name = getattr(who, "role", None)
    if role_name == "enterprise":
        enterprise_id = getattr(who, "enterprise_id", None)
        if not enterprise_id:
            raise InputError("authorization", "this enterprise key is bound to no enterprise_id", status_code=403)
        return Viewer(actor=f"enterprise:{enterprise_id} [key:{who.key_id}]", enterprise_id=enterprise_id)
    if role_name not in OFFICER_ROLES:
        raise InputError(
            "authorization",
            f"role '{role_name}' may file claims but not read them; officers read them",
            status_code=403,
        )
    return Viewer(actor=_actor(who))


async def viewer(who: Who) -> Viewer:
    return viewer_of(who)


async def officer(who: Who) -> Viewer:
    seen = viewer_of(who)
    if not seen.is_officer:
        raise InputError("authorization", "this is for union officers", status_code=403)
    return seen


officer.role = "reviewer"  # type: ignore[attr-defined]  (the API document's role of the route)
Seen = Annotated[Viewer, Depends(viewer)]
Officer = Annotated[Viewer, Depends(officer)]
NO_STORE = {"Cache-Control": "no-store"}


async def filer(who: Who) -> str:
    """The role of a key that may file claims (checked before the body is)."""
    role_name = getattr(who, "role", None)
    if role_name not in FILING_ROLES:
        raise InputError("authorization", f"role '{role_name}' may not file claims", status_code=403)
    return role_name


def _check_channel(role_name: str | None, channel: str) -> None:
    if role_name == "informant" and channel != "informant":
        raise InputError("channel", "an informant key files through the `informant` channel", status_code=403)
    if role_name == "intake" and channel == "informant":
        raise InputError("channel", "the `informant` channel is for informant keys", status_code=403)


claims_router = APIRouter(dependencies=[Depends(role("claims"))], tags=["claims"], route_class=AnswerRoute)
reports_router = APIRouter(tags=["reports"], route_class=AnswerRoute)


@claims_router.post(
    "/",
    status_code=201,
    response_model=m.ClaimFiled,
    responses=errors(400, 422, 503),
    summary="File a worker's claim (intake and informant keys); it joins its open case",
)
def file_claim(
    claim: NewClaimRequest,
    role_name: Annotated[str, Depends(filer)],
    who: Who,
    parts: Parts,
    store: Store,
    response: Response,
) -> dict[str, Any]:
    """File one worker's claim; it joins the open case of the same enterprise and type (30 days)."""
    _check_channel(role_name, claim.channel)
    # the raw contact is never kept: its keyed pseudonym, or nothing where no pseudonym key is set up
    pseudonym = parts.pseudonymise(claim.claimant) if parts.pseudonymise is not None else None
    claim = claim.model_copy(update={"claimant": pseudonym})
    filed = store.file_claim(claim, received_by=f"{role_name}:{_actor(who)}")
    case = filed.pop("case")
    filed["case"] = {key: case[key] for key in ("id", "state", "claimants", "workers", "type")}
    filed["rescored"] = False
    if case["type"] == "wage_arrears" and case["workers"] >= store.policy.mass_workers:
        filed["rescored"] = rescore(parts, store, claim.enterprise_id) is not None
    response.headers.update(NO_STORE)
    return filed


@claims_router.get(
    "/", response_model=m.ClaimCaseList, responses=errors(422, 503), summary="The queue of cases, most urgent first"
)
def list_cases(request: Request, store: Store, seen: Seen) -> dict[str, Any]:
    return store.cases(parse_filter(request.query_params), viewer=seen)


def current_figures(parts: Backends, store: ClaimStore) -> tuple[dict[str, Any], bool]:
    return parts.claim_figures.get(store.engine, mass_workers=store.policy.mass_workers)


@claims_router.get(
    "/figures",
    response_model=m.ClaimFiguresBody,
    responses=errors(503),
    summary="Closing and satisfaction rates, median days to close: by channel, type, district, handler, week",
)
def get_figures(parts: Parts, store: Store, _officer: Officer) -> dict[str, Any]:
    figures, stale = current_figures(parts, store)
    return {**figures, "stale": stale}


@claims_router.get(
    "/figures.csv",
    response_class=Response,
    responses={**binary("text/csv"), **errors(503)},
    summary="Claims figures as one CSV table (formula-safe)",
)
def get_figures_csv(parts: Parts, store: Store, _officer: Officer) -> Response:
    figures, _ = current_figures(parts, store)
    return Response(
        claim_figures.figures_csv(figures),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="claims_figures.csv"'},
    )


@claims_router.post(
    "/escalate", response_model=m.ClaimsEscalated, responses=errors(503), summary="Escalate overdue cases now"
)
def escalate(store: Store, _officer: Officer) -> dict[str, Any]:
    return {"escalated": store.escalate_overdue()}


@claims_router.get(
    "/{case_id}",
    response_model=m.ClaimCaseDetail,
    responses=errors(404, 503),
    summary="One case with its claims, history and ratings",
)
def get_case(case_id: str, store: Store, seen: Seen) -> dict[str, Any]:
    return store.case(case_id, viewer=seen)


@claims_router.post(
    "/{case_id}/transitions",
    status_code=201,
    response_model=m.ClaimCase,
    responses=errors(400, 404, 409, 422, 503),
    summary="Dispatch, handle or close a case",
)
def post_transition(case_id: str, move: CaseMoveRequest, store: Store, acting: Officer) -> dict[str, Any]:
    return store.transition(case_id, move, viewer=acting)


@claims_router.post(
    "/{case_id}/merge",
    response_model=m.ClaimCaseDetail,
    responses=errors(400, 404, 409, 422, 503),
    summary="Merge the case into another case of the same enterprise",
)
def post_merge(case_id: str, body: MergeRequest, store: Store, acting: Officer) -> dict[str, Any]:
    return store.merge(case_id, body.into, viewer=acting)


@claims_router.post(
    "/{case_id}/split",
    response_model=m.ClaimSplit,
    responses=errors(400, 404, 409, 422, 503),
    summary="Move some claims of the case into a new case",
)
def post_split(case_id: str, body: SplitRequest, store: Store, acting: Officer) -> dict[str, Any]:
    return store.split(case_id, body.claim_ids, viewer=acting)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@reports_router.get(
    "/{receipt}",
    response_model=m.ReportStatus | m.ClaimReportStatus,
    responses=errors(404, 429, 503),
    summary="A report's or claim's stage and timeline by its receipt",
)
def get_report(receipt: str, request: Request, parts: Parts, lookups: Lookups, response: Response) -> dict[str, Any]:
    """A receipt's stage and timeline (claims and photo reports). No key; rate limited per address."""
    if not parts.receipt_lookups.allow(_client(request)):
        raise InputError("receipt", "too many receipt lookups from this address; wait a minute", status_code=429)
    response.headers.update(NO_STORE)
    return lookups.status(receipt)


async def feedback_allowed(request: Request, parts: Parts) -> None:
    """The feedback limit per address, counted before the body is checked (a bad body counts too)."""
    if not parts.feedback_limiter.allow(_client(request)):
        raise InputError("receipt", "too many answers from this address; wait a minute", status_code=429)


@reports_router.post(
    "/{receipt}/feedback",
    status_code=201,
    response_model=m.FeedbackAnswer,
    responses=errors(400, 404, 409, 422, 429, 503),
    summary="The worker rates a closed stage; not resolved reopens it",
    dependencies=[Depends(feedback_allowed)],
)
def post_feedback(receipt: str, feedback: FeedbackRequest, lookups: Lookups, response: Response) -> dict[str, Any]:
    """The worker rates a closed stage: {"satisfied": 1-5, "resolved": bool, "comment"?}; not resolved
    reopens it (at most twice, then supervision). No key; rate limited per address."""
    response.headers.update(NO_STORE)
    return lookups.give_feedback(receipt, feedback)


page_router = APIRouter(dependencies=[Depends(role("reviewer"))], include_in_schema=False)


@page_router.get("/")
def get_queue_page(request: Request, store: Store, seen: Officer) -> HTMLResponse:
    """The officers' queue: filters, most urgent first (injuries, then mass arrears)."""
    page = store.cases(parse_filter(request.query_params), viewer=seen)
    html = render_queue(page, policy=store.policy, query=dict(request.query_params))
    return HTMLResponse(html, headers={"Cache-Control": "no-store"})


@page_router.get("/figures")
def get_figures_page(parts: Parts, store: Store, _officer: Officer) -> HTMLResponse:
    figures, stale = current_figures(parts, store)
    return HTMLResponse(render_figures(figures, stale=stale), headers={"Cache-Control": "no-store"})


CLAIM_ROUTES = (
    "POST /v1/claims/, GET /v1/claims/, GET /v1/claims/{case_id}, POST /v1/claims/{case_id}/transitions, "
    "/merge, /split, GET /v1/claims/figures(.csv)"
)


def not_found(request: Request, status: int) -> InputError:
    verb = f"{request.method} is not allowed here" if status == 405 else "no such endpoint"
    return InputError("path", f"{verb}; see {CLAIM_ROUTES}", status_code=status)


def no_report(_request: Request, status: int) -> InputError:
    return InputError(
        "receipt",
        "look a report up with GET /v1/reports/{receipt code}; "
        "answer a closed one with POST /v1/reports/{receipt code}/feedback",
        status_code=status,
    )


claims_api = route_app(claims_router, not_found=not_found)
reports_api = route_app(reports_router, not_found=no_report)
claims_page = route_app(page_router, not_found=not_found, static=HERE / "static")
