"""`build_spec`: the API document at /docs.json, merged from the route apps' FastAPI routers and
BentoML's endpoints (see serving/docs.py)."""

from __future__ import annotations

from importlib import metadata
from typing import Any

from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from pydantic.json_schema import models_json_schema

from serving import api_models as m
from serving.api.responses import ERROR_TEXT, REF, binary
from serving.routes import MOUNTS

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
TAGS = [
    {"name": "photos", "description": "site photo triage"},
    {"name": "review", "description": "the officers' review workflow"},
    {"name": "enterprises", "description": "labor-relation risk tiers"},
    {"name": "orders", "description": "rectification orders (整改单), supervision cases (督办), dashboard"},
    {"name": "claims", "description": "workers' claims (职工诉求一张网): one queue, dispatch, closing, figures"},
    {"name": "reports", "description": "a reporter's or worker's receipt: lookup and feedback (open, rate limited)"},
    {"name": "admin", "description": "operations"},
    {"name": "infrastructure", "description": "health and metrics (open)"},
]
SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "an API key: `Authorization: Bearer KEY`"},
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}
INFRASTRUCTURE = {  # BentoML's own health and metrics routes (serving/metrics.py serves /metrics)
    "/livez": ("Alive", {}),
    "/readyz": ("Ready for traffic", {"503": {"description": ERROR_TEXT[503]}}),
    "/metrics": ("Prometheus metrics", {"200": binary("text/plain")[200]}),
}
ALWAYS_DOCUMENTED = (m.ErrorBody, m.RequestValidationBody)


def to_openapi30(schema: Any) -> Any:
    """JSON Schema (pydantic's) in OpenAPI 3.0 words: `anyOf [X, null]` -> X + nullable; `const` ->
    enum; `examples: [x]` -> `example: x` (what Swagger UI fills "Try it out" with)."""
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
    if isinstance(schema.get("examples"), list) and schema["examples"] and "type" in schema:
        schema["example"] = schema.pop("examples")[0]
    return schema


def _role_text(role: str | None) -> str:
    if role is None:
        return "Open: no key needed."
    if role == "enterprise":
        return "Role: **enterprise** (its own orders only) or an officer's: **reviewer** (or admin)."
    return f"Role: **{role}** (or admin)."


def _ref(model: str) -> dict[str, str]:
    return {"$ref": REF.format(model=model)}


def _error(status: int, *, bentoml: bool = False) -> dict[str, Any]:
    schema = _ref("ErrorBody")
    if bentoml and status == 400:  # BentoML's own check of its inputs answers in its shape
        schema = {"oneOf": [_ref("RequestValidationBody"), schema]}
    return {"description": ERROR_TEXT[status], "content": {"application/json": {"schema": schema}}}


def _finish(operation: dict[str, Any], *, role: str | None, tag: str, summary: str) -> dict[str, Any]:
    """What every operation shares: its tag, security and auth errors by role, Retry-After on 503."""
    responses = operation["responses"]
    if role is not None:
        responses.update({status: _error(int(status)) for status in ("401", "403") if status not in responses})
    if "503" in responses:
        responses["503"]["headers"] = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
    text = (operation.get("description") or summary).strip()
    return {
        **operation,
        "tags": [tag],
        "summary": summary,
        "description": text + "\n\n" + _role_text(role),
        "security": [{"bearer": []}, {"apiKey": []}] if role else [],
        "responses": dict(sorted(responses.items())),
    }


def _route_role(route: APIRoute) -> str | None:
    """The most specific role a route's dependencies declare (the route's own after its router's)."""
    found: str | None = None
    pending = list(route.dependant.dependencies)
    while pending:
        dependency = pending.pop(0)
        found = getattr(dependency.call, "role", found)
        pending.extend(dependency.dependencies)
    return found


