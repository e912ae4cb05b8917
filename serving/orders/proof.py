"""Is a proof photo a new photo of the same scene? Checked against the order's original photo.

The byte-identical original (after the same GPS stripping the store applies) is refused: it proves
nothing. Otherwise the officer is shown how alike the two scenes are, from the 64-bit dHash the
review store already keeps for every case (runtime/dhash.py): 1 - differing bits / 64. A rectified
scene photographed from the same place keeps most of its coarse structure: a photo-set fire photo
cropped by 12 % differs from itself in 14 bits (0.78), while 20 unrelated photo-set photos differ from
it in 25-44 bits (0.31-0.61). So below `SCENE_WARN_BELOW` (0.7, 19 bits) the page warns that the
scenes differ, and within `DHASH_THRESHOLD` bits (the review store's near-duplicate rule) it warns
that the proof is nearly the original photo itself (a re-encoded or blurred copy).
"""

from __future__ import annotations

import hashlib
from typing import Any

from runtime.errors import InputError
from serving.review.grouping import DHASH_THRESHOLD, hamming
from serving.review.photos import PhotoStore, strip_gps

SCENE_WARN_BELOW = 0.7
HASH_BITS = 64


def stored_digest(photos: PhotoStore, data: bytes) -> str:
    """The sha256 the photo store would file these bytes under."""
    return hashlib.sha256(data if photos.keep_gps else strip_gps(data)).hexdigest()


def refuse_the_original(photos: PhotoStore, data: bytes, original_sha256: str | None) -> None:
    """422 when the proof is the very file of the original report."""
    if original_sha256 and stored_digest(photos, data) == original_sha256:
        raise InputError(
            "photo",
            "这是整改前的原始照片，请上传整改后重新拍摄的照片。 This is the original photo of the hazard; "
            "upload a new photo taken after the rectification.",
            status_code=422,
        )


def scene_similarity(proof_dhash: int, original_dhash_hex: str | None) -> dict[str, Any] | None:
    """How alike the proof's scene is to the original's: dHash bits apart, similarity and the warnings."""
    if not original_dhash_hex:
        return None
    distance = hamming(proof_dhash, int(original_dhash_hex, 16))
    similarity = round(1 - distance / HASH_BITS, 3)
    return {
        "dhash_distance": distance,
        "similarity": similarity,
        "near_duplicate": distance <= DHASH_THRESHOLD,
        "differs": similarity < SCENE_WARN_BELOW,
    }
