"""Every enterprise score kept: one row per score in `enterprise_scores` and the latest tier of each
enterprise in `enterprise_latest`, written in bulk (a 200,000-row file is a few multi-row statements,
not 200,000 round trips).

The scoring paths hand over the score-file table (`RiskModel.results_table`: ids, tiers,
probabilities, ';'-joined rules and reasons) and the validated batch, whose typed columns give each
profile's fingerprint: the same profile gets the same fingerprint through the JSON API, a CSV or a
Parquet file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from runtime.risk.scoring import BatchScores
from runtime.risk.validate import ValidatedBatch
from serving.enterprises.schema import TIERS, latest, scores
from serving.review.store import utcnow

SOURCES = ("api", "file", "batch")
HIGH_TIER = 4  # tier >= 4: supervision (督办) and the weekly review's "newly high"
WRITE_CHUNK = 20_000  # rows per multi-row statement: bounded memory per statement, few round trips


def profile_fingerprints(batch: ValidatedBatch) -> np.ndarray:
    """16 hex digits per profile, from its validated values (a missing cell hashes as missing)."""
    columns = {name: values for name, values in batch.numeric.items()}
    columns.update({name: values.astype(str) for name, values in batch.categorical.items()})
    if not columns:
        return np.full(len(batch), "0" * 16, dtype=object)
    hashes = pd.util.hash_pandas_object(pd.DataFrame(columns)[sorted(columns)], index=False).to_numpy()
    return np.char.mod("%016x", hashes.astype(np.uint64)).astype(object)


def score_rows(table: pd.DataFrame, *, fingerprints: np.ndarray, model: dict[str, str], source: str, at: dt.datetime):
    """The `enterprise_scores` rows of a score-file table, as a DataFrame in the table's column names."""
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    rows = pd.DataFrame(
        {
            "enterprise_id": table["enterprise_id"].astype(str).to_numpy(),
            "tier": table["tier"].astype(int).to_numpy(),
            "model_tier": table["model_tier"].astype(int).to_numpy(),
        }
    )
    for tier in TIERS:
        rows[f"p_tier_{tier}"] = table[f"p_tier_{tier}"].astype(float).to_numpy()
    for text in ("reasons", "rules_fired"):
        rows[text] = table[text].fillna("").astype(str).to_numpy() if text in table else ""
    rows["model_name"] = model["name"]
    rows["model_version"] = model["version"]
    rows["source"] = source
    rows["profile_fingerprint"] = fingerprints
    rows["scored_at"] = at
    return rows


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Plain Python values (numpy ints and floats are not every driver's parameters; NaT and NaN are NULL)."""
    plain = frame.astype(object)
    return plain.where(frame.notna(), None).to_dict("records")


def _upsert_latest(connection: sa.Connection, frame: pd.DataFrame) -> None:
    """Each enterprise's latest tier; an older score than the kept one (a late batch part) changes nothing."""
    newest = frame.drop_duplicates("enterprise_id", keep="last")  # one statement may touch a row only once
    values = pd.DataFrame(
        {
            "enterprise_id": newest["enterprise_id"],
            "tier": newest["tier"],
            "previous_tier": None,
            "scored_at": newest["scored_at"],
            "high_since": np.where(newest["tier"] >= HIGH_TIER, newest["scored_at"], None),
        }
    )
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(latest)
    new = statement.excluded
    statement = statement.on_conflict_do_update(
        index_elements=[latest.c.enterprise_id],
        set_={
            "previous_tier": latest.c.tier,
            "tier": new.tier,
            "scored_at": new.scored_at,
            "high_since": sa.case(
                (new.tier < HIGH_TIER, sa.null()),
                (latest.c.tier >= HIGH_TIER, latest.c.high_since),
                else_=new.scored_at,
            ),
        },
        where=new.scored_at >= latest.c.scored_at,
    )
    for start in range(0, len(values), WRITE_CHUNK):
        connection.execute(statement, _records(values.iloc[start : start + WRITE_CHUNK]))


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
        frame = score_rows(table, fingerprints=fingerprints, model=model, source=source, at=at or utcnow())
        with self.engine.begin() as connection:
            for start in range(0, len(frame), WRITE_CHUNK):
                connection.execute(scores.insert(), _records(frame.iloc[start : start + WRITE_CHUNK]))
            _upsert_latest(connection, frame)
        return len(frame)

    def keeper(self, scorer: Any, *, source: str) -> Callable[[BatchScores, pd.DataFrame | None], None]:
        """The `on_scored` hook of `RiskScorer.score_profiles` / `score_table`: keeps what it scored."""

        def on_scored(batch_scores: BatchScores, table: pd.DataFrame | None = None) -> None:
            if table is None:
                table = scorer.results_table(batch_scores)
            self.record_table(
                table, fingerprints=profile_fingerprints(batch_scores.batch), model=scorer.info, source=source
            )

        return on_scored
