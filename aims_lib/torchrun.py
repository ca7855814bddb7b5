"""Several training processes under torchrun (PyTorch's launcher), started from a notebook.

A notebook cannot fork training processes itself (``mp.spawn`` breaks inside Jupyter), so the
image branch (:mod:`aims_lib.image_branch.distributed`) and the 2D estimator
(:mod:`aims_lib.pose_branch.distributed_2d`) start ``torchrun --standalone
--nproc_per_node=N -m <module>`` as a subprocess (:func:`run_module`) and read the run's files
back. Inside, each process joins the group with :func:`join_group`: NCCL and its own GPU
(``cuda:LOCAL_RANK``) when the run is on CUDA, gloo on the CPU (the tests' 2 processes).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.distributed as dist


def first_error(log_text: str) -> str:
    """The first exception a process raised, as ``[rank1]: ValueError: ...`` (torchrun's own
    summary names only exit codes), else the log's last line."""
    for line in log_text.splitlines():
        if re.match(r"^(\[rank\d+\]:\s*)?[\w.]*(Error|Exception): ", line):
            return line.strip()
    lines = log_text.strip().splitlines()
    return lines[-1] if lines else "no output"


def split_batch(n: int, processes: int, what: str = "batch_size") -> int:
    """Each process's share of a global batch of ``n``, which must split evenly."""
    if n % processes:
        raise ValueError(f"{what} {n} does not split over {processes} processes: use a multiple of {processes}")
    return n // processes


def run_module(module: str, args: Sequence[str], processes: int, log_file: Path, env: dict[str, str] | None = None) -> None:
    """Run ``python -m module *args`` in ``processes`` processes under torchrun; its output goes
    to ``log_file``. A failing process stops all and raises with its first exception."""
    if processes < 1:
        raise ValueError(f"processes must be >= 1, got {processes}")
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               "-m", module, *args]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, **(env or {})})
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.write_text(done.stdout + done.stderr)
    if done.returncode:
        raise RuntimeError(f"torchrun with {processes} processes failed (exit {done.returncode}): "
                           f"{first_error(done.stdout + done.stderr)} (whole log: {log_file})")


def join_group(device: str) -> str:
    """Join torchrun's process group (NCCL on CUDA, else gloo); returns this process's device:
    ``cuda:LOCAL_RANK`` for a CUDA run, else ``device``."""
    if torch.device(device).type == "cuda":
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        dist.init_process_group("nccl")
        return f"cuda:{local_rank}"
    dist.init_process_group("gloo")
    return device
