r"""MCC: Minimum Class Confusion (Jin et al., ECCV 2020), on the target predictions alone.

With the target softmax at temperature :math:`T`, :math:`\hat Y = \mathrm{softmax}(z / T)`
(n, C), and each example weighted by its certainty,

.. math::

    W_{ii} = \frac{n\,(1 + e^{-H(\hat y_i)})}{\sum_{i'} (1 + e^{-H(\hat y_{i'})})}, \qquad
    C = \hat Y^\top W \hat Y, \qquad \tilde C_{jj'} = \frac{C_{jj'}}{\sum_{j''} C_{j''j'}},

    L_{\mathrm{MCC}} = \frac{1}{|C|} \sum_{j} \sum_{j' \ne j} |\tilde C_{jj'}|:

the share of each class's (weighted) mass that the batch also gives to other classes. 0 for
one-hot predictions, :math:`(C - 1) / C` for uniform ones. The entropy weights carry no
gradient (as TLlib). A class no example predicts has a zero column, which counts 0. Defaults:
:math:`T = 2.5` (the paper; TLlib's default), weight 1.0 (TLlib's trade-off), no ramp. TLlib's
benchmark: 80.4 % on VisDA-2017 (ResNet-101; source-only 56.9 %).

Sources: ``docs/references.md#uda-baselines``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aims_lib.adaptation.base import AdaptationBatch, DomainAdaptation


def mcc_loss(target_logits: Tensor, temperature: float = 2.5) -> Tensor:
    """:math:`L_{\\mathrm{MCC}}` of ``target_logits`` (n, C); module docstring."""
    if target_logits.ndim != 2:
        raise ValueError(f"target_logits must be 2-D (batch, classes), got shape {tuple(target_logits.shape)}")
    n, num_classes = target_logits.shape
    probs = torch.softmax(target_logits / temperature, dim=1)
    certainty = 1.0 + torch.exp(-torch.special.entr(probs).sum(1).detach())
    weights = n * certainty / certainty.sum()
    confusion = (probs * weights[:, None]).T @ probs
    confusion = confusion / confusion.sum(0, keepdim=True).clamp_min(torch.finfo(confusion.dtype).tiny)
    return (confusion.sum() - confusion.trace()) / num_classes


class MCCLoss(DomainAdaptation):
    """:func:`mcc_loss` on the target logits, at a fixed temperature."""

    title = "MCC"
    default_weight = 1.0

    def __init__(self, temperature: float = 2.5) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, target_logits: Tensor) -> Tensor:
        return mcc_loss(target_logits, self.temperature)

    def adaptation_loss(self, batch: AdaptationBatch) -> Tensor:
        return self(batch.target_logits)
