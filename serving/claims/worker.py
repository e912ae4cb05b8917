"""Escalates overdue claim cases in each API process, every ANKANG_ORDERS_ESCALATE_SECONDS; the orders'
worker (serving/orders/worker.py) delivers the outbox rows it writes to the same webhook. Safe in
several processes at once: each climb is a guarded UPDATE."""

from __future__ import annotations

import logging
import threading

import sqlalchemy as sa

from serving.claims.store import ClaimStore

log = logging.getLogger("ankang.claims.worker")


class EscalationWorker:
    def __init__(self, store: ClaimStore, *, every: float):
        self.store, self.every = store, every
        self._stop = threading.Event()

    def run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.store.escalate_overdue()
            except sa.exc.SQLAlchemyError as error:  # the database is busy or away: next round
                log.warning("claims_escalation_failed", extra={"error": str(error)})

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self.run, name="claims-escalation", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()
