"""Officers' figures over workers' claims: closing rate (办结率), satisfaction rate (the share of
ratings of 4 or 5) and median days to close, overall, by channel, type, district and handler, and
weekly for 12 weeks.

Counted per claim (a case of 40 claimants closes 40 claims), so every channel gets its own rate
even when its claims share a case with other channels'. A claim takes its case's type, district,
handler and state. Two queries read the few columns needed; numpy groups them (100,000 claims:
benchmarks/claims_figures.py). `CachedFigures` recomputes only after a change or when the minute turns.
"""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from runtime.safe_csv import neutralise, rows_to_csv
from serving.claims.schema import claim_cases, claims, report_feedback
from serving.claims.states import OPEN_STATES, STATES
from serving.db import utcnow

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
EPOCH_MONDAY = np.datetime64("1970-01-05", "D")


def _frame(connection: sa.Connection, selected: list[Any], names: list[str], query: Any) -> pd.DataFrame:
    """The query's rows as columns, fetched through the driver's own cursor: SQLAlchemy's row objects
    cost more than the query itself at 100,000 rows. The statement has no user input (literal binds)."""
    statement = query.with_only_columns(*selected).compile(
        dialect=connection.dialect, compile_kwargs={"literal_binds": True}
    )
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(statement))
        rows = cursor.fetchall()
    finally:
        cursor.close()
    columns = list(zip(*rows)) or [()] * len(names)
    # object columns: factorising Python strings is faster than pandas' Arrow strings here
    return pd.DataFrame({name: pd.Series(values, dtype=object) for name, values in zip(names, columns)})


def _as_text(column: Any) -> Any:
    return sa.type_coerce(column, sa.String)  # SQLite hands back text, PostgreSQL datetimes: parse both at once


def _times(frame: pd.DataFrame, *names: str) -> pd.DataFrame:
    for name in names:
        frame[name] = pd.to_datetime(frame[name], format="ISO8601")
    return frame


def load_frames(engine: sa.Engine) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(claims with their case's type, district, handler, state and closing; ratings with their claim's
    columns; cases' state, due time and workers). Three plain table reads joined here by index: at
    100,000 claims that is cheaper than SQLite's join, and the case columns are read once per case."""
    case_columns = ["type", "district", "handler", "state", "closed_at", "due_at", "workers", "claimants"]
    with engine.connect() as connection:
        cases = _frame(
            connection,
            [
                claim_cases.c.id,
                *[_as_text(c) if c.name.endswith("_at") else c for c in map(claim_cases.c.get, case_columns)],
            ],
            ["id", *case_columns],
            sa.select(claim_cases.c.id),
        )
        claimed = _frame(
            connection,
            [claims.c.id, claims.c.case_id, claims.c.channel, _as_text(claims.c.created_at)],
            ["id", "case_id", "channel", "created_at"],
            sa.select(claims.c.id),
        )
        rated = _frame(
            connection,
            [report_feedback.c.claim_id, report_feedback.c.satisfied, _as_text(report_feedback.c.created_at)],
            ["claim_id", "satisfied", "created_at"],
            sa.select(report_feedback.c.id).where(report_feedback.c.claim_id.is_not(None)),
        )
    _times(cases, "closed_at", "due_at")
    at = pd.Index(cases["id"]).get_indexer(claimed["case_id"])  # each claim's case, as it is now
    frame = pd.DataFrame(
        {
            "channel": claimed["channel"].to_numpy(),
            **{name: cases[name].to_numpy()[at] for name in ("type", "district", "handler", "state", "closed_at")},
            "created_at": pd.to_datetime(claimed["created_at"], format="ISO8601").to_numpy(),
        }
    )
    rows = pd.Index(claimed["id"]).get_indexer(rated["claim_id"])  # a rating counts where its claim is now
    ratings = pd.DataFrame(
        {
            **{name: frame[name].to_numpy()[rows] for name in DIMENSIONS},
            "satisfied": rated["satisfied"].to_numpy(),
            "created_at": pd.to_datetime(rated["created_at"], format="ISO8601").to_numpy(),
        }
    )
    return frame, ratings, cases[cases["claimants"].astype(int) > 0]


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
    ratings["happy"] = ratings["satisfied"].astype(float) >= 4
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
            "mass": int((cases["workers"].astype(float) >= mass_workers).sum()),
        },
        "by": {name: _breakdown(frame, ratings, name) for name in DIMENSIONS},
        "weekly": _weekly(frame, ratings, now),
    }


def _stamp(engine: sa.Engine) -> tuple[Any, ...]:
    """Changes whenever a claim is filed (its case's updated_at moves), a case changes or a rating
    comes in: two index lookups, no count over the claims."""
    with engine.connect() as connection:
        return (
            connection.execute(sa.select(sa.func.max(claim_cases.c.updated_at))).scalar(),
            connection.execute(sa.select(sa.func.max(report_feedback.c.id))).scalar(),
        )


class CachedFigures:
    """The figures, recomputed when a claim, case or rating changes or the minute turns, in one
    background thread at a time: a request waits for a recomputation at most `wait_seconds`, then
    gets the previous figures (their `generated_at` says how old; `stale` says a newer one is on
    its way). At 100,000 claims a recomputation takes longer than a request may
    (benchmarks/claims_figures.py); the claims worker keeps the figures warm between requests."""

    def __init__(self, *, wait_seconds: float = 0.15) -> None:
        self.wait_seconds = wait_seconds
        self._key: tuple[Any, ...] | None = None
        self._figures: dict[str, Any] | None = None
        self._running: threading.Thread | None = None
        self._lock = threading.Lock()

    def _compute(self, engine: sa.Engine, key: tuple[Any, ...], now: dt.datetime, mass_workers: int) -> None:
        figures = summary(engine, now=now, mass_workers=mass_workers)
        with self._lock:
            self._figures, self._key = figures, key

    def get(
        self, engine: sa.Engine, *, now: dt.datetime | None = None, mass_workers: int = 10
    ) -> tuple[dict[str, Any], bool]:
        """(figures, stale): stale is True when a newer recomputation has not finished within the wait."""
        now = now or utcnow()
        key = (str(engine.url), *_stamp(engine), now.replace(second=0, microsecond=0))
        with self._lock:
            if key == self._key and self._figures is not None:
                return self._figures, False
            first = self._figures is None
            if self._running is None or not self._running.is_alive():
                self._running = threading.Thread(
                    target=self._compute, args=(engine, key, now, mass_workers), name="claims-figures", daemon=True
                )
                self._running.start()
            running = self._running
        running.join(None if first else self.wait_seconds)  # the very first figures are always waited for
        with self._lock:
            return self._figures, self._key != key

    def refresh(self, engine: sa.Engine, *, mass_workers: int = 10) -> None:
        """Recompute now if anything changed (the worker's call, so requests find the figures current)."""
        figures_and_stale = self.get(engine, mass_workers=mass_workers)
        if figures_and_stale[1] and self._running is not None:
            self._running.join()


safe_cell = neutralise  # the one formula-safe rule, runtime/safe_csv.py


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
    return rows_to_csv(rows, list(CSV_COLUMNS)).encode("utf-8")
