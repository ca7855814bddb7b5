"""Names of the domain-adaptation methods, as configs, run names and histories spell them.

Adding a method is one module and one entry here. For example, Deep CORAL (Sun & Saenko 2016):

1. ``aims_lib/adaptation/coral.py``, with the formula and its source in the docstring::

       class CORALLoss(DomainAdaptation):
           '''||Cov(f^s) - Cov(f^t)||_F^2 / (4 d^2) (Sun & Saenko 2016); weight 1.0, no ramp.'''

           title = "Deep CORAL"
           default_weight = 1.0

           def forward(self, source_features: Tensor, target_features: Tensor) -> Tensor:
               d = source_features.shape[1]
               return (torch.cov(source_features.T) - torch.cov(target_features.T)).square().sum() / (4 * d * d)

           def adaptation_loss(self, batch: AdaptationBatch) -> Tensor:
               return self(batch.source_features, batch.target_features)

2. ``"coral": CORALLoss,`` in :data:`METHODS`.

``ImageTrainConfig(method="coral")`` then trains it, with its default weight and ramp unless
given; a method with trainable parameters (a discriminator) creates them in ``__init__`` and
overrides :meth:`~aims_lib.adaptation.base.DomainAdaptation.for_task` to size them.
"""

from __future__ import annotations

from typing import Final

from aims_lib.adaptation.base import DomainAdaptation
from aims_lib.adaptation.cdan import CDANLoss
from aims_lib.adaptation.dan import MMDLoss
from aims_lib.adaptation.dann import DANNLoss
from aims_lib.adaptation.lmmd import LMMDLoss
from aims_lib.adaptation.mcc import MCCLoss
from aims_lib.adaptation.source_only import SourceOnly

METHODS: Final[dict[str, type[DomainAdaptation]]] = {
    "source_only": SourceOnly,
    "lmmd": LMMDLoss,
    "dan": MMDLoss,
    "dann": DANNLoss,
    "cdan": CDANLoss,
    "mcc": MCCLoss,
}


def get_method(name: str) -> type[DomainAdaptation]:
    """The class registered as ``name``."""
    if name not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {name!r}")
    return METHODS[name]


def build_method(name: str, num_classes: int, feature_dim: int) -> DomainAdaptation:
    """The method ``name`` with its defaults, for ``num_classes`` classes and ``feature_dim``-d features."""
    return get_method(name).for_task(num_classes, feature_dim)
