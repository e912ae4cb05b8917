"""Resolution study: the same recipe at several input sizes, compared on val; the winner is released.

The val ROC AUC of the two PPE flags decides (people in site photos are small, so resolution
matters most there); test metrics are recorded for the card but never used to choose.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from runtime.paths import recorded_path
from training.photo.config import PhotoTrainConfig
from training.photo.data import PPE_FLAGS
from training.photo.export import write_card

CARD_FIELDS_KEPT_BY_WRITE = ("name", "version", "created", "sha256")


def study_row(model_dir: Path, card: dict) -> dict:
    val = card["metrics"]["val"]
    return {
        "image_size": card["input"]["height"],
        "epochs": card["training_config"]["epochs"],
        "ema_decay": card["training_config"].get("ema_decay", 0.0),
        "epochs_run": card["training_config"]["epochs_run"],
        "best_epoch": card["training_config"]["best_epoch"],
        "train_seconds": card["training_config"]["seconds"],
        "train_cpu_seconds": card["training_config"].get("cpu_seconds"),
        "val_roc_auc": {flag: val[flag]["roc_auc"] for flag in PPE_FLAGS},
        "val_ppe_mean_roc_auc": _mean_or_none([val[flag]["roc_auc"] for flag in PPE_FLAGS]),
        "model_dir": str(model_dir),
    }


def _mean_or_none(values: list) -> float | None:
    """The mean, or None when a split lacks positives or negatives of a flag (its ROC AUC is undefined)."""
    return None if None in values else round(sum(values) / len(values), 5)


def read_row(model_dir: Path) -> dict:
    return study_row(model_dir, json.loads((Path(model_dir) / "card.json").read_text(encoding="utf-8")))


def run_resolution_study(config: PhotoTrainConfig, *, sizes: list[int], work_dir: Path) -> list[dict]:
    """Train `config` at every size into work_dir/<size>px (skipping sizes already trained there)."""
    from training.photo.train import train_photo

    rows = []
    for size in sizes:
        out = Path(work_dir) / f"{size}px"
        if not (out / "card.json").is_file():
            train_photo(dataclasses.replace(config, image_size=size, out=out))
        rows.append(read_row(out))
        print(json.dumps(rows[-1]))
    return rows


def release_winner(rows: list[dict], *, out: Path) -> dict:
    """Copy the best-on-val model to `out` and rewrite its card with the whole study table."""
    scored = [row for row in rows if row["val_ppe_mean_roc_auc"] is not None]
    if not scored:
        raise ValueError("no study row has a val ROC AUC for both PPE flags: val needs photos with and without each")
    winner = max(scored, key=lambda row: row["val_ppe_mean_roc_auc"])
    source = Path(winner["model_dir"])
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source / "model.onnx", out / "model.onnx")
    card = json.loads((source / "card.json").read_text(encoding="utf-8"))
    fields = {key: value for key, value in card.items() if key not in CARD_FIELDS_KEPT_BY_WRITE}
    fields["resolution_study"] = [{**row, "chosen": row is winner} for row in rows]
    fields["training_config"]["out"] = recorded_path(out)
    return write_card(out, fields)
