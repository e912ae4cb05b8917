"""Reviewed photos and their corrected labels, in the format of datasets/site-hazard-photos.

Label rules (latest decision per case; blank = the reviewer said nothing about that type):
  confirm, rectified   the model's flagged types → 1, every other type blank
  correct              the listed types → 1, the model's other trained types → 0, the rest blank
  dismiss              every type the model was trained on → 0
Images are re-encoded like the photo set (EXIF orientation applied, RGB, longest side ≤ 448 px,
JPEG quality 85, no metadata) and named by the first 16 hex digits of their SHA-1. Splits are
assigned per near-duplicate group from a seeded hash of the group id, so a group never straddles
splits and a group keeps its split in later exports.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from PIL import Image
from rich.progress import track

from runtime.safe_csv import rows_to_csv
from runtime.taxonomy import TAXONOMY_PATH
from serving.review.photos import PhotoStore, atomic_write
from serving.review.queue import QueueFilter
from serving.review.settings import ReviewSettings
from serving.review.store import ReviewStore

SOURCE = "review"
AUDIT_COLUMNS = [
    "image",
    "photo_id",
    "decision",
    "hazards",
    "reviewer_key_id",
    "reviewer_holder",
    "decided_at",
    "model_version",
]


@dataclass(frozen=True)
class ExportConfig:
    out: Path
    database_url: str
    photo_store: str | Path  # a folder or an fsspec URL (a Path would fold s3:// into s3:/)
    seed: int = 20261126
    val_fraction: float = 0.15
    test_fraction: float = 0.15
    max_side: int = 448
    quality: int = 85


def photo_set_flags(path: Path = TAXONOMY_PATH) -> list[str]:
    """The manifest's flag columns: the taxonomy types marked `in_photo_set`, in taxonomy order."""
    entries = yaml.safe_load(path.read_text(encoding="utf-8"))["types"]
    return [entry["id"] for entry in entries if entry.get("in_photo_set")]


def labels_for(decision: str, hazards: list[str], trained: list[str], flags: list[str]) -> dict[str, str]:
    """One manifest row's flag cells ("1", "0" or "") for a case's latest decision."""
    present = set(hazards)
    if decision in ("confirm", "rectified"):
        return {flag: "1" if flag in present else "" for flag in flags}
    if decision == "correct":
        return {flag: "1" if flag in present else ("0" if flag in trained else "") for flag in flags}
    if decision == "dismiss":
        return {flag: "0" if flag in trained else "" for flag in flags}
    raise ValueError(f"unknown decision {decision!r}")


def split_for(group: str, *, seed: int, val_fraction: float, test_fraction: float) -> str:
    draw = int(hashlib.sha256(f"{seed}:{group}".encode()).hexdigest()[:12], 16) / 16**12
    if draw < test_fraction:
        return "test"
    return "val" if draw < test_fraction + val_fraction else "train"


def reencode(photos: PhotoStore, digest: str, *, max_side: int, quality: int) -> tuple[bytes, int, int]:
    image = photos.open_image(digest)
    image.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue(), image.width, image.height


def manifest_row(case: dict[str, Any], config: ExportConfig, flags: list[str]) -> dict[str, Any] | None:
    cells = labels_for(case["decision"], case["decided_hazards"], case["labels"], flags)
    if not any(cells.values()):
        return None  # nothing the photo set's columns can say
    data, width, height = reencode(
        ReviewStore.photos_of(config.photo_store),
        case["photo_sha256"],
        max_side=config.max_side,
        quality=config.quality,
    )
    name = f"images/{SOURCE}/{hashlib.sha1(data).hexdigest()[:16]}.jpg"
    atomic_write(config.out / name, data)
    group = f"{SOURCE}:{case['group_id']}"
    split = split_for(group, seed=config.seed, val_fraction=config.val_fraction, test_fraction=config.test_fraction)
    return {"image": name, "source": SOURCE, "group": group, "split": split, "width": width, "height": height, **cells}


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    atomic_write(path, rows_to_csv(rows, columns).encode("utf-8"))  # formula-safe: holders and ids are typed


class NothingToExport(Exception):
    """The store holds no reviewed case: nothing is written (an empty export would look like a result)."""


def redacted(url: str) -> str:
    """The database URL without its password, for messages."""
    return sa.make_url(url).render_as_string(hide_password=True)


