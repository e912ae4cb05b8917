"""`ankang export reviews`: reviewed photos and corrected labels in the photo set's format."""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ankang_cli import main as ankang
from serving.photo import build_assessment
from serving.review.decisions import DecisionRequest, Reviewer
from serving.review.export import labels_for, photo_set_flags, split_for
from serving.review.store import ReviewStore

FLAGS = ["missing_helmet", "missing_hi_vis", "fire_smoke", "wet_floor", "heavy_machinery", "poor_housekeeping"]
TRAINED = ["missing_helmet", "missing_hi_vis", "fire_smoke", "wet_floor"]  # a model that knows four types
WANG, LI, ZHANG = Reviewer("a1b2c3d4", "王工"), Reviewer("b2c3d4e5", "李工"), Reviewer("c3d4e5f6", "张工")


def scene(seed: int, *, size=(900, 600)) -> tuple[bytes, Image.Image]:
    blocks = np.random.default_rng(seed).integers(0, 255, size=(6, 9, 3), dtype=np.uint8)
    image = Image.fromarray(blocks).resize(size, Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92)
    return buffer.getvalue(), image


def record(store: ReviewStore, seed: int, flagged: list[str], *, minute: int, size=(900, 600)) -> str:
    hazards = {label: (0.9 if label in flagged else 0.05) for label in TRAINED}
    data, image = scene(seed, size=size)
    photo_id = uuid.uuid4().hex
    assessment = build_assessment(hazards, dict.fromkeys(TRAINED, 0.5), model_name="hazard_photo", model_version="v7")
    store.record_assessment(
        photo_id=photo_id,
        data=data,
        image=image,
        created_at=dt.datetime(2026, 11, 20, 9, minute),
        assessment=assessment,
    )
    return photo_id


def test_label_rules():
    assert labels_for("confirm", ["wet_floor"], TRAINED, FLAGS) == {**dict.fromkeys(FLAGS, ""), "wet_floor": "1"}
    assert labels_for("rectified", ["fire_smoke"], TRAINED, FLAGS)["fire_smoke"] == "1"
    assert labels_for("correct", ["poor_housekeeping"], TRAINED, FLAGS) == {
        "missing_helmet": "0",
        "missing_hi_vis": "0",
        "fire_smoke": "0",
        "wet_floor": "0",
        "heavy_machinery": "",
        "poor_housekeeping": "1",
    }
    assert labels_for("dismiss", [], TRAINED, FLAGS) == {
        **dict.fromkeys(TRAINED, "0"),
        "heavy_machinery": "",
        "poor_housekeeping": "",
    }


def test_flag_columns_are_the_photo_sets():
    assert photo_set_flags() == FLAGS


def test_split_is_by_group_seeded_and_stable():
    groups = [f"review:{i}" for i in range(2000)]
    splits = [split_for(g, seed=1, val_fraction=0.15, test_fraction=0.15) for g in groups]
    assert splits == [split_for(g, seed=1, val_fraction=0.15, test_fraction=0.15) for g in groups]
    assert splits != [split_for(g, seed=2, val_fraction=0.15, test_fraction=0.15) for g in groups]
    assert 0.12 < splits.count("test") / 2000 < 0.18 and 0.12 < splits.count("val") / 2000 < 0.18


