"""Every held-out figure of a model in one place: flags per split and source, boxes, the audit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from training.photo.audit import audit_metrics, drawn_boxes
from training.photo.box_metrics import box_ap50
from training.photo.data import DETECTION_CLASSES, box_supervision
from training.photo.evaluate import flag_metrics
from training.photo.operating import operating_metrics


def box_metrics(
    frame: pd.DataFrame, detections: np.ndarray, boxes: pd.DataFrame, *, classes: tuple[str, ...] = DETECTION_CLASSES
) -> dict:
    """{class: {"all": AP50 by height, source: ...}} over the photos whose flag follows from boxes, for
    the model's detection `classes`."""
    ground_truth, from_boxes, _ = box_supervision(frame, boxes)
    sizes = frame[["width", "height"]].to_numpy()
    result = {}
    for cls, hazard in enumerate(classes):
        rows = np.flatnonzero(from_boxes[:, cls])
        if not len(rows):
            continue
        entry = {"all": box_ap50([ground_truth[i] for i in rows], detections[rows], sizes[rows], cls=cls)}
        sources = frame["source"].to_numpy()[rows]
        for source in sorted(set(sources)):
            picked = rows[sources == source]
            entry[source] = box_ap50([ground_truth[i] for i in picked], detections[picked], sizes[picked], cls=cls)
        result[hazard] = entry
    return result


def box_operating_metrics(
    frame: pd.DataFrame, detections: np.ndarray, boxes: pd.DataFrame, box_thresholds: dict[str, float]
) -> dict:
    """Precision and recall of the boxes drawn at the card's score thresholds, per source and head height."""
    ground_truth, from_boxes, _ = box_supervision(frame, boxes)
    return operating_metrics(frame, ground_truth, from_boxes, detections, box_thresholds)


def held_out_metrics(
    scored: dict[str, tuple[pd.DataFrame, np.ndarray, np.ndarray | None]],
    *,
    boxes: pd.DataFrame,
    thresholds: dict,
    box_thresholds: dict[str, float] | None = None,
    classes: tuple[str, ...] = DETECTION_CLASSES,
) -> dict:
    """scored: {"val"|"test"|"audit": (frame, probabilities, detections or None)}; with `box_thresholds`
    (the card's detection.score_thresholds) also the boxes' operating point per split; `classes`: the
    model's detection classes (the card's detection.classes)."""
    metrics = {}
    for name, (frame, probabilities, _) in scored.items():
        if name != "audit":
            metrics[name] = flag_metrics(frame, probabilities, thresholds)
    if "audit" in scored:
        frame, probabilities, detections = scored["audit"]
        boxed = (
            None
            if detections is None or not box_thresholds
            else drawn_boxes(detections, box_thresholds, classes=classes)
        )
        metrics["audit"] = audit_metrics(frame, probabilities, thresholds, boxed=boxed)
    with_boxes = {
        name: box_metrics(frame, detections, boxes, classes=classes)
        for name, (frame, _, detections) in scored.items()
        if name != "audit" and detections is not None and not boxes.empty
    }
    if with_boxes:
        metrics["boxes"] = with_boxes
    if with_boxes and box_thresholds:
        metrics["boxes_operating"] = {
            name: box_operating_metrics(frame, detections, boxes, box_thresholds)
            for name, (frame, _, detections) in scored.items()
            if name in with_boxes
        }
    return metrics
