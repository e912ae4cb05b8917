"""The review store on SQLite and PostgreSQL: migrations, cases, the queue, decisions, restarts."""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory
from PIL import Image

from runtime.errors import InputError
from serving.assessment import Detection
from serving.db import MIGRATIONS_DIR, migrate
from serving.photo import build_assessment
from serving.review.decisions import DecisionRequest, Reviewer
from serving.review.grouping import hash_bands
from serving.review.photos import GPS_IFD_TAG
from serving.review.queue import QueueFilter
from serving.review.store import ReviewStore

PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
T0 = dt.datetime(2026, 11, 1, 8, 0, 0)
HEAD = ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()  # the newest migration, whoever added it
WANG, LI = Reviewer("ab12cd34", "王安全"), Reviewer("env-2", "李工")


def postgres_schema() -> Iterator[str]:
    """A new schema in database `test` for one test, dropped afterwards; skips when PostgreSQL is not there."""
    schema = f"review_test_{uuid.uuid4().hex[:10]}"
    try:
        engine = sa.create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 (database test, user postgres) does not answer: {exc.orig}")
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'review.db'}"
    else:
        yield from postgres_schema()


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> Iterator[ReviewStore]:
    review_store = ReviewStore(database_url=database_url, photo_dir=tmp_path / "photos")
    yield review_store
    review_store.close()


def photo(colour: tuple[int, int, int], *, pattern: int = 0, gps: bool = False) -> tuple[bytes, Image.Image]:
    """A 96×64 JPEG of a seeded blocky texture: one `pattern` is one scene (about 32 dHash bits apart)."""
    blocks = np.random.default_rng(pattern).integers(0, 200, size=(8, 12, 1), dtype=np.uint8)
    pixels = (blocks + np.array(colour, dtype=np.uint8) // 4).astype(np.uint8)
    image = Image.fromarray(pixels).resize((96, 64), Image.Resampling.BILINEAR)
    exif = Image.Exif()
    if gps:
        exif.get_ifd(GPS_IFD_TAG)[2] = (31.0, 14.0, 0.5)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, exif=exif.tobytes())
    return buffer.getvalue(), image


def assessment(flags: dict[str, float], triage: str, cam: np.ndarray | None = None):
    labels = ("missing_helmet", "fire_smoke", "wet_floor")
    hazards = {label: flags.get(label, 0.05) for label in labels}
    made = build_assessment(
        hazards, dict.fromkeys(labels, 0.5), model_name="hazard_photo", model_version="t-1", cam=cam
    )
    assert made.triage == triage
    return made


def add(
    store: ReviewStore,
    flags: dict[str, float],
    triage: str,
    *,
    minutes: int,
    pattern: int,
    site: str = "site-1",
    gps: bool = False,
) -> str:
    data, image = photo((40, 40, 40), pattern=pattern, gps=gps)
    photo_id = uuid.uuid4().hex
    store.record_assessment(
        photo_id=photo_id,
        data=data,
        image=image,
        assessment=assessment(flags, triage, cam=np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)),
        metadata={"site_id": site},
        created_at=T0 + dt.timedelta(minutes=minutes),
    )
    return photo_id


def test_migrations_create_the_schema_from_empty(store):
    inspector = sa.inspect(store.engine)
    assert {"review_cases", "review_case_flags", "review_decisions", "review_alembic_version"} <= set(
        inspector.get_table_names()
    )
    assert "ix_review_cases_queue" in {index["name"] for index in inspector.get_indexes("review_cases")}
    with store.engine.connect() as connection:
        assert connection.execute(sa.text("SELECT version_num FROM review_alembic_version")).scalar_one() == HEAD


def test_sqlite_runs_in_wal_mode(tmp_path):
    store = ReviewStore(database_url=f"sqlite:///{tmp_path / 'r.db'}", photo_dir=tmp_path / "photos")
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar_one() == "wal"
    store.close()


