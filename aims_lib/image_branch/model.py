"""The image branch network: torchvision ResNet -> 256-d bottleneck -> linear classifier.

As in DSAN/DeepDA, LMMD is computed on the bottleneck features and the classifier reads them.
No weights are downloaded at run time: pretrained weights come from a local file, otherwise the
network is trained from scratch (and says so in the log).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torchvision
from torch import Tensor, nn

log = logging.getLogger(__name__)

ARCHS = ("resnet18", "resnet34", "resnet50")
BOTTLENECK_DIM = 256


class ImageBranch(nn.Module):
    """ResNet features (pool output) -> Linear + ReLU bottleneck -> class logits."""

    def __init__(
        self, arch: str = "resnet50", num_classes: int = 4, weights: str | os.PathLike[str] | None = None
    ) -> None:
        super().__init__()
        if arch not in ARCHS:
            raise ValueError(f"unknown arch {arch!r}; valid: {', '.join(ARCHS)}")
        backbone = getattr(torchvision.models, arch)(weights=None)
        self.pretrained = False
        if weights is not None:
            load_backbone_weights(backbone, Path(weights))
            self.pretrained = True
        else:
            log.info("%s: no pretrained weights given, training from scratch", arch)
        feat_dim = backbone.fc.in_features
        backbone.fc = nn.Identity()
        self.arch = arch
        self.backbone = backbone
        self.bottleneck = nn.Sequential(nn.Linear(feat_dim, BOTTLENECK_DIM), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(BOTTLENECK_DIM, num_classes)

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Returns ``(logits, bottleneck_features)``."""
        features = self.bottleneck(self.backbone(images))
        return self.classifier(features), features

    def parameter_groups(self, lr: float, backbone_lr_mult: float) -> list[dict]:
        """SGD groups: the backbone at ``lr * backbone_lr_mult``, the new heads at ``lr``."""
        heads = [*self.bottleneck.parameters(), *self.classifier.parameters()]
        return [
            {"params": list(self.backbone.parameters()), "lr": lr * backbone_lr_mult, "base_lr": lr * backbone_lr_mult},
            {"params": heads, "lr": lr, "base_lr": lr},
        ]


def load_backbone_weights(backbone: nn.Module, path: Path) -> None:
    """Load a torchvision ResNet state dict from a local file (the ``fc`` layer is ignored).

    Accepts a plain state dict or a checkpoint holding one under ``state_dict``/``model``,
    including an image-branch checkpoint (its bottleneck and classifier are ignored): that is
    how a backbone pretrained on the synthetic images stands in for ImageNet weights.
    """
    if not path.is_file():
        raise FileNotFoundError(f"pretrained weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and key in state and isinstance(state[key], dict):
            state = state[key]
    state = {k.removeprefix("module.").removeprefix("backbone."): v for k, v in state.items()}
    state = {k: v for k, v in state.items() if not k.startswith(("fc.", "bottleneck.", "classifier."))}
    missing, unexpected = backbone.load_state_dict(state, strict=False)
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ValueError(
            f"{path}: not a {type(backbone).__name__} state dict for this arch "
            f"(missing {missing[:5]}..., unexpected {unexpected[:5]}...)"
        )
    log.info("loaded pretrained backbone weights from %s", path)
