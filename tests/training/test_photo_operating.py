"""Operating points: box matching, the precision >= 0.90 box threshold, recall by head height, the
recall >= 0.97 urgent threshold, and the promotion gate's recall row."""

import numpy as np
import pandas as pd
import pytest

from training.photo.operating import (
    OPERATING_GRID,
    choose_box_threshold,
    choose_recall_threshold,
    match_boxes,
    operating_metrics,
    operating_point,
)


def _rows(*detections):
    """Detection rows (x0, y0, x1, y1 normalised, score, class) padded to 4 with zeros."""
    rows = np.zeros((4, 6), np.float32)
    for index, row in enumerate(detections):
        rows[index] = row
    return rows


@pytest.fixture
def two_photos():
    # photo 0 (100×100): heads 10 px and 40 px high; photo 1: one 80 px head
    truth = [
        (np.array([[0.1, 0.1, 0.2, 0.2], [0.5, 0.5, 0.9, 0.9]], np.float32), np.array([0, 0])),
        (np.array([[0.1, 0.1, 0.9, 0.9]], np.float32), np.array([0])),
    ]
    detections = np.stack(
        [
            _rows(
                [0.5, 0.5, 0.9, 0.9, 0.9, 0],  # right, 0.9
                [0.6, 0.0, 0.7, 0.1, 0.6, 0],  # wrong, 0.6
                [0.1, 0.1, 0.2, 0.2, 0.3, 0],  # right (the 10 px head), 0.3
                [0.1, 0.1, 0.2, 0.2, 0.95, 1],  # another class: ignored
            ),
            _rows([0.1, 0.1, 0.9, 0.9, 0.8, 0], [0.12, 0.1, 0.9, 0.9, 0.72, 0]),  # right 0.8, duplicate 0.72
        ]
    )
    sizes = np.array([[100, 100], [100, 100]])
    return truth, detections, sizes


def test_matching_counts_each_labelled_box_once(two_photos):
    matches, drawn_photo = match_boxes(*two_photos, cls=0)
    assert sorted(matches.scores.round(2).tolist()) == [0.3, 0.6, 0.72, 0.8, 0.9]
    assert matches.correct.sum() == 3  # the 0.72 duplicate is wrong: its head was taken by 0.8
    assert matches.precision(0.75) == 1.0
    assert matches.precision(0.5) == 0.5  # 0.9 and 0.8 right, 0.72 and 0.6 wrong
    assert matches.precision(0.25) == pytest.approx(3 / 5)
    assert matches.recall(0.75) == pytest.approx(2 / 3)
    assert matches.recall(0.25) == 1.0
    assert matches.recall(0.25, (0, 16)) == 1.0 and matches.recall(0.5, (0, 16)) == 0.0
    assert drawn_photo.tolist().count(1) == 2


def test_box_threshold_is_the_lowest_with_enough_precision(two_photos):
    matches, _ = match_boxes(*two_photos, cls=0)
    threshold = choose_box_threshold(matches, min_precision=0.9)
    assert threshold == pytest.approx(0.725)  # above the 0.72 duplicate: 0.8 and 0.9 are both right
    assert choose_box_threshold(matches, min_precision=0.5) == OPERATING_GRID[0]  # 3 of 5 right at the bottom


def test_operating_point_reports_recall_by_head_height(two_photos):
    matches, _ = match_boxes(*two_photos, cls=0)
    point = operating_point(matches, 0.725)
    assert (point["precision"], point["recall"], point["drawn"], point["found"]) == (1.0, pytest.approx(0.66667), 2, 2)
    assert point["by_height"]["under_16px"] == {"recall": 0.0, "boxes": 1, "found": 0}
    assert point["by_height"]["24_to_64px"]["recall"] == 1.0
    assert point["by_height"]["over_64px"]["recall"] == 1.0


def test_operating_metrics_per_source(two_photos):
    truth, detections, _ = two_photos
    frame = pd.DataFrame({"width": [100, 100], "height": [100, 100], "source": ["a", "b"]})
    from_boxes = np.array([[True, False], [True, False]])
    result = operating_metrics(frame, truth, from_boxes, detections, {"missing_helmet": 0.725, "missing_hi_vis": 0.5})
    assert set(result) == {"missing_helmet"}  # no photo's hi-vis flag follows from boxes
    assert result["missing_helmet"]["a"]["recall"] == 0.5 and result["missing_helmet"]["b"]["recall"] == 1.0
    assert result["missing_helmet"]["b"]["precision"] == 1.0


def test_urgent_threshold_keeps_recall_and_reports_false_urgent():
    rng = np.random.default_rng(0)
    positives, negatives = rng.uniform(0.3, 1.0, 100), rng.uniform(0.0, 0.6, 300)
    labels = np.r_[np.ones(100), np.zeros(300)]
    choice = choose_recall_threshold(labels, np.r_[positives, negatives], min_recall=0.97)
    assert choice["val_recall"] >= 0.97
    assert (positives >= choice["threshold"] + 0.005).mean() < 0.97  # the highest such grid point
    assert choice["val_false_positive_rate"] == pytest.approx((negatives >= choice["threshold"]).mean(), abs=1e-5)
    assert choose_recall_threshold(np.zeros(5), np.zeros(5))["threshold"] == 0.5


def test_gate_compares_recall_at_the_operating_threshold():
    from training.lifecycle.kinds import officer_values

    metrics = {"boxes_operating": {"test": {"missing_helmet": {"all": {"recall": 0.61}}}}}
    assert officer_values(metrics, split="test") == {"box recall at operating threshold missing_helmet": 0.61}
