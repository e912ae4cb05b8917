"""Where each route app is mounted (the one table of mount paths): the BentoML service mounts them
with `@bentoml.asgi_app` (serving/service.py), metrics label requests by them, and
`standalone_app` serves them without BentoML (benchmarks, a review-only host)."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp

from serving.api.dependencies import Backends, backends
from serving.auth import ApiKeyAuth, SecurityHeaders
from serving.claims.app import claims_api, claims_page, reports_api
from serving.orders.app import orders_api, orders_page
from serving.review.app import review_api, review_page
from serving.settings import ServingSettings
from serving.unions.api import enterprises_api, meeting_api, unions_api
from serving.unions.pages import unions_page_app

MOUNTS: dict[str, tuple[str, FastAPI]] = {  # path: (name, app)
    "/v1/review": ("review_api", review_api),
    "/review": ("review_page", review_page),
    "/v1/orders": ("orders_api", orders_api),
    "/v1/reports": ("reports_api", reports_api),
    "/orders": ("orders_page", orders_page),
    "/v1/enterprises": ("enterprises_api", enterprises_api),  # after the service's own /score, /score-file
    "/v1/unions": ("unions_api", unions_api),
    "/v1/review-meeting": ("meeting_api", meeting_api),
    "/unions": ("unions_page", unions_page_app),
    "/v1/claims": ("claims_api", claims_api),
    "/claims": ("claims_page", claims_page),
}


def standalone_app(parts: Backends, *, settings: ServingSettings) -> ASGIApp:
    """The mounted apps on `parts`, without BentoML or the photo endpoint, behind the same keys,
    sessions and security headers as the service (this process's apps answer from `parts` from now on)."""
    for _name, app in MOUNTS.values():
        app.dependency_overrides[backends] = lambda: parts
    routes = [Mount(path, app) for path, (_name, app) in MOUNTS.items()]
    return SecurityHeaders(ApiKeyAuth(Starlette(routes=routes), settings=settings))
