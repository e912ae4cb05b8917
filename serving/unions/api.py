"""HTTP for enterprises' kept scores, unions and the weekly review: FastAPI routers, each mounted as a
route app from serving/routes.py.

- `enterprises_api` (/v1/enterprises; the service's own /score and /score-file come first): an
  enterprise's latest score and history (officers; an enterprise key only its own), officers
  assigned to enterprises (挂点) and `?assigned_to=me`.
- `unions_api` (/v1/unions): list with filters, one union with factors, history, enterprises and
  their open orders; create and change (admin); `POST /v1/unions/grade` regrades all (admin).
- `meeting_api` (/v1/review-meeting): the weekly review's JSON.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import JSONResponse

from runtime.errors import InputError
from serving.api.app import route_app
from serving.api.dependencies import Backends, backends, principal, role
from serving.api.responses import errors
from serving.auth.key_table import active_keys
from serving.auth.roles import PERSONAL_ROLES
from serving.enterprises.records import ScoreRecords
from serving.enterprises.store import EnterpriseStore
from serving.orders.app import viewer_of
from serving.orders.states import Viewer
from serving.unions import models as m
from serving.unions.meeting import review_meeting
from serving.unions.rows import RowErrors
from serving.unions.store import MAX_LISTED_UNIONS, UnionFilter, UnionStore

logger = logging.getLogger("ankang.unions")


@dataclass
class UnionStores:
    """The stores of this package on the service's database (the review store's engine)."""

    engine: sa.Engine
    enterprises: EnterpriseStore
    unions: UnionStore
    records: ScoreRecords

    @classmethod
    def on(cls, engine: sa.Engine) -> UnionStores:
        return cls(engine, EnterpriseStore(engine), UnionStore(engine), ScoreRecords(engine))


async def union_stores(parts: Annotated[Backends, Depends(backends)]) -> UnionStores:
    """Built once per service backends, beside its review store (no change to `Backends` needed)."""
    stores = parts.__dict__.get("union_stores")
    if stores is None or stores.engine is not parts.review_store.engine:
        stores = parts.__dict__["union_stores"] = UnionStores.on(parts.review_store.engine)
    return stores


Stores = Annotated[UnionStores, Depends(union_stores)]
Who = Annotated[Any, Depends(principal)]


async def viewer(who: Who) -> Viewer:
    """Officers see every enterprise; an enterprise key only its own (serving/orders/app.py's rule)."""
    return viewer_of(who)


def actor_of(principal: Any) -> str:
    return f"{principal.holder} [key:{principal.key_id}]" if principal.holder else f"key:{principal.key_id}"


def not_found_in(routes: str):
    def not_found(request: Request, status: int) -> InputError:
        verb = f"{request.method} is not allowed here" if status == 405 else "no such endpoint"
        return InputError("path", f"{verb}; see {routes}", status_code=status)

    return not_found


Officer = Annotated[Any, Depends(role("reviewer"))]
Admin = Annotated[Any, Depends(role("admin"))]


# --- enterprises --------------------------------------------------------------------------------

enterprises_router = APIRouter(tags=["enterprises"], dependencies=[Depends(role("enterprise"))])


@enterprises_router.get("/", response_model=m.AssignedBody, responses=errors(403, 422, 503))
def list_enterprises(
    stores: Stores, principal: Officer, assigned_to: Annotated[str, Query(pattern="^(me|[A-Za-z0-9_-]{1,64})$")] = "me"
) -> dict[str, Any]:
    """The enterprises an officer is assigned to (挂点), the most recently changed first: the latest tier
    against the one before, and their open and overdue orders."""
    key_id = principal.key_id if assigned_to == "me" else assigned_to
    if key_id != principal.key_id and principal.role != "admin":
        raise InputError("assigned_to", "only an admin may list another officer's enterprises", status_code=403)
    return {"officer": key_id, "enterprises": stores.enterprises.assigned_to(key_id)}


@enterprises_router.get("/{enterprise_id}", response_model=m.EnterpriseBody, responses=errors(403, 404, 503))
def get_enterprise(enterprise_id: str, stores: Stores, who: Annotated[Viewer, Depends(viewer)]) -> dict[str, Any]:
    """The enterprise's latest score (tier, model tier, probabilities, reasons, rules, model, time,
    fingerprint), its history (newest first), the unions covering it, and for officers its officers."""
    if not who.is_officer and who.enterprise_id != enterprise_id:  # another's is "not found": no existence leak
        raise InputError("enterprise_id", f"no score kept for enterprise {enterprise_id!r}", status_code=404)
    return stores.enterprises.enterprise(enterprise_id, officer=who.is_officer)


@enterprises_router.post(
    "/{enterprise_id}/officers", status_code=201, response_model=m.AssignmentBody, responses=errors(400, 403, 422, 503)
)
def assign_officer(enterprise_id: str, stores: Stores, principal: Officer, body: m.OfficerAssignment) -> dict[str, Any]:
    """Assign an officer: `{"key_id": "me"}` (a reviewer assigns themself) or another officer's key id
    (admin)."""
    key_id = principal.key_id if body.key_id == "me" else body.key_id.strip()
    holder_name = principal.holder
    if key_id != principal.key_id:
        if principal.role != "admin":
            raise InputError("key_id", "only an admin may assign another officer", status_code=403)
        holder_name = _officer_holder(stores.engine, key_id)
    if len(enterprise_id) > 200:
        raise InputError("enterprise_id", "is longer than 200 characters")
    return stores.enterprises.assign(enterprise_id, key_id=key_id, holder=holder_name, by=actor_of(principal))


@enterprises_router.delete(
    "/{enterprise_id}/officers/{key_id}", response_model=m.AssignmentBody, responses=errors(403, 404, 503)
)
def unassign_officer(enterprise_id: str, key_id: str, stores: Stores, principal: Officer) -> dict[str, Any]:
    key_id = principal.key_id if key_id == "me" else key_id
    if key_id != principal.key_id and principal.role != "admin":
        raise InputError("key_id", "only an admin may unassign another officer", status_code=403)
    if not stores.enterprises.unassign(enterprise_id, key_id=key_id):
        raise InputError("key_id", f"{key_id!r} is not assigned to {enterprise_id!r}", status_code=404)
    return {"enterprise_id": enterprise_id, "key_id": key_id, "assigned": False}


def _officer_holder(engine: sa.Engine, key_id: str) -> str:
    """The holder of an active officer key kept in the database; keys given inline (ANKANG_API_KEYS) are
    not there, so an unknown id is taken as given."""
    for key in active_keys(engine):
        if key.key_id == key_id:
            if key.role not in PERSONAL_ROLES:
                raise InputError("key_id", f"key {key_id!r} has role '{key.role}'; officers are reviewers and admins")
            return key.holder
    return ""


# --- unions -------------------------------------------------------------------------------------

unions_router = APIRouter(tags=["unions"], dependencies=[Depends(role("reviewer"))])


@unions_router.get("/", response_model=m.UnionListBody, responses=errors(422, 503))
def list_unions(
    stores: Stores,
    grade: Annotated[int | None, Query(ge=1, le=5)] = None,
    layer: Annotated[str | None, Query(max_length=32)] = None,
    union_type: Annotated[str | None, Query(alias="type", max_length=32)] = None,
    district: Annotated[str | None, Query(max_length=100)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LISTED_UNIONS)] = 100,
    offset: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # unbounded, 2**70 reached SQLite and answered 500
) -> dict[str, Any]:
    """Unions, highest grade and points first, filtered by grade, layer, type and district."""
    where = UnionFilter(grade=grade, layer=layer, union_type=union_type, district=district, limit=limit, offset=offset)
    return {**stores.unions.list(where), "distribution": stores.unions.distribution()}


