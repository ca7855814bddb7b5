"""The image branch's backbones as mmpose backbones, so a 2D keypoint model can start from the
ImageNet weights that the pinned environment ships (no download).

``StagedImageBackbone`` is registered in mmpose's ``MODELS``; a config selects it with::

    custom_imports = dict(imports=['aims_lib.pose_branch.mmpose_backbone'], allow_failed_imports=False)
    model = dict(backbone=dict(type='StagedImageBackbone', arch='efficientnet_lite0',
                               out_indices=(2, 3, 5, 7), frozen_stages=2), ...)

``arch`` is any entry of :data:`aims_lib.image_branch.backbones.BACKBONES`; ``out_indices`` are
stage indices (for EfficientNet-Lite0: 2 = stride 4, 3 = stride 8, 5 = stride 16, 7 = stride
32), returned high resolution first, as mmpose's necks expect. The weights are loaded when the
model is built (``pretrained=True``: the registry's packaged file; a path: that file; ``False``:
random), so an mmpose model holds them before mmengine's ``init_weights`` and before any
checkpoint that replaces them. The first ``frozen_stages`` stages get no gradients and keep their
BatchNorm statistics.

The data preprocessor of the config must normalise as the backbone was trained: EfficientNet-Lite
``(x - 127) / 128`` on RGB pixels (:data:`aims_lib.data.torch_datasets.TF_LITE_NORMALIZATION`).

Sources: ``docs/references.md#mmpose``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mmengine.model import BaseModule
from mmpose.registry import MODELS
from torch import Tensor

from aims_lib.image_branch.backbones import StagedBackbone, get_backbone


@MODELS.register_module()
class StagedImageBackbone(BaseModule):
    """A registry backbone's feature maps after the stages ``out_indices``."""

    def __init__(
        self,
        arch: str = "efficientnet_lite0",
        out_indices: Sequence[int] = (2, 3, 5, 7),
        frozen_stages: int = 0,
        pretrained: bool | str = True,
    ) -> None:
        super().__init__(init_cfg=None)
        spec = get_backbone(arch)
        if pretrained is True:
            if spec.packaged_weights is None:
                raise ValueError(f"{arch}: no packaged ImageNet weights; pass pretrained='<weights file>' or False")
            weights: Path | None = spec.packaged_weights()
        else:
            weights = Path(pretrained) if pretrained else None
        self.body = StagedBackbone(spec, weights)
        indices = tuple(out_indices)
        if not indices or list(indices) != sorted(set(indices)) or not 0 <= indices[0] <= indices[-1] < self.body.num_stages:
            raise ValueError(f"out_indices must be increasing stage indices in 0..{self.body.num_stages - 1}, got {indices}")
        self.out_indices = indices
        self.body.freeze(frozen_stages)
        self.weights_source = str(weights) if weights else "random"

    def init_weights(self) -> None:
        """Nothing to do: the weights were loaded when the backbone was built."""

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        outs = []
        start = 0
        for index in self.out_indices:
            x = self.body.forward_stages(x, start, index + 1)
            outs.append(x)
            start = index + 1
        return tuple(outs)

    def train(self, mode: bool = True) -> StagedImageBackbone:
        super().train(mode)
        self.body.train(mode)  # frozen stages stay in eval mode
        return self
