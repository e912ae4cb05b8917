"""Shared fixtures: a fixed seed, and paths to the project's data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from starlette.testclient import TestClient

from tests.toy_models import write_toy_photo_model

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PHOTO_SET = PROJECT_ROOT / "datasets" / "site-hazard-photos"
SHARED_PHOTO_SET = "../shared/datasets/site-hazard-photos"  # what `make test` links, relative to the clone


@pytest.fixture
def seed() -> int:
    return 20261126


@pytest.fixture
def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="session")
def photo_set() -> Path:
    if not (PHOTO_SET / "manifest.csv").is_file():
        pytest.skip(
            f"the site-hazard photo set is not at {PHOTO_SET}; `make test` links "
            f"{SHARED_PHOTO_SET} there when that folder exists beside the clone"
        )
    return PHOTO_SET


@pytest.fixture(scope="session")
def toy_photo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_photo_model(tmp_path_factory.mktemp("models") / "hazard_photo")


@pytest.fixture(scope="session")
def api(toy_photo_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The whole API on the toy photo model (so probabilities are known in advance).

    Session-wide because BentoML registers its Prometheus metrics once per process: a second
    `to_asgi()` app in the same run fails. Tests that change the toy model restore it.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANKANG_PHOTO_MODEL_DIR", str(toy_photo_model))
        patch.setenv("ANKANG_DATA_DIR", str(tmp_path_factory.mktemp("var")))
        patch.setenv("ANKANG_AUTH", "off")  # keys and roles: tests/serving/test_auth_*.py
        from serving.service import Ankang

        with TestClient(Ankang.to_asgi()) as client:
            yield client
