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
    403: "the key's role may not use this route",
    404: "no such case, photo or heatmap",
    413: "the body, file or batch is over its limit",
    415: "the upload is not a JPEG, PNG or WebP image (checked by content)",
    422: "the content is readable but not acceptable (bad values, corrupt image data); every message names the field",
    503: "busy or not ready: retry after the seconds in Retry-After",
}
DESCRIPTION = """Hazard-photo triage and labor-relation risk tiering for trade-union safety programs (安康).

* **Photos**: `POST /v1/photos/assess` scores one site photo for each hazard type, flags the types at
  or above their threshold, triages the photo (clear, review, urgent) and stores it as a review case.
* **Review**: `/v1/review/*` is the officers' queue, cases, decisions, photos and heatmaps.
* **Enterprises**: `/v1/enterprises/score*` give each enterprise profile a labor-relation risk tier (1..5).

Every `/v1` route needs an API key (`Authorization: Bearer KEY` or `X-API-Key: KEY`) whose role is the
one the route names (intake, reviewer or admin; admin may use any). Errors answer
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
    parameters: tuple[dict[str, Any], ...] = ()


def _path_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": {"type": "string"}}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


PHOTO_ID = _path_parameter("photo_id", "the case's photo_id (from /v1/photos/assess)")
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


def _operation(path: str, operation: Operation, generated: dict[str, Any]) -> dict[str, Any]:
    described = generated.get(path, {}).get(operation.method, {})
    role = f" Role: **{operation.role}** (or admin)." if operation.role else " Open: no key needed."
    entry: dict[str, Any] = {
        "tags": [operation.tag],
        "summary": operation.summary,
        "description": (described.get("description") or operation.summary).strip() + "\n\n" + role.strip(),
        "operationId": described.get("x-bentoml-name") or f"{operation.method}_{path}",
        "security": [{"bearer": []}, {"apiKey": []}] if operation.role else [],
        "responses": {str(operation.ok_status): _ok(operation), **{str(s): _error(s) for s in operation.errors}},
    }
    if operation.parameters:
        entry["parameters"] = list(operation.parameters)
    if operation.body is not None:
        entry["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(operation.body)}}}
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
