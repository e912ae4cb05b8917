"""The 64-bit difference hash (dHash) of a photo: near-duplicate reports have hashes few bits apart.

Serving groups reports by it (serving/review/grouping.py); training measures its threshold
(training/reviews/threshold.py), so both must hash alike.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

_BIT_WEIGHTS = np.left_shift(np.uint64(1), np.arange(63, -1, -1, dtype=np.uint64))


def dhash64(image: Image.Image) -> int:
    """Compare neighbouring pixels of a 9×8 grey thumbnail: bit set where the left one is brighter."""
    grey = np.asarray(image.convert("L").resize((9, 8), Image.Resampling.BILINEAR), dtype=np.int16)
    bits = (grey[:, :-1] > grey[:, 1:]).reshape(-1).astype(np.uint64)
    return int(np.sum(bits * _BIT_WEIGHTS, dtype=np.uint64))
