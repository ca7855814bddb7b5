r"""How the weight of an adaptation loss grows over training, and the warm-up of adversarial methods.

All schedules are the sigmoid ramp :math:`r(x) = 2 / (1 + e^{-x}) - 1` (0 at the start, towards 1):

* ``none``: 1 throughout (DAN, DANN, CDAN and MCC weigh their losses so; the adversarial ones
  warm up their gradient reversal instead, :func:`grl_coefficient`);
* ``dsan``: :math:`r(10 p)` over the training progress :math:`p \in [0, 1]` (DSAN's code);
* ``deepda``: :math:`r(it / 1000)` over iterations :math:`it` (DeepDA, the toolkit of the paper's
  lab: 0.46 after 1000 iterations, 0.15 after the quick profile's 300); LMMD's default here
  (:mod:`aims_lib.image_branch.trainer` says why).

Sources: ``docs/references.md#lmmd``, ``docs/references.md#uda-baselines``.
"""

from __future__ import annotations

import math
from typing import Final, Literal

Ramp = Literal["none", "dsan", "deepda"]
RAMPS: Final[tuple[str, ...]] = ("none", "dsan", "deepda")


def sigmoid_ramp(x: float) -> float:
    """``2 / (1 + exp(-x)) - 1``: 0 at ``x = 0``, 0.46 at 1, 0.9999 at 10."""
    return 2.0 / (1.0 + math.exp(-x)) - 1.0


def ramp_factor(ramp: Ramp, progress: float, iteration: int) -> float:
    """The factor on an adaptation loss's weight at ``progress`` (iteration ``iteration``)."""
    if ramp == "none":
        return 1.0
    if ramp == "dsan":
        return sigmoid_ramp(10.0 * progress)
    if ramp == "deepda":
        return sigmoid_ramp(iteration / 1000.0)
    raise ValueError(f"ramp must be one of {', '.join(RAMPS)}, got {ramp!r}")


def grl_coefficient(progress: float, gamma: float = 10.0) -> float:
    """DANN's gradient-reversal coefficient ``r(gamma p)`` (Ganin et al. 2016, gamma = 10): the
    features ignore the discriminator while it is still random."""
    return sigmoid_ramp(gamma * progress)
