"""Per-epoch checkpoints, --resume and --release-only on toy sizes (48 real photos, 48 px crops)."""

import dataclasses

import numpy as np
import pytest

from runtime.modeldir import ModelDir
from training.photo.config import PhotoTrainConfig
from training.photo.data import FLAGS, preprocess_photo
from training.photo.detection import MAX_DETECTIONS
from training.photo.evaluate import onnx_session


class Interrupted(Exception):
    pass


def _config(photo_set, tmp_path, **changes) -> PhotoTrainConfig:
    return PhotoTrainConfig(
        data=[photo_set],
        out=tmp_path / "model",
        image_size=48,
        crop_source_size=64,
        final_size=64,
        epochs=2,
        batch_size=16,
        limit=48,
        seed=7,
        workers=1,
        ema_decay=0.9,
        pretrained=False,
        freeze_blocks=0,
        cache_dir=tmp_path / "cache",
        checkpoint_dir=tmp_path / "checkpoints",
        release=False,
        **changes,
    )


@pytest.mark.slow
def test_resume_continues_exactly_where_an_interrupted_run_stopped(photo_set, tmp_path):
    from training.photo.train import train_photo

    whole = train_photo(_config(photo_set, tmp_path / "whole"))

    def stop_at_second_epoch(epoch, metrics):
        if epoch == 2:
            raise Interrupted

    config = _config(photo_set, tmp_path / "split")
    with pytest.raises(Interrupted):
        train_photo(config, on_epoch_end=stop_at_second_epoch)
    resumed = train_photo(dataclasses.replace(config, resume=True))
    assert [entry["epoch"] for entry in resumed.history] == [1, 2]
    for mine, theirs in zip(resumed.history, whole.history):
        assert mine["train_loss"] == theirs["train_loss"] and mine["val_mean_roc_auc"] == theirs["val_mean_roc_auc"]
    again = train_photo(dataclasses.replace(config, resume=True))  # a finished run has nothing left to do
    assert len(again.history) == 2


@pytest.mark.slow
def test_release_only_exports_the_best_checkpoint_with_detections(photo_set, tmp_path):
    from training.photo.train import train_photo

    config = _config(photo_set, tmp_path)
    with pytest.raises(FileNotFoundError, match="best.pt not found: train first"):
        train_photo(dataclasses.replace(config, release_only=True))
    trained = train_photo(config)
    released = train_photo(dataclasses.replace(config, release_only=True, out=tmp_path / "released"))
    card = ModelDir.load(tmp_path / "released").card  # its sha256 matches the file
    assert released.best_epoch == trained.best_epoch and released.epochs_run == 2
    detection = card["detection"]
    assert detection["classes"] == ["missing_helmet", "missing_hi_vis", "heavy_machinery"]
    assert set(detection["score_thresholds"]) == set(detection["classes"])
    assert detection["max_detections"] == MAX_DETECTIONS and detection["box_format"] == "xyxy-normalized"
    assert set(card["thresholds"]) == set(FLAGS) and {"val", "test"} <= set(card["metrics"])
    assert card["outputs"]["detections"]["shape"] == ["N", MAX_DETECTIONS, 6]
    photo = sorted((photo_set / "images").glob("*/*.jpg"))[0]
    session = onnx_session(tmp_path / "released" / "model.onnx")
    probabilities, cam, detections = session.run(None, {"image": preprocess_photo(photo, size=64)[None]})
    assert probabilities.shape == (1, len(FLAGS)) and cam.shape[:2] == (1, len(FLAGS))
    assert detections.shape == (1, MAX_DETECTIONS, 6) and np.isfinite(detections).all()
