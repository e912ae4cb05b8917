"""The OpenAPI document at /docs.json: Ankang's own title, description and version, a bearer
security scheme, typed bodies (serving/api_models.py) for every route, the review routes
included, and the error responses each route really gives.

Request bodies of the BentoML endpoints come from BentoML's document (it derives them from the
endpoint signatures, the one source); the rest is declared here. Schemas are written in
OpenAPI 3.0's dialect (`nullable`), which Swagger UI and schemathesis both read.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from serving import api_models as m

REF = "#/components/schemas/{model}"
ERROR_TEXT = {
    400: "the request cannot be read: a missing or malformed field, or a form that does not match",
    401: "no API key, or a key that is not valid (send `Authorization: Bearer KEY`)",
    403: "the key's role may not use this route (or, for an enterprise key, take this action on an order)",
    404: "no such case, order, photo, heatmap or receipt (another enterprise's order is not found either)",
    413: "the body, file or batch is over its limit",
    409: "the order or case is not in the state this needs (the error names its `state`), or it already exists",
    415: "the upload is not a JPEG, PNG or WebP image (checked by content)",
    422: "the content is readable but not acceptable (bad values, corrupt image data); every message names the field",
    429: "too many receipt lookups from this address (30 a minute): wait a minute",
    503: "busy or not ready: retry after the seconds in Retry-After",
}
DESCRIPTION = """Hazard-photo triage and labor-relation risk tiering for trade-union safety programs (安康).

* **Photos**: `POST /v1/photos/assess` scores one site photo for each hazard type, flags the types at
  or above their threshold, triages the photo (clear, review, urgent) and stores it as a review case.
* **Review**: `/v1/review/*` is the officers' queue, cases, decisions, photos and heatmaps.
* **Enterprises**: `/v1/enterprises/score*` give each enterprise profile a labor-relation risk tier (1..5).
* **Orders**: `/v1/orders/*` are rectification orders (整改单) from confirmed cases and supervision cases
  (督办): open -> in_progress -> submitted (with a proof photo) -> verified -> closed, escalation when
  overdue, and the officers' dashboard figures (JSON and CSV).
* **Reports**: `GET /v1/reports/{receipt}` tells a reporter the stage of their report by the receipt
  of the assessment; no key needed, rate limited.

