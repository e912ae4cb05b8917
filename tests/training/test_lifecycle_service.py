"""Promotion reaches the running service: `ankang promote photo` writes models/hazard_photo/ and the
API (in-process, the lead's hot reload) answers with the promoted version after /v1/admin/reload."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from ankang_cli import main
from tests.toy_models import write_toy_photo_model

pytestmark = pytest.mark.slow


def _register(model_dir) -> str:
    import mlflow

    from training.lifecycle.kinds import PHOTO
    from training.lifecycle.registry import register_model_dir
    from training.tracking import configure

    with mlflow.start_run(experiment_id=configure()):
        return register_model_dir(PHOTO, model_dir).version


def _red_photo() -> dict:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (255, 0, 0)).save(buffer, format="JPEG")
    return {"photo": ("red.jpg", buffer.getvalue(), "image/jpeg")}


def test_promoted_version_is_served_after_reload(api, toy_photo_model, photo_set, tmp_path, monkeypatch):
    # The session's API serves `toy_photo_model`; promotion releases into that same models dir.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path}/mlflow.db")
    promote = [
        "promote",
        "photo",
        "--data",
        str(photo_set),
        "--limit",
        "200",
        "--workers",
        "1",
        "--cache-dir",
        str(tmp_path / "cache"),
        "--models-dir",
        str(toy_photo_model.parent),
        "--report",
        str(tmp_path / "report"),
    ]
    try:
        assert _register(write_toy_photo_model(tmp_path / "v1", size=32, version="toy-1")) == "1"
        assert main(promote) == 0  # first promotion: the released toy-1 is the baseline
        assert api.post("/v1/photos/assess", files=_red_photo()).json()["model"]["version"] == "toy-1"
        assert _register(write_toy_photo_model(tmp_path / "v2", size=48, version="toy-2")) == "2"
        # same colour weights at another size: held-out metrics within 0.05, so it is promoted
        assert main([*promote, "--tolerance", "0.05", "--source-tolerance", "0.05"]) == 0
        assert api.post("/v1/admin/reload", json={}).json()["hazard_photo"] == {"reloaded": True, "version": "toy-2"}
        body = api.post("/v1/photos/assess", files=_red_photo()).json()
        assert body["model"]["version"] == "toy-2" and body["triage"] == "urgent"
    finally:
        write_toy_photo_model(toy_photo_model)
        assert api.post("/v1/admin/reload", json={}).json()["hazard_photo"]["version"] == "toy-1"
