"""INT8 photo model: onnxruntime static quantization (QDQ, per-channel) calibrated on `train` photos.

`quantize_photo_model` writes `<out>/model.onnx` + `card.json` (the float card's keys, its own
sha256 and version, re-chosen thresholds, int8 metrics, and a `quantization` block with the
method, the calibration set and the measured speed and ROC AUC deltas against the float model).
The INT8 model qualifies as the default only if it is at least `MIN_SPEEDUP` times faster
in-process and loses at most `MAX_AUC_LOSS` ROC AUC on every flag (pooled on `test`, and per
source) and at most as much box AP50 on every detected class (test); `qualifies` in the card records
the verdict, the lead switches the default.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runtime.modeldir import ModelDir, file_sha256
from runtime.paths import CANDIDATES_DIR, DATASETS_DIR, MODELS_DIR

MIN_SPEEDUP = 1.5
MAX_AUC_LOSS = 0.01
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
QUANT_FORMATS = ("qdq", "qoperator")
FORMAT_NAMES = {"qdq": "QDQ", "qoperator": "QOperator (QLinearConv, QLinearAdd)"}


@dataclass
class QuantizeConfig:
    """Every field is an `ankang export photo-int8` option of the same name (underscores -> dashes)."""

    model_dir: Path = MODELS_DIR / "hazard_photo"
    out: Path = CANDIDATES_DIR / "hazard_photo_int8"
    data: Path = DATASETS_DIR / "site-hazard-photos"
    calibration_split: str = "train"
    calibration_count: int = 300
    calibration_method: str = "minmax"
    quant_format: str = "qoperator"
    per_channel: bool = True
    op_types: list[str] = field(default_factory=lambda: ["Conv", "Add", "Clip"])
    evaluate: bool = True
    speed_photos: int = 64
    speed_batch: int = 8
    speed_repeats: int = 5
    threads: int = 2

    def to_dict(self) -> dict[str, Any]:
        return {
            key: str(value) if isinstance(value, Path) else value for key, value in dataclasses.asdict(self).items()
        }


HELP = {
    "model_dir": "float photo model directory (model.onnx + card.json) to quantize",
    "out": "directory to write the INT8 model.onnx + card.json into "
    "(--out models/hazard_photo_int8 releases it beside the float model it was made from)",
    "data": "photo dataset folder with manifest.csv (calibration and evaluation photos)",
    "calibration_split": "manifest split the calibration photos come from (never val or test)",
    "calibration_count": "calibration photos, spread over all sources (every k-th row of the split)",
    "calibration_method": f"how activation ranges are chosen ({', '.join(CALIBRATION_METHODS)})",
    "quant_format": f"QDQ (quantize/dequantize pairs, fused by onnxruntime) or QOperator ({', '.join(QUANT_FORMATS)})",
    "per_channel": "one weight scale per output channel (recommended for depthwise convolutions)",
    "op_types": "operator types to quantize; the CAM head (Einsum) and sigmoid stay float",
    "evaluate": "score val and test with both models, compare ROC AUC and speed, write the verdict",
    "speed_photos": "test photos timed through decode + resize + onnxruntime for the speed-up",
    "speed_batch": "batch size of the speed comparison",
    "speed_repeats": "timed runs per model (interleaved float/int8; the median counts)",
    "threads": "onnxruntime intra-op threads for calibration, scoring and timing",
}


class PhotoCalibrationReader:
    """An onnxruntime `CalibrationDataReader` (it has `get_next`) over preprocessed N×3×H×W uint8 photos,
    in small batches."""

    def __init__(self, images: np.ndarray, *, input_name: str = "image", batch_size: int = 16):
        self._batches = [images[start : start + batch_size] for start in range(0, len(images), batch_size)]
        self._input_name = input_name
        self._iterator: Iterator[np.ndarray] = iter(self._batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._iterator, None)
        return None if batch is None else {self._input_name: np.ascontiguousarray(batch)}

    def rewind(self) -> None:
        self._iterator = iter(self._batches)


def quantize_onnx(
    source: Path,
    target: Path,
    *,
    calibration: np.ndarray,
    method: str = "minmax",
    quant_format: str = "qoperator",
    per_channel: bool = True,
    op_types: list[str] | None = None,
    keep_float: list[str] | None = None,
    input_name: str = "image",
) -> Path:
    """Static INT8 quantization of `source` into `target` (one file), activations calibrated on
    `calibration` (uint8 photos preprocessed exactly as in serving)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if method not in CALIBRATION_METHODS:
        raise ValueError(f"calibration method must be one of {', '.join(CALIBRATION_METHODS)}, not {method!r}")
    if quant_format not in QUANT_FORMATS:
        raise ValueError(f"quant format must be one of {', '.join(QUANT_FORMATS)}, not {quant_format!r}")
    if len(calibration) == 0:
        raise ValueError("calibration needs at least one photo; check --calibration-split and --calibration-count")
    # onnxruntime's histogram calibrators stack every batch's activations: batches must be equal-sized.
    reader = PhotoCalibrationReader(calibration, input_name=input_name, batch_size=16 if method == "minmax" else 1)
    with tempfile.TemporaryDirectory() as scratch:
        prepared = Path(scratch) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=False)
        excluded = float_nodes(prepared, keep_float or [])
        partial = target.with_name(target.name + ".partial")
        quantize_static(
            str(prepared),
            str(partial),
            reader,
            quant_format=QuantFormat.QDQ if quant_format == "qdq" else QuantFormat.QOperator,
            op_types_to_quantize=op_types or ["Conv", "Add", "Clip"],
            per_channel=per_channel,
            nodes_to_exclude=excluded,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method={
                "minmax": CalibrationMethod.MinMax,
                "percentile": CalibrationMethod.Percentile,
                "entropy": CalibrationMethod.Entropy,
            }[method],
            extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
        )
    partial.replace(target)
    return target


