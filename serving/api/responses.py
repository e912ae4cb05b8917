"""What a route declares for the API document besides its answer model: its error statuses
(`errors(404, 422)`) and, for a multipart form the route reads itself, the form's model (`body_model`)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from serving.api_models import ErrorBody

ERROR_TEXT = {
    400: "the request cannot be read: a missing or malformed field, or a form that does not match",
    401: "no API key, or a key that is not valid (send `Authorization: Bearer KEY`)",
    403: "the key's role may not use this route (or, for an enterprise key, take this action on an order)",
    404: "no such case, order, photo, heatmap or receipt (another enterprise's order is not found either)",
    409: "the order or case is not in the state this needs (the error names its `state`), or it already exists",
    413: "the body, file or batch is over its limit",
    415: "the upload is not a JPEG, PNG or WebP image (checked by content)",
    422: "the content is readable but not acceptable (bad values, corrupt image data); every message names the field",
    429: "too many receipt lookups from this address (30 a minute): wait a minute",
    503: "busy or not ready: retry after the seconds in Retry-After",
}
REF = "#/components/schemas/{model}"


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: each status with the project's error body."""
    return {status: {"model": ErrorBody, "description": ERROR_TEXT[status]} for status in statuses}


def body_model(model: type[BaseModel], media: str = "application/json") -> dict[str, Any]:
    """The `openapi_extra=` of a route whose body its package parses (and names the bad field itself)."""
    return {
        "requestBody": {"required": True, "content": {media: {"schema": {"$ref": REF.format(model=model.__name__)}}}},
        "x-body-model": model.__name__,  # serving/docs.py adds the model's schema to the document
    }


def binary(media: str, *, status: int = 200) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry of a route answering a file (image/jpeg, text/csv ...) instead of JSON."""
    schema = {"type": "string"} if media.startswith("text/") else {"type": "string", "format": "binary"}
    return {status: {"description": "OK", "content": {media: {"schema": schema}}}}


def query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter the route's own parser reads (documented through `openapi_extra`)."""
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def documented(
    *,
    tag: str,
    role: str | None,
    summary: str,
    ok: type[BaseModel] | str,
    errors: tuple[int, ...],
) -> Any:
    """What the API document says of a BentoML endpoint (`@bentoml.api`): its tag, role, answer (a
    model, or a media type such as "text/csv") and error statuses; BentoML itself describes its body."""

    def mark(endpoint: Any) -> Any:
        endpoint.api_doc = {"tag": tag, "role": role, "summary": summary, "ok": ok, "errors": errors}
        return endpoint

    return mark
