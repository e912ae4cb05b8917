"""`train_photo`: fine-tune MobileNetV2 on the hazard photos, export ONNX, score it, write the card."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from training.photo.config import PhotoTrainConfig
from training.photo.data import FLAGS, PPE_FLAGS, cached_images, load_photos, targets_and_mask
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


def masked_bce(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
               flag_weights: torch.Tensor | None = None) -> torch.Tensor:
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


class _Photos:
    """The manifest's train/val/test photos, decoded (once, into the cache) at each size asked for."""

    def __init__(self, config: PhotoTrainConfig):
        self.config = config
        self.frame = load_photos(config.data, limit=config.limit)
        self.targets, self.mask = targets_and_mask(self.frame)
        self._by_size: dict[int, dict[str, _Split]] = {}
        if not {"train", "val"} <= set(self.frame["split"]):
            raise ValueError("the data has no train or no val photos; check the manifest's split column")

    def at(self, size: int) -> dict[str, _Split]:
        if size not in self._by_size:
            images = cached_images(list(self.frame["path"]), size=size, cache_dir=self.config.cache_dir,
                                   workers=self.config.workers)
            self._by_size[size] = {name: self._split(images, name) for name in ("train", "val", "test")}
        return self._by_size[size]

    def _split(self, images: np.ndarray, name: str) -> _Split:
        rows = np.flatnonzero(self.frame["split"].to_numpy() == name)
        return _Split(self.frame.iloc[rows].reset_index(drop=True), images[rows] if len(rows) else images[:0],
                      torch.from_numpy(self.targets[rows]), torch.from_numpy(self.mask[rows]))


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
    stages = [_Stage(config.image_size, config.crop_source_size or config.image_size, config.epochs, config.lr,
                     warmup=0.2)]
    if config.final_epochs:
        stages.append(_Stage(config.export_size, config.crop_source_size or config.export_size,
                             config.final_epochs, config.final_lr, warmup=0.1))
    return stages


def _build_model(config: PhotoTrainConfig) -> HazardPhotoNet:
    net = HazardPhotoNet(num_classes=len(FLAGS), pretrained=config.pretrained)
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


def _train_epoch(net, optimizer, scheduler, split: _Split, preset: PhotoPreset, config, *, epoch: int,
                 generator: torch.Generator, average=None) -> float:
    from tqdm.auto import tqdm

    net.train()
    order = torch.randperm(len(split.frame), generator=generator).numpy()
    batches = [order[i:i + config.batch_size] for i in range(0, len(order), config.batch_size)]
    weights, total = _flag_weights(config), 0.0
    bar = tqdm(batches, desc=f"epoch {epoch}/{config.total_epochs}", unit="batch", leave=False)
    for rows in bar:
        rows = np.sort(rows)  # memmap reads are faster in file order
        batch = preset.batch(split.images[rows]).float().contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=config.bf16):
            logits = net(batch)
        loss = masked_bce(logits.float(), split.targets[rows], split.mask[rows], weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        if average is not None:
            average.update_parameters(net)
        total += loss.item() * len(rows)
        bar.set_postfix(loss=f"{loss.item():.3f}")
    return total / len(order)


@torch.no_grad()
def predict_torch(net: HazardPhotoNet, images: np.ndarray, *, tta_flip: bool, batch_size: int = 64) -> np.ndarray:
    """Float32 probabilities as the exported graph computes them (flip TTA averages logits)."""
    net.eval()
    outputs = []
    for start in range(0, len(images), batch_size):
        batch = torch.from_numpy(np.ascontiguousarray(images[start:start + batch_size])).float()
        batch = batch.contiguous(memory_format=torch.channels_last)
        logits = net(batch)
        if tta_flip:
            logits = (logits + net(torch.flip(batch, dims=[3]))) / 2
        outputs.append(torch.sigmoid(logits).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, len(FLAGS)), dtype="float32")


def val_roc_aucs(net: HazardPhotoNet, val: _Split, *, tta_flip: bool) -> dict[str, float]:
    """Val mean ROC AUC over flags (the early-stopping score) plus the PPE flags' own ROC AUC."""
    from training.photo.evaluate import flag_metrics

    metrics = flag_metrics(val.frame, predict_torch(net, val.images, tta_flip=tta_flip), dict.fromkeys(FLAGS, 0.5))
    aucs = [entry["roc_auc"] for entry in metrics.values() if entry["roc_auc"] is not None]
    ppe = {flag: metrics[flag]["roc_auc"] for flag in PPE_FLAGS if flag in metrics}
    return {"mean": float(np.mean(aucs)) if aucs else math.nan, **ppe}