def float_nodes(model_path: Path, prefixes: list[str]) -> list[str]:
    """Names of the graph's nodes that start with one of `prefixes` (e.g. "/features/features.0/")."""
    import onnx

    names = [node.name for node in onnx.load(str(model_path)).graph.node]
    return [name for name in names if any(name.startswith(prefix) for prefix in prefixes)]


def photo_split(data: Path, *, split: str, count: int = 0):
    """Manifest rows of `split` (every k-th row when `count` limits them, so all sources appear)."""
    from training.photo.data import load_photos

    frame = load_photos([data])
    rows = frame[frame["split"] == split].reset_index(drop=True)
    if count and count < len(rows):
        picks = np.unique(np.linspace(0, len(rows) - 1, num=count).round().astype(int))
        rows = rows.iloc[picks].reset_index(drop=True)
    return rows


def preprocess_paths(paths: list[str], *, size: int, progress: bool = True) -> np.ndarray:
    from tqdm.auto import tqdm

    from training.photo.data import preprocess_photo

    return np.stack(
        [
            preprocess_photo(path, size=size)
            for path in tqdm(paths, desc=f"decoding photos at {size} px", unit="photo", disable=not progress)
        ]
    )


def photo_size(card: dict) -> int:
    return int(card["input"]["height"])


