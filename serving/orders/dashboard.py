"""Officers' figures over rectification orders: counts by state, overdue, median days to rectify,
by site, enterprise, district and hazard type, and a weekly trend. One query reads the few columns
needed; pandas groups them (10,000 orders: see benchmarks/orders_dashboard.py)."""

from __future__ import annotations

import datetime as dt
import io
import threading
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from runtime.safe_csv import frame_to_csv
from serving.db import utcnow
from serving.orders.schema import orders
from serving.orders.states import RECTIFIED_STATES, STATES, UNRECTIFIED_STATES

DIMENSIONS = {"site": "site_id", "enterprise": "enterprise_id", "district": "district", "hazard": "hazard"}
COLUMNS = (
    "state",
    "site_id",
    "enterprise_id",
    "district",
    "hazard",
    "escalation_level",
    "created_at",
    "due_at",
    "rectified_at",
)
TIMES = ("created_at", "due_at", "rectified_at")
WEEKS = 12
TOP = 20
CSV_COLUMNS = ("dimension", "key", "orders", "unrectified", "overdue", "rectified", "median_days_to_rectify")


def load_frame(engine: sa.Engine) -> pd.DataFrame:
    """The columns of every rectification order; times are parsed by pandas at once, not row by row
    (SQLite hands back text, PostgreSQL datetimes: to_datetime takes both)."""
    selected = [sa.type_coerce(orders.c[name], sa.String) if name in TIMES else orders.c[name] for name in COLUMNS]
    with engine.connect() as connection:
        rows = connection.execute(sa.select(*selected).where(orders.c.kind == "rectification")).all()
    columns = list(zip(*rows)) or [()] * len(COLUMNS)  # column by column: pandas builds arrays, not rows
    frame = pd.DataFrame({name: list(values) for name, values in zip(COLUMNS, columns)})
    for name in TIMES:
        frame[name] = pd.to_datetime(frame[name], format="ISO8601")
    return frame


def _flags(frame: pd.DataFrame, now: dt.datetime) -> pd.DataFrame:
    unrectified = frame["state"].isin(UNRECTIFIED_STATES)
    return frame.assign(
        unrectified=unrectified,
        overdue=unrectified & (frame["due_at"] < pd.Timestamp(now)),
        rectified=frame["state"].isin(RECTIFIED_STATES),
        days=(frame["rectified_at"] - frame["created_at"]).dt.total_seconds() / 86400,
    )


def _median(days: pd.Series) -> float | None:
    days = days.dropna()
    return None if days.empty else round(float(days.median()), 2)


def _breakdown(frame: pd.DataFrame, column: str) -> list[dict[str, Any]]:
    """Per key: orders, unrectified, overdue, rectified, median days (counted with bincount, not groupby)."""
    codes, keys = pd.factorize(frame[column].fillna("(none)"))
    size = len(keys)
    counts = {
        name: np.bincount(codes, weights=frame[name].to_numpy(float), minlength=size).astype(int)
        for name in ("unrectified", "overdue", "rectified")
    }
    totals = np.bincount(codes, minlength=size)
    medians = frame["days"].groupby(codes).median()
    order = np.lexsort((-totals, -counts["unrectified"]))
    return [
        {
            "key": str(keys[i]),
            "orders": int(totals[i]),
            "unrectified": int(counts["unrectified"][i]),
            "overdue": int(counts["overdue"][i]),
            "rectified": int(counts["rectified"][i]),
            "median_days_to_rectify": None if pd.isna(medians.get(i)) else round(float(medians[i]), 2),
        }
        for i in order
    ]


def _week_numbers(moments: pd.Series) -> np.ndarray:
    """Weeks since Monday 1970-01-05 (NaT: -1)."""
    days = moments.to_numpy("datetime64[D]")
    weeks = (days - np.datetime64("1970-01-05", "D")).astype("timedelta64[D]").astype(np.int64) // 7
    return np.where(np.isnat(days), -1, weeks)


def _weekly(frame: pd.DataFrame, now: dt.datetime) -> list[dict[str, Any]]:
    """Orders opened and rectified per ISO week (Monday start), the last WEEKS weeks, oldest first."""
    current = int(_week_numbers(pd.Series([pd.Timestamp(now)]))[0])
    first = current - WEEKS + 1
    opened, rectified = (
        np.bincount(np.clip(_week_numbers(frame[name]) - first, -1, WEEKS) + 1, minlength=WEEKS + 2)
        for name in ("created_at", "rectified_at")
    )
    weeks = []
    for index in range(WEEKS):
        start = dt.date(1970, 1, 5) + dt.timedelta(weeks=first + index)
        year, week, _ = start.isocalendar()
        weeks.append(
            {
                "week": f"{year}-W{week:02d}",
                "starts": start.isoformat(),
                "opened": int(opened[index + 1]),
                "rectified": int(rectified[index + 1]),
            }
        )
    return weeks


