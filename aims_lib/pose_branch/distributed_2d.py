"""The 2D estimator on several processes (GPUs): one torchrun process of a prepared run.

:func:`~aims_lib.pose_branch.keypoints2d.train_keypoints_2d` with ``processes = N`` prepares the
run directory (settings, COCO files, the merged config with each process's share of the batch)
in the notebook's process, starts ``torchrun --standalone --nproc_per_node=N -m
aims_lib.pose_branch.distributed_2d`` (:mod:`aims_lib.torchrun`) and, once all have finished,
predicts and evaluates in its own process. Each process here joins the group (NCCL on CUDA,
gloo on the CPU), and trains with mmengine's ``pytorch`` launcher: mmengine's sampler gives each
process its shard of every epoch, MMDistributedDataParallel averages the gradients, process 0
writes the checkpoints and the epoch records. BatchNorm keeps per-process statistics, as mmpose
trains its published top-down models on 8 GPUs (the 2D loss is per image, so nothing else needs
the global batch); with the paper's 64 images split over up to 8 GPUs each still sees 8.
mmengine's own launcher setup calls ``torch.cuda.set_device`` even on the CPU, so the group is
joined here first and mmengine finds it initialised; the model wrapper gets ``device_ids=None``
(mmengine would pass ``[LOCAL_RANK]``, which DDP refuses for a CPU module; a one-GPU module
accepts both).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import torch.distributed as dist

from aims_lib.pose_branch.keypoints2d import run_training
from aims_lib.pose_branch.model_config import read_run_config
from aims_lib.torchrun import join_group


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="torchrun ... -m aims_lib.pose_branch.distributed_2d")
    parser.add_argument("--run-dir", required=True, help="a run directory train_keypoints_2d prepared")
    parser.add_argument("--device", default="cpu", help="cuda: NCCL, one GPU per process; cpu: gloo")
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    config = read_run_config(run_dir)
    join_group(args.device)
    config.launcher = "pytorch"
    config.model_wrapper_cfg = {"type": "MMDistributedDataParallel", "broadcast_buffers": False, "device_ids": None}
    try:
        run_training(config, run_dir, main_process=dist.get_rank() == 0)
        dist.barrier()  # no process leaves the group while another still writes or communicates
    finally:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
