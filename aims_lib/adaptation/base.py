"""What a domain-adaptation method needs from the trainer, and what it gives back.

The trainer runs source and target images through the network in one pass and hands the method
an :class:`AdaptationBatch` (features, logits, source labels, target class probabilities,
training progress); the method returns one scalar loss, and the trainer minimises
``CE(source) + weight * ramp(p) * loss``. A method may own trainable parameters (DANN's domain
discriminator): they are the module's parameters, which the trainer adds to its optimizer and
checkpoints, so resuming a run restores them. Nothing in the trainer names a method; the
registry (:mod:`aims_lib.adaptation.registry`) maps names to classes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

from torch import Tensor, nn

from aims_lib.adaptation.schedule import Ramp


@dataclass(frozen=True)
class AdaptationBatch:
    """One training step as a method sees it; tensors on the network's device."""

    source_features: Tensor  # (n_s, d) bottleneck features, with gradient
    target_features: Tensor  # (n_t, d)
    source_logits: Tensor  # (n_s, C), with gradient
    target_logits: Tensor  # (n_t, C)
    source_labels: Tensor  # (n_s,) class ids
    #: (n_t, C) without gradient: the network's softmax on the target, or, in the trainer's
    #: ``target_labels="oracle"`` diagnostic, the target's true labels one-hot.
    target_probs: Tensor
    progress: float  # share of training done, in [0, 1)


def check_feature_batches(source_features: Tensor, target_features: Tensor) -> None:
    """Raise ``ValueError`` unless both batches are 2-D with the same feature dimension."""
    if source_features.ndim != 2 or target_features.ndim != 2:
        raise ValueError("features must be 2-D (batch, dim)")
    if source_features.shape[1] != target_features.shape[1]:
        raise ValueError(
            f"feature dims differ: source {source_features.shape[1]}, target {target_features.shape[1]}"
        )


class DomainAdaptation(nn.Module, ABC):
    """A domain-adaptation method: one loss on an :class:`AdaptationBatch`, with its paper's defaults.

    Subclasses keep a ``forward`` with the loss's natural inputs (what the numerics tests call)
    and implement :meth:`adaptation_loss`, which picks those inputs from the batch.
    """

    #: How tables and figures name the method.
    title: ClassVar[str]
    #: The weight of the loss in its paper (the trainer's ``adaptation_weight`` default).
    default_weight: ClassVar[float]
    #: How that weight grows over training (:mod:`aims_lib.adaptation.schedule`).
    default_ramp: ClassVar[Ramp] = "none"
    #: False for a method that never looks at the target (source-only): the trainer then draws
    #: no target batch, and the method has no weight or ramp.
    uses_target: ClassVar[bool] = True

    @classmethod
    def for_task(cls, num_classes: int, feature_dim: int) -> DomainAdaptation:
        """The method with its defaults, sized for ``num_classes`` and ``feature_dim``-d features."""
        return cls()

    @abstractmethod
    def adaptation_loss(self, batch: AdaptationBatch) -> Tensor:
        """The scalar loss of one training step."""
