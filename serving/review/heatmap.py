"""Heatmap overlays from the stored class activation maps, drawn in serving (numpy + Pillow)."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

# A perceptual blue → yellow → red ramp; transparency rises with activation.
_STOPS = np.array([[0.0, 40, 60, 200], [0.5, 250, 220, 40], [1.0, 220, 20, 20]], dtype=np.float32)
MAX_ALPHA = 170


def normalise(grid: np.ndarray) -> np.ndarray:
    """Scale one hazard's activation map to 0..1; evidence *for* the hazard is what we show."""
    grid = np.asarray(grid, dtype=np.float32)
    low, high = float(grid.min()), float(grid.max())
    if high - low < 1e-6:
        return np.zeros_like(grid)
    return (grid - low) / (high - low)


def colourise(weights: np.ndarray) -> np.ndarray:
    """H×W weights in 0..1 → H×W×4 uint8 RGBA."""
    channels = [np.interp(weights, _STOPS[:, 0], _STOPS[:, i]) for i in (1, 2, 3)]
    alpha = np.clip(weights, 0, 1) ** 1.5 * MAX_ALPHA
    return np.stack([*channels, alpha], axis=-1).round().astype(np.uint8)


def overlay_png(grid: np.ndarray, *, width: int, height: int) -> bytes:
    """A transparent PNG of the photo's (display) size to lay over the photo.

    The model saw the photo stretched to a square, so the grid stretches back over the whole photo.
    """
    small = Image.fromarray(normalise(grid), mode="F")
    weights = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    image = Image.fromarray(colourise(np.clip(weights, 0, 1)), mode="RGBA")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
