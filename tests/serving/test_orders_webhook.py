"""Outbox delivery to a webhook on 127.0.0.1: every transition arrives at least once, signed; a receiver
that fails gets the event again later; nothing is marked delivered without a 2xx."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa

from serving.orders.outbox import WebhookDelivery, pending_count
from serving.orders.schema import outbox
from serving.orders.store import OrderStore
from serving.orders.worker import LoopWorker
from serving.review.store import ReviewStore
from tests.serving.test_orders_store import OFFICER, confirmed_case, new_order, walk

SECRET = b"webhook-test-secret"


class Receiver:
    """A local webhook receiver: records what it gets; answers `status` (e.g. 500 to refuse)."""

    def __init__(self):
        self.received: list[tuple[dict, dict]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["content-length"]))
                if receiver.status == 200:
                    receiver.received.append((json.loads(body), dict(self.headers.items()) | {"raw": body}))
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    local = Receiver()
    yield local
    local.server.shutdown()


@pytest.fixture
def stores(tmp_path) -> Iterator[tuple[ReviewStore, OrderStore]]:
    review = ReviewStore(database_url=f"sqlite:///{tmp_path / 'review.db'}", photo_dir=tmp_path / "photos")
    yield review, OrderStore.beside(review)
    review.close()


def test_each_transition_is_delivered_once_signed_and_marked(stores, receiver):
    review, orders = stores
    order = orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER)
    walk(orders, order["id"], "start", "submit", "verify", "close")
    delivery = WebhookDelivery(engine=review.engine, url=receiver.url, secret=SECRET)
    assert delivery.deliver_pending() == 5 and pending_count(review.engine) == 0
    assert delivery.deliver_pending() == 0  # nothing is sent twice once acknowledged
    events = [body["event"] for body, _ in receiver.received]
    assert events == ["order.create", "order.start", "order.submit", "order.verify", "order.close"]
    body, headers = receiver.received[2]
    assert body["order"]["id"] == order["id"] and body["order"]["state"] == "submitted"
    assert headers["x-ankang-event-id"] == str(body["id"])
    assert headers["x-ankang-signature"] == "sha256=" + hmac.new(SECRET, headers["raw"], hashlib.sha256).hexdigest()
    assert "reporter" not in json.dumps(body) and "photo_id" not in json.dumps(body)


def test_a_refusing_receiver_gets_the_event_again_after_the_backoff(stores, receiver):
    review, orders = stores
    orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER)
    delivery = WebhookDelivery(engine=review.engine, url=receiver.url)
    receiver.status = 500
    assert delivery.deliver_pending() == 0
    with review.engine.connect() as connection:
        row = connection.execute(sa.select(outbox)).one()
    assert (row.attempts, row.last_error, row.delivered_at) == (1, "HTTP 500", None)
    receiver.status = 200
    assert delivery.deliver_pending() == 0  # not due again yet
    with review.engine.begin() as connection:
        connection.execute(outbox.update().values(next_attempt_at=dt.datetime(2000, 1, 1)))
    assert delivery.deliver_pending() == 1 and [b["event"] for b, _ in receiver.received] == ["order.create"]


def test_an_unreachable_receiver_keeps_the_row_pending(stores, receiver):
    review, orders = stores
    orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER)
    receiver.server.shutdown()
    receiver.server.server_close()
    delivery = WebhookDelivery(engine=review.engine, url=receiver.url, timeout=2)
    assert delivery.deliver_pending() == 0 and pending_count(review.engine) == 1
    with review.engine.connect() as connection:
        assert connection.execute(sa.select(outbox.c.last_error)).scalar().startswith("ConnectError")


def test_leased_rows_are_not_sent_by_a_second_worker(stores, receiver):
    review, orders = stores
    orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER)
    first = WebhookDelivery(engine=review.engine, url=receiver.url)
    second = WebhookDelivery(engine=review.engine, url=receiver.url)
    original = first._send

    def send_while_another_worker_polls(row):
        assert second.deliver_pending() == 0  # the row is leased by `first`
        return original(row)

    first._send = send_while_another_worker_polls
    assert first.deliver_pending() == 1 and len(receiver.received) == 1


def test_the_worker_escalates_and_delivers(stores, receiver):
    review, orders = stores
    order = orders.create_order(
        new_order(confirmed_case(review, {"fire_smoke": 0.9}), due_at=dt.datetime(2026, 1, 1)), viewer=OFFICER
    )
    worker = LoopWorker(
        store=orders,
        delivery=WebhookDelivery(engine=review.engine, url=receiver.url),
        deliver_every=1,
        escalate_every=300,
    )
    worker.run_once()
    assert [body["event"] for body, _ in receiver.received] == ["order.create", "order.escalate"]
    assert receiver.received[1][0]["details"]["level"]["id"] == "district_federation"
    assert orders.order(order["id"], viewer=OFFICER)["escalation_level"] == 3


def test_the_worker_is_configured_from_the_service_settings(stores, receiver):
    from serving.settings import ServingSettings

    review, orders = stores
    settings = ServingSettings.from_env(
        {
            "ANKANG_ORDERS_WEBHOOK_URL": receiver.url,
            "ANKANG_ORDERS_WEBHOOK_SECRET": "s",
            "ANKANG_ORDERS_ESCALATE_SECONDS": "60",
        }
    )
    worker = LoopWorker.from_settings(orders, settings)
    assert (worker.delivery.url, worker.delivery.secret, worker.escalate_every) == (receiver.url, b"s", 60.0)
    assert LoopWorker.from_settings(orders, ServingSettings.from_env({})).delivery is None


def test_the_worker_recomputes_the_dashboard_after_a_change(stores, monkeypatch):
    from serving.orders import dashboard

    review, orders = stores
    figures = dashboard.CachedFigures()
    worker = LoopWorker(store=orders, delivery=None, deliver_every=1, escalate_every=300, figures=figures)
    orders.create_order(new_order(confirmed_case(review, {"fire_smoke": 0.9})), viewer=OFFICER)
    monkeypatch.setattr(dashboard, "utcnow", lambda: dt.datetime(2026, 12, 2, 7, 0, 30))  # the minute stays
    worker.run_once()

    def not_again(*args, **kwargs):
        raise AssertionError("the request recomputed figures the worker had already computed")

    monkeypatch.setattr(dashboard, "summary", not_again)
    assert figures.get(review.engine)["orders"] == 1
