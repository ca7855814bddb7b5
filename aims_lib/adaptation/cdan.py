r"""CDAN+E: conditional domain-adversarial training with entropy conditioning (Long et al., NeurIPS 2018).

DANN's discriminator (:mod:`aims_lib.adaptation.dann`) reads the multilinear map of the features
:math:`f` and the class probabilities :math:`g` instead of :math:`f` alone, so that it aligns the
joint distribution of features and predictions, and each example is weighted by the certainty of
its prediction:

.. math::

    h = f \otimes g \in \mathbb R^{d \cdot C}, \qquad w = 1 + e^{-H(g)}, \quad
    H(g) = -\textstyle\sum_c g_c \log g_c,

    L = \tfrac12 \Big( \sum_i \tilde w^s_i \, \mathrm{BCE}(D(R_c(h^s_i)), 1)
        + \sum_j \tilde w^t_j \, \mathrm{BCE}(D(R_c(h^t_j)), 0) \Big),

with :math:`\tilde w` each domain's weights divided by their sum (as CDAN's code) and :math:`R_c`
the gradient reversal with DANN's schedule. :math:`g` carries no gradient (TLlib detaches it):
the source's softmax and the batch's target probabilities (the target's softmax, or the true
labels in the trainer's oracle diagnostic). Defaults: weight 1.0 (the paper; TLlib's trade-off),
no ramp, discriminator with 1024 hidden units, entropy conditioning on. The paper replaces the
map by a randomized one above :math:`d \cdot C = 4096`; ours stays below (256 x 4 coarse, 256 x
12 fine) and larger products are refused. TLlib's benchmark: 76.5 % on VisDA-2017 (ResNet-101;
source-only 56.9 %).

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

#: Above this many inputs CDAN switches to its randomized multilinear map (not implemented).
MAX_MULTILINEAR_DIM: int = 4096


def multilinear_map(features: Tensor, probs: Tensor) -> Tensor:
    """Row-wise outer product ``probs (n, C) x features (n, d)``, flattened to (n, C * d)."""
    return (probs[:, :, None] * features[:, None, :]).flatten(1)


def entropy_weights(probs: Tensor) -> Tensor:
    """``1 + exp(-H(p))`` per row of ``probs`` (n, C): 2 for a certain prediction, ``1 + 1/C`` for a uniform one."""
    return 1.0 + torch.exp(-torch.special.entr(probs).sum(1))


class CDANLoss(DomainAdaptation):
    """CDAN's (``entropy=True``: CDAN+E's) domain loss; the discriminator is injectable."""

    title = "CDAN+E"
    default_weight = 1.0

    def __init__(
        self, feature_dim: int, num_classes: int, hidden: int = DISCRIMINATOR_HIDDEN, gamma: float = 10.0,
        entropy: bool = True, discriminator: nn.Module | None = None,
    ) -> None:
        super().__init__()
        dim = feature_dim * num_classes
        if dim > MAX_MULTILINEAR_DIM:
            raise ValueError(f"feature_dim x num_classes = {feature_dim} x {num_classes} = {dim} exceeds "
                             f"{MAX_MULTILINEAR_DIM}: CDAN uses its randomized multilinear map there, which is not implemented")
        self.discriminator = discriminator if discriminator is not None else domain_discriminator(dim, hidden)
        self.gamma = gamma
        self.entropy = entropy

    @classmethod
    def for_task(cls, num_classes: int, feature_dim: int) -> CDANLoss:
        return cls(feature_dim, num_classes)

    def forward(
        self, source_features: Tensor, target_features: Tensor, source_probs: Tensor, target_probs: Tensor,
        progress: float,
    ) -> Tensor:
        check_feature_batches(source_features, target_features)
        n_s = source_features.shape[0]
        probs = torch.cat([source_probs, target_probs]).detach().to(source_features.dtype)
        h = multilinear_map(torch.cat([source_features, target_features]), probs)
        d = domain_logits(self.discriminator, reverse_gradient(h, grl_coefficient(progress, self.gamma)))
        if not self.entropy:
            return domain_adversarial_loss(d[:n_s], d[n_s:])
        w = entropy_weights(probs)
        return domain_adversarial_loss(d[:n_s], d[n_s:], w[:n_s], w[n_s:])

    def adaptation_loss(self, batch: AdaptationBatch) -> Tensor:
        source_probs = torch.softmax(batch.source_logits, dim=1)
        return self(batch.source_features, batch.target_features, source_probs, batch.target_probs, batch.progress)
