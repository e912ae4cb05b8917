"""Helpers for the issue-21 hardening tests: the shared in-process API on another database."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from starlette.testclient import TestClient


def service_instance():
    """The `Ankang` instance behind the session's `api` app (BentoML builds it; tests cannot pass one in)."""
    from serving.service import Ankang

    return next(item for item in gc.get_objects() if isinstance(item, Ankang.inner))


def answering(api: TestClient) -> TestClient:
    """A client of the same app that returns a server error as its 500 (the shared one raises it)."""
    return TestClient(api.app, raise_server_exceptions=False)


@contextmanager
def stores_on(api: TestClient, database_url: str, photo_dir: Path) -> Iterator[TestClient]:
    """The shared API with its review and order stores on `database_url` (PostgreSQL tests), then back."""
    from serving.claims.feedback import Receipts
    from serving.claims.store import ClaimStore
    from serving.enterprises.records import ScoreRecords
    from serving.orders.store import OrderStore
    from serving.review.store import ReviewStore

    service = service_instance()
    backends = service.backends
    parts = ("review_store", "order_store", "claim_store", "claim_receipts")
    saved = {name: getattr(backends, name) for name in parts}
    saved_service = {
        name: getattr(service, name) for name in ("review_store", "order_store", "claim_store", "score_records")
    }
    store = ReviewStore(database_url=database_url, photo_dir=photo_dir)
    orders = OrderStore.beside(store)
    claims = ClaimStore.beside(orders)
    backends.review_store = service.review_store = store
    backends.order_store = service.order_store = orders
    backends.claim_store = service.claim_store = claims
    backends.claim_receipts = Receipts(engine=orders.engine, orders=orders)
    service.score_records = ScoreRecords(store.engine)
    try:
        yield answering(api)
    finally:
        for name, value in saved.items():
            setattr(backends, name, value)
        for name, value in saved_service.items():
            setattr(service, name, value)
        store.close()
