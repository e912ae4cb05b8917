"""From a trained network to a released model directory: ONNX, thresholds, metrics, card."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from training.photo.config import PhotoTrainConfig
from training.photo.data import FLAGS, data_fingerprint, preprocess_spec
from training.photo.evaluate import (THRESHOLD_RULE, choose_threshold, flag_metrics, onnx_probabilities,
                                     onnx_session)
from training.photo.export import export_onnx, write_card
from training.photo.model import HazardPhotoNet


def thresholds_from_val(frame: pd.DataFrame, probabilities: np.ndarray) -> dict[str, float]:
    thresholds = {}
    for column, flag in enumerate(FLAGS):
        annotated = frame[flag].notna().to_numpy()
        thresholds[flag] = choose_threshold(frame[flag].to_numpy()[annotated], probabilities[annotated, column])
    return thresholds


def card_fields(*, size: int, cam_hw: tuple[int, int]) -> dict:
    return {
        "task": "multi-label image classification", "architecture": "mobilenet_v2",
        "labels": list(FLAGS), "trained_types": list(FLAGS),
        "input": {"name": "image", "dtype": "uint8", "layout": "NCHW", "color": "RGB",
                  "height": size, "width": size, "batch": "dynamic"},
        "outputs": {"probabilities": {"shape": ["N", len(FLAGS)]},
                    "cam": {"shape": ["N", len(FLAGS), cam_hw[0], cam_hw[1]]}},
        "preprocess": preprocess_spec(size),
    }


def release_model(net: HazardPhotoNet, config: PhotoTrainConfig, *, frame: pd.DataFrame,
                  splits: dict[str, tuple[pd.DataFrame, np.ndarray]], training: dict,
                  resolution_study: list[dict]) -> dict:
    out = Path(config.out)
    model_path = export_onnx(net.float().eval(), out / "model.onnx", size=config.export_size, tta_flip=config.tta_flip)
    session = onnx_session(model_path, threads=config.threads)
    scored = {name: onnx_probabilities(session, splits[name][1]) for name in ("val", "test") if len(splits[name][1])}
    thresholds = thresholds_from_val(splits["val"][0], scored["val"])
    metrics = {name: flag_metrics(splits[name][0], probabilities, thresholds)
               for name, probabilities in scored.items()}
    blank = np.zeros((1, 3, config.export_size, config.export_size), np.uint8)
    cam_shape = session.run(["cam"], {"image": blank})[0].shape
    fields = {
        **card_fields(size=config.export_size, cam_hw=cam_shape[2:]),
        "thresholds": thresholds, "threshold_rule": THRESHOLD_RULE, "metrics": metrics,
        "resolution_study": resolution_study,
        "data": data_fingerprint(config.data, frame),
        "training_config": {**config.to_dict(), **training, "torch": torch.__version__},
    }
    return write_card(out, fields)