Every other `/v1` route needs an API key (`Authorization: Bearer KEY` or `X-API-Key: KEY`) whose role is
the one the route names (intake, reviewer or admin; admin may use any). An enterprise key, bound to one
enterprise, sees only that enterprise's orders and may only start them and submit proof. Errors answer
`{"error": {"field": ..., "message": ...}}` naming the field at fault. This page loads nothing from
other hosts."""


@dataclass(frozen=True)
class Operation:
    method: str
    tag: str
    role: str | None
    summary: str
    ok: type[BaseModel] | str | None  # a model, a media type ("text/csv", "image/jpeg"), or None (no body)
    errors: tuple[int, ...]
    ok_status: int = 200
    body: type[BaseModel] | None = None  # for routes BentoML does not describe
    body_media: str = "application/json"
    parameters: tuple[dict[str, Any], ...] = ()


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


PHOTO_ID = _path_parameter("photo_id", "the case's photo_id (from /v1/photos/assess)")
ORDER_ID = _path_parameter("order_id", "the order's id")
WHICH_PHOTO = {
    "name": "which",
    "in": "path",
    "required": True,
    "description": "original (the case's photo) or proof (the latest proof photo)",
    "schema": {"type": "string", "enum": ["original", "proof"]},
}
RECEIPT = _path_parameter("receipt", "the receipt code of the assessment answer (dashes and case do not matter)")
QUEUE_PARAMETERS = (
    _query(
        "status",
        "open (default), clear, decided, all, or one decided status",
        {
            "type": "string",
            "enum": ["open", "clear", "decided", "all", "confirmed", "corrected", "dismissed", "rectified"],
        },
    ),
    _query("hazard", "only cases flagged with this hazard type", {"type": "string"}),
    _query("site", "only cases of this site_id", {"type": "string"}),
    _query("from", "first day, YYYY-MM-DD (in `tz`)", {"type": "string", "format": "date"}),
    _query("to", "last day, YYYY-MM-DD (in `tz`), inclusive", {"type": "string", "format": "date"}),
    _query("tz", "IANA time zone of the dates (default UTC), e.g. Asia/Shanghai", {"type": "string"}),
    _query("limit", "cases per page (1..200, default 50)", {"type": "integer", "minimum": 1, "maximum": 200}),
    _query("offset", "cases to skip", {"type": "integer", "minimum": 0}),
)
ORDER_FILTERS = (
    _query(
        "state",
        "unrectified (default: open, in_progress, submitted), all, or one state",
        {"type": "string", "enum": ["unrectified", "all", "open", "in_progress", "submitted", "verified", "closed"]},
    ),
    _query("kind", "rectification or supervision", {"type": "string", "enum": ["rectification", "supervision"]}),
    _query("enterprise_id", "only this enterprise's orders", {"type": "string"}),
    _query("site", "only orders of this site_id", {"type": "string"}),
    _query("district", "only orders of this district", {"type": "string"}),
    _query("hazard", "only orders comparing this hazard type", {"type": "string"}),
)
PAGE = (
    _query("limit", "orders per page (1..500, default 50)", {"type": "integer", "minimum": 0, "maximum": 500}),
    _query("offset", "orders to skip", {"type": "integer", "minimum": 0}),
)
OVERDUE = _query("overdue", "only unrectified orders past due", {"type": "boolean"})
AUTH_ERRORS = (401, 403)
OPERATIONS: dict[str, tuple[Operation, ...]] = {
    "/v1/photos/assess": (
        Operation(
            "post",
            "photos",
            "intake",
            "Assess one site photo",
            m.PhotoAssessmentBody,
            (400, *AUTH_ERRORS, 413, 415, 422, 503),
        ),
    ),
    "/v1/enterprises/score": (
        Operation(
            "post",
            "enterprises",
            "intake",
            "Risk tiers of up to 10,000 enterprise profiles",
            m.EnterpriseScoresBody,
            (400, *AUTH_ERRORS, 413, 422),
        ),
    ),
    "/v1/enterprises/score-file": (
        Operation(
            "post",
            "enterprises",
            "intake",
            "Risk tiers of a CSV or Parquet file (answers CSV)",
            "text/csv",
            (400, *AUTH_ERRORS, 413, 422),
        ),
    ),
    "/v1/admin/reload": (
        Operation("post", "admin", "admin", "Reload changed models now", m.ReloadBody, (400, *AUTH_ERRORS)),
    ),
    "/v1/review/queue": (
        Operation(
            "get",
            "review",
            "reviewer",
            "The review queue, most urgent first",
            m.ReviewQueueBody,
            (*AUTH_ERRORS, 422, 503),
            parameters=QUEUE_PARAMETERS,
        ),
    ),
    "/v1/review/taxonomy": (Operation("get", "review", "reviewer", "The hazard types", m.TaxonomyBody, AUTH_ERRORS),),
    "/v1/review/me": (
        Operation(
            "get",
            "review",
            "reviewer",
            "Who the request is signed in as (decisions are recorded as them)",
            m.SignedInBody,
            AUTH_ERRORS,
        ),
    ),
    "/v1/review/{photo_id}": (
        Operation(
            "get",
            "review",
            "reviewer",
            "One case with its group and decision history",
            m.ReviewCaseDetail,
            (*AUTH_ERRORS, 404, 503),
            parameters=(PHOTO_ID,),
        ),
        Operation(
            "post",
            "review",
            "reviewer",
            "Record a decision on a case (and its group)",
            m.DecisionResult,
            (400, *AUTH_ERRORS, 404, 422, 503),
            ok_status=201,
            body=m.DecisionRequest,
            parameters=(PHOTO_ID,),
        ),
    ),
    "/v1/review/{photo_id}/thumb": (
        Operation(
            "get",
            "review",
            "reviewer",
            "The case's photo, thumbnail",
            "image/jpeg",
            (*AUTH_ERRORS, 404),
            parameters=(PHOTO_ID,),
        ),
    ),
    "/v1/review/{photo_id}/photo": (
        Operation(
            "get",
            "review",
            "reviewer",
            "The case's photo, display size",
            "image/jpeg",
            (*AUTH_ERRORS, 404),
            parameters=(PHOTO_ID,),
        ),
    ),
    "/v1/review/{photo_id}/original": (
        Operation(
            "get",
            "review",
            "reviewer",
            "The photo as uploaded (GPS removed unless kept)",
            "image/*",
            (*AUTH_ERRORS, 404),
            parameters=(PHOTO_ID,),
        ),
    ),
    "/v1/review/{photo_id}/heatmap/{hazard}": (
        Operation(
            "get",
            "review",
            "reviewer",
            "Where the model saw one hazard type, over the display photo",
            "image/png",
            (*AUTH_ERRORS, 404),
            parameters=(PHOTO_ID, _path_parameter("hazard", "a hazard type the model scored")),
        ),
    ),
    "/v1/orders/": (
        Operation(
            "get",
            "orders",
            "enterprise",
            "Orders and supervision cases, soonest due first, with counts per state",
            m.OrderList,
            (*AUTH_ERRORS, 422, 503),
            parameters=(*ORDER_FILTERS, OVERDUE, *PAGE),
        ),
        Operation(
            "post",
            "orders",
            "reviewer",
            "Issue a rectification order for a confirmed case",
            m.Order,
            (400, *AUTH_ERRORS, 404, 409, 422, 503),
            ok_status=201,
            body=m.NewOrderRequest,
        ),
    ),
    "/v1/orders/overdue": (
        Operation(
            "get",
            "orders",
            "enterprise",
            "Unrectified orders past their due time",
            m.OrderList,
            (*AUTH_ERRORS, 422, 503),
            parameters=(*ORDER_FILTERS, *PAGE),
        ),
    ),
    "/v1/orders/supervision": (
        Operation(
            "post",
            "orders",
            "reviewer",
            "Open a supervision case (督办) for a high-risk enterprise",
            m.Order,
            (400, *AUTH_ERRORS, 409, 422, 503),
            ok_status=201,
            body=m.NewSupervisionRequest,
        ),
    ),
    "/v1/orders/escalate": (
        Operation(
            "post",
            "orders",
            "reviewer",
            "Escalate overdue orders now (each API process also does every ANKANG_ORDERS_ESCALATE_SECONDS)",
            m.EscalatedBody,
            (*AUTH_ERRORS, 503),
        ),
    ),
    "/v1/orders/dashboard": (
        Operation(
            "get",
            "orders",
            "reviewer",
            "Dashboard figures: by state, overdue, days to rectify, breakdowns, weekly trend",
            m.DashboardBody,
            (*AUTH_ERRORS, 503),
        ),
    ),
    "/v1/orders/dashboard.csv": (
        Operation(
            "get",
            "orders",
            "reviewer",
            "Dashboard figures as one CSV table, every key",
            "text/csv",
            (*AUTH_ERRORS, 503),
        ),
    ),
    "/v1/orders/{order_id}": (
        Operation(
            "get",
            "orders",
            "enterprise",
            "One order with its history and before / after comparison",
            m.OrderDetail,
            (*AUTH_ERRORS, 404, 503),
            parameters=(ORDER_ID,),
        ),
        Operation(
            "patch",
            "orders",
            "reviewer",
            "Amend assignee, officer, measures, notes, district or due time",
            m.Order,
            (400, *AUTH_ERRORS, 404, 409, 422, 503),
            body=m.AmendmentRequest,
            parameters=(ORDER_ID,),
        ),
    ),
    "/v1/orders/{order_id}/transitions": (
        Operation(
            "post",
            "orders",
            "enterprise",
            "Take an action: start, submit (supervision), verify, reject, close",
            m.Order,
            (400, *AUTH_ERRORS, 404, 409, 422, 503),
            ok_status=201,
            body=m.MoveRequest,
            parameters=(ORDER_ID,),
        ),
    ),
    "/v1/orders/{order_id}/proof": (
        Operation(
            "post",
            "orders",
            "enterprise",
            "Submit a rectification with its proof photo (assessed by the photo model; the original photo "
            "itself is refused with 422, and the scene's similarity to the original is recorded)",
            m.Order,
            (400, *AUTH_ERRORS, 404, 409, 413, 415, 422, 503),
            ok_status=201,
            body=m.ProofForm,
            body_media="multipart/form-data",
            parameters=(ORDER_ID,),
        ),
    ),
    "/v1/orders/{order_id}/photos/{which}": (
        Operation(
            "get",
            "orders",
            "enterprise",
            "The order's original or proof photo, display size",
            "image/jpeg",
            (*AUTH_ERRORS, 404, 503),
            parameters=(ORDER_ID, WHICH_PHOTO),
        ),
    ),
    "/v1/reports/{receipt}": (
        Operation(
            "get",
            "reports",
            None,
            "A report's stage and outcome by its receipt",
            m.ReportStatus,
            (404, 429, 503),
            parameters=(RECEIPT,),
        ),
    ),
    "/livez": (Operation("get", "infrastructure", None, "Alive", None, ()),),
    "/readyz": (Operation("get", "infrastructure", None, "Ready for traffic", None, (503,)),),
    "/metrics": (Operation("get", "infrastructure", None, "Prometheus metrics", "text/plain", ()),),
}
MODELS = (
    m.ErrorBody,
    m.RequestValidationBody,
    m.PhotoAssessmentBody,
    m.EnterpriseScoresBody,
    m.EnterprisesRequest,
    m.ReloadBody,
    m.ReviewQueueBody,
    m.ReviewCaseDetail,
    m.DecisionRequest,
    m.DecisionResult,
    m.TaxonomyBody,
    m.SignedInBody,
    m.Order,
    m.OrderDetail,
    m.OrderList,
    m.NewOrderRequest,
    m.NewSupervisionRequest,
    m.MoveRequest,
    m.AmendmentRequest,
    m.ProofForm,
    m.EscalatedBody,
    m.DashboardBody,
    m.ReportStatus,
)


def to_openapi30(schema: Any) -> Any:
    """pydantic's JSON Schema in OpenAPI 3.0 words: `anyOf [X, null]` -> X + nullable; `const` -> enum."""
    if isinstance(schema, list):
        return [to_openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: to_openapi30(value) for key, value in schema.items()}
    options = schema.get("anyOf")
    if isinstance(options, list) and {"type": "null"} in options:
        rest = [option for option in options if option != {"type": "null"}]
        schema.pop("anyOf")
        merged = rest[0] if len(rest) == 1 else {"anyOf": rest}
        if "$ref" in merged:  # siblings of $ref are ignored in 3.0
            merged = {"allOf": [merged]}
        schema = {**schema, **merged, "nullable": True}
    if "const" in schema:
        schema["enum"] = [schema.pop("const")]
    return schema


