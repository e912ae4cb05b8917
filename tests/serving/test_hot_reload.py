"""Hot reload: a new model directory is verified, warmed up and swapped in; a broken one is not."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from serving.photo import PhotoModel
from serving.reload import HotSwap
from tests.serving.conftest import encode_image
from tests.toy_models import write_toy_photo_model


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    return write_toy_photo_model(tmp_path / "hazard_photo", version="toy-1")


def test_unchanged_directory_is_not_reloaded(model_dir):
    holder = HotSwap(model_dir, PhotoModel)
    first = holder.current
    assert holder.reload_if_changed() is False
    assert holder.current is first


def test_new_version_is_swapped_in(model_dir):
    holder = HotSwap(model_dir, PhotoModel)
    write_toy_photo_model(model_dir, size=64, version="toy-2")
    assert holder.reload_if_changed() is True
    assert holder.current.card.version == "toy-2"
    assert holder.current.card.size == (64, 64)


def test_tampered_model_keeps_the_old_one_serving(model_dir):
    holder = HotSwap(model_dir, PhotoModel)
    card = json.loads((model_dir / "card.json").read_text())
    card["version"], card["sha256"] = "toy-evil", "0" * 64
    (model_dir / "card.json").write_text(json.dumps(card))
    assert holder.reload_if_changed() is False
    assert holder.current.card.version == "toy-1"


def test_photos_queued_on_the_old_model_finish_on_it_after_a_swap(model_dir, rng):
    holder = HotSwap(model_dir, PhotoModel)
    old = holder.current
    old_size_photo = rng.integers(0, 256, size=(3, 32, 32), dtype="uint8")
    write_toy_photo_model(model_dir, size=64, version="toy-2")
    assert holder.reload_if_changed() is True
    new_size_photo = rng.integers(0, 256, size=(3, 64, 64), dtype="uint8")

    async def both():
        return await asyncio.gather(
            old.assess(old_size_photo, width=32, height=32), holder.current.assess(new_size_photo, width=64, height=64)
        )

    assert [result.model_version for result in asyncio.run(both())] == ["toy-1", "toy-2"]


def test_service_answers_with_the_new_version_after_admin_reload(api, toy_photo_model, tmp_path):
    photo = {"photo": ("a.jpg", encode_image((255, 0, 0)), "image/jpeg")}
    assert api.post("/v1/photos/assess", files=photo).json()["model"]["version"] == "toy-1"
    original = {name: (toy_photo_model / name).read_bytes() for name in ("model.onnx", "card.json")}
    staging = write_toy_photo_model(tmp_path / "staging", size=48, version="toy-2")
    try:
        for name in original:
            shutil.copy(staging / name, toy_photo_model / name)
        assert api.post("/v1/admin/reload", json={}).json()["hazard_photo"] == {"reloaded": True, "version": "toy-2"}
        body = api.post("/v1/photos/assess", files=photo).json()
        assert body["model"]["version"] == "toy-2"
        assert body["triage"] == "urgent"
    finally:
        for name, data in original.items():
            (toy_photo_model / name).write_bytes(data)
        assert api.post("/v1/admin/reload", json={}).json()["hazard_photo"]["version"] == "toy-1"
