"""`ankang evaluate photo`: score a released model through onnxruntime and write a report."""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np
import pandas as pd

from runtime.modeldir import ModelDir
from training.photo.data import FLAGS, cached_images, load_photos, preprocess_spec
from training.photo.evaluate import flag_metrics, onnx_probabilities, onnx_session

COLUMNS = ("roc_auc", "average_precision", "f1", "tp", "fp", "fn", "tn", "n")


def evaluate_model(model_dir: Path, *, data: list[Path], split: str, report_dir: Path, cache_dir: Path,
                   workers: int = 2) -> dict:
    """Score `split` with model_dir/model.onnx and write report.md, report.html, metrics.json, PNGs."""
    model = ModelDir.load(model_dir)
    size = _input_size(model.card)
    frame = load_photos(data)
    frame = frame[frame["split"] == split].reset_index(drop=True)
    if frame.empty:
        raise ValueError(f"no photos in split {split!r} of {[str(d) for d in data]}")
    images = cached_images(list(frame["path"]), size=size, cache_dir=cache_dir, workers=workers)
    probabilities = onnx_probabilities(onnx_session(model.onnx_path), images)
    metrics = flag_metrics(frame, probabilities, model.card["thresholds"])
    report_dir.mkdir(parents=True, exist_ok=True)
    plots = {flag: _pr_curve_png(frame, probabilities, flag, report_dir) for flag in metrics}
    (report_dir / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n", encoding="utf-8")
    title = f"hazard_photo {model.version} on {split} ({len(frame)} photos)"
    (report_dir / "report.md").write_text(_markdown(title, metrics, plots, model.card), encoding="utf-8")
    (report_dir / "report.html").write_text(_html(title, metrics, plots, model.card), encoding="utf-8")
    return metrics


def _input_size(card: dict) -> int:
    expected = preprocess_spec(card["input"]["height"])
    if card.get("preprocess") != expected or card["input"]["height"] != card["input"]["width"]:
        raise ValueError(f"card preprocess {card.get('preprocess')} is not the contract {expected}")
    return int(card["input"]["height"])


def _pr_curve_png(frame: pd.DataFrame, probabilities: np.ndarray, flag: str, report_dir: Path) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve

    column = FLAGS.index(flag)
    annotated = frame[flag].notna().to_numpy()
    figure, axes = plt.subplots(figsize=(5, 4))
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
    name = f"pr_{flag}.png"
    figure.tight_layout()
    figure.savefig(report_dir / name, dpi=110)
    plt.close(figure)
    return name


def _rows(metrics: dict) -> list[tuple[str, str, dict]]:
    rows = []
    for flag, entry in metrics.items():
        rows.append((flag, "all", entry))
        rows.extend((flag, source, sub) for source, sub in entry["per_source"].items())
    return rows


def _cell(value) -> str:
    return "–" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))


def _markdown(title: str, metrics: dict, plots: dict, card: dict) -> str:
    lines = [f"# {title}", "", f"Thresholds: {card['threshold_rule']}.", "",
             "| flag | source | threshold | " + " | ".join(COLUMNS) + " |", "|---|---|--:|" + "--:|" * len(COLUMNS)]
    for flag, source, entry in _rows(metrics):
        cells = " | ".join(_cell(entry[c]) for c in COLUMNS)
        lines.append(f"| {flag} | {source} | {card['thresholds'][flag]:.2f} | {cells} |")
    lines += ["", "ROC AUC is – where a source has only one class for the flag.", ""]
    lines += [f"![{flag}]({name})" for flag, name in plots.items()]
    return "\n".join(lines) + "\n"


def _html(title: str, metrics: dict, plots: dict, card: dict) -> str:
    head = "".join(f"<th>{c}</th>" for c in ("flag", "source", "threshold", *COLUMNS))
    body = "".join(
        f"<tr><td>{html.escape(flag)}</td><td>{html.escape(source)}</td><td>{card['thresholds'][flag]:.2f}</td>"
        + "".join(f"<td>{_cell(entry[c])}</td>" for c in COLUMNS) + "</tr>"
        for flag, source, entry in _rows(metrics))
    images = "".join(f'<img src="{html.escape(name)}" alt="{html.escape(flag)} PR curve">'
                     for flag, name in plots.items())
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            "<style>body{font-family:sans-serif}td,th{padding:2px 8px;text-align:right}img{width:32%}</style>"
            f"</head><body><h1>{html.escape(title)}</h1><p>{html.escape(card['threshold_rule'])}</p>"
            f"<table><tr>{head}</tr>{body}</table>{images}</body></html>\n")