def test_queue_orders_by_severity_then_probability_then_age(store):
    general_old = add(store, {"wet_floor": 0.7}, "review", minutes=0, pattern=1)
    major_low = add(store, {"fire_smoke": 0.6}, "urgent", minutes=5, pattern=2)
    major_high = add(store, {"fire_smoke": 0.95}, "urgent", minutes=9, pattern=3)
    general_new = add(store, {"wet_floor": 0.7}, "review", minutes=7, pattern=4)
    add(store, {}, "clear", minutes=1, pattern=5)
    page = store.queue(QueueFilter())
    assert [item["photo_id"] for item in page["items"]] == [major_high, major_low, general_old, general_new]
    assert page["total"] == 4
    assert page["counts"]["open"] == 4 and page["counts"]["clear"] == 1
    assert page["items"][0]["flagged"][0]["name_zh"] == "明火烟雾"


def test_queue_filters_and_pages(store):
    ids = [add(store, {"wet_floor": 0.6 + i / 100}, "review", minutes=i, pattern=i, site=f"s{i % 2}") for i in range(6)]
    fire = add(store, {"fire_smoke": 0.9}, "urgent", minutes=30, pattern=9, site="s1")
    assert [i["photo_id"] for i in store.queue(QueueFilter(hazard="fire_smoke"))["items"]] == [fire]
    assert store.queue(QueueFilter(site="s0"))["total"] == 3
    window = QueueFilter(date_from=T0 + dt.timedelta(minutes=2), date_to=T0 + dt.timedelta(minutes=4))
    assert {i["photo_id"] for i in store.queue(window)["items"]} == {ids[2], ids[3]}
    first, second = store.queue(QueueFilter(limit=4)), store.queue(QueueFilter(limit=4, offset=4))
    assert [i["photo_id"] for i in first["items"] + second["items"]] == [fire] + ids[::-1]
    assert first["total"] == second["total"] == 7


def test_decisions_are_appended_and_survive_a_restart(store, database_url, tmp_path):
    case = add(store, {"fire_smoke": 0.9}, "urgent", minutes=0, pattern=1)
    store.decide(case, DecisionRequest.model_validate({"decision": "confirm"}), reviewer=WANG)
    store.decide(
        case,
        DecisionRequest.model_validate({"decision": "correct", "hazards": ["wet_floor"], "comment": "no fire"}),
        reviewer=LI,
    )
    store.close()
    reopened = ReviewStore(database_url=database_url, photo_dir=tmp_path / "photos")
    record = reopened.case(case)
    assert record["status"] == "corrected"
    assert [(h["decision"], h["hazards"], h["reviewer"]) for h in record["history"]] == [
        ("confirm", ["fire_smoke"], {"key_id": "ab12cd34", "holder": "王安全"}),
        ("correct", ["wet_floor"], {"key_id": "env-2", "holder": "李工"}),
    ]
    assert record["history"][1]["comment"] == "no fire"
    assert reopened.queue(QueueFilter())["total"] == 0
    assert reopened.queue(QueueFilter(status="decided"))["items"][0]["photo_id"] == case
    latest = reopened.reviewed()
    assert [
        (row["photo_id"], row["decision"], row["decided_hazards"], row["reviewer_key_id"], row["reviewer_holder"])
        for row in latest
    ] == [(case, "correct", ["wet_floor"], "env-2", "李工")]
    reopened.close()


def test_near_duplicates_share_a_group_and_one_decision_closes_it(store):
    first = add(store, {"fire_smoke": 0.9}, "urgent", minutes=0, pattern=1)
    again = add(store, {"fire_smoke": 0.8}, "urgent", minutes=3, pattern=1)
    other = add(store, {"fire_smoke": 0.7}, "urgent", minutes=4, pattern=6)
    assert store.case(again)["group_id"] == store.case(first)["group_id"] == first
    assert store.case(other)["group_id"] == other
    result = store.decide(
        again, DecisionRequest.model_validate({"decision": "dismiss", "apply_to_group": True}), reviewer=WANG
    )
    assert sorted(result["applied_to"]) == sorted([first, again])
    assert store.case(first)["history"][0]["via_photo_id"] == again
    assert [i["photo_id"] for i in store.queue(QueueFilter())["items"]] == [other]


