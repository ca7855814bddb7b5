"""Mixed precision for a training loop: which dtype the forward pass runs in, and the backward
step that goes with it.

On a GPU, ``auto`` runs the forward pass under ``torch.autocast`` in bfloat16 where the GPU
computes it (Ampere and later: ``torch.cuda.is_bf16_supported()``), else in float16 with a
gradient scaler (float16's 5 exponent bits underflow small gradients; the scaler multiplies the
loss by ``S``, divides the gradients by ``S`` before the step, skips steps whose gradients are
not finite and adapts ``S``). On the CPU ``auto`` is float32: the CPU profiles' image branch is
cheap and its published numbers were measured in float32 (the 2D estimator has its own CPU
bfloat16 hook, :mod:`aims_lib.pose_branch.cpu_amp`). Losses are computed in float32 from the
forward pass's outputs (:meth:`MixedPrecision.outputs`): kernel sums such as MMD's lose their
small differences in 8 mantissa bits.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import torch

PRECISIONS: Final[tuple[str, ...]] = ("auto", "float32", "bfloat16", "float16")


def autocast_dtype(device: torch.device | str, precision: str = "auto") -> torch.dtype | None:
    """The forward pass's dtype on ``device`` (None: float32, no autocast); see the module docstring."""
    device = torch.device(device)
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "float32" or (precision == "auto" and device.type != "cuda"):
        return None
    if precision == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if precision == "bfloat16" else torch.float16


class MixedPrecision:
    """Autocast context and scaled backward step of one training run on ``device``."""

    def __init__(self, device: torch.device | str, precision: str = "auto") -> None:
        self.device = torch.device(device)
        self.dtype = autocast_dtype(self.device, precision)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

    @property
    def name(self) -> str:
        """What the run computes in, for its log and metrics: e.g. ``float16 autocast, gradient scaler``."""
        if self.dtype is None:
            return "float32"
        return f"{str(self.dtype).removeprefix('torch.')} autocast" + (", gradient scaler" if self.scaler.is_enabled() else "")

    @contextmanager
    def autocast(self) -> Iterator[None]:
        with torch.autocast(self.device.type, dtype=self.dtype or torch.float32, enabled=self.dtype is not None):
            yield

    @staticmethod
    def outputs(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """The forward pass's outputs in float32, for the losses."""
        return tuple(t.float() for t in tensors)

    def step(self, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        """Backward and optimiser step: ``loss * S`` backward, gradients unscaled, the step
        skipped when they are not finite, ``S`` updated (``S`` = 1 and no check without float16)."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    def state_dict(self) -> dict[str, Any]:
        return self.scaler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state:
            self.scaler.load_state_dict(state)