def model_schemas() -> dict[str, Any]:
    _, definitions = models_json_schema([(model, "serialization") for model in MODELS], ref_template=REF)
    return to_openapi30(definitions.get("$defs", {}))


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def _error(status: int) -> dict[str, Any]:
    schema = {"oneOf": [_ref(m.RequestValidationBody), _ref(m.ErrorBody)]} if status == 400 else _ref(m.ErrorBody)
    response: dict[str, Any] = {"description": ERROR_TEXT[status], "content": {"application/json": {"schema": schema}}}
    if status == 503:
        response["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    return response


def _ok(operation: Operation) -> dict[str, Any]:
    if operation.ok is None:
        return {"description": "OK"}
    if isinstance(operation.ok, str):
        schema = {"type": "string"} if operation.ok.startswith("text/") else {"type": "string", "format": "binary"}
        return {"description": "OK", "content": {operation.ok: {"schema": schema}}}
    return {"description": "OK", "content": {"application/json": {"schema": _ref(operation.ok)}}}


def _role_text(role: str | None) -> str:
    if role is None:
        return "Open: no key needed."
    if role == "enterprise":
        return "Role: **enterprise** (its own orders only) or an officer's: **reviewer** (or admin)."
    return f"Role: **{role}** (or admin)."


def _operation(path: str, operation: Operation, generated: dict[str, Any]) -> dict[str, Any]:
    described = generated.get(path, {}).get(operation.method, {})
    text = (described.get("description") or operation.summary).strip()
    entry: dict[str, Any] = {
        "tags": [operation.tag],
        "summary": operation.summary,
        "description": text + "\n\n" + _role_text(operation.role),
        "operationId": described.get("x-bentoml-name") or f"{operation.method}_{path}",
        "security": [{"bearer": []}, {"apiKey": []}] if operation.role else [],
        "responses": {str(operation.ok_status): _ok(operation), **{str(s): _error(s) for s in operation.errors}},
    }
    if operation.parameters:
        entry["parameters"] = list(operation.parameters)
    if operation.body is not None:
        entry["requestBody"] = {"required": True, "content": {operation.body_media: {"schema": _ref(operation.body)}}}
    elif "requestBody" in described:
        entry["requestBody"] = _form_fields_as_text(to_openapi30(described["requestBody"]))
    return entry


def _form_fields_as_text(body: dict[str, Any]) -> dict[str, Any]:
    """BentoML declares multipart text fields as JSON-encoded; serving/multipart.py reads them as text."""
    content = {
        media: {key: value for key, value in entry.items() if key != "encoding"}
        for media, entry in body.get("content", {}).items()
    }
    return {**body, "required": True, "content": content}


def _version() -> str:
    try:
        return metadata.version("ankang")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_spec(service: Any) -> dict[str, Any]:
    generated = service.openapi_spec.asdict()
    schemas = {**to_openapi30(generated.get("components", {}).get("schemas", {})), **model_schemas()}
    paths = {
        path: {op.method: _operation(path, op, generated["paths"]) for op in operations}
        for path, operations in OPERATIONS.items()
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "Ankang API (安康)", "version": _version(), "description": DESCRIPTION},
        "tags": [
            {"name": "photos", "description": "site photo triage"},
            {"name": "review", "description": "the officers' review workflow"},
            {"name": "enterprises", "description": "labor-relation risk tiers"},
            {"name": "orders", "description": "rectification orders (整改单), supervision cases (督办), dashboard"},
            {"name": "reports", "description": "a reporter's receipt lookup (open, rate limited)"},
            {"name": "admin", "description": "operations"},
            {"name": "infrastructure", "description": "health and metrics (open)"},
        ],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "an API key: `Authorization: Bearer KEY`",
                },
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }
