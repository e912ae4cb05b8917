"""Officers' figures over workers' claims: closing rate (办结率), satisfaction rate (the share of
ratings of 4 or 5) and median days to close, overall, by channel, type, district and handler, and
weekly for 12 weeks.

Counted per claim (a case of 40 claimants closes 40 claims), so every channel gets its own rate
even when its claims share a case with other channels'. A claim takes its case's type, district,
handler and state. Two queries read the few columns needed; numpy groups them (100,000 claims:
benchmarks/claims_figures.py). `CachedFigures` recomputes only after a change or when the minute turns.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import threading
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from serving.claims.schema import claim_cases, claims, report_feedback
from serving.claims.states import OPEN_STATES, STATES
from serving.review.store import utcnow

DIMENSIONS = ("channel", "type", "district", "handler")
WEEKS = 12
CSV_COLUMNS = (
    "dimension",
    "key",
    "claims",
    "closed",
    "closing_rate",
    "median_days_to_close",
    "ratings",
    "satisfied",
    "satisfaction_rate",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
EPOCH_MONDAY = np.datetime64("1970-01-05", "D")


def _frame(connection: sa.Connection, selected: list[Any], names: list[str], query: Any) -> pd.DataFrame:
    rows = connection.execute(query.with_only_columns(*selected)).all()
    columns = list(zip(*rows)) or [()] * len(names)
    return pd.DataFrame({name: list(values) for name, values in zip(names, columns)})


def _as_text(column: Any) -> Any:
    return sa.type_coerce(column, sa.String)  # SQLite hands back text, PostgreSQL datetimes: parse both at once


def load_frames(engine: sa.Engine) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(claims with their case's columns, ratings with the same, cases' state / due / workers)."""
    joined = sa.select(claims.c.id).join(claim_cases, claim_cases.c.id == claims.c.case_id)
    dimensions = [
        claims.c.channel,
        claim_cases.c.type,
        sa.func.coalesce(claim_cases.c.district, claims.c.district),
        claim_cases.c.handler,
    ]
    with engine.connect() as connection:
        frame = _frame(
            connection,
            [*dimensions, claim_cases.c.state, _as_text(claims.c.created_at), _as_text(claim_cases.c.closed_at)],
            [*DIMENSIONS, "state", "created_at", "closed_at"],
            joined,
        )
        ratings = _frame(
            connection,
            [*dimensions, report_feedback.c.satisfied, _as_text(report_feedback.c.created_at)],
            [*DIMENSIONS, "satisfied", "created_at"],
            sa.select(report_feedback.c.id)
            .join(claims, claims.c.id == report_feedback.c.claim_id)
            .join(claim_cases, claim_cases.c.id == claims.c.case_id),
        )
        cases = _frame(
            connection,
            [claim_cases.c.state, _as_text(claim_cases.c.due_at), claim_cases.c.workers, claim_cases.c.claimants],
            ["state", "due_at", "workers", "claimants"],
            sa.select(claim_cases.c.id).where(claim_cases.c.claimants > 0),
        )
    for table, times in ((frame, ("created_at", "closed_at")), (ratings, ("created_at",)), (cases, ("due_at",))):
        for name in times:
            table[name] = pd.to_datetime(table[name], format="ISO8601")
    return frame, ratings, cases


def _rate(part: float, whole: float) -> float | None:
    return None if not whole else round(part / whole, 4)


def _figures(claimed: int, closed: int, days: np.ndarray, ratings: int, satisfied: int) -> dict[str, Any]:
    days = days[~np.isnan(days)]
    return {
        "claims": int(claimed),
        "closed": int(closed),
        "closing_rate": _rate(closed, claimed),
        "median_days_to_close": None if days.size == 0 else round(float(np.median(days)), 2),
        "ratings": int(ratings),
        "satisfied": int(satisfied),
        "satisfaction_rate": _rate(satisfied, ratings),
    }


def _breakdown(frame: pd.DataFrame, ratings: pd.DataFrame, column: str) -> list[dict[str, Any]]:
    """Per key of `column`: the figures, most claims first."""
    keys = pd.Index(pd.concat([frame[column], ratings[column]]).fillna("(none)").unique())
    codes = keys.get_indexer(frame[column].fillna("(none)"))
    rating_codes = keys.get_indexer(ratings[column].fillna("(none)"))
    size = len(keys)
    claimed = np.bincount(codes, minlength=size)
    closed = np.bincount(codes, weights=frame["closed"].to_numpy(float), minlength=size)
    rated = np.bincount(rating_codes, minlength=size)
    happy = np.bincount(rating_codes, weights=ratings["happy"].to_numpy(float), minlength=size)
    days = frame["days"].to_numpy(float)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(size + 1))
    entries = []
    for index in np.lexsort((keys.astype(str), -claimed)):
        members = days[order[bounds[index] : bounds[index + 1]]] if size else np.array([])
        entries.append(
            {"key": str(keys[index]), **_figures(claimed[index], closed[index], members, rated[index], happy[index])}
        )
    return entries