def reviewed_cases(config: ExportConfig) -> list[dict[str, Any]]:
    """The store's decided cases (latest decision each); `NothingToExport` says why there are none."""
    database = sa.make_url(config.database_url).database
    if (
        config.database_url.startswith("sqlite")
        and database not in (None, "", ":memory:")
        and not Path(database).is_file()
    ):
        raise NothingToExport(f"0 cases in {redacted(config.database_url)}: there is no review database at {database}")
    store = ReviewStore(database_url=config.database_url, photo_dir=config.photo_store)
    try:
        cases, total = store.reviewed(), store.queue(QueueFilter(status="all", limit=1))["total"]
    finally:
        store.close()
    if not cases:
        detail = f"{total} cases, none decided yet" if total else "the store is empty"
        raise NothingToExport(f"0 cases in {redacted(config.database_url)}: nothing to export ({detail})")
    return cases


def export_reviews(config: ExportConfig) -> dict[str, Any]:
    """Write manifest.csv, reviews.csv (who decided what) and images/review/ into config.out."""
    cases = reviewed_cases(config)
    flags = photo_set_flags()
    rows, audit, skipped = {}, [], 0
    for case in track(cases, description="export reviews"):
        row = manifest_row(case, config, flags)
        if row is None:
            skipped += 1
            continue
        rows[row["image"]] = row  # identical photos: the later decision wins
        audit.append(
            {
                "image": row["image"],
                "photo_id": case["photo_id"],
                "decision": case["decision"],
                "hazards": " ".join(case["decided_hazards"]),
                "reviewer_key_id": case["reviewer_key_id"],
                "reviewer_holder": case["reviewer_holder"] or "",
                "decided_at": case["decision_at"].isoformat(timespec="seconds") + "Z",
                "model_version": case["model_version"],
            }
        )
    columns = ["image", "source", "group", "split", "width", "height", *flags]
    ordered = sorted(rows.values(), key=lambda row: row["image"])
    config.out.mkdir(parents=True, exist_ok=True)
    write_csv(config.out / "manifest.csv", ordered, columns)
    write_csv(config.out / "reviews.csv", audit, AUDIT_COLUMNS)
    return {
        "cases": len(cases),
        "photos": len(ordered),
        "skipped_no_photo_set_label": skipped,
        "splits": dict(Counter(row["split"] for row in ordered)),
        "decisions": dict(Counter(case["decision"] for case in cases)),
    }


# --- `ankang export reviews` (registered by ankang_cli) ---

EXPORT_DESCRIPTION = """\
Write the photos that safety officers reviewed, with their corrected labels, in the format of
datasets/site-hazard-photos (manifest.csv + images/review/<sha1-16>.jpg, plus reviews.csv saying
who decided what), ready to pass to `ankang train photo --data` next to the photo set.

  confirm / rectified  the model's flagged types = 1, other types blank (not said)
  correct              the listed types = 1, the model's other trained types = 0
  dismiss              all types the model was trained on = 0

Example:  ankang export reviews --out var/exports/reviews-2026-11"""


def register(verb) -> None:
    export = verb("export").add_parser(
        "reviews",
        help="export reviewed photos and corrected labels for retraining",
        description=EXPORT_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_export_arguments(export)
    export.set_defaults(func=run_export)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    settings = ReviewSettings.from_env()
    parser.add_argument("--out", type=Path, required=True, help="folder to write manifest.csv and images/review/ into")
    parser.add_argument(
        "--database",
        default=settings.database_url,
        help="review store URL (default: ANKANG_DATABASE_URL or %(default)s)",
    )
    parser.add_argument(
        "--photo-store",
        default=settings.photo_dir,
        help="photo store: a folder or an s3:// URL (default: ANKANG_PHOTO_STORE or %(default)s)",
    )
    parser.add_argument("--seed", type=int, default=20261126, help="seed of the split by group (default: %(default)s)")
    parser.add_argument(
        "--val-fraction", type=float, default=0.15, help="share of groups in val (default: %(default)s)"
    )
    parser.add_argument(
        "--test-fraction", type=float, default=0.15, help="share of groups in test (default: %(default)s)"
    )


def run_export(args: argparse.Namespace) -> int:
    if not 0 <= args.val_fraction + args.test_fraction < 1:
        raise SystemExit("--val-fraction plus --test-fraction must be at least 0 and below 1")
    config = ExportConfig(
        out=args.out,
        database_url=args.database,
        photo_store=args.photo_store,
        seed=args.seed,
        val_fraction=args.val_fraction,
        test_fraction=args.test_fraction,
    )
    try:
        summary = export_reviews(config)
    except NothingToExport as error:
        print(f"ankang export reviews: {error}", file=sys.stderr)
        return 1
    print(
        f"wrote {summary['photos']} photos to {args.out / 'manifest.csv'} (splits {summary['splits']}; "
        f"decisions {summary['decisions']}; {summary['skipped_no_photo_set_label']} without a photo-set label)"
    )
    return 0
