"""The image branch on several processes (GPUs) under torchrun: the same run as one process with
the same global batch.

``make reproduce ... GPUS=N`` starts ``torchrun --standalone --nproc_per_node=N -m
aims_lib.image_branch.distributed`` (:func:`train_distributed`, :mod:`aims_lib.torchrun`);
each process trains with
:func:`~aims_lib.image_branch.trainer.train_image_branch`, which reads the process group
(:func:`current`). Why N processes compute what one process computes, with ``B`` images per
domain in a step and ``b = B / N`` per process:

* data: every process draws the same seeded global batch as one process would (the same
  sampler, the same augmentation draws) and trains on its slice ``[r b, (r + 1) b)``. Each
  process decodes the whole global batch (N times the decoding of its share), the price of
  augmentation equal to one process's; data-loader workers hide it at the paper's 32 images;
* cross-entropy: each process's mean over its slice; DistributedDataParallel averages the
  gradients over processes, which is the gradient of the mean over the global batch;
* the adaptation loss (MMD, LMMD, adversarial, MCC): features, logits, labels and target
  probabilities of all processes are gathered with their gradients (:func:`gather`) and every
  process computes the loss of the whole global batch. All-gather's backward sums the N
  processes' gradients into each slice (N times the one-process gradient) and the average over
  processes divides by N again; per-process losses would not be equivalent (MMD of a slice is
  not the MMD of the batch);
* BatchNorm: statistics of the global batch (:class:`GlobalBatchNorm`: each process's count,
  mean and squared deviations gathered with their gradients), on every backend: torch's SyncBatchNorm
  runs on GPUs only, and the equivalence test runs 2 CPU processes with gloo
  (``tests/test_distributed.py``). Running statistics are updated from the global batch, as one
  process's (unbiased variance);
* validation, checkpoints, outputs and records: process 0; the others wait at barriers.

Tolerance: the global statistics and the gradients are summed in another order than one
process's, so the results agree to float32 rounding, not bit for bit (``tests/test_distributed.py``
states the tolerance it checks).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from aims_lib.torchrun import join_group, run_module, split_batch

# torch.distributed.nn's collectives carry gradients; their successors are private API
warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.\w+ is deprecated", category=FutureWarning)


@dataclass(frozen=True)
class Processes:
    """This process's place in the group: rank, group size and its GPU index."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.size > 1:
            dist.barrier()

    def slice(self, tensor: torch.Tensor) -> torch.Tensor:
        """This process's rows of a global batch."""
        b = split_batch(len(tensor), self.size, "global batch")
        return tensor[self.rank * b : (self.rank + 1) * b]


def current() -> Processes:
    """The process group this process belongs to (one process when none is initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return Processes()
    return Processes(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)))


def gather(tensor: torch.Tensor) -> torch.Tensor:
    """All processes' rows, in rank order, with their gradients (the module docstring says why
    the backward's sum is right); the tensor itself for one process."""
    if current().size == 1:
        return tensor
    from torch.distributed.nn import functional

    return torch.cat(functional.all_gather(tensor))


class GlobalBatchNorm(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch over all processes.
    Each process's per-channel count ``n_r``, mean ``m_r`` and sum of squared deviations ``M_r``
    are gathered with their gradients and combined as Chan et al.'s parallel variance:
    ``mean = sum_r n_r m_r / n``, ``var = sum_r (M_r + n_r (m_r - mean)^2) / n``; unlike
    ``E[x^2] - E[x]^2`` this keeps its digits when a channel's variance is small beside its mean
    (the 1 x 1 maps of a ResNet's last stage on small inputs lost 5e-4 of an update that way).
    Evaluation, and training in one process, are BatchNorm2d's own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or current().size == 1:
            return super().forward(x)
        from torch.distributed.nn import functional

        c = x.shape[1]
        local_mean = x.mean((0, 2, 3))
        local_m2 = ((x - local_mean[None, :, None, None]) ** 2).sum((0, 2, 3))
        parts = torch.stack(functional.all_gather(torch.cat([local_mean, local_m2, x.new_full((1,), x.numel() / c)])))
        counts, means = parts[:, -1:], parts[:, :c]
        n = counts.sum()
        mean = (counts * means).sum(0) / n
        var = (parts[:, c : 2 * c] + counts * (means - mean) ** 2).sum(0) / n
        if self.track_running_stats and self.running_mean is not None and self.running_var is not None:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(m * mean.detach())
                self.running_var.mul_(1 - m).add_(m * var.detach() * n / (n - 1))
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        return y * self.weight[None, :, None, None] + self.bias[None, :, None, None] if self.affine else y


def to_global_batchnorm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm2d turned into a :class:`GlobalBatchNorm` in place (its
    class changed, its parameters, statistics and every reference to it kept: a staged backbone
    runs its stages through references of its own)."""
    for m in module.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = GlobalBatchNorm
    return module


def train_distributed(dataset: str | Path, run_dir: str | Path, cfg: Any, processes: int,
                      extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Train one image-branch run with ``processes`` processes under torchrun (one per GPU when
    ``cfg.device`` is ``cuda``; gloo on the CPU otherwise); returns its metrics."""
    from dataclasses import asdict

    run_dir = Path(run_dir)
    run_module("aims_lib.image_branch.distributed",
               ["--dataset", str(dataset), "--run-dir", str(run_dir), "--config", json.dumps(asdict(cfg))],
               processes, run_dir / "torchrun.log", extra_env)
    return json.loads((run_dir / "metrics.json").read_text())


def main(argv: Sequence[str] | None = None) -> int:
    """One torchrun process: join the group, train, leave."""
    from aims_lib.image_branch.trainer import ImageTrainConfig, train_image_branch

    parser = argparse.ArgumentParser(prog="torchrun ... -m aims_lib.image_branch.distributed")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--config", required=True, help="ImageTrainConfig fields as JSON")
    args = parser.parse_args(argv)
    settings = json.loads(args.config)
    cfg = ImageTrainConfig(**{**settings, "device": join_group(settings["device"])})
    try:
        train_image_branch(args.dataset, args.run_dir, cfg)
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
