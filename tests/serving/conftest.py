"""Serving fixtures: the API in-process through `Service.to_asgi()` and Starlette's TestClient."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Iterator

import pytest
from PIL import Image
from starlette.testclient import TestClient

from tests.toy_models import write_toy_photo_model


@pytest.fixture(scope="session")
def toy_photo_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_toy_photo_model(tmp_path_factory.mktemp("models") / "hazard_photo")


@pytest.fixture(scope="session")
def api(toy_photo_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The whole API on the toy photo model (so probabilities are known in advance)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ANKANG_PHOTO_MODEL_DIR", str(toy_photo_model))
        patch.setenv("ANKANG_DATA_DIR", str(tmp_path_factory.mktemp("var")))
        patch.setenv("ANKANG_AUTH", "off")  # keys and roles: tests/serving/test_auth_*.py
        from serving.service import Ankang

        with TestClient(Ankang.to_asgi()) as client:
            yield client


def encode_image(colour: tuple[int, int, int], *, size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()
