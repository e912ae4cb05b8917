"""From trained weights to a released model directory: ONNX, thresholds, metrics, card.

`release_model` is called at the end of `train_photo`; `release_checkpoint` does the same from a
training run's best.pt (`ankang train photo-release`), so a long run can be released with the code
and data of the day, or its best epoch so far while it still runs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from runtime.paths import recorded_path
from training.photo.config import PhotoTrainConfig
from training.photo.data import (
    DETECTION_CLASSES,
    FLAGS,
    PPE_FLAGS,
    cached_images,
    data_fingerprint,
    load_photos,
    preprocess_spec,
    read_audit,
    read_boxes,
)
from training.photo.detection import MAX_DETECTIONS
from training.photo.evaluate import (
    CAPPED_THRESHOLD_RULE,
    choose_capped_threshold,
    flag_metrics,
    onnx_outputs,
    onnx_session,
)
from training.photo.export import export_onnx, write_card
from training.photo.model import PPE_SCORE_MODES, HazardPhotoNet
from training.photo.modes import detection_peaks, ppe_mode_probabilities


@dataclass
class HeldOut:
    """One scored photo set: its manifest rows and preprocessed images (at the export size)."""

    frame: pd.DataFrame
    images: np.ndarray


def thresholds_from_val(frame: pd.DataFrame, probabilities: np.ndarray) -> dict[str, float]:
    thresholds = {}
    for column, flag in enumerate(FLAGS):
        annotated = frame[flag].notna().to_numpy()
        thresholds[flag] = choose_capped_threshold(frame[flag].to_numpy()[annotated], probabilities[annotated, column])
    return thresholds


def detection_thresholds(frame: pd.DataFrame, detections: np.ndarray) -> dict[str, float]:
    """Per detection class, the capped rule applied to the photo's highest box score of that class
    against the photo's flag on val, so a box shown is as rare a false alarm as a flag."""
    peaks = detection_peaks(detections)
    result = {}
    for cls, hazard in enumerate(DETECTION_CLASSES):
        annotated = frame[hazard].notna().to_numpy()
        result[hazard] = choose_capped_threshold(frame[hazard].to_numpy()[annotated], peaks[annotated, cls])
    return result


def choose_ppe_modes(frame: pd.DataFrame, image_probabilities: np.ndarray, detections: np.ndarray) -> dict:
    """Per PPE flag the scoring mode (flag head, heat-map peak, or their mean) with the best val ROC
    AUC; returns {"modes": {flag: mode}, "val_roc_auc": {flag: {mode: auc}}}."""
    by_mode = ppe_mode_probabilities(image_probabilities, detections)
    aucs = {flag: {} for flag in PPE_FLAGS}
    for mode in PPE_SCORE_MODES:
        metrics = flag_metrics(frame, by_mode[mode], dict.fromkeys(FLAGS, 0.5))
        for flag in PPE_FLAGS:
            aucs[flag][mode] = metrics.get(flag, {}).get("roc_auc")
    modes = {flag: max(PPE_SCORE_MODES, key=lambda mode: aucs[flag][mode] or 0.0) for flag in PPE_FLAGS}
    return {"modes": modes, "val_roc_auc": aucs}


def mode_probabilities(image_probabilities: np.ndarray, detections: np.ndarray, modes: dict) -> np.ndarray:
    """Probabilities with each PPE column scored by its chosen mode (as the graph exported with `modes`)."""
    by_mode = ppe_mode_probabilities(image_probabilities, detections)
    result = image_probabilities.copy()
    for flag, mode in modes.items():
        column = FLAGS.index(flag)
        result[:, column] = by_mode[mode][:, column]
    return result


def card_fields(*, size: int, cam_hw: tuple[int, int], detection: dict) -> dict:
    return {
        "task": "multi-label image classification with person-level detections",
        "architecture": "mobilenet_v2",
        "labels": list(FLAGS),
        "trained_types": list(FLAGS),
        "input": {
            "name": "image",
            "dtype": "uint8",
            "layout": "NCHW",
            "color": "RGB",
            "height": size,
            "width": size,
            "batch": "dynamic",
        },
        "outputs": {
            "probabilities": {"shape": ["N", len(FLAGS)]},
            "cam": {"shape": ["N", len(FLAGS), cam_hw[0], cam_hw[1]]},
            "detections": {
                "shape": ["N", detection["max_detections"], 6],
                "columns": ["x0", "y0", "x1", "y1", "score", "class_index"],
            },
        },
        "preprocess": preprocess_spec(size),
        "detection": detection,
    }


