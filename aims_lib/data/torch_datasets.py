"""Torch datasets over the AIMS format: images for the image branch, keypoints for HIPC."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2

from aims_lib import image_io
from aims_lib.data.format import DOMAINS, AimsDataset, DatasetError, Sample, load_dataset

@dataclass(frozen=True)
class Normalization:
    """Per-channel ``(x - mean) / std`` on images scaled to [0, 1]: each backbone has its own
    (the image branch's registry names it), and every place that feeds images uses it."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]


#: torchvision's ImageNet statistics (ResNet and most PyTorch-trained networks).
IMAGENET_NORMALIZATION: Final = Normalization((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
#: TensorFlow-trained EfficientNet-Lite: ``(x - 127) / 128`` on 0-255 pixels.
TF_LITE_NORMALIZATION: Final = Normalization((127 / 255,) * 3, (128 / 255,) * 3)


def image_transform(image_size: int, train: bool, normalization: Normalization) -> v2.Compose:
    """Resize to a square of ``image_size``; training adds crops, flips and colour jitter.

    A horizontal flip keeps every AIMS label (the taxonomy has no left/right classes).
    """
    if image_size <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    geometric: list[Any]
    if train:
        geometric = [
            v2.RandomResizedCrop(image_size, scale=(0.75, 1.0), ratio=(0.85, 1.18), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.2, contrast=0.2, saturation=0.2),
        ]
    else:
        geometric = [v2.Resize((image_size, image_size), antialias=True)]
    return v2.Compose(
        [
            v2.ToImage(),
            *geometric,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(normalization.mean, normalization.std),
        ]
    )


def _resolve(dataset: AimsDataset | str | os.PathLike[str]) -> AimsDataset:
    return dataset if isinstance(dataset, AimsDataset) else load_dataset(dataset)


def read_image(sample: Sample) -> Image.Image:
    """A sample's image as RGB, read as everywhere else (:func:`aims_lib.image_io.read_image`:
    upright, deep images scaled); a :class:`DatasetError` names the file and image id if it cannot be."""
    try:
        return Image.fromarray(image_io.read_image(sample.path))
    except image_io.ImageReadError as exc:
        raise DatasetError(f"{sample.path}: image id {sample.image_id}: unreadable: {exc.reason}") from exc


#: Margin around the infant's box in the square crop, as a fraction of the box's longer side.
CROP_MARGIN = 0.15


def crop_to_box(image: Image.Image, bbox: np.ndarray, margin: float = CROP_MARGIN) -> Image.Image:
    """A square crop centred on ``bbox`` (x, y, w, h), its side the box's longer side plus
    ``margin`` on each end; parts outside the image are filled with black.

    Top-down, like the pose branch: the classifier sees the infant at the same scale whatever
    the camera distance (SyRIP also annotates a box per infant).
    """
    x, y, w, h = (float(v) for v in bbox)
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    box = (round(cx - side / 2), round(cy - side / 2), round(cx + side / 2), round(cy + side / 2))
    return image.crop(box)


class ImageDataset(Dataset):
    """Items: ``image`` (3, S, S) float tensor, ``coarse``, ``fine``, ``domain`` (0 synthetic,
    1 real) and ``image_id``; filtered by split and domain, or given as a list of samples.
    With ``crop`` the image is first cut to a square around the infant's box; ``normalization``
    is the backbone's."""

    def __init__(
        self,
        dataset: AimsDataset | str | os.PathLike[str],
        split: str | list[str] | None = None,
        domain: str | list[str] | None = None,
        image_size: int = 224,
        train: bool = False,
        samples: Sequence[Sample] | None = None,
        crop: bool = True,
        *,
        normalization: Normalization,
    ) -> None:
        self.dataset = _resolve(dataset)
        self.samples = list(samples) if samples is not None else self.dataset.select(split, domain)
        self.transform = image_transform(image_size, train, normalization)
        self.crop = crop

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        image = read_image(s)
        return {
            "image": self.transform(crop_to_box(image, s.bbox) if self.crop else image),
            "coarse": s.coarse_id,
            "fine": s.fine_id,
            "domain": DOMAINS.index(s.domain),
            "image_id": s.image_id,
        }


class KeypointDataset(Dataset):
    """Items: ``keypoints_2d`` (17, 2), ``visibility`` (17,), ``keypoints_3d`` (17, 3),
    ``coarse``, ``fine``, ``image_id``.

    With ``require_3d`` (default) a sample without 3D keypoints is an error naming it;
    without, its ``keypoints_3d`` is NaN and ``has_3d`` is False.
    """

    def __init__(
        self,
        dataset: AimsDataset | str | os.PathLike[str],
        split: str | list[str] | None = None,
        domain: str | list[str] | None = None,
        require_3d: bool = True,
    ) -> None:
        self.dataset = _resolve(dataset)
        self.samples = self.dataset.select(split, domain)
        if require_3d:
            for s in self.samples:
                if s.keypoints_3d is None:
                    raise DatasetError(
                        f"{self.dataset.path}: image id {s.image_id} ({s.file_name}): "
                        "field 'keypoints_3d': missing (pass require_3d=False to allow it)"
                    )

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        kp3d = s.keypoints_3d if s.keypoints_3d is not None else np.full((17, 3), np.nan)
        return {
            "keypoints_2d": torch.as_tensor(s.keypoints_2d, dtype=torch.float32),
            "visibility": torch.as_tensor(s.visibility, dtype=torch.int64),
            "keypoints_3d": torch.as_tensor(kp3d, dtype=torch.float32),
            "has_3d": s.keypoints_3d is not None,
            "coarse": s.coarse_id,
            "fine": s.fine_id,
            "image_id": s.image_id,
        }
