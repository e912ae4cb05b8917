"""`ankang evaluate dhash`: the near-duplicate threshold study (imports happen inside the command)."""

from __future__ import annotations

import argparse

DHASH_DESCRIPTION = """\
Measure the dHash Hamming threshold for near-duplicate reports on the photo set: precision and
recall of "same group" per threshold, recall on re-reported (recompressed, scaled, cropped,
brightened, tilted) copies; writes dhash_threshold.csv/.json/.png."""


def register(verb) -> None:
    from training.reviews.threshold import get_args_parser

    study = verb("evaluate").add_parser(
        "dhash", help="measure the near-duplicate (dHash) threshold", description=DHASH_DESCRIPTION
    )
    get_args_parser(study)
    study.set_defaults(func=run_dhash)


def run_dhash(args: argparse.Namespace) -> int:
    from training.reviews.threshold import main

    return main(args)
