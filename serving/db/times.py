"""Times as the database holds them (naive UTC) and as the API shows them (ISO 8601 with Z)."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    """Now in UTC without a zone: every timestamp column stores naive UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def iso(moment: dt.datetime | None) -> str | None:
    """A stored (naive UTC) time as the API answers it, e.g. 2026-12-06T10:55:43Z."""
    return None if moment is None else moment.isoformat(timespec="seconds") + "Z"
