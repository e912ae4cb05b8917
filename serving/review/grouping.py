"""Near-duplicate photos: a 64-bit difference hash (dHash) and Hamming distances, in numpy.

The threshold is measured on the site-hazard photo set by `python -m training.reviews.threshold`
(see benchmarks/README.md); two photos whose hashes differ in at most `DHASH_THRESHOLD` bits
are treated as reports of the same scene.
"""

from __future__ import annotations

import numpy as np

from runtime.dhash import dhash64  # noqa: F401  (re-exported: the store and the threshold study hash alike)

# 4 bits: recompressed, downscaled and brightened re-reports stay within it (≥ 96 %), while only 1.7 %
# of the photo set's photos come that close to a photo of another group (dhash_threshold.csv).
DHASH_THRESHOLD = 4
# Lookup index: the 64 bits are cut into DHASH_THRESHOLD + 1 bands; two hashes at most
# DHASH_THRESHOLD bits apart differ in at most that many bands, so at least one band is equal
# (pigeonhole) and an indexed equality lookup per band finds every candidate.
BAND_WIDTHS = (13, 13, 13, 13, 12)


def hash_bands(value: int) -> tuple[int, ...]:
    """The hash's BAND_WIDTHS-bit slices, most significant first."""
    bands, shift = [], 64
    for width in BAND_WIDTHS:
        shift -= width
        bands.append((value >> shift) & ((1 << width) - 1))
    return tuple(bands)


def to_hex(value: int) -> str:
    return f"{value:016x}"


def hamming(a: int, b: int) -> int:
    return (a ^ b).bit_count()


def hamming_to_many(value: int, others: np.ndarray) -> np.ndarray:
    """Bit distances from `value` to each uint64 in `others`."""
    xor = np.bitwise_xor(others.astype(np.uint64), np.uint64(value))
    return np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)


def parse_hashes(hex_values: list[str]) -> np.ndarray:
    """16-hex-digit strings → uint64, in one pass over the joined bytes."""
    if not hex_values:
        return np.zeros(0, dtype=np.uint64)
    return np.frombuffer(bytes.fromhex("".join(hex_values)), dtype=">u8").astype(np.uint64)
