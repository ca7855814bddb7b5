r"""Kernels of the discrepancy losses (MMD of DAN, LMMD of DSAN): joint batch (n, d) -> (n, n).

Any callable of that shape can be injected into :class:`~aims_lib.adaptation.dan.MMDLoss` and
:class:`~aims_lib.adaptation.lmmd.LMMDLoss`. The default is the multi-bandwidth Gaussian that
DAN, DSAN and DeepDA use,

.. math::

    k(x, y) = \sum_{m=0}^{M-1} \exp(-\|x - y\|^2 / b_m), \qquad
    b_m = \bar d \cdot \mathrm{mul}^{m - \lfloor M/2 \rfloor},

with :math:`\bar d` the mean squared distance between distinct points of the joint batch, held
constant for the gradient (``M = 5``, ``mul = 2``: bandwidths :math:`\bar d / 4 \ldots 4 \bar d`).

Sources: ``docs/references.md#lmmd``, ``docs/references.md#uda-baselines``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

#: A kernel matrix of the rows of a joint batch: (n, d) -> (n, n).
Kernel = Callable[[Tensor], Tensor]


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
