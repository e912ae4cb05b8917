"""CenterNet-style detections (people without a helmet or hi-vis, machinery): heat maps, loss, in-graph decoding.

One heatmap per detection class on the stride-8 (or stride-4) map; a box is a peak of its class's heatmap plus
the regressed size (log cells) and sub-cell offset at that peak. Decoding (3×3 max-pool peaks,
TopK) is plain tensor code, so the exported ONNX graph computes it without an NMS op.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

STRIDE = 8  # the default; the head's own stride is passed where it differs
MAX_DETECTIONS = 100
MIN_DETECTION_SCORE = 0.01  # rows below it are zero padding, so the output's tail is all zeros
GAUSSIAN_ALPHA = 0.54  # TTFNet: the heatmap's spread as a fraction of the box side
HEAT_PRIOR = 0.05


def heatmap_targets(
    boxes: np.ndarray, classes: np.ndarray, *, size: int, num_classes: int, stride: int = STRIDE
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes in input pixels (xyxy) -> (heat C×H×W, regression 4×H×W, positive-cell mask H×W).

    Heat is 1 at each box's centre cell and an elliptical Gaussian around it (max over boxes);
    regression holds log(width, height in cells) and the centre's offset within its cell."""
    cells = size // stride
    heat = np.zeros((num_classes, cells, cells), np.float32)
    regression = np.zeros((4, cells, cells), np.float32)
    centres = np.zeros((cells, cells), np.float32)
    grid = np.arange(cells, dtype=np.float32) + 0.5
    for (x0, y0, x1, y1), cls in zip(np.asarray(boxes, np.float32) / stride, classes):
        width, height = max(x1 - x0, 1e-3), max(y1 - y0, 1e-3)
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        col, row = min(int(cx), cells - 1), min(int(cy), cells - 1)
        sx, sy = max(GAUSSIAN_ALPHA * width / 6, 0.3), max(GAUSSIAN_ALPHA * height / 6, 0.3)
        gauss = np.exp(
            -((grid[None, :] - (col + 0.5)) ** 2) / (2 * sx * sx) - ((grid[:, None] - (row + 0.5)) ** 2) / (2 * sy * sy)
        )
        heat[cls] = np.maximum(heat[cls], gauss)
        heat[cls, row, col] = 1.0
        regression[:, row, col] = (np.log(width), np.log(height), cx - col, cy - row)
        centres[row, col] = 1.0
    return heat, regression, centres


def focal_heatmap_loss(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss over supervised (image, class) maps; mask is N×C."""
    prob = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    positive = target.eq(1).float()
    pos_loss = -torch.log(prob) * (1 - prob) ** 2 * positive
    neg_loss = -torch.log(1 - prob) * prob**2 * (1 - target) ** 4 * (1 - positive)
    weight = mask[:, :, None, None]
    num_positive = (positive * weight).sum().clamp_min(1.0)
    return ((pos_loss + neg_loss) * weight).sum() / num_positive


def regression_loss(prediction: torch.Tensor, target: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """L1 on log size and offset at box centres (prediction's offset channels are pre-sigmoid)."""
    decoded = torch.cat([prediction[:, :2], torch.sigmoid(prediction[:, 2:])], dim=1).float()
    weight = centres[:, None]
    return (torch.abs(decoded - target) * weight).sum() / (weight.sum() * 4).clamp_min(1.0)


def decode_detections(
    heat_logits: torch.Tensor, regression: torch.Tensor, *, max_detections: int = MAX_DETECTIONS
) -> torch.Tensor:
    """N×C×H×W heat logits + N×4×H×W regression -> N×D×6 rows (x0, y0, x1, y1, score, class_index),
    coordinates in [0, 1] of the input, sorted by score, rows under MIN_DETECTION_SCORE zeroed."""
    n, c, h, w = heat_logits.shape
    heat = torch.sigmoid(heat_logits)
    peaks = heat * (F.max_pool2d(heat, 3, stride=1, padding=1) == heat).to(heat.dtype)
    k = min(max_detections, c * h * w)
    scores, index = peaks.flatten(1).topk(k, dim=1)
    cls = torch.div(index, h * w, rounding_mode="floor")
    cell = index - cls * (h * w)
    reg = torch.gather(regression.flatten(2), 2, cell[:, None, :].expand(n, 4, k))
    row = torch.div(cell, w, rounding_mode="floor")
    col = cell - row * w
    cx = (col.to(heat.dtype) + torch.sigmoid(reg[:, 2])) / w
    cy = (row.to(heat.dtype) + torch.sigmoid(reg[:, 3])) / h
    half_w, half_h = torch.exp(reg[:, 0]) / (2 * w), torch.exp(reg[:, 1]) / (2 * h)
    rows = torch.stack(
        [
            (cx - half_w).clamp(0, 1),
            (cy - half_h).clamp(0, 1),
            (cx + half_w).clamp(0, 1),
            (cy + half_h).clamp(0, 1),
            scores,
            cls.to(heat.dtype),
        ],
        dim=2,
    )
    rows = rows * (scores >= MIN_DETECTION_SCORE).to(heat.dtype)[:, :, None]
    if k < max_detections:
        rows = F.pad(rows, (0, 0, 0, max_detections - k))
    return rows
