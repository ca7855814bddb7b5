r"""DAN: Maximum Mean Discrepancy with a multi-kernel Gaussian (Long et al., ICML 2015).

The squared MMD between the source and target bottleneck features, biased (V-statistic) estimate
over the joint batch,

.. math::

    \widehat{\mathrm{MMD}}^2 = \frac{1}{n_s^2} \sum_{i,i'} k(x^s_i, x^s_{i'})
        + \frac{1}{n_t^2} \sum_{j,j'} k(x^t_j, x^t_{j'}) - \frac{2}{n_s n_t} \sum_{i,j} k(x^s_i, x^t_j),

0 for identical batches. The kernel is injectable; the default is the sum of 5 Gaussians with
bandwidths a factor 2 apart around the mean squared distance
(:mod:`aims_lib.adaptation.kernels`), the same family as LMMD's, so that DAN is LMMD without
the classes. DAN's own recipe differs in two ways that TLlib and DeepDA drop as well: it learns
the kernels' convex weights (here equal) and aligns several layers (here the bottleneck, which
the classifier reads). Defaults: weight 1.0 (TLlib's ``dan.py`` trade-off), no ramp.

Sources: ``docs/references.md#uda-baselines``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from aims_lib.adaptation.base import AdaptationBatch, DomainAdaptation, check_feature_batches
from aims_lib.adaptation.kernels import Kernel, gaussian_kernel


def mmd_loss(source_features: Tensor, target_features: Tensor, kernel: Kernel = gaussian_kernel) -> Tensor:
    """Squared MMD of ``source_features`` (n_s, d) and ``target_features`` (n_t, d); module docstring."""
    check_feature_batches(source_features, target_features)
    n_s = source_features.shape[0]
    k = kernel(torch.cat([source_features, target_features]))
    return k[:n_s, :n_s].mean() + k[n_s:, n_s:].mean() - 2.0 * k[:n_s, n_s:].mean()


class MMDLoss(DomainAdaptation):
    """:func:`mmd_loss` on the bottleneck features, with the kernel fixed at construction."""

    title = "DAN (MK-MMD)"
    default_weight = 1.0

    def __init__(self, kernel: Kernel = gaussian_kernel) -> None:
        super().__init__()
        self.kernel = kernel

    def forward(self, source_features: Tensor, target_features: Tensor) -> Tensor:
        return mmd_loss(source_features, target_features, self.kernel)

    def adaptation_loss(self, batch: AdaptationBatch) -> Tensor:
        return self(batch.source_features, batch.target_features)
