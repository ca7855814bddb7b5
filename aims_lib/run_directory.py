"""A training run's directory: the settings it was started with, and its results per data group.

A run directory holds one run. Its settings are stored there as JSON when it starts; a later
call (a resume, or a finished run reused) must bring the same ones, else it is refused, so that
two runs' checkpoints never mix. Machine-only settings (device, workers, processes) may change
between calls: they decide where and how fast a run computes, not what. A run's results are
reported per (domain, split) group of its dataset, keyed ``"domain/split"``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from aims_lib.data.format import DOMAINS, SPLITS, Sample
from aims_lib.files import write_json

T = TypeVar("T")


def claim_run_directory(
    run_dir: Path, file_name: str, settings: Mapping[str, Any], machine_keys: Collection[str], main: bool = True
) -> dict[str, Any]:
    """Refuse ``run_dir`` if its ``file_name`` holds other ``settings`` (``machine_keys`` aside),
    else store them there (only the ``main`` process writes); returns them as stored (tuples as lists)."""
    if unknown := sorted(set(machine_keys) - set(settings)):
        raise ValueError(f"machine-only keys {unknown} are not among the settings {sorted(settings)}")
    stored = json.loads(json.dumps(dict(settings)))
    path = Path(run_dir) / file_name
    if path.exists():
        previous = json.loads(path.read_text())
        if not isinstance(previous, dict):
            raise ValueError(f"{path} holds no settings (a JSON object): use another run directory")
        changed = {k: (previous.get(k), v) for k, v in stored.items() if k not in machine_keys and previous.get(k) != v}
        if changed:
            raise ValueError(f"{run_dir} holds a run with other settings {changed} (old, new): use another run directory")
    if main:
        write_json(path, stored)
    return stored


def per_group(samples: Sequence[Sample], score: Callable[[list[int]], T]) -> dict[str, T]:
    """``score`` of the indices of each non-empty (domain, split) group of ``samples``, keyed
    ``"domain/split"`` in the order of :data:`~aims_lib.data.format.DOMAINS` x ``SPLITS``."""
    groups: dict[str, list[int]] = {f"{domain}/{split}": [] for domain in DOMAINS for split in SPLITS}
    for i, sample in enumerate(samples):
        key = f"{sample.domain}/{sample.split}"
        if key not in groups:
            raise ValueError(f"sample {i} has domain {sample.domain!r} and split {sample.split!r}: "
                             f"valid are {', '.join(DOMAINS)} and {', '.join(SPLITS)}")
        groups[key].append(i)
    return {key: score(indices) for key, indices in groups.items() if indices}
