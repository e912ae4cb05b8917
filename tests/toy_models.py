"""Tiny, hand-wired ONNX models that honour the released models' contracts, built without torch.

The toy photo model looks at colour only: a red photo is `fire_smoke`, green is
`missing_hi_vis`, blue is `wet_floor`; the other flags stay near 0.05. Its `cam` output obeys
the card's identity: mean over h, w of cam[:, k] plus bias[k] equals logit[k].
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PHOTO_LABELS = ("missing_helmet", "missing_hi_vis", "fire_smoke", "wet_floor", "heavy_machinery", "poor_housekeeping")
_COLOUR_WEIGHTS = {
    "missing_hi_vis": [-4.0, 8.0, -4.0],
    "fire_smoke": [8.0, -4.0, -4.0],
    "wet_floor": [-4.0, -4.0, 8.0],
}


def _photo_weights() -> tuple[np.ndarray, np.ndarray]:
    weights = np.zeros((len(PHOTO_LABELS), 3, 1, 1), dtype=np.float32)
    bias = np.full(len(PHOTO_LABELS), -3.0, dtype=np.float32)
    for index, label in enumerate(PHOTO_LABELS):
        if label in _COLOUR_WEIGHTS:
            weights[index, :, 0, 0] = _COLOUR_WEIGHTS[label]
            bias[index] = -1.0
    return weights, bias


def _photo_graph(size: int, pool: int) -> onnx.ModelProto:
    weights, bias = _photo_weights()
    initializers = [
        numpy_helper.from_array(np.array(255.0, dtype=np.float32), "scale"),
        numpy_helper.from_array(weights, "cam_weight"),
        numpy_helper.from_array(bias.reshape(1, -1), "bias"),
    ]
    nodes = [
        helper.make_node("Cast", ["image"], ["as_float"], to=TensorProto.FLOAT),
        helper.make_node("Div", ["as_float", "scale"], ["scaled"]),
        helper.make_node("AveragePool", ["scaled"], ["features"], kernel_shape=[pool, pool], strides=[pool, pool]),
        helper.make_node("Conv", ["features", "cam_weight"], ["cam"]),
        helper.make_node("GlobalAveragePool", ["cam"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"]),
        helper.make_node("Add", ["flat", "bias"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["probabilities"]),
    ]
    k, side = len(PHOTO_LABELS), size // pool
    graph = helper.make_graph(
        nodes,
        "toy_hazard_photo",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", 3, size, size])],
        [
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", k]),
            helper.make_tensor_value_info("cam", TensorProto.FLOAT, ["N", k, side, side]),
        ],
        initializers,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def write_toy_photo_model(directory: Path, *, size: int = 32, pool: int = 8, version: str = "toy-1") -> Path:
    """Write model.onnx + card.json (the released card's keys) into `directory`; return it."""
    directory.mkdir(parents=True, exist_ok=True)
    onnx_path = directory / "model.onnx"
    onnx.save(_photo_graph(size, pool), onnx_path)
    card = {
        "name": "hazard_photo",
        "version": version,
        "created": "2026-11-26T00:00:00+00:00",
        "data": {"fingerprint": hashlib.sha256(b"toy photos").hexdigest(), "images": 0, "splits": {}},
        "training_config": {"image_size": size, "toy": True},
        "task": "multi-label image classification",
        "architecture": "toy colour model",
        "labels": list(PHOTO_LABELS),
        "trained_types": list(PHOTO_LABELS),
        "thresholds": {label: 0.5 for label in PHOTO_LABELS},
        "threshold_rule": "fixed 0.5 (toy)",
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
            "probabilities": {"shape": ["N", len(PHOTO_LABELS)]},
            "cam": {"shape": ["N", len(PHOTO_LABELS), size // pool, size // pool]},
        },
        "preprocess": {
            "exif_transpose": True,
            "color": "RGB",
            "resize": "stretch",
            "interpolation": "bilinear",
            "size": [size, size],
        },
        "sha256": hashlib.sha256(onnx_path.read_bytes()).hexdigest(),
    }
    (directory / "card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return directory


def _with_detections(model: onnx.ModelProto, rows: np.ndarray) -> onnx.ModelProto:
    """Add a `detections` output [N, D, 6]: the same `rows` for every photo of the batch."""
    graph = model.graph
    graph.initializer.extend(
        [
            numpy_helper.from_array(rows.astype(np.float32)[np.newaxis], "detection_rows"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "batch_axis"),
            numpy_helper.from_array(np.array(rows.shape, dtype=np.int64), "row_shape"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("Shape", ["image"], ["image_shape"]),
            helper.make_node("Gather", ["image_shape", "batch_axis"], ["batch"]),
            helper.make_node("Concat", ["batch", "row_shape"], ["detections_shape"], axis=0),
            helper.make_node("Expand", ["detection_rows", "detections_shape"], ["detections"]),
        ]
    )
    graph.output.append(helper.make_tensor_value_info("detections", TensorProto.FLOAT, ["N", *rows.shape]))
    return model


def write_toy_detection_model(
    directory: Path,
    *,
    rows: np.ndarray,
    size: int = 32,
    version: str = "toy-boxes-1",
    score_thresholds: dict[str, float] | None = None,
) -> Path:
    """The toy colour model plus a box head that finds `rows` (x0, y0, x1, y1, score, class_index;
    normalised to the model input, score-sorted, zero padding) in every photo, with the card's
    `detection` block (classes missing_helmet, missing_hi_vis) as the photo model exports it."""
    write_toy_photo_model(directory, size=size, version=version)
    onnx_path = directory / "model.onnx"
    onnx.save(_with_detections(onnx.load(onnx_path), rows), onnx_path)
    card = json.loads((directory / "card.json").read_text(encoding="utf-8"))
    card["outputs"]["detections"] = {"shape": ["N", len(rows), 6]}
    card["detection"] = {
        "classes": ["missing_helmet", "missing_hi_vis"],
        "score_thresholds": score_thresholds or {"missing_helmet": 0.5, "missing_hi_vis": 0.5},
        "max_detections": len(rows),
        "box_format": "xyxy-normalized",
    }
    card["sha256"] = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    (directory / "card.json").write_text(json.dumps(card, indent=2), encoding="utf-8")
    return directory
