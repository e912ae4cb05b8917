"""serving.enterprises.records: every score kept in bulk, each enterprise's latest tier, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from runtime.paths import MODELS_DIR
from serving.db import create_engine, migrate
from serving.enterprises.records import ScoreRecords
from serving.enterprises.schema import latest, scores
from serving.risk import RiskScorer
from tests.serving.test_review_store import postgres_schema
from tests.serving.test_risk_scorer import low_risk
from training.risk.config import GeneratorConfig
from training.risk.generator import generate


@pytest.fixture(scope="module")
def scorer() -> RiskScorer:
    return RiskScorer.load(MODELS_DIR / "labor_risk", threads=1)


@pytest.fixture(params=["sqlite", "postgresql"])
def records(request, tmp_path: Path) -> Iterator[ScoreRecords]:
    urls = iter([f"sqlite:///{tmp_path / 'review.db'}"]) if request.param == "sqlite" else postgres_schema()
    url = next(urls)
    engine = create_engine(url)
    migrate(engine)
    yield ScoreRecords(engine)
    engine.dispose()
    for _ in urls:  # drops the PostgreSQL schema
        pass


def rows(records: ScoreRecords, table: sa.Table) -> pd.DataFrame:
    with records.engine.connect() as connection:
        return pd.DataFrame(connection.execute(sa.select(table)).mappings().all())


def test_json_scores_are_kept_with_everything_the_answer_said(scorer, records):
    profile = low_risk("E-1", wage_arrears_workers_12m=80, collective_petition_12m=True)
    [result] = scorer.score_profiles([profile], on_scored=records.keeper(scorer, source="api"))
    kept = rows(records, scores)
    assert len(kept) == 1
    row = kept.iloc[0]
    assert (row.enterprise_id, row.tier, row.model_tier) == ("E-1", result["tier"], result["model_tier"])
    assert row.p_tier_5 == pytest.approx(result["probabilities"]["5"], abs=1e-4)
    assert row.rules_fired.split(";") == [rule["id"] for rule in result["rules_fired"]]
    assert row.reasons.split(";")[: len(result["reasons"])] == [reason["field"] for reason in result["reasons"]]
    assert (row.model_name, row.model_version, row.source) == (
        scorer.info["name"],
        scorer.info["version"],
        "api",
    )
    assert len(row.profile_fingerprint) == 16


def test_the_same_profile_has_one_fingerprint_through_json_and_csv(scorer, records):
    profile = low_risk("E-7")
    scorer.score_profiles([profile], on_scored=records.keeper(scorer, source="api"))
    csv = pd.DataFrame([profile]).to_csv(index=False).encode()
    scorer.score_table(csv, filename="one.csv", on_scored=records.keeper(scorer, source="file"))
    scorer.score_profiles([{**profile, "headcount": 41}], on_scored=records.keeper(scorer, source="api"))
    prints = rows(records, scores).sort_values("id")["profile_fingerprint"].tolist()
    assert prints[0] == prints[1] != prints[2]


def test_a_file_is_kept_whole_and_the_latest_tier_moves(scorer, records):
    population = generate(GeneratorConfig(rows=3_000, seed=11)).drop(columns=["tier"])
    table = population.to_csv(index=False).encode()
    answer = pd.read_csv(io.BytesIO(scorer.score_table(table, on_scored=records.keeper(scorer, source="file"))))
    kept = rows(records, scores)
    assert len(kept) == 3_000
    assert kept.set_index("enterprise_id")["tier"].sort_index().tolist() == (
        answer.set_index("enterprise_id")["tier"].sort_index().tolist()
    )
    first = rows(records, latest).set_index("enterprise_id")
    assert len(first) == 3_000 and first["previous_tier"].isna().all()
    assert (first["high_since"].notna() == (first["tier"] >= 4)).all()

    worse = low_risk("C0011-0000000", collective_petition_12m=True, mass_incident_36m=3, wage_arrears_workers_12m=200)
    [result] = scorer.score_profiles([worse], on_scored=records.keeper(scorer, source="api"))
    now = rows(records, latest).set_index("enterprise_id").loc["C0011-0000000"]
    assert now.tier == result["tier"] and now.previous_tier == first.loc["C0011-0000000", "tier"]


def test_an_older_score_never_replaces_a_newer_latest_tier(scorer, records):
    table = pd.DataFrame(
        {"enterprise_id": ["E-1"], "tier": [5], "model_tier": [5], **{f"p_tier_{t}": [0.2] for t in range(1, 6)}}
    )
    model = {"name": "labor_risk", "version": "v"}
    now = dt.datetime(2026, 12, 6, 12)
    records.record_table(table, fingerprints=["a" * 16], model=model, source="batch", at=now)
    yesterday = now - dt.timedelta(days=1)
    records.record_table(table.assign(tier=1), fingerprints=["b" * 16], model=model, source="batch", at=yesterday)
    kept = rows(records, latest).iloc[0]
    assert kept.tier == 5 and kept.high_since == now
    assert len(rows(records, scores)) == 2  # the late score is still in the history


def test_high_since_stays_while_high_and_clears_below_tier_4(records):
    model = {"name": "labor_risk", "version": "v"}
    base = {"enterprise_id": ["E-1"], "model_tier": [1], **{f"p_tier_{t}": [0.2] for t in range(1, 6)}}
    start = dt.datetime(2026, 12, 1)
    for day, tier in enumerate([2, 4, 5, 3]):
        records.record_table(
            pd.DataFrame({**base, "tier": [tier]}),
            fingerprints=["c" * 16],
            model=model,
            source="api",
            at=start + dt.timedelta(days=day),
        )
        kept = rows(records, latest).iloc[0]
        if day == 2:
            assert kept.high_since == start + dt.timedelta(days=1)  # since it first reached 4
    assert kept.tier == 3 and kept.previous_tier == 5 and pd.isna(kept.high_since)
