"""Initialisation study (issue 22 item 2): the same recipe started from each backbone's pretrained weights,
each released the same way (`release_checkpoint`: thresholds on val, scored on val, test and the audit
photos through onnxruntime), compared on val.

    python -m training.photo.init_study --work-dir var/init-study \\
        --results benchmarks/results/photo_init_study_<date>.json --backbones mobilenet_v2_imagenet [more] \\
        [any `ankang train photo` option: --limit 1200 --epochs 3 ...]

trains the named backbones one after another into <work-dir>/<backbone> (a backbone with a card there is
skipped; an interrupted one resumes from its last.pt), then writes the results file from every card in
the work dir and in each `--include-work-dir` (the same recipe with another --seed). The results file is
what a release puts in its card: `initialisation_study()` reads the newest
benchmarks/results/photo_init_study_*.json into the card's `initialisation_study` block.

The chosen initialisation is the one with the highest val mean ROC AUC over the flags (training's own
early-stopping score), averaged over the seeds run; test figures are recorded and never used to choose."""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from pathlib import Path

from runtime.paths import PROJECT_ROOT, recorded_path
from training.photo.config import BACKBONES, PhotoTrainConfig, add_config_arguments, config_from_args
from training.photo.data import DETECTION_CLASSES, PPE_FLAGS

RESULTS_DIR = PROJECT_ROOT / "benchmarks" / "results"
RESULTS_GLOB = "photo_init_study_*.json"
RUN_RECORD = "study_run.json"  # wall time and load average of one backbone's run, beside its card
CHOICE_RULE = (
    "highest val mean ROC AUC over the flags (the early-stopping score), averaged over the seeds run; "
    "test is recorded, never used"
)


def study_config(config: PhotoTrainConfig, backbone: str, work_dir: Path) -> PhotoTrainConfig:
    """`config` for one backbone: released into work_dir/<backbone>, checkpoints beside it."""
    return dataclasses.replace(
        config,
        backbone=backbone,
        out=Path(work_dir) / backbone,
        checkpoint_dir=Path(work_dir) / f"{backbone}-checkpoints",
        release=True,
        release_only=False,
        resume=False,
    )


def train_backbone(config: PhotoTrainConfig, backbone: str, work_dir: Path) -> Path:
    """Train (or resume) and release one backbone; a backbone already released in work_dir is left as it is."""
    from training.photo.train import train_photo

    run = study_config(config, backbone, work_dir)
    if (run.out / "card.json").is_file():
        print(f"{backbone}: already released in {run.out}")
        return run.out
    resume = (Path(run.checkpoint_dir) / "last.pt").is_file()
    started, load_before = time.time(), _load_average()
    train_photo(dataclasses.replace(run, release=False, resume=resume))
    train_photo(dataclasses.replace(run, release_only=True, release_weights="average"))
    run_record = {
        "wall_seconds_train_and_release": round(time.time() - started, 1),
        "resumed": resume,
        "load_average_before": load_before,
        "load_average_after": _load_average(),
    }
    (run.out / RUN_RECORD).write_text(json.dumps(run_record, indent=2) + "\n", encoding="utf-8")
    return run.out


def _mean(values) -> float | None:
    values = [value for value in values if value is not None and not math.isnan(value)]
    return round(sum(values) / len(values), 4) if values else None


def _positives(entry: dict) -> int | None:
    """Annotated positives of a flag in a split (true positives + false negatives at its threshold)."""
    return entry["tp"] + entry["fn"] if "tp" in entry and "fn" in entry else None


def _split_row(metrics: dict, split: str) -> dict:
    flags = metrics.get(split, {})
    row = {
        "mean_roc_auc": _mean(entry.get("roc_auc") for entry in flags.values()),
        **{f"{flag}_roc_auc": flags.get(flag, {}).get("roc_auc") for flag in PPE_FLAGS},
        "roc_auc_by_flag": {flag: entry.get("roc_auc") for flag, entry in flags.items()},
        "positives_by_flag": {flag: _positives(entry) for flag, entry in flags.items()},
    }
    for hazard in DETECTION_CLASSES:
        boxes = metrics.get("boxes", {}).get(split, {}).get(hazard, {}).get("all", {})
        operating = metrics.get("boxes_operating", {}).get(split, {}).get(hazard, {}).get("all", {})
        row[f"{hazard}_box_ap50"] = boxes.get("ap50_all")
        row[f"{hazard}_box_recall_at_threshold"] = operating.get("recall")
        row[f"{hazard}_box_precision_at_threshold"] = operating.get("precision")
    return row


def study_row(card: dict, run_record: dict | None = None) -> dict:
    """One backbone's line of the study, from its released card (and its run record, when there is one)."""
    from training.photo.backbones import BACKBONE_SPECS

    training = card["training_config"]
    backbone = training.get("backbone", BACKBONES[0])
    return {
        "backbone": backbone,
        "weights_package": BACKBONE_SPECS[backbone].package,
        "version": card["version"],
        "val": _split_row(card["metrics"], "val"),
        "test": _split_row(card["metrics"], "test"),
        "box_thresholds": card["detection"]["score_thresholds"],
        "epochs_run": training["epochs_run"],
        "best_epoch": training["best_epoch"],
        "train_seconds": training["seconds"],
        "val_mean_roc_auc_by_epoch": [entry.get("val_mean_roc_auc") for entry in training["history"]],
        "seconds_by_epoch": [entry.get("seconds") for entry in training["history"]],
        **(run_record or {}),
    }


