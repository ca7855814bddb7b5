"""Torch's CPU thread count, pinned for the duration of a small-tensor computation.

SMPLify and HIPC work on small tensors: intra-op threads gain little there, and on cores that
other processes share they cost a lot (measured 20x slower with 2 threads on 2 loaded cores).
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