def interleaved_speed(runs: dict[str, Callable[[], None]], *, items: int, repeats: int) -> dict[str, float]:
    """Median items/s of each callable, runs interleaved so both see the same machine load."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for run in runs.values():
        run()  # warm-up
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(items / (time.perf_counter() - start))
    return {name: float(np.median(rates)) for name, rates in times.items()}


def pipeline_runner(model_dir: Path, photos: list[bytes], *, batch: int, threads: int) -> Callable[[], None]:
    """The serving path for a list of uploaded photos: decode (Pillow, without serving's upload checks, the
    same for both models), the card's preprocessing, onnxruntime with serving's session options, in batches."""
    from PIL import Image

    from runtime.cards import PhotoCard
    from runtime.preprocess import upright_rgb
    from runtime.session import SessionOptions, create_session

    loaded = ModelDir.load(model_dir)
    card = PhotoCard.from_model_dir(loaded)
    session = create_session(loaded.onnx_path, options=SessionOptions(threads=threads))

    def decode(data: bytes) -> Image.Image:
        with Image.open(io.BytesIO(data)) as image:
            return upright_rgb(image)

    def run() -> None:
        for start in range(0, len(photos), batch):
            images = np.stack([card.preprocess(decode(data)) for data in photos[start : start + batch]])
            session.run(["probabilities", "cam"], {"image": images})

    return run


def auc_deltas(float_metrics: dict, int8_metrics: dict) -> dict[str, Any]:
    """ROC AUC (float, int8, loss) per flag: pooled on the split, and per source where both classes occur."""
    rows = {}
    for flag, entry in float_metrics.items():
        scopes = {"all": (entry["roc_auc"], int8_metrics[flag]["roc_auc"])}
        for source, per in entry["per_source"].items():
            scopes[source] = (per["roc_auc"], int8_metrics[flag]["per_source"][source]["roc_auc"])
        rows[flag] = {
            scope: {"float": a, "int8": b, "loss": round(a - b, 5)}
            for scope, (a, b) in scopes.items()
            if a is not None and b is not None
        }
    return rows


def worst_auc_loss(deltas: dict[str, Any]) -> tuple[float, str]:
    pairs = [(scope["loss"], f"{flag} / {name}") for flag, scopes in deltas.items() for name, scope in scopes.items()]
    return max(pairs) if pairs else (0.0, "none")


def _score(model_path: Path, images: np.ndarray, *, threads: int) -> tuple[np.ndarray, np.ndarray | None]:
    """(probabilities, detections or None) of one model on preprocessed photos."""
    from training.photo.evaluate import onnx_outputs, onnx_session

    return onnx_outputs(onnx_session(model_path, threads=threads), images)


def _thresholds(frame, probabilities: np.ndarray) -> dict[str, float]:
    """The float card's threshold rule re-applied to the INT8 model's val probabilities."""
    from training.photo.data import FLAGS
    from training.photo.evaluate import choose_threshold

    result = {}
    for column, flag in enumerate(FLAGS):
        annotated = frame[flag].notna().to_numpy()
        result[flag] = choose_threshold(frame[flag].to_numpy()[annotated], probabilities[annotated, column])
    return result


def compare_models(config: QuantizeConfig, float_dir: ModelDir, int8_path: Path) -> dict[str, Any]:
    """Metrics of the INT8 model (val thresholds, val + test), ROC AUC and box AP50 deltas on test."""
    from training.photo.data import read_boxes
    from training.photo.evaluate import flag_metrics

    size, splits = photo_size(float_dir.card), {}
    for split in ("val", "test"):
        frame = photo_split(config.data, split=split)
        splits[split] = (frame, preprocess_paths(list(frame["path"]), size=size))
    int8 = {split: _score(int8_path, images, threads=config.threads) for split, (_, images) in splits.items()}
    thresholds = _thresholds(splits["val"][0], int8["val"][0])
    metrics = {split: flag_metrics(splits[split][0], int8[split][0], thresholds) for split in splits}
    float_test = _score(float_dir.onnx_path, splits["test"][1], threads=config.threads)
    float_metrics = flag_metrics(splits["test"][0], float_test[0], float_dir.card["thresholds"])
    deltas = auc_deltas(float_metrics, metrics["test"])
    boxes = box_ap50_deltas(splits["test"][0], float_test[1], int8["test"][1], read_boxes(config.data))
    return {
        "thresholds": thresholds,
        "metrics": metrics,
        "auc_test": deltas,
        "worst": worst_auc_loss(deltas),
        "boxes_test": boxes,
    }


def box_ap50_deltas(frame, float_detections, int8_detections, boxes) -> dict[str, dict]:
    """Box AP50 per detected class (all box heights) of both models' detections on the same photos."""
    from training.photo.heldout import box_metrics

    if float_detections is None or int8_detections is None or boxes.empty:
        return {}
    ap50 = {
        name: {cls: entry["all"]["ap50_all"] for cls, entry in box_metrics(frame, detections, boxes).items()}
        for name, detections in (("float", float_detections), ("int8", int8_detections))
    }
    return {
        cls: {"float": value, "int8": ap50["int8"][cls], "loss": round(value - ap50["int8"][cls], 5)}
        for cls, value in ap50["float"].items()
        if value is not None and ap50["int8"].get(cls) is not None
    }


def measure_speedup(config: QuantizeConfig, float_dir: Path, int8_dir: Path) -> dict[str, Any]:
    frame = photo_split(config.data, split="test", count=config.speed_photos)
    photos = [Path(path).read_bytes() for path in frame["path"]]
    runs = {
        name: pipeline_runner(path, photos, batch=config.speed_batch, threads=config.threads)
        for name, path in (("float", float_dir), ("int8", int8_dir))
    }
    rates = interleaved_speed(runs, items=len(photos), repeats=config.speed_repeats)
    return {
        "what": f"decode + resize + onnxruntime, batch {config.speed_batch}, {len(photos)} test photos, "
        f"{config.threads} threads, median of {config.speed_repeats} interleaved runs",
        "float_photos_per_second": round(rates["float"], 2),
        "int8_photos_per_second": round(rates["int8"], 2),
        "speedup": round(rates["int8"] / rates["float"], 3),
    }


