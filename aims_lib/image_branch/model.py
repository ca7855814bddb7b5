"""The image branch network: a registry backbone -> 256-d bottleneck -> linear classifier.

As in DSAN/DeepDA and TLlib, the adaptation losses read the bottleneck features, as the classifier does.
No weights are downloaded at run time: pretrained weights come from a local file or from a
package of the pinned environment that ships them (:mod:`aims_lib.image_branch.backbones`);
without them the network is trained from scratch (and says so in the log).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from torch import Tensor, nn

from aims_lib.data.torch_datasets import Normalization
from aims_lib.image_branch.backbones import BACKBONES, StagedBackbone, get_backbone

log = logging.getLogger(__name__)

ARCHS = tuple(BACKBONES)
BOTTLENECK_DIM = 256


class ImageBranch(nn.Module):
    """Backbone features (global average pool) -> Linear + ReLU bottleneck -> class logits.

    ``freeze_stages`` freezes the backbone's first stages (their weights and BatchNorm
    statistics stay pretrained); ``forward(x, start=k)`` then accepts the output of stage ``k``
    instead of an image, which is how the trainer feeds cached features of the frozen part.
    """

    def __init__(
        self,
        arch: str = "resnet50",
        num_classes: int = 4,
        weights: str | os.PathLike[str] | None = None,
        freeze_stages: int = 0,
    ) -> None:
        super().__init__()
        spec = get_backbone(arch)
        self.backbone = StagedBackbone(spec, None if weights is None else Path(weights))
        self.pretrained = weights is not None
        if not self.pretrained:
            log.info("%s: no pretrained weights given, training from scratch", arch)
        self.backbone.freeze(freeze_stages)
        self.arch = arch
        self.bottleneck = nn.Sequential(nn.Linear(self.backbone.feature_dim, BOTTLENECK_DIM), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(BOTTLENECK_DIM, num_classes)

    @property
    def normalization(self) -> Normalization:
        """The input normalisation the backbone expects (training, evaluation, prediction)."""
        return self.backbone.spec.normalization

    def forward(self, x: Tensor, start: int = 0) -> tuple[Tensor, Tensor]:
        """Returns ``(logits, bottleneck_features)`` of images (``start=0``) or of the output of
        backbone stage ``start - 1``."""
        features = self.bottleneck(self.backbone.pool(self.backbone.forward_stages(x, start)))
        return self.classifier(features), features

    def parameter_groups(self, lr: float, backbone_lr_mult: float) -> list[dict]:
        """SGD groups: the trainable backbone at ``lr * backbone_lr_mult``, the new heads at ``lr``."""
        heads = [*self.bottleneck.parameters(), *self.classifier.parameters()]
        backbone = [p for p in self.backbone.parameters() if p.requires_grad]
        return [
            {"params": backbone, "lr": lr * backbone_lr_mult, "base_lr": lr * backbone_lr_mult},
            {"params": heads, "lr": lr, "base_lr": lr},
        ]
