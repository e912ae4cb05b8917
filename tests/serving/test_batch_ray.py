"""`ankang batch photos|enterprises` on a local Ray: the API's answers, resumable, atomic parts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from runtime.errors import InputError
from runtime.paths import MODELS_DIR, PROJECT_ROOT
from serving.batch.output import PartWriter
from serving.batch.sources import photo_uris
from serving.db import create_engine, migrate
from serving.enterprises.records import ScoreRecords
from serving.enterprises.schema import scores
from tests.serving.conftest import encode_image
from tests.serving.test_risk_scorer import low_risk, profiles_frame

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 40), "blue": (20, 40, 210), "grey": (128, 128, 128)}


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'ankang[batch]')")
    ray.init(num_cpus=2, include_dashboard=False, runtime_env={"env_vars": {"PYTHONPATH": str(PROJECT_ROOT)}})
    yield ray
    ray.shutdown()


def options(**changes):
    from serving.batch.jobs import BatchOptions

    return BatchOptions(**{"workers": 1, "batch_size": 2, "part_rows": 2, "progress": False, **changes})


def write_photos(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.jpg"
        path.write_bytes(encode_image(COLOURS[name.split("-")[0]]))
        paths.append(path)
    return paths


def read_output(folder: Path) -> pd.DataFrame:
    return pq.read_table(folder).to_pandas() if any(folder.glob("part-*.parquet")) else pd.DataFrame()


def test_photo_batch_gives_the_apis_answers(ray_local, api, toy_photo_model, tmp_path):
    from serving.batch.jobs import score_photos

    photos = write_photos(tmp_path / "in" / "site-1", ["red", "green", "blue", "grey"])
    (tmp_path / "in" / "bad.jpg").write_bytes(b"not a photo at all")
    summary = score_photos(
        str(tmp_path / "in"), str(tmp_path / "out"), model_dir=toy_photo_model, options=options(workers=2)
    )
    assert (summary.scored, summary.skipped) == (5, 0)
    results = read_output(tmp_path / "out").set_index("image")
    for path in photos:
        answer = api.post("/v1/photos/assess", files={"photo": (path.name, path.read_bytes(), "image/jpeg")}).json()
        row = results.loc[str(path)]
        assert json.loads(row["hazards"]) == answer["hazards"]
        assert row["triage"] == answer["triage"] and row["model_version"] == answer["model"]["version"]
        assert row["flagged"] == ";".join(item["type"] for item in answer["flagged"])
        assert pd.isna(row["error"])
    refused = api.post("/v1/photos/assess", files={"photo": ("bad.jpg", b"not a photo at all", "image/jpeg")})
    bad = results.loc[str(tmp_path / "in" / "bad.jpg")]
    assert pd.isna(bad["triage"]) and bad["error"] == f"photo: {refused.json()['error']['message']}"


def test_photo_batch_resumes_by_skipping_photos_already_in_the_output(ray_local, toy_photo_model, tmp_path):
    from serving.batch.jobs import score_photos

    write_photos(tmp_path / "in", ["red-1", "green-1", "blue-1"])
    first = score_photos(str(tmp_path / "in"), str(tmp_path / "out"), model_dir=toy_photo_model, options=options())
    (tmp_path / "out" / "part-000009.parquet.abc.tmp").write_bytes(b"PAR1 half a part")  # a crash's leftover
    write_photos(tmp_path / "in", ["red-2", "grey-1"])
    second = score_photos(str(tmp_path / "in"), str(tmp_path / "out"), model_dir=toy_photo_model, options=options())
    assert (first.scored, second.scored, second.skipped) == (3, 2, 3)
    results = read_output(tmp_path / "out")
    assert sorted(Path(uri).stem for uri in results["image"]) == ["blue-1", "green-1", "grey-1", "red-1", "red-2"]
    assert not list((tmp_path / "out").glob("*.tmp"))
    third = score_photos(str(tmp_path / "in"), str(tmp_path / "out"), model_dir=toy_photo_model, options=options())
    assert (third.scored, third.skipped) == (0, 5)


def test_manifest_paths_are_relative_to_it_and_a_missing_column_is_named(tmp_path):
    write_photos(tmp_path / "images", ["red", "blue"])
    (tmp_path / "manifest.csv").write_text("image,split\nimages/blue.jpg,test\nimages/red.jpg,train\n")
    assert photo_uris(str(tmp_path / "manifest.csv")) == [
        str(tmp_path / "images" / "blue.jpg"),
        str(tmp_path / "images" / "red.jpg"),
    ]
    (tmp_path / "other.csv").write_text("path\nimages/red.jpg\n")
    with pytest.raises(InputError, match="other.csv has no 'image' column \\(its columns: path\\)"):
        photo_uris(str(tmp_path / "other.csv"))
    with pytest.raises(InputError, match="is neither a folder nor a manifest .csv"):
        photo_uris(str(tmp_path / "images" / "red.jpg"))


def test_a_part_that_fails_mid_write_leaves_no_part_behind(tmp_path, monkeypatch):
    writer = PartWriter(str(tmp_path / "out"))
    writer.write(pa.table({"image": ["a"]}))

    def crash(table, handle, **kwargs):
        handle.write(b"PAR1 half")
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", crash)
    with pytest.raises(OSError, match="disk full"):
        writer.write(pa.table({"image": ["b"]}))
    assert [path.name for path in (tmp_path / "out").iterdir()] == ["part-000000.parquet"]
    assert PartWriter(str(tmp_path / "out")).done_keys("image") == {"a"}


def test_enterprise_batch_gives_the_score_file_answer_and_resumes(ray_local, api, tmp_path):
    from serving.batch.jobs import score_enterprises

    frame = profiles_frame(12)
    csv = frame.to_csv(index=False).encode()
    (tmp_path / "in.csv").write_bytes(csv)
    frame.iloc[:5].to_parquet(tmp_path / "first.parquet", index=False)
    first = score_enterprises(
        str(tmp_path / "first.parquet"),
        str(tmp_path / "out"),
        model_dir=MODELS_DIR / "labor_risk",
        options=options(batch_size=4, part_rows=4),
    )
    engine = create_engine(f"sqlite:///{tmp_path / 'kept.db'}")
    migrate(engine)
    second = score_enterprises(
        str(tmp_path / "in.csv"),
        str(tmp_path / "out"),
        model_dir=MODELS_DIR / "labor_risk",
        options=options(batch_size=4, part_rows=4),
        records=ScoreRecords(engine),
    )
    assert (first.scored, second.scored, second.skipped) == (5, 7, 5)
    answer = api.post("/v1/enterprises/score-file", files={"file": ("in.csv", csv, "text/csv")})
    expected = pd.read_csv(io.BytesIO(answer.content), keep_default_na=False)
    batch = read_output(tmp_path / "out").sort_values("enterprise_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(
        batch.drop(columns=["profile_fingerprint", "model_version"]), expected, check_dtype=False
    )
    with engine.connect() as connection:  # the second job's 7 enterprises were kept, source "batch"
        kept = pd.read_sql(sa.select(scores), connection).set_index("enterprise_id").sort_index()
    scored_second = batch.set_index("enterprise_id").loc[kept.index]
    assert len(kept) == 7 and set(kept["source"]) == {"batch"}
    assert kept["tier"].tolist() == scored_second["tier"].tolist()
    assert kept["profile_fingerprint"].tolist() == scored_second["profile_fingerprint"].tolist()


def test_enterprise_batch_refuses_more_workers_than_leave_a_cpu_for_reading(ray_local, tmp_path):
    from serving.batch.jobs import score_enterprises

    profiles_frame(2).to_csv(tmp_path / "in.csv", index=False)
    with pytest.raises(InputError, match="the Ray cluster has 2 CPUs .* use at most 1 workers"):
        score_enterprises(
            str(tmp_path / "in.csv"),
            str(tmp_path / "out"),
            model_dir=MODELS_DIR / "labor_risk",
            options=options(workers=2),
        )


def test_enterprise_batch_stops_on_a_bad_value_naming_enterprise_and_field(ray_local, tmp_path):
    from serving.batch.jobs import score_enterprises

    pd.DataFrame([low_risk("E-1"), low_risk("E-2", headcount="many")]).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(
        InputError, match="enterprise 'E-2' \\(data row 2\\): headcount must be a whole number, got 'many'"
    ):
        score_enterprises(
            str(tmp_path / "bad.csv"), str(tmp_path / "out"), model_dir=MODELS_DIR / "labor_risk", options=options()
        )


def test_cli_scores_a_folder_and_names_bad_options(ray_local, toy_photo_model, tmp_path, capsys):
    from ankang_cli import main

    write_photos(tmp_path / "in", ["red", "blue"])
    common = ["--out", str(tmp_path / "out"), "--model-dir", str(toy_photo_model), "--no-progress"]
    assert main(["batch", "photos", str(tmp_path / "in"), *common]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["scored"] == 2
    assert main(["batch", "photos", str(tmp_path / "in"), *common, "--workers", "0"]) == 2
    assert "ankang batch: --workers: must be at least 1, got 0" in capsys.readouterr().err
    assert main(["batch", "photos", str(tmp_path / "nowhere"), *common]) == 2
    assert "is neither a folder nor a manifest .csv" in capsys.readouterr().err
