"""`PhotoPreset`: the one transform class behind training and evaluation (references style).

Both start from the preprocessing contract's output (`preprocess_photo`, a CHW uint8 array
stretched to the square input); evaluation leaves it untouched, so the arrays the model is
scored on are exactly those the service feeds the ONNX graph. Training adds augmentation.
Normalisation is not here: it lives inside the model (and the exported graph).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from training.photo.data import preprocess_photo


class PhotoPreset:
    def __init__(self, *, size: int, train: bool, crop_scale: float = 0.5, source_size: int | None = None):
        self.size = size
        self.train = train
        # Training crops may be cut from photos cached larger than `size`: a zoomed crop then keeps
        # real detail instead of being an upsampled copy of a small photo.
        self.source_size = (source_size or size) if train else size
        self.augment = (
            v2.Compose(
                [
                    v2.RandomResizedCrop(size, scale=(crop_scale, 1.0), ratio=(0.75, 4 / 3), antialias=True),
                    v2.RandomHorizontalFlip(),
                    v2.ColorJitter(brightness=0.3, contrast=0.3, saturation=0.3),  # no hue: costly on CPU
                ]
            )
            if train
            else None
        )
        self.sanitize = v2.SanitizeBoundingBoxes(min_size=2.0)

    def load(self, path: str | Path) -> np.ndarray:
        """A photo file -> the contract's CHW uint8 array (what the cache stores)."""
        return preprocess_photo(path, size=self.source_size)

    def __call__(self, chw: np.ndarray | torch.Tensor) -> torch.Tensor:
        """A preprocessed CHW uint8 photo -> the uint8 tensor fed to the model."""
        image = torch.as_tensor(np.asarray(chw)) if not isinstance(chw, torch.Tensor) else chw
        side = self.source_size
        if image.shape[-2:] != (side, side):
            raise ValueError(f"expected a 3×{side}×{side} photo, got shape {tuple(image.shape)}")
        return self.augment(image) if self.train else image

    def with_boxes(
        self, chw: np.ndarray, boxes: np.ndarray, classes: np.ndarray
    ) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
        """A photo and its boxes (xyxy, normalised to [0, 1] of the photo) -> the augmented uint8
        tensor and the boxes that survive the crop, in pixels of the output, with their classes."""
        image = torch.as_tensor(np.asarray(chw))
        side = self.source_size
        if image.shape[-2:] != (side, side):
            raise ValueError(f"expected a 3×{side}×{side} photo, got shape {tuple(image.shape)}")
        sample = {
            "image": tv_tensors.Image(image),
            "labels": torch.as_tensor(classes, dtype=torch.int64),
            "boxes": tv_tensors.BoundingBoxes(
                torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4) * side,
                format="XYXY",
                canvas_size=(side, side),
            ),
        }
        if self.train:
            sample = self.sanitize(self.augment(sample))
        scale = self.size / side if not self.train else 1.0
        return (
            sample["image"].as_subclass(torch.Tensor),
            sample["boxes"].as_subclass(torch.Tensor).numpy() * scale,
            sample["labels"].numpy(),
        )

    def batch(self, photos: np.ndarray) -> torch.Tensor:
        return torch.stack([self(photo) for photo in photos])