def quantization_block(config: QuantizeConfig, float_dir: ModelDir, calibration) -> dict[str, Any]:
    import onnxruntime

    return {
        "method": f"onnxruntime static quantization, {FORMAT_NAMES[config.quant_format]} format, "
        f"{'per-channel' if config.per_channel else 'per-tensor'} int8 weights (symmetric), "
        "uint8 activations (asymmetric)",
        "op_types": list(config.op_types),
        "calibration_method": config.calibration_method,
        "calibration": {
            "split": config.calibration_split,
            "photos": int(len(calibration)),
            "sources": {k: int(v) for k, v in calibration["source"].value_counts().sort_index().items()},
            "preprocess": "the card's preprocess (exif_transpose, RGB, bilinear stretch)",
        },
        "float_model": {"version": float_dir.version, "sha256": float_dir.card["sha256"]},
        "criteria": {"min_speedup": MIN_SPEEDUP, "max_roc_auc_loss": MAX_AUC_LOSS},
        "onnxruntime": onnxruntime.__version__,
    }


def write_int8_card(out: Path, float_card: dict, fields: dict) -> dict:
    sha256 = file_sha256(out / "model.onnx")
    now = dt.datetime.now(dt.UTC)
    card = {
        **float_card,
        **fields,
        "version": f"{now:%Y.%m.%d}-{sha256[:8]}-int8",
        "created": now.isoformat(timespec="seconds"),
        "sha256": sha256,
    }
    partial = out / "card.json.partial"
    partial.write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    partial.replace(out / "card.json")
    return card


def quantize_photo_model(config: QuantizeConfig) -> dict:
    """Quantize, evaluate and time; write `config.out` (model.onnx + card.json); return the card."""
    if config.calibration_split in ("val", "test"):
        raise ValueError(f"calibrating on {config.calibration_split!r} would leak evaluation photos; use train")
    float_dir = ModelDir.load(config.model_dir)
    calibration = photo_split(config.data, split=config.calibration_split, count=config.calibration_count)
    images = preprocess_paths(list(calibration["path"]), size=photo_size(float_dir.card))
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        staged = quantize_onnx(
            float_dir.onnx_path,
            Path(scratch) / "model.onnx",
            calibration=images,
            method=config.calibration_method,
            quant_format=config.quant_format,
            per_channel=config.per_channel,
            op_types=config.op_types,
        )
        block = {
            **quantization_block(config, float_dir, calibration),
            "seconds": round(time.perf_counter() - started, 1),
        }
        fields = {"quantization": block}
        if config.evaluate:
            fields.update(_evaluated_fields(config, float_dir, staged, block))
        shutil.copyfile(staged, out / "model.onnx.partial")
    (out / "model.onnx.partial").replace(out / "model.onnx")
    return write_int8_card(out, float_dir.card, fields)


def _evaluated_fields(config: QuantizeConfig, float_dir: ModelDir, staged: Path, block: dict) -> dict:
    comparison = compare_models(config, float_dir, staged)
    with tempfile.TemporaryDirectory() as scratch:  # time the INT8 model as a verified model directory
        shutil.copyfile(staged, Path(scratch) / "model.onnx")
        (Path(scratch) / "card.json").write_text(json.dumps({**float_dir.card, "sha256": file_sha256(staged)}))
        speed = measure_speedup(config, float_dir.path, Path(scratch))
    loss, where, boxes = *comparison["worst"], comparison["boxes_test"]
    box_loss = max((entry["loss"] for entry in boxes.values()), default=0.0)
    block.update(
        {
            "speed": speed,
            "roc_auc_test": comparison["auc_test"],
            "worst_roc_auc_loss": {"loss": loss, "where": where},
            "box_ap50_test": boxes,
            "qualifies": bool(speed["speedup"] >= MIN_SPEEDUP and loss <= MAX_AUC_LOSS and box_loss <= MAX_AUC_LOSS),
        }
    )
    return {"thresholds": comparison["thresholds"], "metrics": comparison["metrics"]}
