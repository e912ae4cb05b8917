"""Receipt codes: how a reporter hears back without anyone learning who reported (吹哨人 protection).

The assess answer carries a random code (120 bits); only its SHA-256 is stored, and a lookup
goes by that hash through the primary key, so the time a lookup takes tells nothing about how
close a guess was, and a leaked database does not give the codes away. The answer names the
report's stage and outcome only: never the reporter, the site, the enterprise or other reports.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import secrets
from typing import Any

import sqlalchemy as sa

from runtime.errors import InputError
from runtime.taxonomy import load_taxonomy
from serving.db import utcnow
from serving.orders.schema import orders, receipts
from serving.review.schema import cases, decisions
from serving.windows import windows

CODE_BYTES = 15  # 120 bits: 24 base32 characters, shown as six groups of four
_CODE = re.compile(r"^[A-Z2-7]{24}$")
STAGES = {  # stage: (Chinese, English) said to the reporter
    "received": ("已收到，等待审核", "received; waiting for review"),
    # nothing flagged by the model: no officer will necessarily look, so "waiting" would never end
    "no_hazard_flagged": (
        "已收到，自动筛查未发现隐患；如有需要，安全员仍可复核",
        "received; the automatic check found no hazard (an officer may still look at it)",
    ),
    "no_hazard_found": ("经审核未发现隐患", "reviewed; no hazard was confirmed"),
    "confirmed": ("隐患已确认，将下达整改", "hazard confirmed; a rectification order will be issued"),
    "rectifying": ("整改中", "the enterprise is rectifying the hazard"),
    "rectified": ("整改已复查通过", "the rectification was checked and accepted"),
    "closed": ("已闭环", "closed: rectified and verified"),
}


CONFIRMED_STAGES = ("confirmed", "rectifying", "rectified", "closed")


def new_code() -> str:
    raw = base64.b32encode(secrets.token_bytes(CODE_BYTES)).decode("ascii")
    return "-".join(raw[index : index + 4] for index in range(0, len(raw), 4))


def code_digest(code: str) -> str:
    """The stored form of a code; dashes, spaces and case do not matter when it is typed back."""
    normalised = re.sub(r"[\s-]", "", code).upper()
    if not _CODE.match(normalised):
        raise InputError(
            "receipt",
            "a receipt code is 24 letters and digits (2-7) in six groups of four, as printed on the assessment answer",
            status_code=404,
        )
    return hashlib.sha256(normalised.encode("ascii")).hexdigest()


def issue_receipt(engine: sa.Engine, photo_id: str) -> str:
    with engine.begin() as connection:
        return record_receipt(connection, photo_id)


def record_receipt(connection: sa.Connection, photo_id: str) -> str:
    """A new code for the report `photo_id`, written in the caller's transaction (the intake writes
    the case, its flags and its receipt together: a reporter never holds a code without a case)."""
    code = new_code()
    connection.execute(receipts.insert().values(code_sha256=code_digest(code), photo_id=photo_id, created_at=utcnow()))
    return code


def _stage(status: str, order_state: str | None) -> str:
    if order_state in ("verified", "closed"):
        return "rectified" if order_state == "verified" else "closed"
    if order_state is not None:
        return "rectifying"
    return {
        "dismissed": "no_hazard_found",
        "confirmed": "confirmed",
        "corrected": "confirmed",
        "rectified": "rectified",
        "clear": "no_hazard_flagged",
    }.get(status, "received")


def report_status(engine: sa.Engine, code: str) -> dict[str, Any]:
    """The report's stage, outcome and dates (days only); 404 for an unknown code."""
    digest = code_digest(code)
    latest = (
        sa.select(decisions.c.hazards)
        .where(decisions.c.photo_id == cases.c.photo_id)
        .order_by(decisions.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    rectified_decision = (  # a review `rectified` decision: the officer saw it rectified, with no order
        sa.select(sa.func.max(decisions.c.created_at))
        .where(decisions.c.photo_id == cases.c.photo_id, decisions.c.decision == "rectified")
        .scalar_subquery()
    )
    query = (
        sa.select(
            cases.c.created_at,
            cases.c.status,
            latest.label("hazards"),
            rectified_decision.label("rectified_by_review"),
            orders.c.state,
            orders.c.due_at,
            orders.c.rectified_at,
            orders.c.closed_at,
        )
        .join(cases, cases.c.photo_id == receipts.c.photo_id)
        .outerjoin(orders, orders.c.photo_id == receipts.c.photo_id)
        .where(receipts.c.code_sha256 == digest)
    )
    with engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        raise InputError("receipt", "no report has this receipt code", status_code=404)
    stage = _stage(row.status, row.state)
    taxonomy = load_taxonomy()
    hazards = [taxonomy[h] for h in (row.hazards or []) if h in taxonomy] if stage in CONFIRMED_STAGES else []
    rectified_at = row.rectified_at or (row.rectified_by_review if stage == "rectified" else None)
    return {
        "stage": stage,
        "message_zh": STAGES[stage][0],
        "message_en": STAGES[stage][1],
        "reported_on": _day(row.created_at),
        "rectification_due_on": _day(row.due_at),
        "rectified_on": _day(rectified_at),
        "closed_on": _day(row.closed_at),
        "hazards": [{"type": h.id, "name_zh": h.name_zh, "name_en": h.name_en} for h in hazards],
    }


def _day(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.date().isoformat()


class RateLimiter:
    """At most `limit` lookups per client address in a sliding window of `window` seconds, counted in
    `windows` (Redis shared by the replicas, or this process's memory)."""

    def __init__(
        self,
        *,
        limit: int = 30,
        window: float = 60.0,
        max_clients: int = 10_000,
        redis_url: str | None = None,
        prefix: str = "ankang:receipt-lookups",
    ):
        self.limit = limit
        self.windows = windows(redis_url, prefix=prefix, window=window, max_keys=max_clients)

    def allow(self, client: str, *, now: float | None = None) -> bool:
        return self.windows.record(client, limit=self.limit, now=now)