def test_unknown_photo_id_is_a_404(store):
    with pytest.raises(InputError, match="no case with photo_id 'nope'") as raised:
        store.decide("nope", DecisionRequest.model_validate({"decision": "confirm"}), reviewer=WANG)
    assert raised.value.status_code == 404


def test_photos_are_content_addressed_and_lose_gps(store):
    case = add(store, {"wet_floor": 0.7}, "review", minutes=0, pattern=1, gps=True)
    digest = store.photo_digest(case)
    stored = store.photos.path(digest)
    assert stored.name == f"{digest}.jpg" and stored.parent.name == digest[:2]
    assert GPS_IFD_TAG not in Image.open(stored).getexif()
    assert not list(stored.parent.glob(".tmp-*"))
    add(store, {"wet_floor": 0.7}, "review", minutes=1, pattern=1, gps=True)
    assert len(list(store.photos.root.glob("??/*.jpg"))) == 1


def test_gps_is_kept_when_configured(tmp_path):
    store = ReviewStore(database_url=f"sqlite:///{tmp_path / 'r.db'}", photo_dir=tmp_path / "p", keep_gps=True)
    case = add(store, {"wet_floor": 0.7}, "review", minutes=0, pattern=1, gps=True)
    exif = Image.open(store.photos.path(store.photo_digest(case))).getexif()
    assert exif.get_ifd(GPS_IFD_TAG)[2] == (31.0, 14.0, 0.5)
    store.close()


def test_a_failed_insert_leaves_no_case(store):
    case = add(store, {"wet_floor": 0.7}, "review", minutes=0, pattern=1)
    data, image = photo((40, 40, 40), pattern=2)
    with pytest.raises(sa.exc.IntegrityError):
        store.record_assessment(
            photo_id=case, data=data, image=image, assessment=assessment({"fire_smoke": 0.9}, "urgent")
        )
    assert store.queue(QueueFilter(status="all"))["total"] == 1
    assert [f["type"] for f in store.case(case)["flagged"]] == ["wet_floor"]


def test_cam_grid_round_trips(store):
    case = add(store, {"wet_floor": 0.7}, "review", minutes=0, pattern=1)
    labels, grid, _ = store.cam(case)
    assert labels == ["missing_helmet", "fire_smoke", "wet_floor"]
    np.testing.assert_allclose(grid, np.arange(48, dtype=np.float32).reshape(3, 4, 4), rtol=1e-3)


def store_with_an_old_case(database_url: str, revision: str, *, dhash: int) -> None:
    """A database at an older schema revision holding one urgent case, 'old', written as that revision's code did."""
    engine = sa.create_engine(database_url)
    migrate(engine, revision)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO review_cases (photo_id, photo_sha256, created_at, status, triage, severity_rank, "
                "top_probability, model_name, model_version, labels, probabilities, thresholds, flagged, width, "
                "height, dhash, group_id, decision_count) "
                "VALUES ('old', :sha, :at, 'open', 'urgent', 2, 0.9, 'm', 'v', "
                "'[\"fire_smoke\"]', '{\"fire_smoke\": 0.9}', '{\"fire_smoke\": 0.5}', '[\"fire_smoke\"]', 10, 10, "
                ":dhash, 'old', 0)"
            ),
            {"sha": "0" * 64, "at": T0, "dhash": f"{dhash:016x}"},
        )
        connection.execute(sa.text("INSERT INTO review_case_flags (photo_id, hazard) VALUES ('old', 'fire_smoke')"))
    engine.dispose()


