"""The order loop's background work in each API process: escalate overdue orders, deliver the outbox,
and recompute the dashboard's figures after a change, so officers rarely wait for them.

Both are safe to run in several processes at once: escalation is a guarded UPDATE per order, and
outbox rows are leased before they are sent (serving/orders/outbox.py).
"""

from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa

from serving.orders.dashboard import CachedFigures
from serving.orders.outbox import WebhookDelivery
from serving.orders.store import OrderStore
from serving.settings import ServingSettings

log = logging.getLogger("ankang.orders.worker")


class LoopWorker:
    def __init__(
        self,
        *,
        store: OrderStore,
        delivery: WebhookDelivery | None,
        deliver_every: float,
        escalate_every: float,
        figures: CachedFigures | None = None,
    ):
        self.store, self.delivery, self.figures = store, delivery, figures
        self.deliver_every, self.escalate_every = deliver_every, escalate_every
        self._stop = threading.Event()
        self._next_escalation = 0.0

    @classmethod
    def from_settings(
        cls, store: OrderStore, settings: ServingSettings, figures: CachedFigures | None = None
    ) -> LoopWorker:
        """ANKANG_ORDERS_WEBHOOK_URL / _SECRET / _DELIVER_SECONDS / _ESCALATE_SECONDS."""
        secret = settings.orders_webhook_secret
        delivery = (
            None
            if settings.orders_webhook_url is None
            else WebhookDelivery(
                engine=store.engine, url=settings.orders_webhook_url, secret=secret.encode("utf-8") if secret else None
            )
        )
        return cls(
            store=store,
            delivery=delivery,
            deliver_every=settings.orders_deliver_seconds,
            escalate_every=settings.orders_escalate_seconds,
            figures=figures,
        )

    def run_once(self) -> None:
        if time.monotonic() >= self._next_escalation:
            self.store.escalate_overdue()
            self._next_escalation = time.monotonic() + self.escalate_every
        if self.delivery is not None:
            self.delivery.deliver_pending()
        if self.figures is not None:  # a no-op unless an order changed or the minute turned
            self.figures.get(self.store.engine)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except sa.exc.SQLAlchemyError as error:  # the database is busy or away: next round
                log.warning("orders_worker_failed", extra={"error": str(error)})
            self._stop.wait(self.deliver_every)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="orders-loop", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
