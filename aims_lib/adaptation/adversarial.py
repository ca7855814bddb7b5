r"""The parts that DANN and CDAN share: gradient reversal, a domain discriminator, its loss.

* Gradient reversal (Ganin & Lempitsky 2015): the identity going forward; going backward the
  gradient times :math:`-c`. The discriminator below it minimises its loss while the features
  above it receive the gradient that maximises it.
* Domain discriminator: ``Linear(d, 1024) - BatchNorm - ReLU - Linear(1024, 1024) - BatchNorm -
  ReLU - Linear(1024, 1)``, one domain logit per row (TLlib's ``DomainDiscriminator``, the
  batch-norm variant, with 1024 hidden units as in its DANN and CDAN examples).
* Loss: binary cross-entropy with source = 1 and target = 0, each domain's rows averaged with
  non-negative weights :math:`w` (uniform unless given) and the two domains averaged:

  .. math::

      L_d = \tfrac12 \Big( \sum_i \tilde w^s_i \, \mathrm{BCE}(d^s_i, 1)
            + \sum_j \tilde w^t_j \, \mathrm{BCE}(d^t_j, 0) \Big), \qquad
      \tilde w_i = w_i / \textstyle\sum_{i'} w_{i'}.

Sources: ``docs/references.md#uda-baselines``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

#: Hidden units of the domain discriminator (DANN and CDAN in TLlib).
DISCRIMINATOR_HIDDEN: int = 1024


class _ReverseGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, coefficient: float) -> Tensor:
        ctx.coefficient = coefficient
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * -ctx.coefficient, None


def reverse_gradient(x: Tensor, coefficient: float = 1.0) -> Tensor:
    """``x`` unchanged; its gradient multiplied by ``-coefficient`` on the way back."""
    return _ReverseGradient.apply(x, coefficient)


def domain_discriminator(in_features: int, hidden: int = DISCRIMINATOR_HIDDEN) -> nn.Sequential:
    """The three-layer discriminator of the module docstring: (n, in_features) -> (n, 1) logits."""
    return nn.Sequential(
        nn.Linear(in_features, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.BatchNorm1d(hidden), nn.ReLU(),
        nn.Linear(hidden, 1),
    )


def _weighted_mean(values: Tensor, weights: Tensor | None) -> Tensor:
    return values.mean() if weights is None else (values * weights).sum() / weights.sum()


def domain_adversarial_loss(
    source_logits: Tensor, target_logits: Tensor, source_weights: Tensor | None = None,
    target_weights: Tensor | None = None,
) -> Tensor:
    """:math:`L_d` of the module docstring from the discriminator's domain logits, (n_s,) and (n_t,)."""
    bce = nn.functional.binary_cross_entropy_with_logits
    source = bce(source_logits, torch.ones_like(source_logits), reduction="none")
    target = bce(target_logits, torch.zeros_like(target_logits), reduction="none")
    return 0.5 * (_weighted_mean(source, source_weights) + _weighted_mean(target, target_weights))


def domain_logits(discriminator: nn.Module, inputs: Tensor) -> Tensor:
    """One domain logit per row of ``inputs`` (n, ...) -> (n,); a clear error otherwise."""
    out = discriminator(inputs)
    if out.numel() != inputs.shape[0]:
        raise ValueError(f"the discriminator must give one logit per row: {inputs.shape[0]} rows gave shape "
                         f"{tuple(out.shape)}")
    return out.reshape(inputs.shape[0])