def test_export_writes_manifest_images_and_audit(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    url, photos = f"sqlite:///{tmp_path / 'review.db'}", tmp_path / "photos"
    store = ReviewStore(database_url=url, photo_dir=photos)
    confirmed = record(store, 1, ["wet_floor"], minute=0)
    duplicate = record(store, 1, ["wet_floor"], minute=1, size=(450, 300))  # same scene, smaller: same group
    corrected = record(store, 2, ["fire_smoke"], minute=2)
    dismissed = record(store, 3, ["missing_helmet"], minute=3)
    record(store, 4, ["missing_hi_vis"], minute=4)  # still open: not exported
    store.decide(
        confirmed, DecisionRequest.model_validate({"decision": "confirm", "apply_to_group": True}), reviewer=WANG
    )
    store.decide(corrected, DecisionRequest.model_validate({"decision": "confirm"}), reviewer=LI)
    store.decide(
        corrected,
        DecisionRequest.model_validate({"decision": "correct", "hazards": ["poor_housekeeping"]}),
        reviewer=ZHANG,
    )
    store.decide(dismissed, DecisionRequest.model_validate({"decision": "dismiss"}), reviewer=WANG)
    store.close()

    out = tmp_path / "export"
    assert ankang(["export", "reviews", "--out", str(out), "--database", url, "--photo-store", str(photos)]) == 0
    assert "wrote 4 photos" in capsys.readouterr().out
    rows = list(csv.DictReader((out / "manifest.csv").open(encoding="utf-8")))
    assert list(rows[0]) == ["image", "source", "group", "split", "width", "height", *FLAGS]
    audit = {row["photo_id"]: row for row in csv.DictReader((out / "reviews.csv").open(encoding="utf-8"))}
    by_case = {photo_id: next(r for r in rows if r["image"] == audit[photo_id]["image"]) for photo_id in audit}
    assert set(by_case) == {confirmed, duplicate, corrected, dismissed}
    assert [by_case[confirmed][f] for f in FLAGS] == ["", "", "", "1", "", ""]
    assert by_case[duplicate]["group"] == by_case[confirmed]["group"] == f"review:{confirmed}"
    assert by_case[duplicate]["split"] == by_case[confirmed]["split"]
    assert [by_case[corrected][f] for f in FLAGS] == ["0", "0", "0", "0", "", "1"]
    assert [by_case[dismissed][f] for f in FLAGS] == ["0", "0", "0", "0", "", ""]
    assert (audit[corrected]["reviewer_key_id"], audit[corrected]["reviewer_holder"]) == ("c3d4e5f6", "张工")
    assert audit[corrected]["decision"] == "correct"
    for row in rows:
        path = out / row["image"]
        assert row["source"] == "review" and row["image"].startswith("images/review/")
        image = Image.open(path)
        assert image.format == "JPEG" and max(image.size) <= 448
        assert (int(row["width"]), int(row["height"])) == image.size
        assert not image.getexif()
    assert (int(by_case[confirmed]["width"]), int(by_case[confirmed]["height"])) == (448, 299)


def test_an_empty_store_writes_nothing_and_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    url = f"sqlite:///{tmp_path / 'review.db'}"
    ReviewStore(database_url=url, photo_dir=tmp_path / "photos").close()
    out = tmp_path / "export"
    assert ankang(["export", "reviews", "--out", str(out), "--database", url, "--photo-store", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == (
        f"ankang export reviews: 0 cases in {url}: nothing to export (the store is empty)"
    )
    assert not out.exists()


def test_undecided_cases_or_a_missing_database_are_not_an_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    url = f"sqlite:///{tmp_path / 'review.db'}"
    store = ReviewStore(database_url=url, photo_dir=tmp_path / "photos")
    record(store, 1, ["wet_floor"], minute=0)
    store.close()
    out = tmp_path / "export"
    assert ankang(["export", "reviews", "--out", str(out), "--database", url, "--photo-store", str(tmp_path)]) == 1
    assert "0 cases in sqlite:///" in capsys.readouterr().err and not out.exists()
    missing = f"sqlite:///{tmp_path / 'typo.db'}"
    assert ankang(["export", "reviews", "--out", str(out), "--database", missing, "--photo-store", str(tmp_path)]) == 1
    assert f"there is no review database at {tmp_path / 'typo.db'}" in capsys.readouterr().err
    assert not (tmp_path / "typo.db").exists()


def test_the_message_hides_the_database_password():
    from serving.review.export import redacted

    assert redacted("postgresql+psycopg://reviewer:s3cret@db.example:5432/ankang") == (
        "postgresql+psycopg://reviewer:***@db.example:5432/ankang"
    )


def test_export_runs_in_the_serving_only_install(tmp_path: Path):
    """As in `make run`'s install: tqdm, torch, mlflow and the rest of the training extra cannot be imported."""
    from tests.contract.test_layers import ankang_without_training_extra

    url = f"sqlite:///{tmp_path / 'review.db'}"
    store = ReviewStore(database_url=url, photo_dir=tmp_path / "photos")
    store.decide(
        record(store, 1, ["wet_floor"], minute=0),
        DecisionRequest.model_validate({"decision": "confirm"}),
        reviewer=WANG,
    )
    store.close()
    result = ankang_without_training_extra(
        "export",
        "reviews",
        "--out",
        str(tmp_path / "export"),
        "--database",
        url,
        "--photo-store",
        str(tmp_path / "photos"),
        tmp_path=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "wrote 1 photos" in result.stdout
    assert (
        list(csv.DictReader((tmp_path / "export" / "reviews.csv").open(encoding="utf-8")))[0]["reviewer_holder"]
        == "王工"
    )


def test_an_object_store_url_reaches_the_export_intact(monkeypatch):
    """An s3:// photo store (ANKANG_PHOTO_STORE or --photo-store) is not folded into a path (s3:/bucket)."""
    import argparse

    from serving.review.export import add_export_arguments

    monkeypatch.setenv("ANKANG_PHOTO_STORE", "s3://bucket/photos")
    parser = argparse.ArgumentParser()
    add_export_arguments(parser)
    assert parser.parse_args(["--out", "x"]).photo_store == "s3://bucket/photos"
    assert parser.parse_args(["--out", "x", "--photo-store", "s3://other/p"]).photo_store == "s3://other/p"
