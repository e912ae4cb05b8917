"""Serving test helpers (the `api` fixture lives in tests/conftest.py: one ASGI app per session)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from serving.settings import ServingSettings
from tests.serving.test_review_store import postgres_schema


def encode_image(colour: tuple[int, int, int], *, size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(params=["sqlite", "postgresql"])
def key_settings(request, tmp_path: Path, monkeypatch) -> Iterator[ServingSettings]:
    """Where API keys live, on SQLite and on PostgreSQL (skipped when it does not answer): the environment
    `ankang keys` reads (ANKANG_DATA_DIR, ANKANG_DATABASE_URL) and the service's settings from it."""
    for name in ("ANKANG_DATABASE_URL", "ANKANG_API_KEYS", "ANKANG_API_KEYS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANKANG_DATA_DIR", str(tmp_path))
    if request.param == "sqlite":
        yield ServingSettings.from_env()
        return
    for url in postgres_schema():
        monkeypatch.setenv("ANKANG_DATABASE_URL", url)
        yield ServingSettings.from_env()
