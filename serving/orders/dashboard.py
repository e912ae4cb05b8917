"""Officers' figures over rectification orders: counts by state, overdue, median days to rectify,
by site, enterprise, district and hazard type, and a weekly trend. One query reads the few columns
needed; pandas groups them (10,000 orders: see benchmarks/orders_dashboard.py)."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

import pandas as pd
import sqlalchemy as sa

from serving.orders.schema import orders
from serving.orders.states import RECTIFIED_STATES, STATES, UNRECTIFIED_STATES
from serving.review.store import utcnow

DIMENSIONS = {"site": "site_id", "enterprise": "enterprise_id", "district": "district", "hazard": "hazard"}
COLUMNS = ("state", "site_id", "enterprise_id", "district", "hazard", "escalation_level", "created_at",
           "due_at", "rectified_at")
WEEKS = 12
TOP = 20
CSV_COLUMNS = ("dimension", "key", "orders", "unrectified", "overdue", "rectified", "median_days_to_rectify")


def load_frame(engine: sa.Engine) -> pd.DataFrame:
    query = sa.select(*[orders.c[name] for name in COLUMNS]).where(orders.c.kind == "rectification")
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    for name in ("created_at", "due_at", "rectified_at"):
        frame[name] = pd.to_datetime(frame[name])
    return frame


def _flags(frame: pd.DataFrame, now: dt.datetime) -> pd.DataFrame:
    unrectified = frame["state"].isin(UNRECTIFIED_STATES)
    return frame.assign(unrectified=unrectified, overdue=unrectified & (frame["due_at"] < pd.Timestamp(now)),
                        rectified=frame["state"].isin(RECTIFIED_STATES),
                        days=(frame["rectified_at"] - frame["created_at"]).dt.total_seconds() / 86400)


def _median(days: pd.Series) -> float | None:
    days = days.dropna()
    return None if days.empty else round(float(days.median()), 2)


def _breakdown(frame: pd.DataFrame, column: str) -> list[dict[str, Any]]:
    keyed = frame.assign(key=frame[column].fillna("(none)"))
    grouped = keyed.groupby("key", sort=False).agg(orders=("state", "size"), unrectified=("unrectified", "sum"),
                                                   overdue=("overdue", "sum"), rectified=("rectified", "sum"),
                                                   median_days_to_rectify=("days", "median"))
    grouped = grouped.sort_values(["unrectified", "orders"], ascending=False)
    return [{"key": str(key), "orders": int(row.orders), "unrectified": int(row.unrectified),
             "overdue": int(row.overdue), "rectified": int(row.rectified),
             "median_days_to_rectify": None if pd.isna(row.median_days_to_rectify)
             else round(float(row.median_days_to_rectify), 2)} for key, row in grouped.iterrows()]


def _weekly(frame: pd.DataFrame, now: dt.datetime) -> list[dict[str, Any]]:
    """Orders opened and rectified per ISO week (Monday start), the last WEEKS weeks, oldest first."""
    this_week = pd.Timestamp(now).normalize() - pd.Timedelta(days=now.weekday())
    starts = [this_week - pd.Timedelta(weeks=back) for back in range(WEEKS - 1, -1, -1)]
    opened = frame["created_at"].dt.to_period("W-SUN").dt.start_time.value_counts()
    rectified = frame["rectified_at"].dropna().dt.to_period("W-SUN").dt.start_time.value_counts()
    return [{"week": f"{start.isocalendar()[0]}-W{start.isocalendar()[1]:02d}", "starts": start.date().isoformat(),
             "opened": int(opened.get(start, 0)), "rectified": int(rectified.get(start, 0))} for start in starts]


def summary(engine: sa.Engine, *, now: dt.datetime | None = None, top: int | None = TOP) -> dict[str, Any]:
    now = now or utcnow()
    frame = _flags(load_frame(engine), now)
    states = frame["state"].value_counts()
    levels = frame.loc[frame["unrectified"], "escalation_level"].value_counts()
    return {
        "generated_at": now.isoformat(timespec="seconds") + "Z", "orders": len(frame),
        "by_state": {state: int(states.get(state, 0)) for state in STATES},
        "unrectified": int(frame["unrectified"].sum()), "overdue": int(frame["overdue"].sum()),
        "escalated": {str(level): int(count) for level, count in sorted(levels.items()) if level > 0},
        "median_days_to_rectify": _median(frame["days"]),
        "by": {name: _breakdown(frame, column)[:top] for name, column in DIMENSIONS.items()},
        "weekly": _weekly(frame, now),
    }


def summary_csv(engine: sa.Engine, *, now: dt.datetime | None = None) -> bytes:
    """The same figures as one tidy table: a row per (dimension, key); weeks as dimension `week`."""
    figures = summary(engine, now=now, top=None)
    rows = [{"dimension": "all", "key": "all", "orders": figures["orders"], "unrectified": figures["unrectified"],
             "overdue": figures["overdue"], "rectified": figures["by_state"]["verified"] + figures["by_state"]["closed"],
             "median_days_to_rectify": figures["median_days_to_rectify"]}]
    rows += [{"dimension": "state", "key": state, "orders": count} for state, count in figures["by_state"].items()]
    rows += [{"dimension": name, **entry} for name, entries in figures["by"].items() for entry in entries]
    rows += [{"dimension": "week", "key": week["week"], "orders": week["opened"], "rectified": week["rectified"]}
             for week in figures["weekly"]]
    buffer = io.StringIO()
    table = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    counts = ["orders", "unrectified", "overdue", "rectified"]
    table[counts] = table[counts].astype("Int64")  # whole numbers, blank where a figure does not apply
    table.to_csv(buffer, index=False)
    return buffer.getvalue().encode("utf-8")
