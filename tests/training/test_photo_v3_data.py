"""Issue 22's data rules: heavy_machinery from `machinery` boxes, small-head photos and their
oversampling, and stride-4 heat-map targets."""

import numpy as np
import pandas as pd
import pytest
import torch

from training.photo.data import machinery_from_boxes, small_head_photos
from training.photo.detection import heatmap_targets


def test_machinery_boxes_label_their_source_both_ways():
    frame = pd.DataFrame(
        {
            "path": ["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
            "source": ["css", "css", "css", "other"],
            "heavy_machinery": [np.nan, np.nan, 0.0, np.nan],
        }
    )
    boxes = pd.DataFrame({"path": ["a.jpg", "a.jpg", "c.jpg"], "label": ["machinery", "person", "machinery"]})
    labelled = machinery_from_boxes(frame, boxes)
    assert labelled["heavy_machinery"].iloc[0] == 1.0  # a machinery box
    assert labelled["heavy_machinery"].iloc[1] == 0.0  # the same source, no machinery box: a hard negative
    assert labelled["heavy_machinery"].iloc[2] == 0.0  # the source's own label is kept
    assert np.isnan(labelled["heavy_machinery"].iloc[3])  # a source that draws no machinery boxes stays blank
    assert np.isnan(frame["heavy_machinery"].iloc[0])  # the input frame is not changed


def test_small_head_photos_are_those_with_a_bare_head_under_24px_at_the_served_size():
    per_photo = [
        (np.array([[0.0, 0.0, 0.1, 0.05]], np.float32), np.array([0])),  # 0.05 × 448 = 22.4 px
        (np.array([[0.0, 0.0, 0.1, 0.06]], np.float32), np.array([0])),  # 26.9 px
        (np.array([[0.0, 0.0, 0.1, 0.01]], np.float32), np.array([1])),  # small, but hi-vis
        (np.zeros((0, 4), np.float32), np.zeros(0, np.int64)),
    ]
    assert small_head_photos(per_photo, size=448).tolist() == [True, False, False, False]


def test_oversampling_keeps_the_epoch_length_and_draws_small_head_photos_more():
    from training.photo.train import _Split, epoch_order

    count = 1000
    small = np.zeros(count, bool)
    small[:100] = True
    split = _Split(frame=pd.DataFrame(index=range(count)), images=None, targets=None, mask=None, small_heads=small)
    generator = torch.Generator().manual_seed(0)
    plain = epoch_order(split, generator)
    assert sorted(plain.tolist()) == list(range(count))
    drawn = np.concatenate([epoch_order(split, generator, small_head_oversample=3) for _ in range(20)])
    assert len(drawn) == 20 * count
    share = np.isin(drawn, np.flatnonzero(small)).mean()
    assert share == pytest.approx(300 / 1200, abs=0.02)  # 100 photos entered 3 times among 1,200 entries


def test_hi_vis_oversampling_adds_to_the_small_head_draws():
    from training.photo.train import _Split, epoch_order

    count = 1000
    small, hi_vis = np.zeros(count, bool), np.zeros(count, bool)
    small[:100] = True
    hi_vis[50:250] = True  # 50 photos are both
    split = _Split(
        frame=pd.DataFrame(index=range(count)), images=None, targets=None, mask=None, small_heads=small, hi_vis=hi_vis
    )
    generator = torch.Generator().manual_seed(0)
    drawn = np.concatenate(
        [epoch_order(split, generator, small_head_oversample=2, hi_vis_oversample=2) for _ in range(20)]
    )
    assert len(drawn) == 20 * count
    # entries: 1,000 + 100 small-head + 200 hi-vis = 1,300; the 50 photos in both are entered 3 times
    assert np.isin(drawn, np.arange(50, 100)).mean() == pytest.approx(150 / 1300, abs=0.015)
    assert np.isin(drawn, np.arange(250, 1000)).mean() == pytest.approx(750 / 1300, abs=0.02)


def test_hi_vis_photos_are_those_with_a_no_wear_box_or_the_flag_labelled_1():
    from training.photo.data import hi_vis_photos

    frame = pd.DataFrame({"missing_hi_vis": [np.nan, 1.0, 0.0, np.nan]})
    per_photo = [
        (np.zeros((1, 4), np.float32), np.array([1])),  # a no_wear box
        (np.zeros((0, 4), np.float32), np.zeros(0, np.int64)),
        (np.zeros((1, 4), np.float32), np.array([0])),  # a bare head only
        (np.zeros((0, 4), np.float32), np.zeros(0, np.int64)),
    ]
    assert hi_vis_photos(frame, per_photo).tolist() == [True, True, False, False]


def test_the_selection_score_adds_the_mean_box_ap50_only_when_asked():
    from training.photo.train import selection_score

    metrics = {
        "val_mean_roc_auc": 0.9,
        "val_box_ap50_missing_helmet": 0.8,
        "val_box_ap50_missing_hi_vis": 0.4,
        "val_box_ap50_heavy_machinery": 0.0,  # 11 val boxes: not counted
    }
    assert selection_score(metrics, "roc_auc") == 0.9
    assert selection_score(metrics, "roc_auc_plus_box_ap50") == pytest.approx(1.5)
    assert selection_score({"val_mean_roc_auc": None}, "roc_auc_plus_box_ap50") is None


def test_stride4_targets_put_the_centre_on_the_finer_grid():
    heat, regression, centres = heatmap_targets(
        np.array([[10.0, 10.0, 22.0, 30.0]]), np.array([0]), size=64, num_classes=2, stride=4
    )
    assert heat.shape == (2, 16, 16) and centres.sum() == 1
    row, col = np.argwhere(centres)[0]
    assert (row, col) == (5, 4)  # centre (16, 20) px / 4
    np.testing.assert_allclose(np.exp(regression[:2, row, col]), [12 / 4, 20 / 4], rtol=1e-5)
