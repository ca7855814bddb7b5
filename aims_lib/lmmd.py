r"""Local Maximum Mean Discrepancy (LMMD), the subdomain alignment loss of DSAN (Zhu et al. 2020).

For the classes :math:`C'` that occur both in the source labels and in the target predictions,

.. math::

    \hat d_{\mathcal H}(p, q) = \frac{1}{|C'|} \sum_{c \in C'}
        \Big\| \sum_{i} w^{s}_{ic}\, \phi(x^{s}_i) - \sum_{j} w^{t}_{jc}\, \phi(x^{t}_j) \Big\|^2_{\mathcal H}

    = \sum_{i,i'} W^{ss}_{ii'} k(x^s_i, x^s_{i'}) + \sum_{j,j'} W^{tt}_{jj'} k(x^t_j, x^t_{j'})
      - 2 \sum_{i,j} W^{st}_{ij} k(x^s_i, x^t_j),

with :math:`W^{ss} = S S^\top / |C'|`, :math:`W^{tt} = T T^\top / |C'|`,
:math:`W^{st} = S T^\top / |C'|`. :math:`S` holds the one-hot source labels, each column divided
by its count in the batch; :math:`T` the target class probabilities, each column divided by its
sum over the batch; columns of classes outside :math:`C'` are zero. With :math:`C' = \emptyset`
the loss is 0. The kernel is a sum of ``kernel_num`` Gaussians
:math:`k(x, y) = \sum_{m=0}^{M-1} \exp(-\|x - y\|^2 / b_m)`, with
:math:`b_m = \bar d \cdot \mathrm{mul}^{m - \lfloor M/2 \rfloor}` and :math:`\bar d` the mean
squared distance between distinct points of the joint batch (held constant for the gradient).

This matches the semantics of the author's DSAN code and of DeepDA (jindongwang/transferlearning), but runs
entirely in torch on the inputs' device and dtype: no NumPy, no host round trip, no
synchronisation per step, and source and target batches may differ in size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def gaussian_kernel(x: Tensor, kernel_mul: float = 2.0, kernel_num: int = 5) -> Tensor:
    """Multi-bandwidth Gaussian kernel matrix of the rows of ``x`` (n, d) -> (n, n)."""
    sq = (x * x).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * (x @ x.T)).clamp_min(0.0)
    n = x.shape[0]
    bandwidth = d2.detach().sum() / max(n * n - n, 1)
    base = bandwidth / kernel_mul ** (kernel_num // 2)
    exponents = torch.arange(kernel_num, device=x.device, dtype=x.dtype)
    bandwidths = base * kernel_mul**exponents  # (M,)
    bandwidths = bandwidths.clamp_min(torch.finfo(x.dtype).tiny)  # identical points: d2 = 0
    return torch.exp(-d2[None] / bandwidths[:, None, None]).sum(0)


def class_weights(
    source_labels: Tensor, target_probs: Tensor, num_classes: int
) -> tuple[Tensor, Tensor]:
    """The per-class weight matrices ``S`` (n_s, C) and ``T`` (n_t, C), restricted to the classes
    present in both the source labels and the target argmax and divided by their number."""
    if target_probs.shape[1] != num_classes:
        raise ValueError(f"target_probs has {target_probs.shape[1]} classes, expected num_classes={num_classes}")
    dtype = target_probs.dtype
    s_onehot = nn.functional.one_hot(source_labels.long(), num_classes).to(dtype)
    t_onehot = nn.functional.one_hot(target_probs.argmax(1), num_classes).to(dtype)
    s_count = s_onehot.sum(0)
    t_sum = target_probs.sum(0)
    common = (s_count > 0) & (t_onehot.sum(0) > 0)
    n_common = common.sum().clamp_min(1).to(dtype)
    mask = common.to(dtype) / n_common.sqrt()  # S S^T and T T^T then carry 1 / |C'|
    s = s_onehot / s_count.clamp_min(1.0) * mask
    t = target_probs / t_sum.clamp_min(torch.finfo(dtype).tiny) * mask
    return s, t


def lmmd_loss(
    source_features: Tensor,
    target_features: Tensor,
    source_labels: Tensor,
    target_probs: Tensor,
    num_classes: int,
    kernel_mul: float = 2.0,
    kernel_num: int = 5,
) -> Tensor:
    """LMMD between a labelled source batch and a target batch with predicted probabilities.

    ``source_features`` (n_s, d), ``target_features`` (n_t, d), ``source_labels`` (n_s,) class
    ids, ``target_probs`` (n_t, C) softmax outputs (the caller decides whether gradients flow
    through them; DSAN detaches them). Returns a scalar tensor; see the module docstring.
    """
    if source_features.ndim != 2 or target_features.ndim != 2:
        raise ValueError("features must be 2-D (batch, dim)")
    if source_features.shape[1] != target_features.shape[1]:
        raise ValueError(
            f"feature dims differ: source {source_features.shape[1]}, target {target_features.shape[1]}"
        )
    if source_labels.shape[0] != source_features.shape[0] or target_probs.shape[0] != target_features.shape[0]:
        raise ValueError("labels/probabilities and features must have the same batch sizes")
    n_s = source_features.shape[0]
    s, t = class_weights(source_labels, target_probs.to(source_features.dtype), num_classes)
    k = gaussian_kernel(torch.cat([source_features, target_features]), kernel_mul, kernel_num)
    k_ss, k_tt, k_st = k[:n_s, :n_s], k[n_s:, n_s:], k[:n_s, n_s:]
    return ((s @ s.T) * k_ss).sum() + ((t @ t.T) * k_tt).sum() - 2.0 * ((s @ t.T) * k_st).sum()


class LMMDLoss(nn.Module):
    """Module form of :func:`lmmd_loss` with the number of classes fixed at construction."""

    def __init__(self, num_classes: int, kernel_mul: float = 2.0, kernel_num: int = 5) -> None:
        super().__init__()
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.kernel_mul = kernel_mul
        self.kernel_num = kernel_num

    def forward(
        self, source_features: Tensor, target_features: Tensor, source_labels: Tensor, target_probs: Tensor
    ) -> Tensor:
        return lmmd_loss(
            source_features, target_features, source_labels, target_probs,
            self.num_classes, self.kernel_mul, self.kernel_num,
        )

    def extra_repr(self) -> str:
        return f"num_classes={self.num_classes}, kernel_mul={self.kernel_mul}, kernel_num={self.kernel_num}"
