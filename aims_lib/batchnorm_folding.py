r"""Inference copies of networks with each eval-mode BatchNorm folded into the convolution before it.

In eval mode a BatchNorm after a convolution is an affine map per output channel, so it can be
folded into that convolution's weights and bias:

.. math::

    s = \gamma / \sqrt{\sigma^2 + \epsilon}, \qquad W' = s \, W, \qquad b' = s \, (b - \mu) + \beta,

with :math:`\mu, \sigma^2` the running statistics. The result is the same function up to
rounding, one pass over the activations fewer per layer: on a 2-core AVX2 CPU, eval BatchNorm
was a third of EfficientNet-Lite0's forward time at 224 px (docs/decisions.md, "folding
BatchNorm for the card"). Only for inference: the copy has no BatchNorm left to train.

Pairs are found among siblings: a BatchNorm child is folded into the convolution child registered
just before it, with only parameter-free modules (activations, identities) in between (timm's and
torchvision's blocks and mmpose's ``ConvModule`` register ``conv, bn`` in the order they run). A
network where that order is not the order of execution would be folded wrongly, so
:func:`fold_batchnorm` checks the copy against the original on an example input and raises if
they differ. A module shared by two parents is folded once.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable

import torch
from torch import Tensor, nn

#: Largest relative difference between the folded copy and the original on the check input
#: (float32 rounding through tens of layers is about 1e-5).
CHECK_RTOL: float = 1e-3


def _fold_into(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    """Fold ``bn``'s eval-mode affine map into ``conv`` (module docstring), in place."""
    with torch.no_grad():
        scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        conv.weight.mul_(scale.reshape(-1, *([1] * (conv.weight.ndim - 1))))
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + bn.bias)


def _after_folding(bn: nn.BatchNorm2d) -> nn.Module:
    """What replaces a folded BatchNorm: nothing, or the activation that timm's ``BatchNormAct2d``
    applies after its normalisation (its dropout is the identity in eval mode)."""
    act = getattr(bn, "act", None)
    return act if isinstance(act, nn.Module) else nn.Identity()


def _fold_children(module: nn.Module, done: dict[int, nn.Module]) -> None:
    """Fold the BatchNorm children of ``module`` and below; ``done`` maps each folded BatchNorm
    (by id) to its replacement, so that a layer reachable from two parents is folded once."""
    last_conv = None
    for name, child in list(module.named_children()):
        if id(child) in done:
            setattr(module, name, done[id(child)])
            last_conv = None
        elif isinstance(child, nn.Conv2d):
            last_conv = child
        elif isinstance(child, nn.BatchNorm2d) and last_conv is not None and child.affine and child.track_running_stats:
            _fold_into(last_conv, child)
            done[id(child)] = _after_folding(child)
            setattr(module, name, done[id(child)])
            last_conv = None
        else:
            _fold_children(child, done)
            if any(True for _ in child.parameters()):  # a layer in between: the next BatchNorm is not the conv's
                last_conv = None


def fold_batchnorm(model: nn.Module, example: Tensor, forward: Callable[[nn.Module, Tensor], Tensor] | None = None) -> nn.Module:
    """An eval-mode copy of ``model`` with every BatchNorm that follows a convolution folded into
    it; ``model`` is left as it is. ``forward(module, x)`` says how to run it (default: ``module(x)``;
    a tuple or list output is compared element by element). Raises ``ValueError`` when the copy's
    output on ``example`` differs from the original's by more than :data:`CHECK_RTOL` of its scale."""
    run = forward or (lambda m, x: m(x))
    folded = copy.deepcopy(model).eval()
    done: dict[int, nn.Module] = {}
    _fold_children(folded, done)
    folded.requires_grad_(False)  # inference only: autograd must never trace it
    count = len(done)
    modes = [(m, m.training) for m in model.modules()]  # each its own: frozen stages stay in eval mode
    model.eval()
    with torch.no_grad(), torch.autocast(example.device.type, enabled=False):  # the check in float32
        want, got = run(model, example), run(folded, example)
    for m, mode in modes:
        m.training = mode
    pairs = zip(want, got) if isinstance(want, (tuple, list)) else [(want, got)]
    for a, b in pairs:
        error = float((a.float() - b.float()).abs().max())
        scale = float(a.float().abs().max()) or 1.0
        if error > CHECK_RTOL * scale:
            raise ValueError(f"folding {count} BatchNorm layers of {type(model).__name__} changed its output by "
                             f"{error:.3g} (scale {scale:.3g}): a BatchNorm does not follow the convolution registered before it")
    return folded


def _weights_key(module: nn.Module) -> tuple[tuple[int, int], ...]:
    """Where each parameter and buffer lives and how often it was written in place (torch's
    version counter: an optimiser step, ``load_state_dict`` and ``copy_`` all bump it)."""
    return tuple((t.data_ptr(), t._version) for t in itertools.chain(module.parameters(), module.buffers()))


class FoldedCopy:
    """The folded copy (:func:`fold_batchnorm`) of a module that runs inference many times (the
    2D estimator's backbone and neck), built on first use and kept while the module's weights
    stay as they were; rebuilt when any changes (a checkpoint loaded, a training step, a move to
    another device)."""

    def __init__(self, forward: Callable[[nn.Module, Tensor], Tensor] | None = None) -> None:
        self.forward = forward
        self._key: tuple[tuple[int, int], ...] | None = None
        self._folded: nn.Module | None = None

    def of(self, module: nn.Module, example: Tensor) -> nn.Module:
        """The folded copy of ``module``'s current weights; ``example`` checks a new copy."""
        key = _weights_key(module)
        if self._folded is None or key != self._key:
            self._folded = fold_batchnorm(module, example, self.forward)
            self._key = key
        return self._folded
