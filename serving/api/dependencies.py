"""What a route declares it needs, as FastAPI dependencies: the service's backends (stores, photo
model, limiters) and the caller's role.

`ApiKeyAuth` (serving/auth/middleware.py) stays in front of every route and denies by path prefix
(an unlisted /v1 path is admin-only); the role a route declares here is its own, second check and
what the API document shows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bentoml
from bentoml.exceptions import BentoMLException
from fastapi import Request

from runtime.errors import InputError
from serving.auth.middleware import require_role
from serving.auth.principals import Principal
from serving.claims.figures import CachedFigures as ClaimFigures
from serving.orders.dashboard import CachedFigures
from serving.orders.receipts import RateLimiter
from serving.orders.store import OrderStore
from serving.review.store import ReviewStore


@dataclass
class Backends:
    """What the routes work with; the service builds one (`Ankang.backends`) at start-up."""

    review_store: ReviewStore
    order_store: OrderStore
    photo: Any = None  # serving.reload.HotSwap of serving.photo.PhotoModel; None: no photo model here
    decode_slots: threading.Semaphore = field(default_factory=lambda: threading.BoundedSemaphore(4))
    receipt_lookups: RateLimiter = field(default_factory=RateLimiter)
    order_figures: CachedFigures = field(default_factory=CachedFigures)
    # workers' claims (serving/claims/): store, receipts of claims and photos, figures, feedback limit
    claim_store: Any = None  # serving.claims.store.ClaimStore
    claim_receipts: Any = None  # serving.claims.feedback.Receipts
    claim_figures: ClaimFigures = field(default_factory=ClaimFigures)
    feedback_limiter: RateLimiter = field(default_factory=lambda: RateLimiter(prefix="ankang:receipt-feedback"))
    risk: Any = None  # serving.reload.HotSwap of serving.risk.RiskScorer: rescoring after mass wage arrears
    score_records: Any = None  # serving.enterprises.records.ScoreRecords: rescores are kept like any score
    pseudonymise: Any = None  # serving.auth.Pseudonymiser: claimants' contacts kept as keyed pseudonyms only


async def backends() -> Backends:
    """The running service's backends (a standalone app overrides this dependency)."""
    try:
        return bentoml.get_current_service().backends
    except BentoMLException:
        raise InputError("service", "the service is not ready yet; retry in a moment", status_code=503) from None


async def principal(request: Request) -> Principal | None:
    """Who `ApiKeyAuth` let in (the `anonymous` admin when auth is off); None on an open path."""
    return request.scope.get("ankang.principal")


def role(needed: str) -> Callable[[Request], Any]:
    """The dependency of a route that needs `needed` (admin passes everywhere): 401 or 403 otherwise."""

    async def check(request: Request) -> Principal:
        return require_role(request, needed)

    check.__name__ = f"role_{needed}"
    check.role = needed  # type: ignore[attr-defined]  (read by the API document, serving/docs.py)
    return check