def _week_numbers(moments: pd.Series) -> np.ndarray:
    """Weeks since Monday 1970-01-05 (NaT: -1)."""
    days = moments.to_numpy("datetime64[D]")
    weeks = (days - EPOCH_MONDAY).astype("timedelta64[D]").astype(np.int64) // 7
    return np.where(np.isnat(days), -1, weeks)


def _weekly(frame: pd.DataFrame, ratings: pd.DataFrame, now: dt.datetime) -> list[dict[str, Any]]:
    """Per ISO week (Monday start), the last WEEKS weeks, oldest first: claims received, claims closed,
    the closing rate of that week's claims, and the ratings given that week."""
    current = int(_week_numbers(pd.Series([pd.Timestamp(now)]))[0])
    first = current - WEEKS + 1

    def per_week(moments: pd.Series, weights: np.ndarray | None = None) -> np.ndarray:
        slots = np.clip(_week_numbers(moments) - first, -1, WEEKS) + 1
        return np.bincount(slots, weights=weights, minlength=WEEKS + 2)[1 : WEEKS + 1]

    received = per_week(frame["created_at"])
    closed_of_received = per_week(frame["created_at"], frame["closed"].to_numpy(float))
    closed = per_week(frame["closed_at"])
    rated = per_week(ratings["created_at"])
    happy = per_week(ratings["created_at"], ratings["happy"].to_numpy(float))
    weeks = []
    for index in range(WEEKS):
        start = dt.date(1970, 1, 5) + dt.timedelta(weeks=first + index)
        year, week, _ = start.isocalendar()
        weeks.append(
            {
                "week": f"{year}-W{week:02d}",
                "starts": start.isoformat(),
                "received": int(received[index]),
                "closed": int(closed[index]),
                "closing_rate": _rate(closed_of_received[index], received[index]),
                "ratings": int(rated[index]),
                "satisfaction_rate": _rate(happy[index], rated[index]),
            }
        )
    return weeks


def summary(engine: sa.Engine, *, now: dt.datetime | None = None, mass_workers: int = 10) -> dict[str, Any]:
    now = now or utcnow()
    frame, ratings, cases = load_frames(engine)
    frame["closed"] = frame["state"] == "closed"
    frame["days"] = (frame["closed_at"] - frame["created_at"]).dt.total_seconds() / 86400
    frame.loc[~frame["closed"], "days"] = np.nan
    ratings["happy"] = ratings["satisfied"] >= 4
    states = cases["state"].value_counts()
    open_cases = cases["state"].isin(OPEN_STATES)
    overall = _figures(
        len(frame), frame["closed"].sum(), frame["days"].to_numpy(float), len(ratings), ratings["happy"].sum()
    )
    return {
        "generated_at": now.isoformat(timespec="seconds") + "Z",
        **overall,
        "cases": {
            "total": len(cases),
            "by_state": {state: int(states.get(state, 0)) for state in STATES},
            "overdue": int((open_cases & (cases["due_at"] < pd.Timestamp(now))).sum()),
            "mass": int((cases["workers"] >= mass_workers).sum()),
        },
        "by": {name: _breakdown(frame, ratings, name) for name in DIMENSIONS},
        "weekly": _weekly(frame, ratings, now),
    }


def _stamp(engine: sa.Engine) -> tuple[Any, ...]:
    """Changes whenever a claim is filed, a case changes or a rating comes in (all indexed)."""
    with engine.connect() as connection:
        return (
            *connection.execute(sa.select(sa.func.count(), sa.func.max(claim_cases.c.updated_at))).one(),
            connection.execute(sa.select(sa.func.max(claims.c.created_at))).scalar(),
            connection.execute(sa.select(sa.func.max(report_feedback.c.id))).scalar(),
        )


class CachedFigures:
    """The figures, recomputed when a claim, case or rating changes or the minute turns: officers
    polling the figures page share one computation."""

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._figures: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, engine: sa.Engine, *, now: dt.datetime | None = None, mass_workers: int = 10) -> dict[str, Any]:
        now = now or utcnow()
        key = (str(engine.url), *_stamp(engine), now.replace(second=0, microsecond=0))
        with self._lock:
            if key != self._key:
                self._figures, self._key = summary(engine, now=now, mass_workers=mass_workers), key
            return self._figures


def safe_cell(value: Any) -> Any:
    """A cell a spreadsheet shows as text, never runs: one starting with = + - @ tab or CR gets a
    leading apostrophe (numbers stay numbers)."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def figures_csv(figures: dict[str, Any]) -> bytes:
    """The figures as one tidy table: a row per (dimension, key); overall as `all`, weeks as `week`."""
    rows = [{"dimension": "all", "key": "all", **figures}]
    rows += [{"dimension": name, **entry} for name, entries in figures["by"].items() for entry in entries]
    rows += [
        {
            "dimension": "week",
            "key": week["week"],
            "claims": week["received"],
            "closed": week["closed"],
            "closing_rate": week["closing_rate"],
            "ratings": week["ratings"],
            "satisfaction_rate": week["satisfaction_rate"],
        }
        for week in figures["weekly"]
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([safe_cell("" if row.get(name) is None else row[name]) for name in CSV_COLUMNS])
    return buffer.getvalue().encode("utf-8")