RECIPE_KEYS = (
    "limit",
    "epochs",
    "image_size",
    "crop_source_size",
    "final_size",
    "final_epochs",
    "batch_size",
    "lr",
    "freeze_blocks",
    "det_stride",
    "bf16",
    "threads",
)


def _cards(work_dir: Path) -> list[tuple[dict, dict | None]]:
    found = []
    for backbone in BACKBONES:
        folder = Path(work_dir) / backbone
        if (folder / "card.json").is_file():
            record = folder / RUN_RECORD
            found.append(
                (
                    json.loads((folder / "card.json").read_text(encoding="utf-8")),
                    json.loads(record.read_text(encoding="utf-8")) if record.is_file() else None,
                )
            )
    return found


SUMMARY_METRICS = ("mean_roc_auc", "missing_helmet_roc_auc", "missing_hi_vis_roc_auc", "missing_helmet_box_ap50")


def study_results(work_dirs: list[Path], *, machine: str = "") -> dict:
    """The study from every card in each work_dir/<backbone>/ (one work dir per seed; rows in BACKBONES
    order), a per-backbone summary averaged over the seeds, and the chosen backbone."""
    found = [(card, record) for work_dir in work_dirs for card, record in _cards(work_dir)]
    if not found:
        raise FileNotFoundError(f"no released backbone in {', '.join(map(str, work_dirs))}: run the study first")
    cards = [card for card, _ in found]
    values = {key: {json.dumps(card["training_config"].get(key)) for card in cards} for key in RECIPE_KEYS}
    differing = [key for key in RECIPE_KEYS if len(values[key]) > 1]
    if differing:
        raise ValueError(f"the study's runs differ in {differing}: the same recipe is required")
    rows = [{**study_row(card, record), "seed": card["training_config"].get("seed")} for card, record in found]
    summary = {}
    for backbone in BACKBONES:
        runs = [row for row in rows if row["backbone"] == backbone]
        if runs:
            summary[backbone] = {
                "runs": len(runs),
                "seeds": [row["seed"] for row in runs],
                **{
                    f"{split}_{metric}": _mean(row[split][metric] for row in runs)
                    for split in ("val", "test")
                    for metric in SUMMARY_METRICS
                },
            }
    scored = {name: entry for name, entry in summary.items() if entry["val_mean_roc_auc"] is not None}
    chosen = max(scored, key=lambda name: scored[name]["val_mean_roc_auc"]) if scored else None
    return {
        "study": "initialisation",
        "question": "which pretrained weights to start the photo model from, at the same training budget",
        "recipe": {key: cards[0]["training_config"].get(key) for key in RECIPE_KEYS},
        "choice_rule": CHOICE_RULE,
        "chosen": chosen,
        "summary": summary,
        "rows": [{**row, "chosen": row["backbone"] == chosen} for row in rows],
        "machine": machine,
        "work_dirs": [recorded_path(Path(work_dir)) for work_dir in work_dirs],
    }


def write_results(work_dirs: list[Path], path: Path, *, machine: str = "") -> dict:
    results = study_results(work_dirs, machine=machine)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return results


def initialisation_study(path: Path | None = None) -> dict | None:
    """The card's `initialisation_study` block: the results file `path`, else the newest
    benchmarks/results/photo_init_study_*.json; None when there is none."""
    if path is None:
        found = sorted(RESULTS_DIR.glob(RESULTS_GLOB))
        if not found:
            return None
        path = found[-1]
    results = json.loads(Path(path).read_text(encoding="utf-8"))
    return {**results, "results_file": recorded_path(Path(path))}


def _load_average() -> str:
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return ""
    return f"{one}, {five}, {fifteen} (1, 5, 15 min; 2 cores)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.photo.init_study", description=__doc__.split("\n")[0])
    parser.add_argument("--work-dir", type=Path, required=True, help="one folder per backbone is trained in here")
    parser.add_argument("--results", type=Path, required=True, help="the study's results file (JSON) to write")
    parser.add_argument("--backbones", nargs="+", choices=BACKBONES, default=list(BACKBONES))
    parser.add_argument(
        "--include-work-dir",
        type=Path,
        action="append",
        default=[],
        help="another seed's work dir whose runs the results file includes (repeat)",
    )
    parser.add_argument("--machine", default="", help="what the runs ran on, recorded in the results")
    add_config_arguments(parser)
    args = parser.parse_args(argv)
    config = config_from_args(args)
    for backbone in args.backbones:
        train_backbone(config, backbone, args.work_dir)
        results = write_results([*args.include_work_dir, args.work_dir], args.results, machine=args.machine)
        print(json.dumps(results["summary"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
