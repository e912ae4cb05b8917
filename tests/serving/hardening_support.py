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
    from serving.orders.store import OrderStore
    from serving.review.store import ReviewStore

    service = service_instance()
    backends = service.backends
    saved = (backends.review_store, backends.order_store, service.review_store, service.order_store)
    store = ReviewStore(database_url=database_url, photo_dir=photo_dir)
    orders = OrderStore.beside(store)
    backends.review_store = service.review_store = store
    backends.order_store = service.order_store = orders
    try:
        yield answering(api)
    finally:
        backends.review_store, backends.order_store, service.review_store, service.order_store = saved
        store.close()
