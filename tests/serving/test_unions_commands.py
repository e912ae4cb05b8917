"""`ankang import unions` (all errors at once, nothing half-imported) and `ankang batch unions` on Ray
(the same grades as the store's own run)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from ankang_cli import main
from serving.db import create_engine, migrate
from serving.unions.schema import unions
from serving.unions.store import UnionStore
from tests.serving.test_batch_ray import options, ray_local  # noqa: F401  (fixture)
from tests.serving.test_unions_store import keep_tiers
from training.unions.population import generate_province


@pytest.fixture(scope="module")
def province():
    return generate_province(unions=40, enterprises=1_500, seed=9)


@pytest.fixture
def database(tmp_path: Path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'service.db'}"
    monkeypatch.setenv("ANKANG_DATABASE_URL", url)
    migrate(create_engine(url))
    return url


def test_import_unions_reads_csv_and_parquet(province, database, tmp_path, capsys):
    province.unions.iloc[:20].to_csv(tmp_path / "a.csv", index=False)
    province.unions.iloc[20:].to_parquet(tmp_path / "b.parquet", index=False)
    assert main(["import", "unions", str(tmp_path / "a.csv")]) == 0
    assert json.loads(capsys.readouterr().out)["created"] == 20
    assert main(["import", "unions", str(tmp_path / "b.parquet")]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "unions": 20,
        "created": 20,
        "updated": 0,
        "enterprises": int(province.unions.iloc[20:]["enterprise_ids"].str.count(";").sum() + 20),
    }


def test_import_unions_lists_every_bad_row_and_imports_nothing(province, database, tmp_path, capsys):
    frame = province.unions.copy()
    frame["members"] = frame["members"].astype(object)
    frame.loc[0, "members"] = "many"
    frame.loc[4, "name"] = ""
    frame.to_csv(tmp_path / "bad.csv", index=False)
    assert main(["import", "unions", str(tmp_path / "bad.csv")]) == 2
    err = capsys.readouterr().err
    assert "row 1: members must be a whole number" in err.replace("members: row 1: ", "row 1: members ")
    assert "row 5: name: is required" in err
    assert "2 error(s)" in err and "nothing was imported" in err
    with create_engine(database).connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(unions)).scalar() == 0


def test_batch_unions_grades_as_the_store_does_and_records_a_run(
    ray_local,  # noqa: F811
    province,
    database,
    tmp_path,
    capsys,
):
    province.unions.to_parquet(tmp_path / "unions.parquet", index=False)
    tiers = province.enterprises[["enterprise_id", "tier"]]
    tiers.to_parquet(tmp_path / "tiers.parquet", index=False)
    assert main(["import", "unions", str(tmp_path / "unions.parquet")]) == 0
    engine = create_engine(database)
    keep_tiers(engine, tiers["enterprise_id"], tiers["tier"])
    expected = UnionStore(engine).grade_all(actor="test")
    capsys.readouterr()
    code = main(
        [
            "batch",
            "unions",
            str(tmp_path / "unions.parquet"),
            "--tiers",
            str(tmp_path / "tiers.parquet"),
            "--out",
            str(tmp_path / "out"),
            "--batch-size",
            "7",
            "--record",
            "--no-progress",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["unions"] == 40 and summary["enterprises"] == 1_500
    assert summary["grades"] == expected["grades"]
    assert summary["run"]["grades_changed"] == 0  # the same grades as the store's own run
    graded = pq.read_table(tmp_path / "out").to_pandas().set_index("union_id").sort_index()
    with engine.connect() as connection:
        stored = pd.read_sql(sa.select(unions.c.union_id, unions.c.grade, unions.c.points), connection)
    stored = stored.set_index("union_id").sort_index()
    assert graded["grade"].tolist() == stored["grade"].tolist()
    assert graded["points"].tolist() == pytest.approx(stored["points"].tolist())
