"""Torch's CPU thread count, pinned for the duration of a small-tensor computation.

SMPLify and HIPC work on small tensors. On idle cores they follow torch's count like every other
stage (2 threads: 1.6x and 1.9x the speed of 1 on a 2-core AMD EPYC); on cores that other
processes load, more threads cost a lot (measured 20x slower with 2 threads on 2 loaded cores),
so a caller that shares its cores pins them to 1 (docs/decisions.md, "threads of SMPLify and HIPC").
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def cpu_threads(n: int | None, device: torch.device | str = "cpu") -> Iterator[None]:
    """Run the block with ``n`` torch threads when ``device`` is the CPU (``None``: leave them
    alone); the previous count is restored afterwards, also on errors."""
    old = torch.get_num_threads()
    pin = n is not None and torch.device(device).type == "cpu"
    if pin:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if pin:
            torch.set_num_threads(old)
