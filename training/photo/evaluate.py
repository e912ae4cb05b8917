"""Metrics, the threshold rule, ONNX scoring and the evaluation report (Markdown + HTML + PNGs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from runtime.cards import PhotoCard
from runtime.modeldir import ModelDir
from training.photo.data import FLAGS, cached_images, load_photos

THRESHOLD_BOUNDS = (0.05, 0.95)
THRESHOLD_GRID = np.round(np.arange(THRESHOLD_BOUNDS[0], THRESHOLD_BOUNDS[1] + 1e-9, 0.01), 2)
THRESHOLD_RULE = (
    "per flag, on the val split's annotated cells: the threshold t on the grid 0.05, 0.06, ..., 0.95 "
    "that maximises F1 of (probability >= t); ties resolved by the median of the tied grid "
    "points; 0.5 when val has no positive for the flag"
)


def choose_threshold(y_true: np.ndarray, scores: np.ndarray) -> float:
    """THRESHOLD_RULE applied to one flag's annotated val cells."""
    y_true = np.asarray(y_true).astype(bool)
    if not y_true.any():
        return 0.5
    f1s = np.array([_f1(y_true, np.asarray(scores) >= t) for t in THRESHOLD_GRID])
    tied = THRESHOLD_GRID[np.isclose(f1s, f1s.max())]
    return float(tied[len(tied) // 2])


MAX_VAL_FALSE_POSITIVE_RATE = 0.015
# Flags whose false alarms officers reported as the problem get a stricter cap. heavy_machinery: val has
# about 200 annotated negatives, so 1.5 % allowed 3 false alarms there, and the 2026.12.06-7215713d
# candidate chosen that way raised heavy_machinery on 4.3 % of the audit photos without machinery.
FLAG_FALSE_POSITIVE_CAPS = {"heavy_machinery": 0.0}
CAPPED_GRID = np.round(np.arange(THRESHOLD_BOUNDS[0], THRESHOLD_BOUNDS[1] + 1e-9, 0.005), 3)
CAPPED_THRESHOLD_RULE = (
    "per flag, on the val split's annotated cells (the sources' labels plus inferred negatives): the "
    "F1-best threshold on the grid 0.050, 0.055, ..., 0.950, raised if needed to the lowest grid point "
    f"whose val false-positive rate is at most {MAX_VAL_FALSE_POSITIVE_RATE:.1%} (the audit target is 2 %: "
    "false alarms must be rare on photos as officers meet them; 0.95 when no grid point is that rare); 0.5 "
    "when val has no positive for the flag; the cap is "
    + ", ".join(f"{rate:.1%} for {flag}" for flag, rate in FLAG_FALSE_POSITIVE_CAPS.items())
)


def choose_capped_threshold(
    y_true: np.ndarray, scores: np.ndarray, *, max_false_positive_rate: float = MAX_VAL_FALSE_POSITIVE_RATE
) -> float:
    """CAPPED_THRESHOLD_RULE applied to one flag's annotated val cells."""
    y_true, scores = np.asarray(y_true).astype(bool), np.asarray(scores)
    if not y_true.any():
        return 0.5
    f1s = np.array([_f1(y_true, scores >= t) for t in CAPPED_GRID])
    best = float(CAPPED_GRID[int(np.argmax(f1s))])
    negatives = scores[~y_true]
    if not len(negatives):
        return best
    rates = np.array([(negatives >= t).mean() for t in CAPPED_GRID])
    allowed = CAPPED_GRID[rates <= max_false_positive_rate]
    lowest_allowed = float(allowed[0]) if len(allowed) else float(CAPPED_GRID[-1])
    return max(best, lowest_allowed)


def _f1(y_true: np.ndarray, predicted: np.ndarray) -> float:
    tp = int((y_true & predicted).sum())
    denominator = int(y_true.sum()) + int(predicted.sum())
    return 2 * tp / denominator if denominator else 0.0


def binary_metrics(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    """ROC AUC and AP (None when only one class is present), F1 and confusion counts at threshold."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    y_true = np.asarray(y_true).astype(bool)
    predicted = np.asarray(scores) >= threshold
    both = 0 < y_true.sum() < len(y_true)
    return {
        "roc_auc": _rounded(roc_auc_score(y_true, scores)) if both else None,
        "average_precision": _rounded(average_precision_score(y_true, scores)) if y_true.any() else None,
        "f1": _rounded(_f1(y_true, predicted)),
        "tp": int((y_true & predicted).sum()),
        "fp": int((~y_true & predicted).sum()),
        "fn": int((y_true & ~predicted).sum()),
        "tn": int((~y_true & ~predicted).sum()),
        "n": int(len(y_true)),
    }


def _rounded(value: float) -> float:
    return round(float(value), 5)


def flag_metrics(frame: pd.DataFrame, probabilities: np.ndarray, thresholds: dict) -> dict:
    """{flag: metrics + per_source} over the annotated cells of `frame` (rows align with probabilities)."""
    result = {}
    for column, flag in enumerate(FLAGS):
        annotated = frame[flag].notna().to_numpy()
        if not annotated.any():
            continue
        labels, scores = frame[flag].to_numpy()[annotated], probabilities[annotated, column]
        entry = binary_metrics(labels, scores, thresholds[flag])
        sources = frame["source"].to_numpy()[annotated]
        entry["per_source"] = {
            source: binary_metrics(labels[sources == source], scores[sources == source], thresholds[flag])
            for source in sorted(set(sources))
        }
        result[flag] = entry
    return result


def onnx_session(model: Path | bytes, *, threads: int = 2):
    """An onnxruntime CPU session of a model file, or of a serialized model held in memory."""
    from runtime.session import SessionOptions, create_session

    return create_session(model, options=SessionOptions(threads=threads))


def onnx_outputs(
    session, images: np.ndarray, *, batch_size: int = 32, progress: bool = True
) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities N×K, detections N×D×6 or None for a graph without detections) of the exported graph."""
    from tqdm.auto import tqdm

    names = [output.name for output in session.get_outputs()]
    wanted = ["probabilities"] + (["detections"] if "detections" in names else [])
    probabilities, detections = [], []
    for start in tqdm(
        range(0, len(images), batch_size), desc="scoring with onnxruntime", unit="batch", disable=not progress
    ):
        outputs = session.run(wanted, {"image": np.ascontiguousarray(images[start : start + batch_size])})
        probabilities.append(outputs[0])
        detections.extend(outputs[1:])
    if not probabilities:
        return np.zeros((0, len(FLAGS)), np.float32), None
    return np.concatenate(probabilities), (np.concatenate(detections) if detections else None)


def onnx_probabilities(session, images: np.ndarray, *, batch_size: int = 32, progress: bool = True) -> np.ndarray:
    """Score preprocessed N×3×H×W uint8 photos with the exported graph."""
    from tqdm.auto import tqdm

    batches = range(0, len(images), batch_size)
    outputs = [
        session.run(["probabilities"], {"image": np.ascontiguousarray(images[start : start + batch_size])})[0]
        for start in tqdm(batches, desc="scoring with onnxruntime", unit="batch", disable=not progress)
    ]
    return np.concatenate(outputs) if outputs else np.zeros((0, len(FLAGS)), dtype="float32")


def score_split(
    model_path: Path,
    frame: pd.DataFrame,
    *,
    size: int,
    cache_dir: Path,
    workers: int = 1,
    threads: int = 2,
    progress: bool = True,
) -> np.ndarray:
    images = cached_images(list(frame["path"]), size=size, cache_dir=cache_dir, workers=workers, progress=progress)
    return onnx_probabilities(onnx_session(model_path, threads=threads), images, progress=progress)


@dataclass(frozen=True)
class HeldOutScores:
    """A released or candidate photo model scored on one split: the photos, probabilities and metrics."""

    model: ModelDir
    frame: pd.DataFrame
    probabilities: np.ndarray
    metrics: dict
    detections: np.ndarray | None = None  # N×D×6 for a graph with a `detections` output


def score_heldout(
    model_dir: Path, *, data: list[Path], split: str, cache_dir: Path, workers: int = 1, limit: int = 0
) -> HeldOutScores:
    """THE held-out scoring (`ankang evaluate photo` and `ankang promote photo`): the card checked and its
    preprocessing applied, `split` of `data` scored through onnxruntime, metrics at the card's thresholds."""
    model = ModelDir.load(model_dir)
    card = PhotoCard.from_model_dir(model)
    if card.size[0] != card.size[1]:
        raise ValueError(
            f"{model.path}/card.json: preprocess.size {list(card.size)} is not square; "
            "training's photo cache holds square inputs only"
        )
    frame = load_photos([Path(folder) for folder in data], limit=limit)
    frame = frame[frame["split"] == split].reset_index(drop=True)
    if frame.empty:
        raise ValueError(
            f"no photos in split {split!r} of {[str(folder) for folder in data]}"
            + ("; raise --limit or pass --data" if limit else "")
        )
    images = cached_images(list(frame["path"]), size=card.size[0], cache_dir=cache_dir, workers=workers)
    probabilities, detections = onnx_outputs(onnx_session(model.onnx_path), images)
    return HeldOutScores(
        model=model,
        frame=frame,
        probabilities=probabilities,
        metrics=flag_metrics(frame, probabilities, card.thresholds),
        detections=detections,
    )
