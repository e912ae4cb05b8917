"""`ankang evaluate photo`: score a released model through onnxruntime and write a report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from training.photo.data import AUDIT_FILE, FLAGS, cached_images, read_audit, read_boxes
from training.photo.evaluate import HeldOutScores, onnx_outputs, onnx_session, score_heldout
from training.photo.heldout import held_out_metrics
from training.reporting import Report, Table, figure, save_plot, write_report

COLUMNS = ("roc_auc", "average_precision", "f1", "tp", "fp", "fn", "tn", "n")
AUDIT_COLUMNS = ("threshold", "precision", "recall", "false_positive_rate", "tp", "fp", "fn", "tn", "n")
BOX_COLUMNS = (
    "photos",
    "ap50_all",
    "ap50_under_24px",
    "ap50_24_to_64px",
    "ap50_over_64px",
    "boxes_all",
    "boxes_under_24px",
    "boxes_24_to_64px",
    "boxes_over_64px",
)
PPE_TARGET_SOURCES = ("panly23-ppe", "hardhat-workers", "construction-site-safety")


def evaluate_model(
    model_dir: Path,
    *,
    data: list[Path],
    split: str,
    report_dir: Path,
    cache_dir: Path,
    workers: int = 2,
    limit: int = 0,
) -> dict:
    """Score `split` (and every folder's audit_labels.csv) with model_dir/model.onnx; write report.md,
    report.html, metrics.json and PR-curve PNGs; return the metrics (split, "audit", "boxes")."""
    scored, metrics = officer_metrics(
        model_dir, data=data, split=split, cache_dir=cache_dir, workers=workers, limit=limit
    )
    model, frame, probabilities = scored.model, scored.frame, scored.probabilities
    report_dir.mkdir(parents=True, exist_ok=True)
    plots = {flag: _pr_curve_png(frame, probabilities, flag, report_dir) for flag in metrics[split]}
    (report_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    title = f"hazard_photo {model.version} on {split} ({len(frame)} photos)"
    write_report(report_dir, photo_report(title, metrics, plots, model.card, split=split))
    return metrics


def officer_metrics(
    model_dir: Path, *, data: list[Path], split: str, cache_dir: Path, workers: int = 2, limit: int = 0
) -> tuple[HeldOutScores, dict]:
    """`split` scored per flag and per box size, and the fully labelled audit photos (when a folder has
    them) scored per flag and by triage: what an officer meets, not only the annotated cells."""
    scored = score_heldout(model_dir, data=data, split=split, cache_dir=cache_dir, workers=workers, limit=limit)
    model = scored.model
    sets = {split: (scored.frame, scored.probabilities, scored.detections)}
    audits = [read_audit(folder) for folder in data if (Path(folder) / AUDIT_FILE).is_file()]
    if audits:
        audit = pd.concat(audits, ignore_index=True)
        images = cached_images(
            list(audit["path"]), size=int(model.card["input"]["height"]), cache_dir=cache_dir, workers=workers
        )
        sets["audit"] = (audit, *onnx_outputs(onnx_session(model.onnx_path), images))
    boxes = pd.concat([read_boxes(folder) for folder in data], ignore_index=True)
    detection = model.card.get("detection") or {}
    return scored, held_out_metrics(
        sets,
        boxes=boxes,
        thresholds=model.card["thresholds"],
        box_thresholds=detection.get("score_thresholds"),
        classes=tuple(detection.get("classes", ())),
    )


def _pr_curve_png(frame: pd.DataFrame, probabilities: np.ndarray, flag: str, report_dir: Path) -> str:
    from sklearn.metrics import precision_recall_curve

    column = FLAGS.index(flag)
    annotated = frame[flag].notna().to_numpy()
    plot, axes = figure(figsize=(5, 4))
    sources = sorted(set(frame["source"][annotated]))
    groups = [("all sources", annotated)] + [
        (source, annotated & (frame["source"] == source).to_numpy()) for source in sources
    ]
    for label, rows in groups:
        truth = frame[flag].to_numpy()[rows]
        if 0 < truth.sum() < len(truth):
            precision, recall, _ = precision_recall_curve(truth, probabilities[rows, column])
            axes.plot(recall, precision, label=label, linewidth=2 if label == "all sources" else 1)
    axes.set(xlabel="recall", ylabel="precision", title=f"{flag}: precision-recall", xlim=(0, 1), ylim=(0, 1.02))
    axes.legend(fontsize=7, loc="lower left")
    return save_plot(plot, report_dir / f"pr_{flag}.png")


def _rows(metrics: dict) -> list[tuple[str, str, dict]]:
    rows = []
    for flag, entry in metrics.items():
        rows.append((flag, "all", entry))
        rows.extend((flag, source, sub) for source, sub in entry["per_source"].items())
    return rows


def photo_report(title: str, metrics: dict, plots: dict, card: dict, *, split: str | None = None) -> Report:
    """The report of one scored split (`metrics[split]`, or `metrics` itself when it is one split's
    flag metrics), with the audit, box AP50 and issue 17 target tables when measured."""
    flags = metrics[split] if split else metrics
    rows = [
        [flag, source, card["thresholds"][flag], *(entry[column] for column in COLUMNS)]
        for flag, source, entry in _rows(flags)
    ]
    tables = [Table(columns=["flag", "source", "threshold", *COLUMNS], rows=rows, numeric=["threshold", *COLUMNS])]
    facts = {}
    if split and "audit" in metrics:
        audit = metrics["audit"]
        tables += audit_tables(audit)
        facts = {
            name.replace("_", " "): f"{audit[name]['count']} of {audit[name]['n']} ({audit[name]['rate']})"
            for name in ("false_urgent", "urgent_recall", "false_review_or_urgent_of_clear")
        }
    if split and split in metrics.get("boxes", {}):
        tables.append(boxes_table(metrics["boxes"][split]))
    if split == "test":
        tables.append(targets_table(metrics))
    return Report(
        title=title,
        facts=facts,
        paragraphs=[f"Thresholds: {card['threshold_rule']}."],
        tables=tables,
        notes=["ROC AUC is – where a source has only one class for the flag."],
        plots=[(flag, name) for flag, name in plots.items()],
    )


def audit_tables(audit: dict) -> list[Table]:
    """Per-flag alarms on the audit photos and the triage confusion matrix (rows truth, columns predicted)."""
    alarms = Table(
        heading=f"Audit set: {audit['photos']} test photos with every flag known",
        columns=["flag", *AUDIT_COLUMNS],
        numeric=list(AUDIT_COLUMNS),
        rows=[[flag, *(entry[column] for column in AUDIT_COLUMNS)] for flag, entry in audit["flags"].items()],
    )
    triage = Table(
        heading=f"Audit triage (truth known for {audit['triage_known']} photos; rows: truth)",
        columns=["truth", "clear", "review", "urgent"],
        numeric=["clear", "review", "urgent"],
        rows=[[truth, *row.values()] for truth, row in audit["triage_confusion"].items()],
    )
    return [alarms, triage]


def boxes_table(boxes: dict) -> Table:
    rows = [
        [hazard, where, *(entry[column] for column in BOX_COLUMNS)]
        for hazard, by_source in boxes.items()
        for where, entry in by_source.items()
    ]
    return Table(
        heading="Box AP50 (pycocotools, IoU 0.5, 100 detections; box height in stored-photo pixels)",
        columns=["class", "photos of", *BOX_COLUMNS],
        rows=rows,
        numeric=list(BOX_COLUMNS),
    )


def targets(metrics: dict) -> list[dict]:
    """Issue 17's targets, each {target, goal, measured, met}, from a card's (or report's) metrics."""
    rows = []
    test = metrics.get("test", {})
    for flag in ("missing_helmet", "missing_hi_vis"):
        for source in PPE_TARGET_SOURCES:
            value = test.get(flag, {}).get("per_source", {}).get(source, {}).get("roc_auc")
            rows.append(_target(f"test ROC AUC {flag} within {source}", ">= 0.97", value, value, 0.97))
    ap = metrics.get("boxes", {}).get("test", {}).get("missing_helmet", {}).get("hardhat-workers", {}).get("ap50_all")
    rows.append(_target("test no_helmet box AP50 on hardhat-workers", ">= 0.80", ap, ap, 0.80))
    audit = metrics.get("audit")
    if audit:
        for flag, entry in audit["flags"].items():
            rate = entry["false_positive_rate"]
            rows.append(
                _target(f"audit false-positive rate {flag}", "<= 0.02", rate, None if rate is None else -rate, -0.02)
            )
        rate = audit["false_urgent"]["rate"]
        rows.append(
            _target("audit false urgent (share of photos)", "<= 0.02", rate, None if rate is None else -rate, -0.02)
        )
        rate = audit["urgent_recall"]["rate"]
        rows.append(_target("audit recall of truly urgent photos", ">= 0.95", rate, rate, 0.95))
    for flag in FLAGS[2:]:
        for source, entry in test.get(flag, {}).get("per_source", {}).items():
            if entry["roc_auc"] is not None:
                rows.append(
                    _target(f"test ROC AUC {flag} within {source}", ">= 0.99", entry["roc_auc"], entry["roc_auc"], 0.99)
                )
    return rows


def _target(name: str, goal: str, measured, score, bound: float) -> dict:
    return {"target": name, "goal": goal, "measured": measured, "met": score is not None and score >= bound}


def targets_table(metrics: dict, baseline: dict | None = None) -> Table:
    """`targets(metrics)` as a table, with the baseline's measurement beside each when given."""
    before = {row["target"]: row["measured"] for row in targets(baseline)} if baseline else {}
    columns = ["target", "goal", *(["baseline"] if baseline else []), "measured", "met"]
    rows = [
        [row["target"], row["goal"], *([before.get(row["target"])] if baseline else []), row["measured"], row["met"]]
        for row in targets(metrics)
    ]
    return Table(
        heading="Issue 17 targets", columns=columns, rows=rows, flagged=[not row["met"] for row in targets(metrics)]
    )
