"""Shared fixtures: a fixed seed, and paths to the project's data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PHOTO_SET = PROJECT_ROOT / "datasets" / "site-hazard-photos"


@pytest.fixture
def seed() -> int:
    return 20261126


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def photo_set() -> Path:
    if not (PHOTO_SET / "manifest.csv").is_file():
        pytest.skip(f"the site-hazard photo set is not at {PHOTO_SET} (make test links ../shared's copy there in CI)")
    return PHOTO_SET
