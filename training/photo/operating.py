"""Operating points officers act on: the box score threshold per detection class (precision >= 0.90 on
val with the best recall) with its precision and recall per source and head height, and the urgent
threshold (recall >= 0.97 on val) with its false-urgent rate beside it.

Boxes are matched greedily in descending score order at IoU >= 0.5 (as COCO does), once: the boxes
drawn at threshold t are a prefix of that order, so one matching gives precision and recall at
every threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from training.photo.data import DETECTION_CLASSES

MIN_BOX_PRECISION = 0.90
MIN_URGENT_RECALL = 0.97
OPERATING_GRID = np.round(np.arange(0.05, 0.95 + 1e-9, 0.005), 3)
IOU_MATCH = 0.5
# (name, min height, max height) in pixels of the stored photo: the head-height buckets
OPERATING_HEIGHTS: tuple[tuple[str, float, float], ...] = (
    ("under_16px", 0.0, 16.0),
    ("16_to_24px", 16.0, 24.0),
    ("24_to_64px", 24.0, 64.0),
    ("over_64px", 64.0, 1e9),
)
BOX_THRESHOLD_RULE = (
    f"per detection class, on the val photos whose flag follows from boxes: the lowest score on the grid "
    f"0.050, 0.055, ..., 0.950 at which the boxes drawn are at least {MIN_BOX_PRECISION:.0%} right (IoU >= 0.5 "
    "with a labelled box, matched greedily by score), i.e. the best recall at that precision; 0.95 when none is"
)
URGENT_THRESHOLD_RULE = (
    f"for each suspected-major type (fire_smoke): the highest threshold on the grid 0.050, ..., 0.950 whose "
    f"val recall is at least {MIN_URGENT_RECALL:.0%} (every fire urgent); its val false-urgent rate is "
    "recorded beside it"
)


@dataclass
class BoxMatches:
    """One class's matching over a set of photos: every drawn box's score and whether it is right, and
    every labelled box's height (stored-photo px), its photo's index and the score of the box it was
    matched to (0 = never found)."""

    scores: np.ndarray
    correct: np.ndarray
    truth_heights: np.ndarray
    truth_photo: np.ndarray
    truth_found_at: np.ndarray

    def subset(self, photos: np.ndarray, detection_photo: np.ndarray) -> BoxMatches:
        """The matches of the photos where `photos` (bool per photo) is true."""
        keep_truth, keep_drawn = photos[self.truth_photo], photos[detection_photo]
        return BoxMatches(
            self.scores[keep_drawn],
            self.correct[keep_drawn],
            self.truth_heights[keep_truth],
            self.truth_photo[keep_truth],
            self.truth_found_at[keep_truth],
        )

    def precision(self, threshold: float) -> float | None:
        drawn = self.scores >= threshold
        return float(self.correct[drawn].mean()) if drawn.any() else None

    def recall(self, threshold: float, heights: tuple[float, float] = (0.0, 1e9)) -> float | None:
        rows = (self.truth_heights >= heights[0]) & (self.truth_heights < heights[1])
        return float((self.truth_found_at[rows] >= threshold).mean()) if rows.any() else None


def _iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    x0, y0 = np.maximum(box[0], others[:, 0]), np.maximum(box[1], others[:, 1])
    x1, y1 = np.minimum(box[2], others[:, 2]), np.minimum(box[3], others[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def match_boxes(
    ground_truth: list[tuple[np.ndarray, np.ndarray]], detections: np.ndarray, photo_sizes: np.ndarray, *, cls: int
) -> tuple[BoxMatches, np.ndarray]:
    """(matches of class `cls` over the photos, the photo index of every drawn box). ground_truth: per photo
    (xyxy normalised to the photo, classes); detections: N×D×6 graph rows; photo_sizes: N×2 (width, height)."""
    scores, correct, drawn_photo = [], [], []
    heights, truth_photo, found_at = [], [], []
    for index, ((boxes, classes), rows, (width, height)) in enumerate(zip(ground_truth, detections, photo_sizes)):
        scale = np.array([width, height, width, height], np.float64)
        truth = boxes[classes == cls].astype(np.float64) * scale
        rows = rows[(rows[:, 4] > 0) & (rows[:, 5] == cls)]
        rows = rows[np.argsort(-rows[:, 4], kind="stable")]
        found = np.zeros(len(truth), np.float64)
        taken = np.zeros(len(truth), bool)
        for row in rows:
            hit = False
            if len(truth):
                overlaps = np.where(taken, -1.0, _iou(row[:4].astype(np.float64) * scale, truth))
                best = int(np.argmax(overlaps))
                if overlaps[best] >= IOU_MATCH:
                    taken[best], found[best], hit = True, float(row[4]), True
            scores.append(float(row[4]))
            correct.append(hit)
            drawn_photo.append(index)
        heights.extend((truth[:, 3] - truth[:, 1]).tolist())
        truth_photo.extend([index] * len(truth))
        found_at.extend(found.tolist())
    matches = BoxMatches(
        np.array(scores, np.float64),
        np.array(correct, bool),
        np.array(heights, np.float64),
        np.array(truth_photo, np.int64),
        np.array(found_at, np.float64),
    )
    return matches, np.array(drawn_photo, np.int64)


def choose_box_threshold(matches: BoxMatches, *, min_precision: float = MIN_BOX_PRECISION) -> float:
    """BOX_THRESHOLD_RULE for one class's val matches."""
    for threshold in OPERATING_GRID:
        precision = matches.precision(float(threshold))
        if precision is not None and precision >= min_precision:
            return float(threshold)
    return float(OPERATING_GRID[-1])


