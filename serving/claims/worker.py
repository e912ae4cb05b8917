"""The claims' background work in each API process: escalate overdue cases every
ANKANG_ORDERS_ESCALATE_SECONDS (the orders' worker, serving/orders/worker.py, delivers the outbox
rows this writes to the same webhook), and recompute the figures after a change every
ANKANG_ORDERS_DELIVER_SECONDS, so officers rarely wait for them. Safe in several processes at once:
each escalation is a guarded UPDATE."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import sqlalchemy as sa

from serving.claims.figures import CachedFigures
from serving.claims.store import ClaimStore

log = logging.getLogger("ankang.claims.worker")


class EscalationWorker:
    def __init__(
        self, store: ClaimStore, *, figures: CachedFigures | None, escalate_every: float, refresh_every: float
    ):
        self.store, self.figures = store, figures
        self.escalate_every, self.refresh_every = escalate_every, refresh_every
        self._stop = threading.Event()
        self._next_escalation = 0.0

    @classmethod
    def from_settings(cls, store: ClaimStore, settings: Any, *, figures: CachedFigures | None) -> EscalationWorker:
        """ANKANG_ORDERS_ESCALATE_SECONDS and ANKANG_ORDERS_DELIVER_SECONDS, as the orders' worker."""
        return cls(
            store,
            figures=figures,
            escalate_every=settings.orders_escalate_seconds,
            refresh_every=settings.orders_deliver_seconds,
        )

    def run_once(self) -> None:
        if time.monotonic() >= self._next_escalation:
            self.store.escalate_overdue()
            self._next_escalation = time.monotonic() + self.escalate_every
        if self.figures is not None:  # a no-op unless something changed or the minute turned
            self.figures.refresh(self.store.engine, mass_workers=self.store.policy.mass_workers)

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except sa.exc.SQLAlchemyError as error:  # the database is busy or away: next round
                log.warning("claims_worker_failed", extra={"error": str(error)})
            self._stop.wait(self.refresh_every)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="claims-worker", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
