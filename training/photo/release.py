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
    machinery_from_boxes,
    preprocess_spec,
    read_audit,
    read_boxes,
)
from training.photo.detection import MAX_DETECTIONS
from training.photo.evaluate import (
    CAPPED_THRESHOLD_RULE,
    FLAG_FALSE_POSITIVE_CAPS,
    MAX_VAL_FALSE_POSITIVE_RATE,
    choose_capped_threshold,
    flag_metrics,
    onnx_outputs,
    onnx_session,
)
from training.photo.export import export_onnx, write_card
from training.photo.init_study import initialisation_study
from training.photo.model import PPE_SCORE_MODES, HazardPhotoNet
from training.photo.modes import detection_peaks, ppe_mode_probabilities
from training.photo.operating import (
    BOX_THRESHOLD_RULE,
    URGENT_THRESHOLD_RULE,
    choose_box_threshold,
    choose_recall_threshold,
    match_boxes,
)


@dataclass
class HeldOut:
    """One scored photo set: its manifest rows and preprocessed images (at the export size)."""

    frame: pd.DataFrame
    images: np.ndarray


def thresholds_from_val(
    frame: pd.DataFrame, probabilities: np.ndarray, *, calibration: tuple[pd.DataFrame, np.ndarray] | None = None
) -> dict[str, float]:
    """The capped rule per flag on val's annotated cells (plus `calibration`'s annotated cells: photos
    whose cell for that flag the weights never saw labelled in training), then the urgent rule for the
    suspected-major types (fire: every fire urgent comes before a rare false alarm)."""
    if calibration is not None:
        frame = pd.concat([frame, calibration[0]], ignore_index=True)
        probabilities = np.concatenate([probabilities, calibration[1]])
    thresholds = {}
    for column, flag in enumerate(FLAGS):
        annotated = frame[flag].notna().to_numpy()
        thresholds[flag] = choose_capped_threshold(
            frame[flag].to_numpy()[annotated],
            probabilities[annotated, column],
            max_false_positive_rate=FLAG_FALSE_POSITIVE_CAPS.get(flag, MAX_VAL_FALSE_POSITIVE_RATE),
        )
    for flag, choice in urgent_thresholds(frame, probabilities).items():
        thresholds[flag] = choice["threshold"]
    return thresholds


def suspected_major_flags() -> list[str]:
    from runtime.taxonomy import load_taxonomy

    taxonomy = load_taxonomy()
    return [flag for flag in FLAGS if flag in taxonomy and taxonomy[flag].is_suspected_major]


def urgent_thresholds(frame: pd.DataFrame, probabilities: np.ndarray) -> dict[str, dict]:
    """URGENT_THRESHOLD_RULE per suspected-major flag, with its val recall and false-urgent rate."""
    result = {}
    for flag in suspected_major_flags():
        column = FLAGS.index(flag)
        annotated = frame[flag].notna().to_numpy()
        result[flag] = choose_recall_threshold(frame[flag].to_numpy()[annotated], probabilities[annotated, column])
    return result


def operating_box_thresholds(
    frame: pd.DataFrame, detections: np.ndarray, boxes: pd.DataFrame, *, classes: tuple[str, ...] = DETECTION_CLASSES
) -> dict[str, float]:
    """BOX_THRESHOLD_RULE per detection class (the model's `classes`) on val's box-labelled photos (the
    capped image-level rule when val has no such photo)."""
    from training.photo.data import box_supervision

    ground_truth, from_boxes, _ = box_supervision(frame, boxes)
    fallback = detection_thresholds(frame, detections, classes=classes)
    if not from_boxes.any():  # no box-labelled val photo (a manifest without boxes has no sizes either)
        return fallback
    sizes = frame[["width", "height"]].to_numpy()
    result = {}
    for cls, hazard in enumerate(classes):
        rows = np.flatnonzero(from_boxes[:, cls])
        if not len(rows):
            result[hazard] = fallback[hazard]
            continue
        matches, _ = match_boxes([ground_truth[i] for i in rows], detections[rows], sizes[rows], cls=cls)
        result[hazard] = choose_box_threshold(matches)
    return result


def detection_thresholds(
    frame: pd.DataFrame, detections: np.ndarray, *, classes: tuple[str, ...] = DETECTION_CLASSES
) -> dict[str, float]:
    """Per detection class, the capped rule applied to the photo's highest box score of that class
    against the photo's flag on val, so a box shown is as rare a false alarm as a flag."""
    peaks = detection_peaks(detections)
    result = {}
    for cls, hazard in enumerate(classes):
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
        "task": "multi-label image classification with detections (people without a helmet or hi-vis, heavy machinery)",
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
    calibration: HeldOut | None = None,
    recipe: dict | None = None,
) -> dict:
    """Export `net`, choose PPE scoring modes and thresholds on val, score val, test and the audit
    set through onnxruntime, and write card.json. `splits` holds "val", "test" and "audit";
    `calibration` (optional) holds photos whose labelled cells the weights never saw in training,
    used beside val for the flag thresholds."""
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
    calibrated = None
    if calibration is not None and len(calibration.images):
        calibrated = (calibration.frame, onnx_outputs(session, calibration.images)[0])
    thresholds = thresholds_from_val(splits["val"].frame, scored["val"][0], calibration=calibrated)
    boxes = pd.concat([read_boxes(folder) for folder in config.data], ignore_index=True)
    classes = DETECTION_CLASSES[: net.num_detection_classes]
    detection = {
        "classes": list(classes),
        "score_thresholds": operating_box_thresholds(splits["val"].frame, scored["val"][1], boxes, classes=classes),
        "score_threshold_rule": BOX_THRESHOLD_RULE,
        "max_detections": MAX_DETECTIONS,
        "box_format": "xyxy-normalized",
        "ppe_probability": ppe["modes"],
        "ppe_probability_val_roc_auc": ppe["val_roc_auc"],
    }
    metrics = held_out_metrics(
        {name: (splits[name].frame, *scored[name]) for name in scored},
        boxes=boxes,
        thresholds=thresholds,
        box_thresholds=detection["score_thresholds"],
        classes=classes,
    )
    urgent = urgent_thresholds(splits["val"].frame, scored["val"][0])
    blank = np.zeros((1, 3, size, size), np.uint8)
    cam_shape = session.run(["cam"], {"image": blank})[0].shape
    fields = {
        **card_fields(size=size, cam_hw=cam_shape[2:], detection=detection),
        "thresholds": thresholds,
        "threshold_rule": CAPPED_THRESHOLD_RULE,
        "urgent_threshold_rule": URGENT_THRESHOLD_RULE,
        "urgent_thresholds": urgent,
        "threshold_calibration": None
        if calibrated is None
        else {
            "photos": int(len(calibrated[0])),
            "flags": [flag for flag in FLAGS if calibrated[0][flag].notna().any()],
            "why": "train photos whose cells the weights never saw labelled (blank when trained), "
            "labelled since by a box rule",
        },
        "metrics": metrics,
        "resolution_study": resolution_study,
        "initialisation_study": initialisation_study(),
        "data": data_fingerprint(config.data, frame),
        "training_config": {**config.to_card_dict(), **training, "torch": torch.__version__},
        **({"recipe": recipe} if recipe else {}),
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
    net = HazardPhotoNet(
        num_classes=len(FLAGS), pretrained=False, detection_stride=config.det_stride, backbone=config.backbone
    )
    net.load_state_dict(state["state"])
    frame = load_photos(config.data, limit=config.limit)
    if config.machinery_from_boxes:
        frame = machinery_from_boxes(frame, pd.concat([read_boxes(f) for f in config.data], ignore_index=True))
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
