"""`ankang batch photos SRC --out DIR` and `ankang batch enterprises FILE --out DIR` (Ray Data).

Service commands (the serving install plus the `batch` extra); ray is imported when a job runs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from runtime.errors import InputError
from serving.settings import ServingSettings

PHOTOS_DESCRIPTION = """\
Score photos with the released photo model in Ray actors, as POST /v1/photos/assess would
(without storing them for review). SRC is a folder (searched recursively for .jpg/.jpeg/.png/.webp),
a manifest .csv with an `image` column (paths relative to the manifest, or URLs), or an fsspec
prefix such as s3://bucket/photos/ (needs s3fs). The output is a folder of Parquet parts, one
row per photo: image, model_name, model_version, triage, flagged (';'-joined), hazards (JSON),
error (the API's 4xx message for a photo it would refuse). Photos already in the output are
skipped, so an interrupted job is resumed by running it again."""

ENTERPRISES_DESCRIPTION = """\
Score a CSV or Parquet file of enterprise profiles with the released risk model in Ray actors,
as POST /v1/enterprises/score-file would, without its row limit. The output is a folder of
Parquet parts with the score-file columns (enterprise_id, tier, model_tier, p_tier_1..5,
rules_fired, reasons, imputed) plus profile_fingerprint and model_version. Every part written is
also kept in the service's database as the enterprises' scores (GET /v1/enterprises/{id}, union
grading) unless --no-record. Enterprises already in the output are skipped. A bad value stops
the job naming the enterprise and field (row numbers count within its batch); parts already
written stay valid: fix the file and run again."""


def _common(parser: argparse.ArgumentParser, *, batch_size: int) -> None:
    parser.add_argument("--out", required=True, help="output folder of Parquet parts (local path or fsspec URL)")
    parser.add_argument("--ray-address", default=None, help="Ray cluster to join (default: start a local Ray)")
    parser.add_argument("--workers", type=int, default=1, help="actors, each with one model session (default 1)")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads per actor (default 1)")
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help=f"rows per model call (default {batch_size})"
    )
    parser.add_argument(
        "--part-rows", type=int, default=batch_size * 32, help=f"rows per output part (default {batch_size * 32})"
    )
    parser.add_argument("--model-dir", type=Path, default=None, help="model directory (default: the service's)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def register(verb) -> None:
    photos = verb("batch").add_parser(
        "photos",
        help="score a folder, manifest or prefix of photos on Ray",
        description=PHOTOS_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    photos.add_argument("source", metavar="SRC", help="folder, manifest .csv or fsspec prefix of photos")
    _common(photos, batch_size=32)
    photos.set_defaults(func=run_photos)
    enterprises = verb("batch").add_parser(
        "enterprises",
        help="score a CSV/Parquet file of enterprises on Ray",
        description=ENTERPRISES_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    enterprises.add_argument("file", metavar="FILE", help="CSV or Parquet file (local path or fsspec URL)")
    _common(enterprises, batch_size=10_000)
    enterprises.add_argument(
        "--no-record", action="store_true", help="do not keep the scores in the service's database"
    )
    enterprises.set_defaults(func=run_enterprises)


def _options(args: argparse.Namespace):
    from serving.batch.jobs import BatchOptions

    for name in ("workers", "threads", "batch_size", "part_rows"):
        if getattr(args, name) < 1:
            raise InputError(f"--{name.replace('_', '-')}", f"must be at least 1, got {getattr(args, name)}")
    return BatchOptions(
        workers=args.workers,
        batch_size=args.batch_size,
        part_rows=args.part_rows,
        threads=args.threads,
        ray_address=args.ray_address,
        progress=not args.no_progress,
    )


def _run(job, source: str, args: argparse.Namespace, model_dir: Path, **extra) -> int:
    try:
        import ray  # noqa: F401  (the batch extra)
    except ModuleNotFoundError:
        print("ankang batch: Ray is not installed; install it with `pip install 'ankang[batch]'`", file=sys.stderr)
        return 2
    try:
        summary = job(source, args.out, model_dir=args.model_dir or model_dir, options=_options(args), **extra)
    except InputError as error:
        print(f"ankang batch: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_dict()))
    return 0


def run_photos(args: argparse.Namespace) -> int:
    from serving.batch.jobs import score_photos

    return _run(score_photos, args.source, args, ServingSettings.from_env().resolved_photo_model_dir)


def run_enterprises(args: argparse.Namespace) -> int:
    from serving.batch.jobs import score_enterprises

    settings = ServingSettings.from_env()
    records = None if args.no_record else _service_records(settings)
    return _run(score_enterprises, args.file, args, settings.resolved_risk_model_dir, records=records)


def _service_records(settings: ServingSettings):
    """The service's database (migrated to the newest schema), where kept scores go."""
    from serving.db import create_engine, migrate
    from serving.enterprises.records import ScoreRecords

    engine = create_engine(settings.resolved_database_url)
    migrate(engine)
    return ScoreRecords(engine)
