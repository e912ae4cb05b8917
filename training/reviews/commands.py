"""`ankang export reviews` and `ankang evaluate dhash` (imports happen inside the commands)."""

from __future__ import annotations

import argparse
from pathlib import Path

EXPORT_DESCRIPTION = """\
Write the photos that safety officers reviewed, with their corrected labels, in the format of
datasets/site-hazard-photos (manifest.csv + images/review/<sha1-16>.jpg, plus reviews.csv saying
who decided what), ready to pass to `ankang train photo --data` next to the photo set.

  confirm / rectified  the model's flagged types = 1, other types blank (not said)
  correct              the listed types = 1, the model's other trained types = 0
  dismiss              all types the model was trained on = 0

Example:  ankang export reviews --out var/exports/reviews-2026-11"""

DHASH_DESCRIPTION = """\
Measure the dHash Hamming threshold for near-duplicate reports on the photo set: precision and
recall of "same group" per threshold, recall on re-reported (recompressed, scaled, cropped,
brightened, tilted) copies; writes dhash_threshold.csv/.json/.png."""


def register(verb) -> None:
    export = verb("export").add_parser("reviews", help="export reviewed photos and corrected labels for retraining",
                                       description=EXPORT_DESCRIPTION,
                                       formatter_class=argparse.RawDescriptionHelpFormatter)
    add_export_arguments(export)
    export.set_defaults(func=run_export)
    from training.reviews.threshold import get_args_parser

    study = verb("evaluate").add_parser("dhash", help="measure the near-duplicate (dHash) threshold",
                                        description=DHASH_DESCRIPTION)
    get_args_parser(study)
    study.set_defaults(func=run_dhash)


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    from serving.review.settings import ReviewSettings

    settings = ReviewSettings.from_env()
    parser.add_argument("--out", type=Path, required=True, help="folder to write manifest.csv and images/review/ into")
    parser.add_argument("--database", default=settings.database_url,
                        help="review store URL (default: ANKANG_DATABASE_URL or %(default)s)")
    parser.add_argument("--photo-store", type=Path, default=settings.photo_dir,
                        help="photo store folder (default: ANKANG_PHOTO_STORE or %(default)s)")
    parser.add_argument("--seed", type=int, default=20261126, help="seed of the split by group (default: %(default)s)")
    parser.add_argument("--val-fraction", type=float, default=0.15, help="share of groups in val (default: %(default)s)")
    parser.add_argument("--test-fraction", type=float, default=0.15, help="share of groups in test (default: %(default)s)")


def run_export(args: argparse.Namespace) -> int:
    from training.reviews.export import ExportConfig, export_reviews

    if not 0 <= args.val_fraction + args.test_fraction < 1:
        raise SystemExit("--val-fraction plus --test-fraction must be at least 0 and below 1")
    config = ExportConfig(out=args.out, database_url=args.database, photo_store=args.photo_store, seed=args.seed,
                          val_fraction=args.val_fraction, test_fraction=args.test_fraction)
    summary = export_reviews(config)
    print(f"wrote {summary['photos']} photos to {args.out / 'manifest.csv'} (splits {summary['splits']}; "
          f"decisions {summary['decisions']}; {summary['skipped_no_photo_set_label']} without a photo-set label)")
    return 0


def run_dhash(args: argparse.Namespace) -> int:
    from training.reviews.threshold import main

    return main(args)
