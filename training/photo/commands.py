"""`ankang train photo` and `ankang evaluate photo` (heavy imports happen inside the commands)."""

from __future__ import annotations

import argparse
from pathlib import Path

from training.photo.config import DEFAULT_CACHE, add_config_arguments, config_from_args

TRAIN_DESCRIPTION = """\
Fine-tune ImageNet MobileNetV2 (or, with --init-from, a released model) on the site hazard photos
jointly for the six flags (blank manifest cells ignored by the loss, inferred negatives filled) and a
CenterNet head for people without a helmet or hi-vis and for machinery (boxes.csv), stop early on the
val score (--select-by), export one ONNX file (uint8 image in; probabilities, class activation maps
and detections out), choose per-flag thresholds on val, score val, test and the audit photos through
onnxruntime and write card.json next to model.onnx.
--ema-decay validates and exports an exponential moving average of the weights instead (off by
default: it cost the detection head half its box AP50). --image-size is the side of the training
crops; every epoch is validated, and the model exported, at --final-size, and --final-epochs adds
epochs on crops of that side; the best epoch of all is exported. The defaults train from ImageNet
(10 epochs, about 17 minutes on 2 idle cores of an Intel Xeon in bfloat16); the current release
fine-tunes the one before it, with the options its card records (training_config) and
docs/photo-model.md lists.

Quick look:   ankang train photo --limit 300 --epochs 1 --out var/models/photo-quick
Release:      ankang train photo, then ankang promote photo   (only promote writes models/hazard_photo/)"""

EVALUATE_DESCRIPTION = """\
Score an exported hazard-photo model (its model.onnx via onnxruntime, preprocessing from its
card) on a split and write report.md, report.html and PR-curve PNGs: per flag and per source
ROC AUC, average precision, F1 and confusion counts at the card's thresholds."""


def register(verb) -> None:
    train = verb("train").add_parser(
        "photo",
        help="train the hazard-photo CNN",
        description=TRAIN_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_config_arguments(train)
    train.set_defaults(func=run_train)
    evaluate = verb("evaluate").add_parser(
        "photo", help="evaluate the hazard-photo model", description=EVALUATE_DESCRIPTION
    )
    add_evaluate_arguments(evaluate)
    evaluate.set_defaults(func=run_evaluate)
    register_study(verb)
    from training.photo.rerelease import register as register_rerelease

    register_rerelease(verb)


def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    from runtime.paths import MODELS_DIR
    from training.photo.config import DEFAULT_DATA

    parser.add_argument(
        "--model",
        type=Path,
        default=MODELS_DIR / "hazard_photo",
        help="model directory with model.onnx + card.json (default: models/hazard_photo)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        action="append",
        default=None,
        metavar="DIR",
        help=f"dataset folder(s) with manifest.csv (default: {DEFAULT_DATA})",
    )
    parser.add_argument("--split", choices=["val", "test"], default="test", help="split to score (default: test)")
    parser.add_argument("--report", type=Path, required=True, help="folder to write the report into")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="decoded-photo cache folder")
    parser.add_argument("--workers", type=int, default=2, help="processes decoding photos (default: 2)")


def run_train(args: argparse.Namespace) -> int:
    from training.photo.train import train_photo

    # `on_epoch_end` is set by the experiment-tracking wrapper (training.lifecycle.tracked).
    result = train_photo(config_from_args(args), on_epoch_end=getattr(args, "on_epoch_end", None))
    if not result.card:
        return 0
    print(
        f"wrote {result.model_dir} in {result.seconds:.0f} s "
        f"({result.epochs_run} epochs, best {result.best_epoch}); version {result.card['version']}"
    )
    for flag, entry in result.metrics.get("test", {}).items():
        print(f"  test {flag:18s} ROC AUC {entry['roc_auc']}  AP {entry['average_precision']}  F1 {entry['f1']}")
    return 0


def run_evaluate(args: argparse.Namespace) -> int:
    from training.photo.config import DEFAULT_DATA
    from training.photo.report import evaluate_model

    metrics = evaluate_model(
        args.model,
        data=args.data or [DEFAULT_DATA],
        split=args.split,
        report_dir=args.report,
        cache_dir=args.cache_dir,
        workers=args.workers,
    )
    print(f"wrote {args.report / 'report.md'} and report.html ({len(metrics[args.split])} flags)")
    if "audit" in metrics:
        audit = metrics["audit"]
        print(
            f"  audit: false urgent {audit['false_urgent']['count']} of {audit['false_urgent']['n']}, urgent recall "
            f"{audit['urgent_recall']['rate']}, false-positive rate per flag "
            + ", ".join(f"{flag} {entry['false_positive_rate']}" for flag, entry in audit["flags"].items())
        )
    return 0


STUDY_DESCRIPTION = """\
Train the same recipe at several input sizes (each into WORK_DIR/<size>px; sizes already
trained there are reused), compare val ROC AUC of missing_helmet and missing_hi_vis, and
release the best to --out with the comparison table in card.json's resolution_study."""


def register_study(verb) -> None:
    study = verb("train").add_parser(
        "photo-resolution-study", help="compare input sizes and release the best", description=STUDY_DESCRIPTION
    )
    add_config_arguments(study)
    study.add_argument("--sizes", type=int, nargs="+", default=[224, 320, 384], help="input sizes to compare")
    study.add_argument(
        "--work-dir",
        type=Path,
        default=Path("var/models/photo-resolution-study"),
        help="where each size's model is trained (default: var/models/photo-resolution-study)",
    )
    study.add_argument(
        "--also",
        type=Path,
        action="append",
        default=[],
        metavar="MODEL_DIR",
        help="an already trained model directory (other recipe) to compare and possibly release",
    )
    study.set_defaults(func=run_study)


def run_study(args: argparse.Namespace) -> int:
    from training.photo.study import read_row, release_winner, run_resolution_study

    config = config_from_args(args)
    rows = run_resolution_study(config, sizes=args.sizes, work_dir=args.work_dir)
    rows += [read_row(model_dir) for model_dir in args.also]
    card = release_winner(rows, out=config.out)
    print(f"released {card['input']['height']} px model to {config.out} (version {card['version']})")
    return 0