def supervision_figures(engine: sa.Engine, *, now: dt.datetime) -> dict[str, Any]:
    """Supervision cases (督办) by state, and how many are overdue (two grouped counts in SQL)."""
    cases = orders.c.kind == "supervision"
    overdue = sa.and_(orders.c.state.in_(UNRECTIFIED_STATES), orders.c.due_at < now)
    with engine.connect() as connection:
        states = dict(
            connection.execute(sa.select(orders.c.state, sa.func.count()).where(cases).group_by(orders.c.state)).all()
        )
        late = connection.execute(sa.select(sa.func.count()).select_from(orders).where(cases, overdue)).scalar_one()
    return {"by_state": {state: int(states.get(state, 0)) for state in STATES}, "overdue": int(late)}


def summary(engine: sa.Engine, *, now: dt.datetime | None = None, top: int | None = TOP) -> dict[str, Any]:
    now = now or utcnow()
    frame = _flags(load_frame(engine), now)
    states = frame["state"].value_counts()
    levels = frame.loc[frame["unrectified"], "escalation_level"].value_counts()
    return {
        "generated_at": now.isoformat(timespec="seconds") + "Z",
        "orders": len(frame),
        "by_state": {state: int(states.get(state, 0)) for state in STATES},
        "unrectified": int(frame["unrectified"].sum()),
        "overdue": int(frame["overdue"].sum()),
        "escalated": {str(level): int(count) for level, count in sorted(levels.items()) if level > 0},
        "median_days_to_rectify": _median(frame["days"]),
        "by": {name: _breakdown(frame, column)[:top] for name, column in DIMENSIONS.items()},
        "weekly": _weekly(frame, now),
        "supervision": supervision_figures(engine, now=now),
    }


def top_of(figures: dict[str, Any], top: int = TOP) -> dict[str, Any]:
    """The figures with each breakdown cut to its `top` keys (most unrectified first)."""
    return {**figures, "by": {name: entries[:top] for name, entries in figures["by"].items()}}


def _stamp(engine: sa.Engine) -> tuple[Any, ...]:
    """Changes whenever an order is created or changed (every change sets updated_at; indexed)."""
    with engine.connect() as connection:
        return tuple(
            connection.execute(sa.select(sa.func.count(), sa.func.max(orders.c.updated_at)).select_from(orders)).one()
        )


class CachedFigures:
    """The full figures, recomputed when an order changes or the minute turns (overdue depends on
    the time): officers polling the dashboard share one computation."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._figures: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, engine: sa.Engine, *, now: dt.datetime | None = None) -> dict[str, Any]:
        now = now or utcnow()
        key = (str(engine.url), *_stamp(engine), now.replace(second=0, microsecond=0))
        with self._lock:
            if key != self._key:
                self._figures, self._key = summary(engine, now=now, top=None), key
            return self._figures

    def clear(self) -> None:
        with self._lock:
            self._key = None


def summary_csv(figures: dict[str, Any]) -> bytes:
    """The figures (all keys, see `summary(top=None)`) as one tidy table: a row per (dimension, key);
    weeks as dimension `week`."""
    rows = [
        {
            "dimension": "all",
            "key": "all",
            "orders": figures["orders"],
            "unrectified": figures["unrectified"],
            "overdue": figures["overdue"],
            "rectified": figures["by_state"]["verified"] + figures["by_state"]["closed"],
            "median_days_to_rectify": figures["median_days_to_rectify"],
        }
    ]
    rows += [{"dimension": "state", "key": state, "orders": count} for state, count in figures["by_state"].items()]
    rows += [{"dimension": name, **entry} for name, entries in figures["by"].items() for entry in entries]
    rows += [
        {"dimension": "week", "key": week["week"], "orders": week["opened"], "rectified": week["rectified"]}
        for week in figures["weekly"]
    ]
    buffer = io.StringIO()
    table = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    counts = ["orders", "unrectified", "overdue", "rectified"]
    table[counts] = table[counts].astype("Int64")  # whole numbers, blank where a figure does not apply
    frame_to_csv(table, buffer)  # site ids, districts and enterprise ids are typed by people: formula-safe
    return buffer.getvalue().encode("utf-8")