@unions_router.post("/", status_code=201, response_model=m.UnionDetailBody, responses=errors(400, 403, 409, 422, 503))
def create_union(stores: Stores, _admin: Admin, body: m.NewUnionRequest) -> dict[str, Any]:
    return stores.unions.create(body.row())


@unions_router.post("/grade", response_model=m.GradeRunBody, responses=errors(403, 503))
def grade_unions(stores: Stores, principal: Admin) -> dict[str, Any]:
    """Regrade every union from its enterprises' latest tiers (datasets/unions/grading.yaml); the run is
    recorded with who ran it."""
    return stores.unions.grade_all(actor=actor_of(principal), source="api")


@unions_router.get("/{union_id}", response_model=m.UnionDetailBody, responses=errors(404, 503))
def get_union(union_id: str, stores: Stores) -> dict[str, Any]:
    return stores.unions.union(union_id)


@unions_router.patch("/{union_id}", response_model=m.UnionDetailBody, responses=errors(400, 403, 404, 422, 503))
def patch_union(union_id: str, stores: Stores, _admin: Admin, body: m.UnionChangeRequest) -> dict[str, Any]:
    changes = body.changes()
    if changes.get("parent_id") is not None and changes["parent_id"] == changes.get("union_id", union_id):
        problems = RowErrors()  # the one rule of the change that needs the path's union_id
        problems.add(None, union_id, "parent_id", "a union cannot be its own parent")
        problems.raise_if_any("the change")
    return stores.unions.update(union_id, changes)


# --- the weekly review --------------------------------------------------------------------------

meeting_router = APIRouter(tags=["review meeting"], dependencies=[Depends(role("reviewer"))])


@meeting_router.get("/", response_model=m.ReviewMeetingBody, responses=errors(422, 503))
def get_review_meeting(stores: Stores, week: Annotated[str | None, Query(max_length=10)] = None) -> dict[str, Any]:
    """The weekly risk review (每周议) of an ISO week (default: this one), e.g. ?week=2026-W49."""
    return review_meeting(stores.engine, week)


async def database_unavailable(_request: Request, error: Exception) -> JSONResponse:
    """The database is down or unreachable: a 503 the client retries, not a 500."""
    logger.warning("database unavailable: %s", type(error).__name__)
    body = {"error": {"field": "database", "message": "the database is not reachable; retry in a few seconds"}}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "5"})


def with_database_outage_answered(app: FastAPI) -> FastAPI:
    for kind in (sa.exc.OperationalError, sa.exc.InterfaceError):
        app.add_exception_handler(kind, database_unavailable)
    return app


enterprises_api = route_app(
    enterprises_router,
    not_found=not_found_in(
        "POST /v1/enterprises/score, POST /v1/enterprises/score-file, GET /v1/enterprises/{id}, "
        "GET /v1/enterprises/?assigned_to=me, POST /v1/enterprises/{id}/officers"
    ),
)
unions_api = route_app(
    unions_router,
    not_found=not_found_in("GET|POST /v1/unions/, POST /v1/unions/grade, GET|PATCH /v1/unions/{id}"),
)
meeting_api = route_app(meeting_router, not_found=not_found_in("GET /v1/review-meeting/?week=2026-W49"))
for _app in (enterprises_api, unions_api, meeting_api):
    with_database_outage_answered(_app)