def release_model(
    net: HazardPhotoNet,
    config: PhotoTrainConfig,
    *,
    frame: pd.DataFrame,
    splits: dict[str, HeldOut],
    training: dict,
    resolution_study: list[dict],
) -> dict:
    """Export `net`, choose PPE scoring modes and thresholds on val, score val, test and the audit
    set through onnxruntime, and write card.json. `splits` holds "val", "test" and "audit"."""
    from training.photo.heldout import held_out_metrics

    out, size = Path(config.out), config.export_size
    net = net.float().eval()
    # Val is scored once, by a graph whose PPE columns are the flag head's: the other modes follow from
    # its detections exactly as the graph computes them (training.photo.modes), so the chosen mode is
    # exported and val needs no second pass.
    model_path = export_onnx(net, out / "model.onnx", size=size, tta_flip=config.tta_flip)
    val_probs, val_detections = onnx_outputs(onnx_session(model_path, threads=config.threads), splits["val"].images)
    ppe = choose_ppe_modes(splits["val"].frame, val_probs, val_detections)
    model_path = export_onnx(net, out / "model.onnx", size=size, tta_flip=config.tta_flip, ppe_modes=ppe["modes"])
    session = onnx_session(model_path, threads=config.threads)
    scored = {"val": (mode_probabilities(val_probs, val_detections, ppe["modes"]), val_detections)}
    scored.update(
        {
            name: onnx_outputs(session, held.images)
            for name, held in splits.items()
            if name != "val" and len(held.images)
        }
    )
    thresholds = thresholds_from_val(splits["val"].frame, scored["val"][0])
    detection = {
        "classes": list(DETECTION_CLASSES),
        "score_thresholds": detection_thresholds(splits["val"].frame, scored["val"][1]),
        "max_detections": MAX_DETECTIONS,
        "box_format": "xyxy-normalized",
        "ppe_probability": ppe["modes"],
        "ppe_probability_val_roc_auc": ppe["val_roc_auc"],
    }
    boxes = pd.concat([read_boxes(folder) for folder in config.data], ignore_index=True)
    metrics = held_out_metrics(
        {name: (splits[name].frame, *scored[name]) for name in scored}, boxes=boxes, thresholds=thresholds
    )
    blank = np.zeros((1, 3, size, size), np.uint8)
    cam_shape = session.run(["cam"], {"image": blank})[0].shape
    fields = {
        **card_fields(size=size, cam_hw=cam_shape[2:], detection=detection),
        "thresholds": thresholds,
        "threshold_rule": CAPPED_THRESHOLD_RULE,
        "metrics": metrics,
        "resolution_study": resolution_study,
        "data": data_fingerprint(config.data, frame),
        "training_config": {**config.to_card_dict(), **training, "torch": torch.__version__},
    }
    return write_card(out, fields)


def held_out_sets(config: PhotoTrainConfig, frame: pd.DataFrame) -> dict[str, HeldOut]:
    """val and test of `frame` and the audit photos (every folder's audit_labels.csv), at the export size."""
    size = config.export_size
    images = cached_images(list(frame["path"]), size=size, cache_dir=config.cache_dir, workers=config.workers)
    sets = {}
    for name in ("val", "test"):
        rows = np.flatnonzero(frame["split"].to_numpy() == name)
        sets[name] = HeldOut(frame.iloc[rows].reset_index(drop=True), images[rows])
    audits = [read_audit(folder) for folder in config.data if (Path(folder) / "audit_labels.csv").is_file()]
    if audits:
        audit = pd.concat(audits, ignore_index=True)
        if config.limit:  # a --limit sample of the photos audits only its own audit photos
            audit = audit[audit["path"].isin(frame["path"])].reset_index(drop=True)
    if audits and len(audit):
        sets["audit"] = HeldOut(
            audit, cached_images(list(audit["path"]), size=size, cache_dir=config.cache_dir, workers=config.workers)
        )
    return sets


def release_checkpoint(checkpoint: Path, *, out: Path, threads: int = 2, weights: str = "average") -> dict:
    """Release a training run's best.pt (its weight average, with the options it was trained with) to
    `out`; weights="raw" releases the un-averaged weights of the last epoch from last.pt beside it."""
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"{checkpoint} not found: train first (its best epoch is written there)")
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if weights == "raw":
        last = torch.load(Path(checkpoint).with_name("last.pt"), map_location="cpu", weights_only=False)
        state = {"state": last["net"], "epoch": len(last["history"]), "config": last["config"]}
    options = {
        **state["config"],
        "out": Path(out),
        "threads": threads,
        "pretrained": False,
        "release_only": False,
        "release_weights": weights,
    }
    options["data"] = [Path(folder) for folder in options["data"]]
    options["cache_dir"], options["checkpoint_dir"] = Path(options["cache_dir"]), Path(options["checkpoint_dir"])
    config = PhotoTrainConfig(**options)
    torch.set_num_threads(threads)
    net = HazardPhotoNet(num_classes=len(FLAGS), pretrained=False)
    net.load_state_dict(state["state"])
    frame = load_photos(config.data, limit=config.limit)
    last = Path(checkpoint).with_name("last.pt")
    history = torch.load(last, map_location="cpu", weights_only=False)["history"] if last.is_file() else []
    training = {
        "best_epoch": state["epoch"],
        "checkpoint": recorded_path(checkpoint),
        "released_weights": weights,
        "history": history,
        "epochs_run": len(history),
        "seconds": round(sum(e.get("seconds", 0) for e in history), 1),
    }
    return release_model(
        net.eval(), config, frame=frame, splits=held_out_sets(config, frame), training=training, resolution_study=[]
    )
