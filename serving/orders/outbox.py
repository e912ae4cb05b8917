"""Delivers the outbox to a webhook, at least once: a row is marked delivered only after a 2xx.

Rows are written in the same transaction as the change they announce (serving/orders/store.py),
so a crash never loses one. A delivery claims its rows first (moves their next attempt past a
lease), so two workers rarely send the same row; if a worker dies after sending but before
marking, the row is sent again after the lease: receivers deduplicate by `X-Ankang-Event-Id`.
Failures back off exponentially, up to an hour.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
from typing import Any

import httpx
import sqlalchemy as sa

from serving.db import utcnow
from serving.orders.schema import outbox

LEASE = dt.timedelta(seconds=60)
MAX_BACKOFF = dt.timedelta(hours=1)
log = logging.getLogger("ankang.orders.outbox")


def _claim(engine: sa.Engine, *, now: dt.datetime, batch: int) -> list[Any]:
    """Rows due now, leased to this worker: the guarded UPDATE skips rows another worker leased meanwhile."""
    lease_until = now + LEASE
    with engine.begin() as connection:
        due = (
            sa.select(outbox.c.id)
            .where(outbox.c.delivered_at.is_(None), outbox.c.next_attempt_at <= now)
            .order_by(outbox.c.id)
            .limit(batch)
            .scalar_subquery()
        )
        connection.execute(
            outbox.update()
            .where(outbox.c.id.in_(due), outbox.c.delivered_at.is_(None), outbox.c.next_attempt_at <= now)
            .values(next_attempt_at=lease_until)
        )
        return connection.execute(
            sa.select(outbox)
            .where(outbox.c.delivered_at.is_(None), outbox.c.next_attempt_at == lease_until)
            .order_by(outbox.c.id)
            .limit(batch)
        ).all()


def _backoff(attempts: int) -> dt.timedelta:
    return min(MAX_BACKOFF, dt.timedelta(seconds=2 ** min(attempts, 12)))


class WebhookDelivery:
    def __init__(self, *, engine: sa.Engine, url: str, secret: bytes | None = None, timeout: float = 10.0):
        self.engine, self.url, self.secret = engine, url, secret
        self.client = httpx.Client(timeout=timeout)

    def _headers(self, row: Any, body: bytes) -> dict[str, str]:
        headers = {"content-type": "application/json", "x-ankang-event-id": str(row.id), "x-ankang-event": row.event}
        if self.secret:
            headers["x-ankang-signature"] = "sha256=" + hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        return headers

    def _send(self, row: Any) -> str | None:
        """None when the receiver took it (2xx), else what went wrong."""
        body = json.dumps({"id": row.id, **row.payload}, ensure_ascii=False).encode("utf-8")
        try:
            response = self.client.post(self.url, content=body, headers=self._headers(row, body))
        except httpx.HTTPError as error:
            return f"{type(error).__name__}: {error}"
        return None if response.is_success else f"HTTP {response.status_code}"

    def deliver_pending(self, *, batch: int = 50) -> int:
        """Send what is due now; returns how many the receiver acknowledged."""
        delivered = 0
        for row in _claim(self.engine, now=utcnow(), batch=batch):
            error = self._send(row)
            now = utcnow()
            values = (
                {"delivered_at": now, "last_error": None}
                if error is None
                else {"next_attempt_at": now + _backoff(row.attempts + 1), "last_error": error[:500]}
            )
            with self.engine.begin() as connection:
                connection.execute(
                    outbox.update().where(outbox.c.id == row.id).values(attempts=outbox.c.attempts + 1, **values)
                )
            delivered += error is None
            if error is not None:
                log.warning("webhook_failed", extra={"event_id": row.id, "error": error})
        return delivered


def pending_count(engine: sa.Engine) -> int:
    with engine.connect() as connection:
        return connection.execute(
            sa.select(sa.func.count()).select_from(outbox).where(outbox.c.delivered_at.is_(None))
        ).scalar_one()
