"""Every enterprise score kept: one row per score in `enterprise_scores` and the latest tier of each
enterprise in `enterprise_latest`, written in bulk (a 200,000-row file is a few statements, not
200,000 round trips).

SQLite gets one driver-level executemany per table, PostgreSQL COPY (and one INSERT ... SELECT ...
ON CONFLICT for the latest tiers). The scoring paths hand over the score-file table
(`RiskModel.results_table`: ids, tiers, probabilities, ';'-joined rules and reasons) and the
validated batch, whose typed columns give each profile's fingerprint: the same profile gets the same
fingerprint through the JSON API, a CSV or a Parquet file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from operator import itemgetter
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

from runtime.risk.scoring import BatchScores
from runtime.risk.validate import ValidatedBatch
from serving.db import utcnow
from serving.enterprises.schema import TIERS

SOURCES = ("api", "file", "batch", "claims")  # claims: rescored after mass wage arrears (serving/claims/app.py)
HIGH_TIER = 4  # tier >= 4: supervision (督办) and the weekly review's "newly high"


FINGERPRINT_MIX = np.uint64(0x9E3779B97F4A7C15)  # odd 64-bit constant: each column changes every bit


def profile_fingerprints(batch: ValidatedBatch) -> np.ndarray:
    """16 hex digits per profile, from its validated values (a missing cell hashes as missing): each
    column hashed in C (pandas' hash_array) and folded in name order."""
    folded = np.zeros(len(batch), dtype=np.uint64)
    with np.errstate(over="ignore"):  # the fold wraps around on purpose
        for name in sorted([*batch.numeric, *batch.categorical]):
            values = batch.numeric.get(name)
            hashed = pd.util.hash_array(values if values is not None else batch.categorical[name].astype(object))
            folded = (folded ^ hashed) * FINGERPRINT_MIX
    return np.array([f"{value:016x}" for value in folded.tolist()], dtype=object)


SCORE_COLUMNS = (
    "enterprise_id",
    "tier",
    "model_tier",
    *(f"p_tier_{tier}" for tier in TIERS),
    "reasons",
    "rules_fired",
    "model_name",
    "model_version",
    "source",
    "profile_fingerprint",
    "scored_at",
)
LATEST_COLUMNS = ("enterprise_id", "tier", "previous_tier", "scored_at", "high_since")
# The latest tier moves only forward in time (a late batch part changes nothing), and `high_since`
# keeps the moment the enterprise reached tier >= 4 while it stays there.
UPSERT_LATEST = f"""
INSERT INTO enterprise_latest ({", ".join(LATEST_COLUMNS)}) {{source}}
ON CONFLICT (enterprise_id) DO UPDATE SET
  previous_tier = enterprise_latest.tier,
  tier = excluded.tier,
  scored_at = excluded.scored_at,
  high_since = CASE
    WHEN excluded.tier < {HIGH_TIER} THEN NULL
    WHEN enterprise_latest.tier >= {HIGH_TIER} THEN enterprise_latest.high_since
    ELSE excluded.scored_at END
WHERE excluded.scored_at >= enterprise_latest.scored_at
"""


def score_columns(
    table: pd.DataFrame, *, fingerprints: np.ndarray, model: dict[str, str], source: str
) -> dict[str, list[Any]]:
    """The `enterprise_scores` columns of a score-file table as plain Python lists (every driver's
    parameters), without the time."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    rows = len(table)
    columns: dict[str, list[Any]] = {
        "enterprise_id": table["enterprise_id"].astype(str).tolist(),
        "tier": table["tier"].astype(int).tolist(),
        "model_tier": table["model_tier"].astype(int).tolist(),
    }
    for tier in TIERS:
        columns[f"p_tier_{tier}"] = table[f"p_tier_{tier}"].astype(float).tolist()
    for text in ("reasons", "rules_fired"):
        columns[text] = table[text].fillna("").astype(str).tolist() if text in table else [""] * rows
    columns["model_name"] = [model["name"]] * rows
    columns["model_version"] = [model["version"]] * rows
    columns["source"] = [source] * rows
    columns["profile_fingerprint"] = [str(value) for value in fingerprints]
    return columns


def _latest_rows(columns: dict[str, list[Any]], at: Any) -> list[tuple]:
    """One row per enterprise (its last in the table: one statement may touch a row only once)."""
    last = {enterprise: row for row, enterprise in enumerate(columns["enterprise_id"])}
    tiers = columns["tier"]
    rows = [
        (enterprise, tiers[row], None, at, at if tiers[row] >= HIGH_TIER else None) for enterprise, row in last.items()
    ]
    return sorted(rows, key=itemgetter(0))


def _write_sqlite(connection: sa.Connection, columns: dict[str, list[Any]], at: dt.datetime) -> None:
    """executemany through the sqlite3 driver: tuples in C, no per-row SQLAlchemy processing. Times in
    SQLAlchemy's own SQLite format, so its DateTime columns read them back."""
    stamp = at.strftime("%Y-%m-%d %H:%M:%S.%f")
    # In key order, so the index pages are filled in sequence instead of at random; a larger page
    # cache for this connection's write (SQLite's default is 2 MB).
    connection.exec_driver_sql("PRAGMA cache_size = -65536")
    rows = sorted(zip(*columns.values(), [stamp] * len(columns["tier"])), key=itemgetter(0))
    marks = ", ".join("?" * len(SCORE_COLUMNS))
    connection.exec_driver_sql(f"INSERT INTO enterprise_scores ({', '.join(SCORE_COLUMNS)}) VALUES ({marks})", rows)
    connection.exec_driver_sql(UPSERT_LATEST.format(source="VALUES (?, ?, ?, ?, ?)"), _latest_rows(columns, stamp))


def _write_postgresql(connection: sa.Connection, columns: dict[str, list[Any]], at: dt.datetime) -> None:
    """COPY into the score log, and COPY into a temporary table that one INSERT ... SELECT upserts."""
    cursor = connection.connection.driver_connection.cursor()
    with cursor.copy(f"COPY enterprise_scores ({', '.join(SCORE_COLUMNS)}) FROM STDIN") as copy:
        for row in zip(*columns.values()):
            copy.write_row((*row, at))
    cursor.execute(
        "CREATE TEMPORARY TABLE IF NOT EXISTS enterprise_latest_incoming "
        "(LIKE enterprise_latest INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
    )
    with cursor.copy(f"COPY enterprise_latest_incoming ({', '.join(LATEST_COLUMNS)}) FROM STDIN") as copy:
        for row in _latest_rows(columns, at):
            copy.write_row(row)
    cursor.execute(UPSERT_LATEST.format(source=f"SELECT {', '.join(LATEST_COLUMNS)} FROM enterprise_latest_incoming"))


class ScoreRecords:
    """Writes and reads kept scores on the review store's database (migration 0011 made the tables)."""

    def __init__(self, engine: sa.Engine):
        self.engine = engine

    def record_table(
        self,
        table: pd.DataFrame,
        *,
        fingerprints: np.ndarray,
        model: dict[str, str],
        source: str,
        at: dt.datetime | None = None,
    ) -> int:
        """Keep one score per table row and move each enterprise's latest tier, in one transaction."""
        if not len(table):
            return 0
        columns = score_columns(table, fingerprints=fingerprints, model=model, source=source)
        write = _write_postgresql if self.engine.dialect.name == "postgresql" else _write_sqlite
        with self.engine.begin() as connection:
            write(connection, columns, at or utcnow())
        return len(table)

    def keeper(self, scorer: Any, *, source: str) -> Callable[[BatchScores, pd.DataFrame | None], None]:
        """The `on_scored` hook of `RiskScorer.score_profiles` / `score_table`: keeps what it scored."""

        def on_scored(batch_scores: BatchScores, table: pd.DataFrame | None = None) -> None:
            if table is None:
                table = scorer.results_table(batch_scores)
            self.record_table(
                table, fingerprints=profile_fingerprints(batch_scores.batch), model=scorer.info, source=source
            )

        return on_scored
