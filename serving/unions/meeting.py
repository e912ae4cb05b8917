"""The weekly risk review (每周议): what the meeting of an ISO week (Monday 00:00 to Monday 00:00, UTC,
as the order dashboard's weeks) discusses, from the kept scores, grade history and the order store.

- enterprises newly at tier >= 4 (reached it this week and still there) and why: the reasons and
  policy rules of the score that took them there, and the unions covering them;
- unions whose grade rose this week, with their factors;
- supervision cases (督办) and rectification orders overdue at the week's end (or now);
- what was closed or verified this week;
- figures by district and by union type, and the trend over the 12 weeks up to this one.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import sqlalchemy as sa

from runtime.errors import InputError
from serving.db import iso, utcnow
from serving.enterprises.schema import latest, scores
from serving.orders.schema import orders
from serving.orders.states import UNRECTIFIED_STATES
from serving.unions.grading import HIGH_TIER
from serving.unions.schema import coverage, grade_history, unions

WEEK_PATTERN = re.compile(r"^(\d{4})-W(\d{2})$")
TREND_WEEKS = 12
MAX_ITEMS = 500  # per list; the figures count everything


def week_bounds(week: str | None, *, now: dt.datetime | None = None) -> tuple[str, dt.datetime, dt.datetime]:
    """'2026-W49' -> ('2026-W49', Monday 00:00, next Monday 00:00); None: the current week."""
    if week is None or week == "":
        year, number, _ = (now or utcnow()).isocalendar()
    else:
        match = WEEK_PATTERN.match(week)
        if not match:
            raise InputError("week", f"give an ISO week like 2026-W49, got {week[:20]!r}")
        year, number = int(match.group(1)), int(match.group(2))
    try:
        monday = dt.datetime.combine(dt.date.fromisocalendar(year, number, 1), dt.time())
    except ValueError:
        raise InputError("week", f"{year} has no ISO week {number}") from None
    return f"{year}-W{number:02d}", monday, monday + dt.timedelta(days=7)


def _in(column: sa.ColumnElement, start: dt.datetime, end: dt.datetime) -> sa.ColumnElement:
    return sa.and_(column >= start, column < end)


def review_meeting(engine: sa.Engine, week: str | None = None, *, now: dt.datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    label, start, end = week_bounds(week, now=now)
    as_of = min(end, now)  # a past week's overdue list is as at its end; the current week's as now
    with engine.connect() as connection:
        newly_high = _newly_high(connection, start, end)
        rose = _unions_rose(connection, start, end)
        overdue = _overdue(connection, as_of)
        closed = _closed(connection, start, end)
        by_district, by_type = _figures(connection, start, end, as_of)
        trend = _trend(connection, end)
    return {
        "week": label,
        "starts_at": iso(start),
        "ends_at": iso(end),
        "as_of": iso(as_of),
        "newly_high": newly_high,
        "unions_rose": rose,
        "overdue": overdue,
        "closed": closed,
        "by_district": by_district,
        "by_union_type": by_type,
        "trend": trend,
    }


def _covering(connection: sa.Connection, enterprise_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for begin in range(0, len(enterprise_ids), 500):
        rows = connection.execute(
            sa.select(coverage.c.enterprise_id, unions.c.union_id, unions.c.name, unions.c.district, unions.c.grade)
            .join(unions, unions.c.union_id == coverage.c.union_id)
            .where(coverage.c.enterprise_id.in_(enterprise_ids[begin : begin + 500]))
        ).all()
        for row in rows:
            found.setdefault(row.enterprise_id, []).append(
                {"union_id": row.union_id, "name": row.name, "district": row.district, "grade": row.grade}
            )
    return found


def _newly_high(connection: sa.Connection, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    """Enterprises that reached tier >= 4 this week and are still there, with the score that did it."""
    rows = connection.execute(
        sa.select(
            latest.c.enterprise_id,
            latest.c.tier,
            latest.c.high_since,
            scores.c.tier.label("tier_then"),
            scores.c.reasons,
            scores.c.rules_fired,
            scores.c.source,
        )
        .select_from(
            latest.outerjoin(
                scores,
                sa.and_(scores.c.enterprise_id == latest.c.enterprise_id, scores.c.scored_at == latest.c.high_since),
            )
        )
        .where(_in(latest.c.high_since, start, end))
        .order_by(latest.c.tier.desc(), latest.c.high_since, latest.c.enterprise_id)
    ).all()
    items: dict[str, dict[str, Any]] = {}
    for row in rows:  # one per enterprise even if two scores share the instant
        items.setdefault(
            row.enterprise_id,
            {
                "enterprise_id": row.enterprise_id,
                "tier": row.tier,
                "reached_at": iso(row.high_since),
                "reasons": [name for name in (row.reasons or "").split(";") if name],
                "rules_fired": [name for name in (row.rules_fired or "").split(";") if name],
                "source": row.source,
                "link": f"/unions/enterprises/{row.enterprise_id}",
            },
        )
    listed = list(items.values())[:MAX_ITEMS]
    covering = _covering(connection, [item["enterprise_id"] for item in listed])
    for item in listed:
        item["unions"] = covering.get(item["enterprise_id"], [])
    return listed


def _unions_rose(connection: sa.Connection, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    rows = connection.execute(
        sa.select(grade_history, unions.c.name, unions.c.union_type, unions.c.district)
        .join(unions, unions.c.union_id == grade_history.c.union_id)
        .where(
            _in(grade_history.c.graded_at, start, end),
            grade_history.c.previous_grade.is_not(None),
            grade_history.c.grade > grade_history.c.previous_grade,
        )
        .order_by(grade_history.c.grade.desc(), grade_history.c.graded_at.desc())
        .limit(MAX_ITEMS)
    ).all()
    return [
        {
            "union_id": row.union_id,
            "name": row.name,
            "union_type": row.union_type,
            "district": row.district,
            "grade": row.grade,
            "previous_grade": row.previous_grade,
            "layer": row.layer,
            "factors": [item for item in row.factors if item["points"]][:4],
            "graded_at": iso(row.graded_at),
            "link": f"/unions/{row.union_id}",
        }
        for row in rows
    ]


def _order_item(row: Any, *, as_of: dt.datetime | None = None) -> dict[str, Any]:
    item = {
        "id": row.id,
        "kind": row.kind,
        "enterprise_id": row.enterprise_id,
        "district": row.district,
        "state": row.state,
        "severity": row.severity,
        "risk_tier": row.risk_tier,
        "due_at": iso(row.due_at),
        "link": f"/orders/{row.id}",
    }
    if as_of is not None:
        item["days_overdue"] = round((as_of - row.due_at).total_seconds() / 86400, 1)
    else:
        item["closed_at"] = iso(row.closed_at)
        item["rectified_at"] = iso(row.rectified_at)
    return item


def _overdue(connection: sa.Connection, as_of: dt.datetime) -> dict[str, list[dict[str, Any]]]:
    rows = connection.execute(
        sa.select(orders)
        .where(orders.c.state.in_(UNRECTIFIED_STATES), orders.c.due_at < as_of, orders.c.created_at < as_of)
        .order_by(orders.c.due_at)
        .limit(MAX_ITEMS * 2)
    ).all()
    items = [_order_item(row, as_of=as_of) for row in rows]
    return {
        "supervision": [item for item in items if item["kind"] == "supervision"][:MAX_ITEMS],
        "rectification": [item for item in items if item["kind"] == "rectification"][:MAX_ITEMS],
    }


def _closed(connection: sa.Connection, start: dt.datetime, end: dt.datetime) -> list[dict[str, Any]]:
    rows = connection.execute(
        sa.select(orders)
        .where(sa.or_(_in(orders.c.closed_at, start, end), _in(orders.c.rectified_at, start, end)))
        .order_by(sa.func.coalesce(orders.c.closed_at, orders.c.rectified_at).desc())
        .limit(MAX_ITEMS)
    ).all()
    return [_order_item(row) for row in rows]


def _figures(connection: sa.Connection, start: dt.datetime, end: dt.datetime, as_of: dt.datetime):
    """Per district and per union type: unions, unions at grade >= 4, covered enterprises at tier >= 4 and
    those newly there this week; per district also open and overdue orders (the order's own district)."""
    high = sa.case((latest.c.tier >= HIGH_TIER, 1), else_=0)
    newly = sa.case((_in(latest.c.high_since, start, end), 1), else_=0)
    enterprise_figures = (
        sa.select(
            unions.c.district,
            unions.c.union_type,
            sa.func.count(sa.distinct(latest.c.enterprise_id)).label("scored"),
            sa.func.coalesce(sa.func.sum(high), 0).label("high"),
            sa.func.coalesce(sa.func.sum(newly), 0).label("newly_high"),
        )
        .select_from(
            unions.join(coverage, coverage.c.union_id == unions.c.union_id).join(
                latest, latest.c.enterprise_id == coverage.c.enterprise_id
            )
        )
        .group_by(unions.c.district, unions.c.union_type)
    )
    union_figures = sa.select(
        unions.c.district,
        unions.c.union_type,
        sa.func.count().label("unions"),
        sa.func.coalesce(sa.func.sum(sa.case((unions.c.grade >= 4, 1), else_=0)), 0).label("high_grade"),
    ).group_by(unions.c.district, unions.c.union_type)
    order_figures = (
        sa.select(
            orders.c.district,
            sa.func.count().label("open_orders"),
            sa.func.coalesce(sa.func.sum(sa.case((orders.c.due_at < as_of, 1), else_=0)), 0).label("overdue"),
        )
        .where(orders.c.state.in_(UNRECTIFIED_STATES))
        .group_by(orders.c.district)
    )
    blank = {"unions": 0, "grade_4_or_5": 0, "enterprises_scored": 0, "tier_4_or_5": 0, "newly_tier_4_or_5": 0}
    by_district: dict[str, dict[str, int]] = {}
    by_type: dict[str, dict[str, int]] = {}
    for row in connection.execute(union_figures):
        for table, key in ((by_district, row.district), (by_type, row.union_type)):
            entry = table.setdefault(key, dict(blank))
            entry["unions"] += row.unions
            entry["grade_4_or_5"] += int(row.high_grade)
    for row in connection.execute(enterprise_figures):
        for table, key in ((by_district, row.district), (by_type, row.union_type)):
            entry = table.setdefault(key, dict(blank))
            entry["enterprises_scored"] += row.scored
            entry["tier_4_or_5"] += int(row.high)
            entry["newly_tier_4_or_5"] += int(row.newly_high)
    for row in connection.execute(order_figures):
        entry = by_district.setdefault(row.district or "—", dict(blank))
        entry["open_orders"] = row.open_orders
        entry["overdue_orders"] = int(row.overdue)
    for entry in by_district.values():
        entry.setdefault("open_orders", 0)
        entry.setdefault("overdue_orders", 0)
    return (
        [{"district": key, **value} for key, value in sorted(by_district.items())],
        [{"union_type": key, **value} for key, value in sorted(by_type.items())],
    )


def _trend(connection: sa.Connection, end: dt.datetime) -> list[dict[str, Any]]:
    """Per week, oldest first: enterprises scored at tier >= 4 that week, supervision cases opened, orders
    closed, unions whose grade rose."""
    first = end - dt.timedelta(weeks=TREND_WEEKS)
    weeks = [first + dt.timedelta(weeks=index) for index in range(TREND_WEEKS)]
    high_scores = connection.execute(
        sa.select(scores.c.enterprise_id, scores.c.scored_at).where(
            _in(scores.c.scored_at, first, end), scores.c.tier >= HIGH_TIER
        )
    ).all()
    opened = connection.execute(
        sa.select(orders.c.created_at).where(orders.c.kind == "supervision", _in(orders.c.created_at, first, end))
    ).scalars()
    closed = connection.execute(sa.select(orders.c.closed_at).where(_in(orders.c.closed_at, first, end))).scalars()
    rose = connection.execute(
        sa.select(grade_history.c.graded_at).where(
            _in(grade_history.c.graded_at, first, end),
            grade_history.c.previous_grade.is_not(None),
            grade_history.c.grade > grade_history.c.previous_grade,
        )
    ).scalars()

    def index(moment: dt.datetime) -> int:
        return int((moment - first) / dt.timedelta(weeks=1))

    high_sets: list[set[str]] = [set() for _ in weeks]
    for row in high_scores:
        high_sets[index(row.scored_at)].add(row.enterprise_id)
    counts = {name: [0] * TREND_WEEKS for name in ("supervision_opened", "orders_closed", "unions_rose")}
    for name, moments in (("supervision_opened", opened), ("orders_closed", closed), ("unions_rose", rose)):
        for moment in moments:
            counts[name][index(moment)] += 1
    return [
        {
            "week": "{}-W{:02d}".format(*monday.isocalendar()[:2]),
            "enterprises_at_tier_4_or_5": len(high_sets[i]),
            **{name: values[i] for name, values in counts.items()},
        }
        for i, monday in enumerate(weeks)
    ]
