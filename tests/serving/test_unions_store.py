"""serving.unions: import checked whole, grading with factors from datasets/unions/grading.yaml, runs and
history, a union's page data; SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml

from runtime.errors import InputError
from serving.db import create_engine, migrate
from serving.enterprises.records import ScoreRecords
from serving.unions.grading import GRADING_PATH, Grading, load_grading
from serving.unions.rows import check_union_table
from serving.unions.schema import coverage, grade_history, grade_runs, unions
from serving.unions.store import UnionFilter, UnionStore
from tests.serving.test_review_store import postgres_schema
from training.unions.population import generate_province

MODEL = {"name": "labor_risk", "version": "test"}


@pytest.fixture(scope="module")
def province():
    return generate_province(unions=50, enterprises=2_000, seed=5)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request, tmp_path: Path) -> Iterator[sa.Engine]:
    urls = iter([f"sqlite:///{tmp_path / 'review.db'}"]) if request.param == "sqlite" else postgres_schema()
    engine = create_engine(next(urls))
    migrate(engine)
    yield engine
    engine.dispose()
    for _ in urls:
        pass


def keep_tiers(engine: sa.Engine, ids, tiers) -> None:
    table = pd.DataFrame({"enterprise_id": list(ids), "tier": list(tiers), "model_tier": list(tiers)})
    for tier in range(1, 6):
        table[f"p_tier_{tier}"] = (table["tier"] == tier).astype(float)
    ScoreRecords(engine).record_table(table, fingerprints=np.full(len(table), "f" * 16), model=MODEL, source="file")


def count(engine: sa.Engine, table: sa.Table) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def test_a_province_is_imported_graded_and_a_new_tier_5_raises_its_union(engine, province):
    store = UnionStore(engine)
    keep_tiers(engine, province.enterprises["enterprise_id"], province.enterprises["tier"])
    summary = store.import_rows(check_union_table(province.unions))
    assert summary == {"unions": 50, "created": 50, "updated": 0, "enterprises": 2_000}
    first = store.grade_all(actor="admin [key:k1]")
    assert first["unions_graded"] == 50 and first["grades_changed"] == 50
    assert sum(first["grades"].values()) == 50

    listed = store.list(UnionFilter(limit=50))["unions"]
    candidate = next(u for u in listed if u["grade"] < 5 and _highest(store, u["union_id"]) < 5)
    detail = store.union(candidate["union_id"])
    factors = {item["factor"]: item for item in detail["factors"]}
    assert sum(item["points"] for item in detail["factors"]) == pytest.approx(detail["points"])
    assert factors["union_type"]["value"] == candidate["union_type"]
    assert factors["enterprise_count"]["value"] == detail["enterprise_count"]
    assert len(detail["history"]) == 1

    target = detail["enterprises"][-1]["enterprise_id"]
    keep_tiers(engine, [target], [5])
    second = store.grade_all(actor="admin [key:k1]")
    after = store.union(candidate["union_id"])
    assert after["grade"] > candidate["grade"]
    assert after["history"][0]["previous_grade"] == candidate["grade"]
    assert {item["factor"]: item["value"] for item in after["factors"]}["highest_tier"] == 5
    assert 1 <= second["grades_changed"] < 50  # only unions whose grade moved get a history row
    assert count(engine, grade_history) == 50 + second["grades_changed"]
    assert count(engine, grade_runs) == 2


def _highest(store: UnionStore, union_id: str) -> int:
    tiers = [e["tier"] for e in store.union(union_id)["enterprises"] if e["tier"] is not None]
    return max(tiers, default=0)


def test_a_file_with_bad_rows_lists_them_all_and_imports_nothing(engine, province):
    store = UnionStore(engine)
    frame = province.unions.astype(str).copy()
    frame.loc[2, "union_type"] = "guild"
    frame.loc[6, "members"] = "-3"
    frame.loc[9, "migrant_members"] = str(int(frame.loc[9, "members"]) + 1)
    frame.loc[11, "union_id"] = frame.loc[10, "union_id"]
    with pytest.raises(InputError) as caught:
        store.import_rows(check_union_table(frame))
    errors = caught.value.context["errors"]
    assert [(e["row"], e["field"]) for e in errors] == [
        (3, "union_type"),
        (7, "members"),
        (10, "migrant_members"),
        (12, "union_id"),
    ]
    assert "guild" in errors[0]["message"] and "platform" in errors[0]["message"]
    assert count(engine, unions) == 0 and count(engine, coverage) == 0


def test_missing_columns_are_named_before_any_row(province):
    with pytest.raises(InputError, match="no 'district' column"):
        check_union_table(province.unions.drop(columns=["district"]))


def test_reimport_updates_and_replaces_coverage(engine, province):
    store = UnionStore(engine)
    store.import_rows(check_union_table(province.unions.head(5)))
    changed = province.unions.head(5).copy()
    changed.loc[0, "enterprise_ids"] = "E-only"
    changed.loc[0, "name"] = "新名字"
    assert store.import_rows(check_union_table(changed))["updated"] == 5
    detail = store.union(changed.loc[0, "union_id"])
    assert detail["name"] == "新名字" and [e["enterprise_id"] for e in detail["enterprises"]] == ["E-only"]


def test_grading_file_is_checked_and_names_what_is_wrong():
    raw = yaml.safe_load(GRADING_PATH.read_text(encoding="utf-8"))
    Grading.parse(raw)  # the shipped file is valid
    broken = {**raw, "union_type": {k: v for k, v in raw["union_type"].items() if k != "platform"}}
    with pytest.raises(ValueError, match="missing \\['platform'\\]"):
        Grading.parse(broken)
    with pytest.raises(ValueError, match="must increase"):
        Grading.parse({**raw, "grades": {1: 0, 2: 10, 3: 9, 4: 24, 5: 30}})
    with pytest.raises(ValueError, match="exactly once"):
        Grading.parse({**raw, "layers": {"city": {"grades": [5, 4]}, "district": {"grades": [3, 2]}}})


def test_grades_follow_the_cut_offs_and_layers():
    grading = load_grading()
    frame = pd.DataFrame(
        {
            "union_id": ["small", "risky"],
            "union_type": ["enterprise", "platform"],
            "members": [10, 1000],
            "industrial_members": [0, 700],
            "new_employment_members": [0, 400],
            "migrant_members": [0, 700],
            "enterprises": [1, 1200],
            "scored": [1, 1000],
            "highest_tier": [1.0, 5.0],
            "high_tier": [0, 300],
        }
    )
    graded = grading.grade(frame).set_index("union_id")
    assert (graded.loc["small", "grade"], graded.loc["small", "layer"]) == (1, "street")
    assert (graded.loc["risky", "grade"], graded.loc["risky", "layer"]) == (5, "city")
    factors = graded.loc["risky", "factors"]
    assert factors[0] == {"factor": "highest_tier", "value": 5, "points": 16.0}  # strongest first
    assert sum(f["points"] for f in factors) == graded.loc["risky", "points"] == 16 + 12 + 6 + 5 + 2 + 4 + 3
