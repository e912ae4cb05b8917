"""`route_app`: a FastAPI app over some routers, mounted into the BentoML service with
`@bentoml.asgi_app` (serving/service.py), its error answers installed once (serving/errors.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.routing import Match

from serving.errors import NotFound, install_handlers

ANY_METHOD = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class AnswerRoute(APIRoute):
    """The route class of the API routers (`APIRouter(route_class=AnswerRoute)`): the answer is validated
    against the route's `response_model` and sent with exactly the keys it has, so a field an answer
    leaves out (`comparison` of a supervision case, `photo_id` for an enterprise key) stays out
    instead of appearing as its default."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **{**kwargs, "response_model_exclude_unset": True})


def route_app(*routers: APIRouter, not_found: NotFound, static: Path | None = None) -> FastAPI:
    """One mounted app: the routers, `static` files at /static, then a catch-all answering unknown
    paths (404) and methods (405) through `not_found`. Its own /docs and /openapi.json are off: the
    service's /docs.json merges every app's routes with BentoML's endpoints (serving/docs.py)."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)
    for router in routers:
        app.include_router(router)
    app.state.routers = routers  # the API document reads each route's role from them (serving/openapi_document.py)
    if static is not None:
        app.mount("/static", StaticFiles(directory=static), name="static")
    known = list(app.routes)

    async def unknown_path(request: Request) -> None:
        # BentoML passes a mounted app only the paths one of its routes matches, so without this
        # route an unknown path would get BentoML's plain-text 404 instead of the app's JSON.
        other_method = any(route.matches(request.scope)[0] == Match.PARTIAL for route in known)
        raise HTTPException(405 if other_method else 404)

    app.add_api_route("/{rest:path}", unknown_path, methods=ANY_METHOD, include_in_schema=False)
    install_handlers(app, not_found)
    return app
