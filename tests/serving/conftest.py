"""Serving test helpers (the `api` fixture lives in tests/conftest.py: one ASGI app per session)."""

from __future__ import annotations

import io

from PIL import Image


def encode_image(colour: tuple[int, int, int], *, size: tuple[int, int] = (64, 48), fmt: str = "JPEG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, format=fmt)
    return buffer.getvalue()
