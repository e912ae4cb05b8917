"""The review queue: filters from query parameters, most urgent first, one page per request."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from runtime.errors import InputError
from runtime.taxonomy import load_taxonomy
from serving.review.decisions import STATUS_AFTER, STATUSES
from serving.review.schema import case_flags, cases, decisions

STATUS_CHOICES = STATUSES + ("decided", "all")
MAX_LIMIT = 200


@dataclass(frozen=True)
class QueueFilter:
    status: str = "open"
    hazard: str | None = None
    site: str | None = None
    date_from: dt.datetime | None = None
    date_to: dt.datetime | None = None
    limit: int = 50
    offset: int = 0


def _zone(params: Mapping[str, str]) -> ZoneInfo:
    name = params.get("tz") or "UTC"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InputError("tz", f"unknown time zone {name!r}; use an IANA name such as Asia/Shanghai") from None


def _date(params: Mapping[str, str], field: str, *, end: bool, zone: ZoneInfo) -> dt.datetime | None:
    """A bound of the date filter in UTC: a bare YYYY-MM-DD is that day in `zone` (the reader's days)."""
    text = params.get(field)
    if not text:
        return None
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InputError(field, f"{text!r} is not a date; use YYYY-MM-DD or an ISO 8601 time") from None
    try:
        if len(text) == 10:  # a bare date: that day in `zone`; as an end, the whole day is included
            moment = (moment + dt.timedelta(days=1 if end else 0)).replace(tzinfo=zone)
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
    except OverflowError:  # 0001-01-01+01:00 or 9999-12-31 as an end: no such UTC moment
        raise InputError(field, f"{text!r} is out of range; give a date between the years 1 and 9999") from None
    return moment


def integer_param(params: Mapping[str, str], field: str, default: int, *, low: int, high: int) -> int:
    """A whole-number query parameter in [low, high], `default` when absent; InputError naming it otherwise."""
    text = params.get(field)
    if text in (None, ""):
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        raise InputError(field, f"{field} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def parse_filter(params: Mapping[str, str]) -> QueueFilter:
    status = params.get("status") or "open"
    if status not in STATUS_CHOICES:
        raise InputError("status", f"unknown status {status!r}; use one of {list(STATUS_CHOICES)}")
    zone = _zone(params)
    hazard = params.get("hazard") or None
    if hazard is not None and hazard not in load_taxonomy():
        raise InputError("hazard", f"unknown hazard type {hazard!r}; known types: {sorted(load_taxonomy())}")
    return QueueFilter(
        status=status,
        hazard=hazard,
        site=params.get("site") or None,
        date_from=_date(params, "from", end=False, zone=zone),
        date_to=_date(params, "to", end=True, zone=zone),
        limit=integer_param(params, "limit", 50, low=1, high=MAX_LIMIT),
        offset=integer_param(params, "offset", 0, low=0, high=10_000_000),
    )


def _conditions(query: QueueFilter, *, with_status: bool) -> list[Any]:
    conditions = []
    if with_status and query.status == "decided":
        conditions.append(cases.c.status.in_(tuple(STATUS_AFTER.values())))
    elif with_status and query.status != "all":
        conditions.append(cases.c.status == query.status)
    if query.hazard:  # EXISTS probes the flags' primary key per entry of the covering queue index
        flags = sa.select(case_flags.c.photo_id).where(
            case_flags.c.photo_id == cases.c.photo_id, case_flags.c.hazard == query.hazard
        )
        conditions.append(flags.exists())
    if query.site:
        conditions.append(cases.c.site_id == query.site)
    if query.date_from:
        conditions.append(cases.c.created_at >= query.date_from)
    if query.date_to:
        conditions.append(cases.c.created_at < query.date_to)
    return conditions


def _order(query: QueueFilter) -> list[Any]:
    if query.status in STATUS_AFTER.values() or query.status == "decided":
        return [cases.c.decided_at.desc(), cases.c.photo_id]
    return [cases.c.severity_rank.desc(), cases.c.top_probability.desc(), cases.c.created_at, cases.c.photo_id]


def queue_page(
    connection: sa.Connection, query: QueueFilter, *, describe: Callable[[sa.Row], dict[str, Any]]
) -> dict[str, Any]:
    """One page of cases in urgency order, the total that match, and counts per status."""
    where = _conditions(query, with_status=True)
    rows = connection.execute(
        sa.select(cases).where(*where).order_by(*_order(query)).limit(query.limit).offset(query.offset)
    ).all()
    total = connection.execute(sa.select(sa.func.count()).select_from(cases).where(*where)).scalar_one()
    counts = dict(
        connection.execute(
            sa.select(cases.c.status, sa.func.count())
            .where(*_conditions(query, with_status=False))
            .group_by(cases.c.status)
        ).all()
    )
    group_sizes = (
        dict(
            connection.execute(
                sa.select(cases.c.group_id, sa.func.count())
                .where(cases.c.group_id.in_({row.group_id for row in rows}))
                .group_by(cases.c.group_id)
            ).all()
        )
        if rows
        else {}
    )
    corrected = _corrected_hazards(connection, [row.photo_id for row in rows if row.status == "corrected"])
    return {
        "items": [
            {
                **describe(row),
                "group_size": group_sizes.get(row.group_id, 1),
                "decided_hazards": corrected.get(row.photo_id),
            }
            for row in rows
        ],
        "total": total,
        "limit": query.limit,
        "offset": query.offset,
        "counts": {status: counts.get(status, 0) for status in STATUSES},
    }


def _corrected_hazards(connection: sa.Connection, photo_ids: list[str]) -> dict[str, list[str]]:
    """The hazards an officer corrected each case to (its latest decision): the page shows these, not
    the model's flags it overruled."""
    if not photo_ids:
        return {}
    latest = (
        sa.select(sa.func.max(decisions.c.id)).where(decisions.c.photo_id.in_(photo_ids)).group_by(decisions.c.photo_id)
    )
    rows = connection.execute(sa.select(decisions.c.photo_id, decisions.c.hazards).where(decisions.c.id.in_(latest)))
    return {row.photo_id: list(row.hazards) for row in rows}
