"""The masked loss ignores blank cells; the threshold rule and metrics on hand-made examples."""

import numpy as np
import pytest
import torch

from training.photo.evaluate import binary_metrics, choose_threshold
from training.photo.train import masked_bce


def test_blank_cell_target_does_not_change_the_loss(seed):
    torch.manual_seed(seed)
    logits = torch.randn(4, 6)
    targets = torch.randint(0, 2, (4, 6)).float()
    mask = torch.ones(4, 6)
    mask[1, 2] = mask[3, 0] = 0
    flipped = targets.clone()
    flipped[1, 2], flipped[3, 0] = 1 - flipped[1, 2], 1 - flipped[3, 0]
    flipped_annotated = targets.clone()
    flipped_annotated[0, 0] = 1 - flipped_annotated[0, 0]
    loss = masked_bce(logits, targets, mask)
    assert torch.equal(masked_bce(logits, flipped, mask), loss)
    assert not torch.isclose(masked_bce(logits, flipped_annotated, mask), loss)


def test_masked_loss_is_the_mean_over_annotated_cells():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    cells = [np.log(2), np.log1p(np.e), np.log1p(np.e)]  # -log σ(0), -log(1-σ(1)), -log σ(-1)
    assert masked_bce(logits, targets, mask).item() == pytest.approx(np.mean(cells), rel=1e-6)


def test_threshold_rule_on_a_hand_made_example():
    labels = np.array([1, 1, 1, 0, 0, 0, 0])
    scores = np.array([0.9, 0.7, 0.35, 0.4, 0.2, 0.1, 0.05])
    # t in [0.21, 0.35]: tp 3, fp 1 (the negative at 0.4) -> F1 6/7, the best; t in [0.41, 0.70]:
    # tp 2, fp 0 -> F1 0.8. The 15 tied grid points 0.21..0.35 have the median 0.28.
    assert choose_threshold(labels, scores) == pytest.approx(0.28)


def test_threshold_rule_is_bounded_and_falls_back_without_positives():
    # Perfect separation lies at t in (0.9, 0.99]: the grid stops at 0.95, so 0.91..0.95 tie -> 0.93.
    assert choose_threshold(np.array([1, 0, 0]), np.array([0.99, 0.9, 0.1])) == pytest.approx(0.93)
    # The best cut (0.97, 0.98] is above the bound: every grid point ties at F1 0.8 -> median 0.5.
    assert choose_threshold(np.array([1, 1, 0]), np.array([0.99, 0.98, 0.97])) == pytest.approx(0.5)
    assert choose_threshold(np.array([0, 0]), np.array([0.3, 0.6])) == 0.5


def test_binary_metrics_counts_and_undefined_auc():
    metrics = binary_metrics(np.array([1, 0, 1, 0]), np.array([0.8, 0.6, 0.3, 0.1]), 0.5)
    assert (metrics["tp"], metrics["fp"], metrics["fn"], metrics["tn"], metrics["n"]) == (1, 1, 1, 1, 4)
    assert metrics["roc_auc"] == pytest.approx(0.75) and metrics["f1"] == pytest.approx(0.5)
    assert binary_metrics(np.array([1, 1]), np.array([0.2, 0.9]), 0.5)["roc_auc"] is None
