"""What makes a training run on a GPU repeat itself with the same seed.

On the CPU the same seed gives the same numbers as it is. On CUDA four things vary between runs
unless they are fixed before the first kernel runs:

* cuDNN's autotuner (``benchmark``) times several convolution algorithms per shape and keeps the
  fastest, which differs between runs; ``deterministic`` keeps to algorithms whose reductions
  have a fixed order;
* cuBLAS splits reductions over a workspace whose use depends on the stream:
  ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` fixes it (read when cuBLAS starts, so set here, before any
  matrix product);
* TF32 (Ampere and later) rounds float32 products to 10 mantissa bits: off, so a float32 run is
  float32 (mixed precision is chosen separately: :mod:`aims_lib.mixed_precision`);
* ops without a deterministic CUDA kernel (e.g. ``index_add_`` on floats): PyTorch warns where
  one runs (``warn_only``) rather than stopping a long run.

What can remain: the atomics inside such ops, so two runs on the same GPU model and software may
still differ in the last bits. How much is unmeasured: no GPU has been available to this project.
"""

from __future__ import annotations

import os
from typing import Any, Final

import torch

#: cuBLAS's documented deterministic workspace setting.
CUBLAS_WORKSPACE: Final[str] = ":4096:8"


def repeatable_cuda() -> dict[str, Any]:
    """Fix the settings of the module docstring for this process; returns them for a run's record.
    A ``CUBLAS_WORKSPACE_CONFIG`` the user set is kept."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    return {"cudnn_deterministic": True, "cudnn_benchmark": False, "tf32": False,
            "cublas_workspace_config": os.environ["CUBLAS_WORKSPACE_CONFIG"], "deterministic_algorithms": "warn only"}
