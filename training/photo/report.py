"""`ankang evaluate photo`: score a released model through onnxruntime and write a report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from training.photo.data import FLAGS
from training.photo.evaluate import score_heldout
from training.reporting import Report, Table, figure, save_plot, write_report

COLUMNS = ("roc_auc", "average_precision", "f1", "tp", "fp", "fn", "tn", "n")


def evaluate_model(model_dir: Path, *, data: list[Path], split: str, report_dir: Path, cache_dir: Path,
                   workers: int = 2) -> dict:
    """Score `split` with model_dir/model.onnx and write report.md, report.html, metrics.json, PNGs."""
    scored = score_heldout(model_dir, data=data, split=split, cache_dir=cache_dir, workers=workers)
    model, frame, probabilities, metrics = scored.model, scored.frame, scored.probabilities, scored.metrics
    report_dir.mkdir(parents=True, exist_ok=True)
    plots = {flag: _pr_curve_png(frame, probabilities, flag, report_dir) for flag in metrics}
    (report_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    title = f"hazard_photo {model.version} on {split} ({len(frame)} photos)"
    write_report(report_dir, photo_report(title, metrics, plots, model.card))
    return metrics


def _pr_curve_png(frame: pd.DataFrame, probabilities: np.ndarray, flag: str, report_dir: Path) -> str:
    from sklearn.metrics import precision_recall_curve

    column = FLAGS.index(flag)
    annotated = frame[flag].notna().to_numpy()
    plot, axes = figure(figsize=(5, 4))
    sources = sorted(set(frame["source"][annotated]))
    groups = [("all sources", annotated)] + [
        (source, annotated & (frame["source"] == source).to_numpy()) for source in sources]
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


def photo_report(title: str, metrics: dict, plots: dict, card: dict) -> Report:
    rows = [[flag, source, f"{card['thresholds'][flag]:.2f}", *(entry[column] for column in COLUMNS)]
            for flag, source, entry in _rows(metrics)]
    table = Table(columns=["flag", "source", "threshold", *COLUMNS], rows=rows, numeric=["threshold", *COLUMNS])
    return Report(title=title, paragraphs=[f"Thresholds: {card['threshold_rule']}."], tables=[table],
                  notes=["ROC AUC is – where a source has only one class for the flag."],
                  plots=[(flag, name) for flag, name in plots.items()])
