"""Where every error becomes its HTTP answer: `{"error": {"field": ..., "message": ...}}`.

`runtime.errors.InputError` (a 4xx naming the field, or a 503) and the photo model's `QueueFull`
(503 with Retry-After) are answered here and nowhere else: by `install_handlers` for the FastAPI
routers, and by `client_errors_answered` for BentoML's own endpoints (BentoML catches endpoint
exceptions itself, so an app's handler would not see them). The pure ASGI middleware in front
(keys, body limits, docs) answer before any app runs; they write the same body with `error_json`.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse

from runtime.errors import InputError
from serving.api.bodies import RequestBody, not_json
from serving.batching import QueueFull
from serving.outages import OUTAGE_TYPES, outage_of, outage_response

__all__ = ["InputError", "busy_response", "client_errors_answered", "error_response", "install_handlers"]

logger = logging.getLogger("ankang.service")
BUSY_MESSAGE = "the photo model is busy; retry in a second"
# A route app's answer to a path it does not have (404) or a method the path does not take (405).
NotFound = Callable[[Request, int], InputError]


def error_json(field: str, message: str) -> bytes:
    """The error body as bytes, for the ASGI middleware that answer without an app."""
    return json.dumps({"error": {"field": field, "message": message}}).encode()


def error_response(error: InputError) -> JSONResponse:
    return JSONResponse(error.to_dict(), status_code=error.status_code)


def busy_response(error: QueueFull) -> JSONResponse:
    """The photo model's queue is full: ask the client to retry, not a 500."""
    logger.warning("photo model busy: %s", error)
    body = {"error": {"field": "photo", "message": BUSY_MESSAGE}}
    return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})


def answer(error: InputError | QueueFull) -> JSONResponse:
    return busy_response(error) if isinstance(error, QueueFull) else error_response(error)


def client_errors_answered(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """For a BentoML endpoint: its `InputError` becomes the 4xx JSON and `QueueFull` a 503.
    Keeps a sync endpoint sync: BentoML runs those in its worker thread."""
    if inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        async def answered_async(*args: Any, **kwargs: Any) -> Any:
            try:
                return await endpoint(*args, **kwargs)
            except (InputError, QueueFull) as error:
                return answer(error)
            except OUTAGE_TYPES as error:
                return _outage_or_raise(error)

        return answered_async

    @functools.wraps(endpoint)
    def answered(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        except InputError as error:
            return error_response(error)
        except OUTAGE_TYPES as error:
            return _outage_or_raise(error)

    return answered


def _outage_or_raise(error: BaseException) -> JSONResponse:
    """A backend outage's 503 (serving/outages.py); any other error goes on to be the 500 it is."""
    backend = outage_of(error)
    if backend is None:
        raise error
    return outage_response(backend)


def _validation_error(request: Request, error: RequestValidationError) -> InputError:
    """FastAPI's check of a declared parameter or body (pydantic's first error), in the project's shape.

    A body model's readers raise `InputError` (a ValueError: pydantic keeps it in the error's `ctx`),
    answered as it is: its field, message, status and context. A body that is not JSON is a 400, no
    body at all the model's own refusal; any other error names the parameter with pydantic's words."""
    first = error.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, InputError):
        return cause
    loc = tuple(first.get("loc", ()))
    if first.get("type") == "json_invalid":
        return not_json(json.JSONDecodeError(str(cause), str(error.body), int(loc[-1])))
    if first.get("type") == "missing" and loc == ("body",):
        body_field = getattr(request.scope.get("route"), "body_field", None)
        model = getattr(getattr(body_field, "field_info", None), "annotation", None)
        if isinstance(model, type) and issubclass(model, RequestBody):
            return model.not_an_object()
    where = [str(part) for part in loc if part not in ("body", "query", "path")]
    return InputError(where[-1] if where else "body", first.get("msg", "invalid value"))


def _http_error(error: HTTPException) -> InputError:
    status = getattr(error, "status_code", 400)
    if status == 400 and isinstance(error.__cause__, ValueError):  # FastAPI's "error parsing the body": not UTF-8
        return not_json(error.__cause__)
    return InputError("request", str(getattr(error, "detail", error)), status_code=status)


def install_handlers(app: FastAPI, not_found: NotFound) -> None:
    """The one registration of error answers on a route app (serving/api/app.py calls it)."""

    async def input_error(_request: Request, error: Exception) -> JSONResponse:
        return answer(error)  # type: ignore[arg-type]

    async def validation_error(request: Request, error: Exception) -> JSONResponse:
        return answer(_validation_error(request, error))  # type: ignore[arg-type]

    async def http_error(request: Request, error: Exception) -> JSONResponse:
        status = getattr(error, "status_code", 404)
        if status in (404, 405):
            return error_response(not_found(request, status))
        return error_response(_http_error(error))  # type: ignore[arg-type]

    async def outage(_request: Request, error: Exception) -> JSONResponse:
        return _outage_or_raise(error)

    for outage_type in OUTAGE_TYPES:
        app.add_exception_handler(outage_type, outage)
    app.add_exception_handler(InputError, input_error)
    app.add_exception_handler(QueueFull, input_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
