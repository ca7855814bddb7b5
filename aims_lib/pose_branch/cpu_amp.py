"""bfloat16 mixed-precision training of mmpose models on CPUs that compute bfloat16 natively.

mmengine's ``AmpOptimWrapper`` requires a GPU. On a CPU with AVX512-BF16 or AMX (Intel Sapphire
Rapids and later, AMD Zen 4 and later), autocasting convolutions to bfloat16 and keeping the
model's activations channels-last makes training about twice as fast at the same accuracy
within run-to-run noise. Without native bfloat16, autocasting is far slower than float32, so it
is then off and training stays in float32. Channels-last pays in float32 too, so the hook sets
it on every CPU. The measurements: ``docs/decisions.md`` ("measurements moved from docstrings",
bfloat16 on the CPU), again with ``python benchmarks/pose2d_training_speed.py --steps 12``.

A config enables it with (``configs/pose2d/hrnet_w16s_96x96_fast.py``)::

    custom_imports = dict(imports=['aims_lib.pose_branch.cpu_amp'], allow_failed_imports=False)
    optim_wrapper = dict(type='CpuBf16OptimWrapper', optimizer=...)
    custom_hooks = [dict(type='CpuBf16Hook')]

Only training steps are autocast (the loss and the optimiser state stay float32); validation
and inference run in float32. On a GPU both are no-ops.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from mmengine.hooks import Hook
from mmengine.optim import OptimWrapper
from mmengine.registry import HOOKS, OPTIM_WRAPPERS

from aims_lib.machine import computes_bf16


def _on_cpu(model: torch.nn.Module) -> bool:
    return next(model.parameters()).device.type == "cpu"


@OPTIM_WRAPPERS.register_module()
class CpuBf16OptimWrapper(OptimWrapper):
    """An ``OptimWrapper`` whose training step runs under ``torch.autocast("cpu", bfloat16)``
    when the model is on a CPU with native bfloat16 (``enabled=None``: detect; True/False: force)."""

    def __init__(self, *args: Any, enabled: bool | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.enabled = computes_bf16() if enabled is None else bool(enabled)

    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module) -> Iterator[None]:
        with super().optim_context(model):
            if self.enabled and _on_cpu(model):
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    yield
            else:
                yield


@HOOKS.register_module()
class CpuBf16Hook(Hook):
    """Before the run: the model channels-last on any CPU (oneDNN's preferred layout, in float32
    as in bfloat16), and the heatmap head's output cast to float32 (mmpose's training accuracy
    converts it to NumPy, which has no bfloat16)."""

    def before_run(self, runner: Any) -> None:
        model = runner.model
        if _on_cpu(model):
            model.to(memory_format=torch.channels_last)
        final = getattr(getattr(model, "head", None), "final_layer", None)
        if final is not None:
            final.register_forward_hook(lambda module, inputs, output: output.float())
