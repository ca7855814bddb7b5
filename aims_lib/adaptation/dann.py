r"""DANN: domain-adversarial training (Ganin et al., JMLR 2016).

A domain discriminator :math:`D` learns to tell source from target bottleneck features through a
gradient reversal layer :math:`R_{c}` (:mod:`aims_lib.adaptation.adversarial`):

.. math::

    L = \tfrac12 \big( \overline{\mathrm{BCE}}(D(R_c(f^s)), 1) + \overline{\mathrm{BCE}}(D(R_c(f^t)), 0) \big),
    \qquad c = \frac{2}{1 + e^{-\gamma p}} - 1,\ \gamma = 10,

with :math:`p` the training progress: :math:`D` minimises :math:`L`, the features maximise it
(scaled by :math:`c`, which is 0 at the start while :math:`D` is still random). :math:`D` sees the
source and target rows in one batch (its BatchNorm mixes both, as in TLlib). Defaults: weight 1.0
(the paper; TLlib's trade-off), no ramp on the weight (the schedule is on :math:`c`), discriminator
with 1024 hidden units. TLlib warms :math:`c` up over 1000 iterations instead of the training
progress; its benchmark puts DANN at 74.9 % on VisDA-2017 (ResNet-101; source-only 56.9 %).

Sources: ``docs/references.md#uda-baselines``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from aims_lib.adaptation.adversarial import (
    DISCRIMINATOR_HIDDEN, domain_adversarial_loss, domain_discriminator, domain_logits, reverse_gradient,
)
from aims_lib.adaptation.base import AdaptationBatch, DomainAdaptation, check_feature_batches
from aims_lib.adaptation.schedule import grl_coefficient


class DANNLoss(DomainAdaptation):
    """DANN's domain loss; the discriminator (injectable) is this module's trainable part."""

    title = "DANN"
    default_weight = 1.0

    def __init__(
        self, feature_dim: int, hidden: int = DISCRIMINATOR_HIDDEN, gamma: float = 10.0,
        discriminator: nn.Module | None = None,
    ) -> None:
        super().__init__()
        self.discriminator = discriminator if discriminator is not None else domain_discriminator(feature_dim, hidden)
        self.gamma = gamma

    @classmethod
    def for_task(cls, num_classes: int, feature_dim: int) -> DANNLoss:
        return cls(feature_dim)

    def forward(self, source_features: Tensor, target_features: Tensor, progress: float) -> Tensor:
        check_feature_batches(source_features, target_features)
        n_s = source_features.shape[0]
        features = reverse_gradient(torch.cat([source_features, target_features]), grl_coefficient(progress, self.gamma))
        d = domain_logits(self.discriminator, features)
        return domain_adversarial_loss(d[:n_s], d[n_s:])

    def adaptation_loss(self, batch: AdaptationBatch) -> Tensor:
        return self(batch.source_features, batch.target_features, batch.progress)