def test_an_older_schema_is_upgraded_in_place(database_url, tmp_path):
    """A store at revision 0001 with a case in it reaches head at start-up and keeps its case."""
    store_with_an_old_case(database_url, "0001", dhash=0)
    store = ReviewStore(database_url=database_url, photo_dir=tmp_path / "p")
    columns = next(
        i for i in sa.inspect(store.engine).get_indexes("review_cases") if i["name"] == "ix_review_cases_queue"
    )
    assert "photo_id" in str(columns["column_names"]) or "photo_id" in str(columns.get("expressions"))
    assert store.queue(QueueFilter())["items"][0]["photo_id"] == "old"
    store.close()


def test_a_scene_reported_again_after_the_group_window_starts_a_new_group(store):
    first = add(store, {"fire_smoke": 0.9}, "urgent", minutes=0, pattern=1)
    next_week = add(store, {"fire_smoke": 0.9}, "urgent", minutes=7 * 24 * 60, pattern=1)
    two_months_later = add(store, {"fire_smoke": 0.9}, "urgent", minutes=60 * 24 * 60, pattern=1)
    assert store.case(next_week)["group_id"] == first
    assert store.case(two_months_later)["group_id"] == two_months_later


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_gps_is_stripped_without_touching_pixels_or_other_exif(fmt):
    from serving.review.photos import strip_gps

    image = Image.fromarray(np.random.default_rng(3).integers(0, 255, (48, 64, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(GPS_IFD_TAG)[2] = (30.0, 15.0, 0.0)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, exif=exif.tobytes(), **({"lossless": True} if fmt == "WEBP" else {}))
    original = buffer.getvalue()
    stripped = Image.open(io.BytesIO(strip_gps(original)))
    assert GPS_IFD_TAG not in stripped.getexif() and stripped.getexif()[0x010F] == "PhoneMaker"
    np.testing.assert_array_equal(
        np.asarray(stripped.convert("RGB")), np.asarray(Image.open(io.BytesIO(original)).convert("RGB"))
    )


def test_an_interrupted_photo_write_leaves_nothing_behind(tmp_path, monkeypatch):
    from serving.review import photos as photo_module

    def fail(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(photo_module.os, "replace", fail)
    store = photo_module.PhotoStore(tmp_path / "photos")
    with pytest.raises(OSError, match="disk full"):
        store.put(photo((40, 40, 40), pattern=1)[0])
    assert [path for path in (tmp_path / "photos").rglob("*") if path.is_file()] == []


BASE_HASH = 0x0123456789ABCDEF


@pytest.mark.parametrize(
    ("flipped_bits", "same_group"),
    [
        ((0, 13, 26, 39), True),  # 4 bits, each in another band: only band 4 still matches
        ((60, 61, 62, 63), True),  # 4 bits in one band
        ((0, 13, 26, 39, 52), False),  # 5 bits: past the threshold
    ],
)
def test_grouping_finds_every_photo_within_the_threshold_whichever_bands_differ(
    store, monkeypatch, flipped_bits, same_group
):
    hashes = iter([BASE_HASH, BASE_HASH ^ sum(1 << bit for bit in flipped_bits)])
    monkeypatch.setattr("serving.review.store.dhash64", lambda image: next(hashes))
    first = add(store, {"wet_floor": 0.7}, "review", minutes=0, pattern=1)
    second = add(store, {"wet_floor": 0.7}, "review", minutes=5, pattern=2)
    assert (store.case(second)["group_id"] == store.case(first)["group_id"]) is same_group


def test_any_two_hashes_within_four_bits_share_a_band(rng):
    for _ in range(2000):
        value = int(rng.integers(0, 2**63)) * 2 + int(rng.integers(0, 2))
        flipped = rng.choice(64, size=int(rng.integers(0, 5)), replace=False)
        other = value ^ sum(1 << int(bit) for bit in flipped)
        assert any(a == b for a, b in zip(hash_bands(value), hash_bands(other)))


def test_migration_0005_backfills_the_bands_of_existing_cases(database_url, tmp_path, monkeypatch):
    store_with_an_old_case(database_url, "0004", dhash=BASE_HASH)
    store = ReviewStore(database_url=database_url, photo_dir=tmp_path / "photos")
    with store.engine.connect() as connection:
        row = connection.execute(sa.text("SELECT * FROM review_cases WHERE photo_id = 'old'")).one()
    assert tuple(row._mapping[f"dhash_band{index}"] for index in range(5)) == hash_bands(BASE_HASH)
    monkeypatch.setattr("serving.review.store.dhash64", lambda image: BASE_HASH ^ 0b111)  # 3 bits away
    new = add(store, {"fire_smoke": 0.9}, "urgent", minutes=60, pattern=2)
    assert store.case(new)["group_id"] == "old"
    store.close()


def test_a_threshold_the_band_index_cannot_serve_is_refused(tmp_path):
    with pytest.raises(ValueError, match="group_threshold must be between 0 and 4 bits .* got 5"):
        ReviewStore(database_url=f"sqlite:///{tmp_path / 'r.db'}", photo_dir=tmp_path / "photos", group_threshold=5)


def test_migration_0006_keeps_old_free_text_reviewers_as_legacy_and_recovers_their_key_ids(database_url, tmp_path):
    store_with_an_old_case(database_url, "0005", dhash=BASE_HASH)
    engine = sa.create_engine(database_url)
    with engine.begin() as connection:
        for reviewer in ("王工 [key:ab12cd34]", "key:env-2", "free text"):
            connection.execute(
                sa.text(
                    "INSERT INTO review_decisions (photo_id, decision, hazards, reviewer, created_at) "
                    "VALUES ('old', 'confirm', '[]', :reviewer, :at)"
                ),
                {"reviewer": reviewer, "at": T0},
            )
    engine.dispose()
    store = ReviewStore(database_url=database_url, photo_dir=tmp_path / "photos")
    store.decide("old", DecisionRequest.model_validate({"decision": "dismiss"}), reviewer=WANG)
    history = store.case("old")["history"]
    assert [
        (entry["reviewer"]["key_id"], entry["reviewer"]["holder"], entry.get("legacy_reviewer")) for entry in history
    ] == [
        ("ab12cd34", None, "王工 [key:ab12cd34]"),
        ("env-2", None, "key:env-2"),
        ("legacy", None, "free text"),
        ("ab12cd34", "王安全", None),
    ]
    store.close()


def test_detections_are_stored_with_the_case(store):
    data, image = photo((40, 40, 40), pattern=3)
    boxes = [{"type": "missing_helmet", "score": 0.91, "box": [10.0, 8.5, 40.0, 60.0]}]
    record = dataclasses.replace(
        assessment({"missing_helmet": 0.9}, "review"), detections=tuple(Detection(**box) for box in boxes)
    )
    store.record_assessment(photo_id="boxed", data=data, image=image, assessment=record)
    assert store.case("boxed")["detections"] == boxes
    assert store.queue(QueueFilter())["items"][0]["detections"] == boxes


def test_a_case_without_boxes_has_an_empty_detection_list(store):
    case = add(store, {"fire_smoke": 0.9}, "urgent", minutes=0, pattern=1)
    assert store.case(case)["detections"] == []


def test_bare_dates_are_days_in_the_readers_time_zone():
    from serving.review.queue import parse_filter

    shanghai = parse_filter({"from": "2026-11-26", "to": "2026-11-26", "tz": "Asia/Shanghai"})
    assert (shanghai.date_from, shanghai.date_to) == (dt.datetime(2026, 11, 25, 16), dt.datetime(2026, 11, 26, 16))
    utc = parse_filter({"from": "2026-11-26"})
    assert utc.date_from == dt.datetime(2026, 11, 26)
    with pytest.raises(InputError, match="unknown time zone 'Mars/Olympus'; use an IANA name such as Asia/Shanghai"):
        parse_filter({"tz": "Mars/Olympus"})