def _router_operations(prefix: str, app: Any) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    generated = get_openapi(title="", version="", routes=app.routes)
    roles = {
        (prefix + route.path_format, method.lower()): _route_role(route)
        for router in app.state.routers
        for route in router.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods
    }
    paths: dict[str, Any] = {}
    body_models: set[str] = set()
    for path, item in generated.get("paths", {}).items():
        for method, operation in item.items():
            responses = operation["responses"]
            if "HTTPValidationError" in str(responses.get("422", "")):  # FastAPI's own: ours is ErrorBody
                responses.pop("422")
            for status, response in responses.items():
                if status != "default" and int(status) >= 400:
                    response["description"] = ERROR_TEXT[int(status)]
            if "x-body-model" in operation:
                body_models.add(operation.pop("x-body-model"))
            role, tag = roles[(prefix + path, method)], operation.get("tags", ["infrastructure"])[0]
            paths.setdefault(prefix + path, {})[method] = _finish(
                operation, role=role, tag=tag, summary=operation.get("summary", "")
            )
    schemas = generated.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    return paths, schemas, body_models


def _bentoml_operations(service: Any, generated: dict[str, Any]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for api in service.apis.values():
        doc = getattr(api.func, "api_doc", None)
        if doc is None:
            continue
        described = generated["paths"].get(api.route, {}).get("post", {})
        ok = doc["ok"]
        answer = (
            binary(ok)[200]
            if isinstance(ok, str)
            else {"description": "OK", "content": {"application/json": {"schema": _ref(ok.__name__)}}}
        )
        operation: dict[str, Any] = {
            "operationId": described.get("x-bentoml-name") or api.name,
            "description": described.get("description") or "",
            "responses": {"200": answer, **{str(status): _error(status, bentoml=True) for status in doc["errors"]}},
        }
        if "requestBody" in described:
            operation["requestBody"] = _form_fields_as_text(to_openapi30(described["requestBody"]))
        paths[api.route] = {"post": _finish(operation, role=doc["role"], tag=doc["tag"], summary=doc["summary"])}
    return paths


def _form_fields_as_text(body: dict[str, Any]) -> dict[str, Any]:
    """BentoML declares multipart text fields as JSON-encoded; serving/multipart.py reads them as text."""
    content = {
        media: {key: value for key, value in entry.items() if key != "encoding"}
        for media, entry in body.get("content", {}).items()
    }
    return {**body, "required": True, "content": content}


def _infrastructure() -> dict[str, Any]:
    paths = {}
    for path, (summary, responses) in INFRASTRUCTURE.items():
        operation = {"responses": {"200": {"description": "OK"}, **responses}}
        paths[path] = {"get": _finish(operation, role=None, tag="infrastructure", summary=summary)}
    return paths


def _model_schemas(models: list[type]) -> dict[str, Any]:
    _, definitions = models_json_schema([(model, "serialization") for model in models], ref_template=REF)
    return definitions.get("$defs", {})


def _version() -> str:
    try:
        return metadata.version("ankang")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def build_spec(service: Any) -> dict[str, Any]:
    generated = service.openapi_spec.asdict()  # BentoML's: its endpoints' bodies, and their models
    schemas = dict(generated.get("components", {}).get("schemas", {}))
    paths = {**_bentoml_operations(service, generated)}
    body_models: set[str] = set()
    for prefix, (_name, app) in MOUNTS.items():
        app_paths, app_schemas, app_bodies = _router_operations(prefix, app)
        paths.update(app_paths)
        schemas.update(app_schemas)
        body_models |= app_bodies
    answers = [getattr(api.func, "api_doc", {}).get("ok") for api in service.apis.values()]
    bodies = [getattr(m, name) for name in sorted(body_models)]
    schemas.update(_model_schemas([*ALWAYS_DOCUMENTED, *bodies, *(ok for ok in answers if isinstance(ok, type))]))
    paths.update(_infrastructure())
    return {
        "openapi": "3.0.3",
        "info": {"title": "Ankang API (安康)", "version": _version(), "description": DESCRIPTION},
        "tags": TAGS,
        "paths": to_openapi30(paths),
        "components": {"schemas": to_openapi30(schemas), "securitySchemes": SECURITY_SCHEMES},
    }