def operating_point(matches: BoxMatches, threshold: float) -> dict:
    """Precision and recall at `threshold`, recall per head height, and the counts behind them."""
    drawn = int((matches.scores >= threshold).sum())
    found = int((matches.truth_found_at >= threshold).sum())
    by_height = {}
    for name, low, high in OPERATING_HEIGHTS:
        rows = (matches.truth_heights >= low) & (matches.truth_heights < high)
        by_height[name] = {
            "recall": _round(matches.recall(threshold, (low, high))),
            "boxes": int(rows.sum()),
            "found": int((matches.truth_found_at[rows] >= threshold).sum()),
        }
    return {
        "threshold": round(float(threshold), 4),
        "precision": _round(matches.precision(threshold)),
        "recall": _round(matches.recall(threshold)),
        "boxes": int(len(matches.truth_heights)),
        "found": found,
        "drawn": drawn,
        "right": int(matches.correct[matches.scores >= threshold].sum()),
        "by_height": by_height,
    }


def operating_metrics(
    frame, ground_truth: list, from_boxes: np.ndarray, detections: np.ndarray, thresholds: dict[str, float]
) -> dict:
    """{class: {"all": operating_point, source: operating_point}} over the photos whose flag follows from boxes."""
    if not from_boxes.any():
        return {}
    sizes = frame[["width", "height"]].to_numpy()
    sources = frame["source"].to_numpy()
    result = {}
    for cls, hazard in enumerate(DETECTION_CLASSES[: from_boxes.shape[1]]):
        rows = np.flatnonzero(from_boxes[:, cls])
        if not len(rows) or hazard not in thresholds:
            continue
        matches, drawn_photo = match_boxes([ground_truth[i] for i in rows], detections[rows], sizes[rows], cls=cls)
        entry = {"all": operating_point(matches, thresholds[hazard])}
        for source in sorted(set(sources[rows])):
            picked = sources[rows] == source
            entry[source] = operating_point(matches.subset(picked, drawn_photo), thresholds[hazard])
        result[hazard] = entry
    return result


def choose_recall_threshold(y_true: np.ndarray, scores: np.ndarray, *, min_recall: float = MIN_URGENT_RECALL) -> dict:
    """URGENT_THRESHOLD_RULE for one flag's annotated val cells: the threshold with its val recall and
    false-positive rate (the share of val photos without the hazard that it would make urgent)."""
    y_true, scores = np.asarray(y_true).astype(bool), np.asarray(scores, np.float64)
    if not y_true.any():
        return {"threshold": 0.5, "val_recall": None, "val_false_positive_rate": None, "val_positives": 0}
    chosen = float(OPERATING_GRID[0])
    for threshold in OPERATING_GRID:
        if (scores[y_true] >= threshold).mean() >= min_recall:
            chosen = float(threshold)
    negatives = scores[~y_true]
    return {
        "threshold": chosen,
        "val_recall": _round((scores[y_true] >= chosen).mean()),
        "val_false_positive_rate": _round((negatives >= chosen).mean()) if len(negatives) else None,
        "val_positives": int(y_true.sum()),
        "val_negatives": int(len(negatives)),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 5)
