"""Source-only training: cross-entropy on the labelled source, no adaptation (the baseline).

``loss = CE(source)``. The trainer draws no target batch for it, so BatchNorm statistics are the
source's, as in a plain source-trained model (TLlib's ``erm``/``source_only`` baseline: 56.9 %
on VisDA-2017 with ResNet-101 in its public benchmark).

Sources: ``docs/references.md#uda-baselines``.
"""

from __future__ import annotations

from torch import Tensor

from aims_lib.adaptation.base import AdaptationBatch, DomainAdaptation


class SourceOnly(DomainAdaptation):
    """No adaptation loss; the trainer never calls it (``uses_target`` is False)."""

    title = "source-only"
    default_weight = 0.0
    uses_target = False

    def adaptation_loss(self, batch: AdaptationBatch) -> Tensor:
        return batch.source_logits.new_zeros(())