def _fit(config: PhotoTrainConfig, photos: _Photos, on_epoch_end: EpochCallback | None):
    """Train every stage, each from the best weights so far. Every epoch is validated on val photos
    at the exported size, so epochs of different stages compare, and the best of all is returned."""
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = _build_model(config)
    history: list[dict] = []
    val = photos.at(config.export_size)["val"]
    best = None
    for stage in _stages(config):
        best = _run_stage(net, config, stage, photos.at(stage.source)["train"], val, best=best,
                          generator=generator, history=history, on_epoch_end=on_epoch_end)
        net.load_state_dict(best["state"])
    return net.eval(), history, best["epoch"]


def _run_stage(net, config: PhotoTrainConfig, stage: _Stage, train: _Split, val: _Split, *, best: dict | None,
               generator: torch.Generator, history: list[dict], on_epoch_end: EpochCallback | None) -> dict:
    """Train one stage; returns the best epoch so far (this stage's or `best`) with its weights."""
    preset = PhotoPreset(size=stage.size, train=True, crop_scale=config.crop_scale, source_size=stage.source)
    optimizer = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=stage.lr,
                                  weight_decay=config.weight_decay)
    steps = math.ceil(len(train.frame) / config.batch_size)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=stage.lr, total_steps=stage.epochs * steps,
                                                    pct_start=stage.warmup)
    average = _weight_average(net, config)
    scored = net if average is None else average.module  # the weights that are validated and exported
    for epoch in range(len(history) + 1, len(history) + stage.epochs + 1):
        started = time.perf_counter()
        loss = _train_epoch(net, optimizer, scheduler, train, preset, config, epoch=epoch, generator=generator,
                            average=average)
        val_aucs = val_roc_aucs(scored, val, tta_flip=config.tta_flip)
        auc = val_aucs.pop("mean")
        metrics = {"image_size": stage.size, "train_loss": round(loss, 5),
                   "val_mean_roc_auc": None if math.isnan(auc) else round(auc, 5),
                   **{f"val_roc_auc_{flag}": value for flag, value in val_aucs.items()},
                   "seconds": round(time.perf_counter() - started, 1)}
        history.append({"epoch": epoch, **metrics})
        print(f"epoch {epoch} ({stage.size} px crops): train loss {loss:.4f}, val mean ROC AUC {auc:.4f} "
              f"({metrics['seconds']} s)")
        if on_epoch_end is not None:
            on_epoch_end(epoch, metrics)
        if best is None or auc > best["val_mean_roc_auc"] or math.isnan(best["val_mean_roc_auc"]):
            best = {"val_mean_roc_auc": auc, "epoch": epoch, "state": copy.deepcopy(scored.state_dict())}
        elif epoch - best["epoch"] >= config.patience:
            print(f"early stop: no val improvement for {config.patience} epochs")
            break
    return best


def train_photo(config: PhotoTrainConfig, *, on_epoch_end: EpochCallback | None = None,
                resolution_study: list[dict] | None = None) -> PhotoTrainResult:
    """Train, export `config.out/model.onnx`, score val and test with onnxruntime, write card.json.

    `on_epoch_end(epoch, metrics)` is called after every epoch with train loss, val mean ROC AUC
    and seconds (a hook for experiment tracking)."""
    torch.set_num_threads(config.threads)
    started, cpu_started = time.perf_counter(), time.process_time()
    photos = _Photos(config)
    net, history, best_epoch = _fit(config, photos, on_epoch_end)
    seconds = round(time.perf_counter() - started, 1)
    cpu_seconds = round(time.process_time() - cpu_started, 1)  # contention-free cost on a shared machine
    from training.photo.release import release_model

    training = {"seconds": seconds, "cpu_seconds": cpu_seconds, "epochs_run": len(history),
                "best_epoch": best_epoch, "history": history}
    at_export_size = {name: (split.frame, split.images) for name, split in photos.at(config.export_size).items()}
    card = release_model(net, config, frame=photos.frame, splits=at_export_size,
                         training=training, resolution_study=resolution_study or [])
    return PhotoTrainResult(model_dir=Path(config.out), metrics=card["metrics"], seconds=seconds,
                            epochs_run=len(history), best_epoch=best_epoch, history=history, card=card)
