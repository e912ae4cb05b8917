"""`train_photo`: fine-tune MobileNetV2 on the hazard photos, export ONNX, score it, write the card."""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from training.photo.config import PhotoTrainConfig
from training.photo.data import (
    DETECTION_CLASSES,
    FLAGS,
    PPE_FLAGS,
    box_supervision,
    cached_images,
    hi_vis_photos,
    load_photos,
    machinery_from_boxes,
    read_boxes,
    small_head_photos,
    targets_and_mask,
)
from training.photo.detection import focal_heatmap_loss, heatmap_targets, regression_loss
from training.photo.model import HazardPhotoNet
from training.photo.presets import PhotoPreset

EpochCallback = Callable[[int, dict], None]


@dataclass
class PhotoTrainResult:
    model_dir: Path
    metrics: dict
    seconds: float
    epochs_run: int = 0
    best_epoch: int = 0
    history: list[dict] = field(default_factory=list)
    card: dict = field(default_factory=dict)


def masked_bce(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, flag_weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Binary cross-entropy averaged over annotated cells only: a blank cell (mask 0) contributes
    nothing, whatever its stored target."""
    losses = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    weights = mask if flag_weights is None else mask * flag_weights
    losses = torch.where(mask > 0, losses, torch.zeros_like(losses))
    return (losses * weights).sum() / weights.sum().clamp_min(1e-6)


@dataclass
class _Split:
    frame: pd.DataFrame
    images: np.ndarray
    targets: torch.Tensor
    mask: torch.Tensor
    boxes: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)
    box_flags: np.ndarray | None = None  # N×C: the flag of detection class c follows from the boxes
    heat_mask: np.ndarray | None = None  # N×C: class c's heat map is supervised on this photo
    small_heads: np.ndarray | None = None  # N: the photo has a bare head under 24 px at the served size
    hi_vis: np.ndarray | None = None  # N: the photo shows a person without hi-vis


class _Photos:
    """The manifest's train/val/test photos, decoded (once, into the cache) at each size asked for."""

    def __init__(self, config: PhotoTrainConfig):
        self.config = config
        self.frame = load_photos(config.data, limit=config.limit)
        boxes = pd.concat([read_boxes(folder) for folder in config.data], ignore_index=True)
        if config.machinery_from_boxes:
            self.frame = machinery_from_boxes(self.frame, boxes)
        self.targets, self.mask = targets_and_mask(self.frame)
        self.boxes, self.box_flags, self.heat_mask = box_supervision(self.frame, boxes)
        self.small_heads = small_head_photos(self.boxes, size=config.export_size)
        self.hi_vis = hi_vis_photos(self.frame, self.boxes)
        self._by_size: dict[int, dict[str, _Split]] = {}
        if not {"train", "val"} <= set(self.frame["split"]):
            raise ValueError("the data has no train or no val photos; check the manifest's split column")

    def at(self, size: int) -> dict[str, _Split]:
        if size not in self._by_size:
            images = cached_images(
                list(self.frame["path"]), size=size, cache_dir=self.config.cache_dir, workers=self.config.workers
            )
            self._by_size[size] = {name: self._split(images, name) for name in ("train", "val", "test")}
        return self._by_size[size]

    def _split(self, images: np.ndarray, name: str) -> _Split:
        rows = np.flatnonzero(self.frame["split"].to_numpy() == name)
        return _Split(
            self.frame.iloc[rows].reset_index(drop=True),
            images[rows] if len(rows) else images[:0],
            torch.from_numpy(self.targets[rows]),
            torch.from_numpy(self.mask[rows]),
            [self.boxes[row] for row in rows],
            self.box_flags[rows],
            self.heat_mask[rows],
            self.small_heads[rows],
            self.hi_vis[rows],
        )


@dataclass(frozen=True)
class _Stage:
    """A run of epochs with its own one-cycle schedule and weight average: training crops of side
    `size` cut from photos cached at `source` pixels."""

    size: int
    source: int
    epochs: int
    lr: float
    warmup: float


def _stages(config: PhotoTrainConfig) -> list[_Stage]:
    stages = [
        _Stage(config.image_size, config.crop_source_size or config.image_size, config.epochs, config.lr, warmup=0.2)
    ]
    if config.final_epochs:
        stages.append(
            _Stage(
                config.export_size,
                config.crop_source_size or config.export_size,
                config.final_epochs,
                config.final_lr,
                warmup=0.1,
            )
        )
    return stages


def _build_model(config: PhotoTrainConfig) -> HazardPhotoNet:
    """The net to train: a released model read back (`--init-from`), else `--backbone` from its package's weights."""
    if config.init_from is not None:
        from training.photo.from_onnx import net_from_onnx

        net = net_from_onnx(
            Path(config.init_from) / "model.onnx",
            detection_stride=config.det_stride,
            num_detection_classes=len(DETECTION_CLASSES),
        )
        net.freeze_batchnorm()
    else:
        net = HazardPhotoNet(
            num_classes=len(FLAGS),
            pretrained=config.pretrained,
            detection_stride=config.det_stride,
            backbone=config.backbone,
        )
    net.freeze_leading_blocks(config.freeze_blocks)
    return net.to(memory_format=torch.channels_last)


def _flag_weights(config: PhotoTrainConfig) -> torch.Tensor:
    return torch.tensor([config.ppe_weight if flag in PPE_FLAGS else 1.0 for flag in FLAGS])


def _weight_average(net: HazardPhotoNet, config: PhotoTrainConfig):
    """An exponential moving average of the weights (and BatchNorm statistics), or None when off."""
    if not config.ema_decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(net, multi_avg_fn=get_ema_multi_avg_fn(config.ema_decay), use_buffers=True)


def _train_batch(split: _Split, rows: np.ndarray, preset: PhotoPreset, *, stride: int = 8):
    """Augmented images, flag targets (box-derived flags re-read after the crop) and heat-map targets."""
    images, targets, heats, regressions, centres = [], split.targets[rows].clone(), [], [], []
    for position, row in enumerate(rows):
        image, boxes, classes = preset.with_boxes(split.images[row], *split.boxes[row])
        heat, regression, centre = heatmap_targets(
            boxes, classes, size=preset.size, num_classes=len(DETECTION_CLASSES), stride=stride
        )
        for cls, hazard in enumerate(DETECTION_CLASSES):
            if split.box_flags[row, cls]:  # a crop that cut every such person away is a negative
                targets[position, FLAGS.index(hazard)] = float((classes == cls).any())
        images.append(image)
        heats.append(heat)
        regressions.append(regression)
        centres.append(centre)
    batch = torch.stack(images).float().contiguous(memory_format=torch.channels_last)
    return (
        batch,
        targets,
        torch.from_numpy(np.stack(heats)),
        torch.from_numpy(np.stack(regressions)),
        torch.from_numpy(np.stack(centres)),
        torch.from_numpy(split.heat_mask[rows].astype("float32")),
    )


def joint_loss(net: HazardPhotoNet, batch, mask: torch.Tensor, config) -> tuple[torch.Tensor, dict]:
    """Masked flag BCE + det_weight × (heat-map focal loss + box regression L1)."""
    images, targets, heat, regression, centres, heat_mask = batch
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
        logits, _, heat_logits, box_regression = net.forward_all(images)
    flags = masked_bce(logits.float(), targets, mask, _flag_weights(config))
    focal = focal_heatmap_loss(heat_logits, heat, heat_mask)
    boxes = regression_loss(box_regression, regression, centres)
    loss = flags + config.det_weight * (focal + boxes)
    return loss, {"flags": flags.item(), "heat": focal.item(), "box": boxes.item()}


def _train_epoch(
    net,
    optimizer,
    scheduler,
    split: _Split,
    preset: PhotoPreset,
    config,
    *,
    epoch: int,
    generator: torch.Generator,
    average=None,
) -> dict:
    from tqdm.auto import tqdm

    net.train()
    order = epoch_order(
        split, generator, small_head_oversample=config.small_head_oversample, hi_vis_oversample=config.hi_vis_oversample
    )
    batches = [order[i : i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    totals = {"loss": 0.0, "flags": 0.0, "heat": 0.0, "box": 0.0}
    bar = tqdm(batches, desc=f"epoch {epoch}/{config.total_epochs}", unit="batch", mininterval=10)
    for rows in bar:
        rows = np.sort(rows)  # memmap reads are faster in file order
        batch = _train_batch(split, rows, preset, stride=net.detection_stride)
        loss, parts = joint_loss(net, batch, split.mask[rows], config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if average is not None:
            average.update_parameters(net)
        for name, value in {"loss": loss.item(), **parts}.items():
            totals[name] += value * len(rows)
        bar.set_postfix(loss=f"{loss.item():.3f}", heat=f"{parts['heat']:.3f}")
    return {name: total / len(order) for name, total in totals.items()}


def epoch_order(
    split: _Split, generator: torch.Generator, *, small_head_oversample: int = 1, hi_vis_oversample: int = 1
) -> np.ndarray:
    """One epoch's photo order: a permutation, or (an oversample > 1) a draw of the same length from the
    photos with each small-head photo entered `small_head_oversample` times and each photo of a person
    without hi-vis `hi_vis_oversample` times, so they are seen more often at no extra cost per epoch
    (a photo drawn twice in a batch gets two different crops)."""
    count = len(split.frame)
    extra = [
        np.flatnonzero(chosen)
        for chosen, times in ((split.small_heads, small_head_oversample), (split.hi_vis, hi_vis_oversample))
        if chosen is not None and chosen.any()
        for _ in range(times - 1)
    ]
    if not extra:
        return torch.randperm(count, generator=generator).numpy()
    pool = np.concatenate([np.arange(count), *extra])
    return pool[torch.randperm(len(pool), generator=generator).numpy()[:count]]


@torch.no_grad()
def predict_torch(
    net: HazardPhotoNet,
    images: np.ndarray,
    *,
    tta_flip: bool,
    batch_size: int = 32,
    ppe_modes: dict | None = None,
    bf16: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities N×K, detections N×D×6) as the exported graph computes them (`bf16`: approximately,
    in bfloat16 autocast, for fast validation during training)."""
    from training.photo.model import ExportedHazardPhoto

    graph = ExportedHazardPhoto(net.eval(), tta_flip=tta_flip, ppe_modes=ppe_modes)
    probabilities, detections = [], []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size]))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            probs, _, dets = graph(batch)
        probabilities.append(probs.float().numpy())
        detections.append(dets.float().numpy())
    if not probabilities:
        return np.zeros((0, len(FLAGS)), "float32"), np.zeros((0, graph.max_detections, 6), "float32")
    return np.concatenate(probabilities), np.concatenate(detections)


def val_scores(net: HazardPhotoNet, val: _Split, *, tta_flip: bool, bf16: bool = False) -> dict[str, float]:
    """Val mean ROC AUC over flags (PPE flags scored as the mean of the flag head and the heat-map
    peak), each PPE flag's ROC AUC under every scoring mode, and each detection class's box AP50
    (`box_ap50_<class>`, absent where val has no such box)."""
    from training.photo.box_metrics import box_ap50
    from training.photo.evaluate import flag_metrics
    from training.photo.modes import ppe_mode_probabilities

    image_probs, detections = predict_torch(net, val.images, tta_flip=tta_flip, bf16=bf16)
    result = {}
    if val.box_flags is not None and val.box_flags.any():
        sizes = val.frame[["width", "height"]].to_numpy()
        # only photos whose flag follows from boxes: elsewhere a person without hi-vis is not boxed
        for cls, name in enumerate(DETECTION_CLASSES[: val.box_flags.shape[1]]):
            rows = np.flatnonzero(val.box_flags[:, cls])
            if len(rows):
                truth = [val.boxes[row] for row in rows]
                result[f"box_ap50_{name}"] = box_ap50(truth, detections[rows], sizes[rows], cls=cls)["ap50_all"]
    by_mode = ppe_mode_probabilities(image_probs, detections)
    for mode, probabilities in by_mode.items():
        metrics = flag_metrics(val.frame, probabilities, dict.fromkeys(FLAGS, 0.5))
        result.update({f"{flag}_{mode}": metrics[flag]["roc_auc"] for flag in PPE_FLAGS if flag in metrics})
        if mode == "mean":
            aucs = [entry["roc_auc"] for entry in metrics.values() if entry["roc_auc"] is not None]
            result["mean"] = float(np.mean(aucs)) if aucs else math.nan
    return result


def selection_score(metrics: dict, select_by: str) -> float | None:
    """The val score that picks the best epoch: the flags' mean ROC AUC, plus (`roc_auc_plus_box_ap50`)
    the mean box AP50 of the PPE detection classes (people without a helmet or hi-vis: about 1,000 and
    300 val boxes; machinery has 11, too few to pick epochs by)."""
    auc = metrics.get("val_mean_roc_auc")
    if auc is None or select_by == "roc_auc":
        return auc
    aps = [metrics[f"val_box_ap50_{flag}"] for flag in PPE_FLAGS if metrics.get(f"val_box_ap50_{flag}") is not None]
    return round(auc + (float(np.mean(aps)) if aps else 0.0), 5)


class Checkpoints:
    """`last.pt` (everything needed to resume, written after every epoch) and `best.pt` (the best
    validated weights so far), both written atomically into one folder."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def _save(self, name: str, state: dict) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.directory / f"{name}.partial"
        torch.save(state, partial)
        partial.replace(self.directory / name)

    def save(self, *, last: dict, best: dict | None) -> None:
        if best is not None and best.get("fresh"):
            self._save("best.pt", {key: value for key, value in best.items() if key != "fresh"})
            best["fresh"] = False
        self._save("last.pt", last)

    def load(self, name: str) -> dict | None:
        path = self.directory / name
        return torch.load(path, map_location="cpu", weights_only=False) if path.is_file() else None


def _fit(config: PhotoTrainConfig, photos: _Photos, on_epoch_end: EpochCallback | None):
    """Train every stage, each from the best weights so far. Every epoch is validated on val photos
    at the exported size, so epochs of different stages compare, and the best of all is returned.
    With `config.resume`, continue from the checkpoint folder's last.pt."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = _build_model(config)
    checkpoints = Checkpoints(config.checkpoint_dir)
    resume = checkpoints.load("last.pt") if config.resume else None
    history: list[dict] = resume["history"] if resume else []
    best = checkpoints.load("best.pt") if resume else None
    if resume:
        generator.set_state(resume["generator"])
        torch.set_rng_state(resume["torch_rng"])
        print(f"resuming after epoch {len(history)} from {checkpoints.directory / 'last.pt'}")
    val = photos.at(config.export_size)["val"]
    for index, stage in enumerate(_stages(config)):
        if resume and (index < resume["stage"] or (index == resume["stage"] and resume["stage_done"])):
            continue
        if resume and index > resume["stage"]:
            net.load_state_dict(best["state"])
        run = _StageRun(
            net,
            config,
            stage,
            index,
            photos.at(stage.source)["train"],
            val,
            checkpoints,
            resume=resume if resume and index == resume["stage"] else None,
        )
        best = run.train(best=best, generator=generator, history=history, on_epoch_end=on_epoch_end)
        net.load_state_dict(best["state"])
        resume = None
    net.load_state_dict(best["state"])
    return net.eval(), history, best["epoch"]


class _StageRun:
    """One stage's optimiser, schedule and weight average (restored from `resume` when given)."""

    def __init__(
        self,
        net,
        config: PhotoTrainConfig,
        stage: _Stage,
        index: int,
        train: _Split,
        val: _Split,
        checkpoints: Checkpoints,
        *,
        resume: dict | None,
    ):
        self.net, self.config, self.stage, self.index = net, config, stage, index
        self.train_split, self.val, self.checkpoints = train, val, checkpoints
        self.preset = PhotoPreset(size=stage.size, train=True, crop_scale=config.crop_scale, source_size=stage.source)
        self.optimizer = torch.optim.AdamW(
            [p for p in net.parameters() if p.requires_grad], lr=stage.lr, weight_decay=config.weight_decay
        )
        steps = math.ceil(len(train.frame) / config.batch_size)
        self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
            self.optimizer, max_lr=stage.lr, total_steps=stage.epochs * steps, pct_start=stage.warmup
        )
        self.average = _weight_average(net, config)
        if resume:
            net.load_state_dict(resume["net"])
            self.optimizer.load_state_dict(resume["optimizer"])
            self.scheduler.load_state_dict(resume["scheduler"])
            if self.average is not None:
                self.average.load_state_dict(resume["average"])
        self.scored = net if self.average is None else self.average.module  # validated and exported

    def train(
        self, *, best: dict | None, generator: torch.Generator, history: list[dict], on_epoch_end: EpochCallback | None
    ) -> dict:
        """Train the stage's remaining epochs; returns the best epoch so far with its weights."""
        done = sum(1 for entry in history if entry.get("stage", 0) == self.index)
        last_epoch = len(history) + self.stage.epochs - done
        # patience counts from the end of the warm-up at the latest: a fine-tune's first epoch (still at a
        # low learning rate) can score best, and the peak and annealed epochs must still be tried
        warmed_up = len(history) - done + math.ceil(self.stage.warmup * self.stage.epochs)
        for epoch in range(len(history) + 1, last_epoch + 1):
            metrics = self._epoch(epoch, generator)
            history.append({"epoch": epoch, "stage": self.index, **metrics})
            if on_epoch_end is not None:
                on_epoch_end(epoch, metrics)
            score = selection_score(metrics, self.config.select_by)
            best_score = None if best is None else best.get("val_score", best["val_mean_roc_auc"])
            if score is not None and (best_score is None or score > best_score):
                best = {
                    "val_mean_roc_auc": metrics["val_mean_roc_auc"],
                    "val_score": score,
                    "epoch": epoch,
                    "state": copy.deepcopy(self.scored.state_dict()),
                    "config": self.config.to_dict(),
                    "fresh": True,
                }
            stop = epoch - max(best["epoch"], warmed_up) >= self.config.patience
            self._checkpoint(history, best, generator, stage_done=stop or epoch == last_epoch)
            if stop:
                print(f"early stop: no val improvement for {self.config.patience} epochs")
                break
        return best

    def _epoch(self, epoch: int, generator: torch.Generator) -> dict:
        started = time.perf_counter()
        losses = _train_epoch(
            self.net,
            self.optimizer,
            self.scheduler,
            self.train_split,
            self.preset,
            self.config,
            epoch=epoch,
            generator=generator,
            average=self.average,
        )
        val_aucs = val_scores(self.scored, self.val, tta_flip=self.config.tta_flip, bf16=self.config.bf16)
        auc = val_aucs.pop("mean")
        metrics = {
            "image_size": self.stage.size,
            "train_loss": round(losses["loss"], 5),
            **{f"train_loss_{name}": round(value, 5) for name, value in losses.items() if name != "loss"},
            "val_mean_roc_auc": None if math.isnan(auc) else round(auc, 5),
            **{
                f"val_{key}" if key.startswith("box_ap50_") else f"val_roc_auc_{key}": value
                for key, value in val_aucs.items()
            },
            "seconds": round(time.perf_counter() - started, 1),
        }
        print(f"epoch {epoch} ({self.stage.size} px crops): {metrics}", flush=True)
        return metrics

    def _checkpoint(self, history, best, generator, *, stage_done: bool) -> None:
        last = {
            "stage": self.index,
            "stage_done": stage_done,
            "history": history,
            "net": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "average": None if self.average is None else self.average.state_dict(),
            "generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "config": self.config.to_dict(),
        }
        self.checkpoints.save(last=last, best=best)


def train_photo(
    config: PhotoTrainConfig, *, on_epoch_end: EpochCallback | None = None, resolution_study: list[dict] | None = None
) -> PhotoTrainResult:
    """Train, export `config.out/model.onnx`, score val and test with onnxruntime, write card.json.

    `on_epoch_end(epoch, metrics)` is called after every epoch with train loss, val mean ROC AUC
    and seconds (a hook for experiment tracking)."""
    if config.release_only:
        return _release_best_so_far(config)
    torch.set_num_threads(config.threads)
    started, cpu_started = time.perf_counter(), time.process_time()
    photos = _Photos(config)
    net, history, best_epoch = _fit(config, photos, on_epoch_end)
    seconds = round(time.perf_counter() - started, 1)
    cpu_seconds = round(time.process_time() - cpu_started, 1)  # contention-free cost on a shared machine
    training = {
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "history": history,
    }
    if not config.release:
        print(f"trained; best weights in {Path(config.checkpoint_dir) / 'best.pt'} (not exported: --no-release)")
        return PhotoTrainResult(
            model_dir=Path(config.checkpoint_dir),
            metrics={},
            seconds=seconds,
            epochs_run=len(history),
            best_epoch=best_epoch,
            history=history,
        )
    from training.photo.release import held_out_sets, release_model

    card = release_model(
        net,
        config,
        frame=photos.frame,
        splits=held_out_sets(config, photos.frame),
        training=training,
        resolution_study=resolution_study or [],
    )
    return PhotoTrainResult(
        model_dir=Path(config.out),
        metrics=card["metrics"],
        seconds=seconds,
        epochs_run=len(history),
        best_epoch=best_epoch,
        history=history,
        card=card,
    )


def _release_best_so_far(config: PhotoTrainConfig) -> PhotoTrainResult:
    from training.photo.release import release_checkpoint

    card = release_checkpoint(
        Path(config.checkpoint_dir) / "best.pt",
        out=Path(config.out),
        threads=config.threads,
        weights=config.release_weights,
    )
    training = card["training_config"]
    return PhotoTrainResult(
        model_dir=Path(config.out),
        metrics=card["metrics"],
        seconds=training["seconds"],
        epochs_run=training["epochs_run"],
        best_epoch=training["best_epoch"],
        history=training["history"],
        card=card,
    )
