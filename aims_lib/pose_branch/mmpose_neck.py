"""A multi-scale neck for heatmap heads that projects each scale before upsampling it.

The usual way to read several backbone scales at the finest one (mmpose's
``FeatureMapProcessor(concat=True)`` followed by the head's 1x1 convolution) upsamples every map
to stride 4, concatenates them and projects the concatenation:
``y = W [up(x_1); ...; up(x_k)] + b``. Bilinear upsampling and a 1x1 convolution are both linear
and act on different axes (pixels, channels), and upsampling weights sum to one, so
``y = sum_s up(W_s x_s) + b`` with ``W = [W_1 ... W_k]``: the same function, with each coarse map
projected at its own resolution. For the CPU profiles' Lite0 estimator (24 + 40 + 112 + 320
channels to 96 at 40 x 40) that is 14 instead of 152 MFLOPs an image, and the 496-channel
stride-4 tensor is never built (issue 26: training speed on CPUs without bfloat16).

``ProjectedFeaturePyramid`` is registered in mmpose's ``MODELS`` and ends with the BatchNorm and
ReLU that the head's first convolution had, so a config moves that layer into the neck::

    neck=dict(type='ProjectedFeaturePyramid', in_channels=(24, 40, 112, 320), out_channels=96),
    head=dict(in_channels=96, conv_out_channels=(96,), conv_kernel_sizes=(3,), ...)

Sources: ``docs/references.md#mmpose``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from mmengine.model import BaseModule
from mmpose.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
class ProjectedFeaturePyramid(BaseModule):
    """``relu(bn(sum_s up(W_s x_s) + b))`` over the backbone's maps, finest first."""

    def __init__(self, in_channels: Sequence[int], out_channels: int, align_corners: bool = False) -> None:
        super().__init__(init_cfg=[dict(type="Normal", layer="Conv2d", std=0.001),
                                   dict(type="Constant", layer="BatchNorm2d", val=1)])
        if not in_channels or min(in_channels) < 1 or out_channels < 1:
            raise ValueError(f"in_channels must be positive channel counts and out_channels >= 1, "
                             f"got {tuple(in_channels)} and {out_channels}")
        self.in_channels = tuple(in_channels)
        # one bias for the sum: b of the concatenated projection
        self.projections = nn.ModuleList(nn.Conv2d(c, out_channels, 1, bias=i == 0) for i, c in enumerate(in_channels))
        self.norm = nn.BatchNorm2d(out_channels)
        self.align_corners = align_corners

    def project(self, inputs: Sequence[Tensor]) -> Tensor:
        """``sum_s up(W_s x_s) + b`` at the size of the first (finest) map."""
        if len(inputs) != len(self.projections):
            raise ValueError(f"expected {len(self.projections)} feature maps (channels {self.in_channels}), got {len(inputs)}")
        size = inputs[0].shape[-2:]
        out = self.projections[0](inputs[0])
        for projection, x in zip(self.projections[1:], inputs[1:]):
            out = out + F.interpolate(projection(x), size=size, mode="bilinear", align_corners=self.align_corners)
        return out

    def forward(self, inputs: Sequence[Tensor]) -> tuple[Tensor]:
        return (F.relu(self.norm(self.project(inputs))),)
