"""Cached outputs of the image branch's frozen backbone stages.

DSAN fine-tunes the whole backbone at 0.1 x the heads' learning rate, too costly on a 2-core
CPU for the quick profile's ten-odd runs. Its early stages (stem and the first block groups)
hold most of the compute at high resolution and the most generic ImageNet filters, so the quick
profile freezes them (weights and BatchNorm statistics) and fine-tunes the rest. A frozen prefix
computes the same output in every run, so it is computed once per dataset and backbone start,
stored on disk and shared by all runs. Seconds per step with and without it:
``docs/decisions.md`` ("measurements moved from docstrings"), again with
``benchmarks/image_branch_benchmark.py``.

Augmentation under a cache is the horizontal flip alone (every AIMS label is left/right
symmetric): each image is cached as it is and mirrored, and a training item takes one of the
two views at random. Random crops and colour jitter, which would change the frozen output, are
given up; the notebook says so. Evaluation reads the unflipped view, which equals running the
whole network on the image.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from aims_lib.batchnorm_folding import fold_batchnorm
from aims_lib.data.format import DOMAINS, AimsDataset, Sample
from aims_lib.data.torch_datasets import ImageDataset
from aims_lib.files import write_torch
from aims_lib.image_branch.model import ImageBranch
from aims_lib.safe_pickle import load_weights_file

log = logging.getLogger(__name__)

CACHE_FORMAT = "aims-trunk-cache/1"


@dataclass
class TrunkCache:
    """``features[i, v]``: output of the frozen stages for image ``image_id[i]``, view ``v``
    (0 as it is, 1 mirrored)."""

    image_id: np.ndarray
    features: Tensor  # (N, 2, C, H, W) float32
    stages: int  # frozen stages, i.e. the stage index the rest of the network starts from

    def rows(self, samples: list[Sample]) -> np.ndarray:
        index = {int(i): r for r, i in enumerate(self.image_id)}
        missing = [s.image_id for s in samples if s.image_id not in index]
        if missing:
            raise KeyError(f"trunk cache lacks image ids {missing[:5]}: rebuild it (delete the cache file)")
        return np.array([index[s.image_id] for s in samples], dtype=np.int64)


def _file_digest(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def cache_key(dataset: AimsDataset, arch: str, weights: str | None, stages: int, image_size: int) -> str:
    """What the cached output depends on: the annotations (images are immutable, named by
    them), the backbone and its weights, the frozen stages and the input size."""
    parts = {
        "format": CACHE_FORMAT,
        "annotations": _file_digest(dataset.path),
        "arch": arch,
        "weights": _file_digest(Path(weights)) if weights else None,
        "stages": stages,
        "image_size": image_size,
    }
    return hashlib.sha1(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


@torch.no_grad()
def build_trunk_cache(
    model: ImageBranch, dataset: AimsDataset, image_size: int, device: torch.device, batch_size: int = 64, num_workers: int = 0
) -> TrunkCache:
    """Run the frozen stages of ``model`` over every image of ``dataset``, as is and mirrored,
    as a copy with each BatchNorm folded into its convolution (:func:`~aims_lib.batchnorm_folding.fold_batchnorm`:
    the same function up to rounding, 40 % less time on 2 AVX2 cores) in channels-last,
    oneDNN's preferred layout (1.5-2x the images per second of the default one on 2 CPU cores);
    ``model`` is left as it is."""
    stages = model.backbone.frozen_stages
    if stages < 1:
        raise ValueError("the model has no frozen stages to cache")
    example = torch.randn(2, 3, image_size, image_size, generator=torch.Generator().manual_seed(0)).to(device)
    trunk = fold_batchnorm(model.backbone, example, lambda m, x: m.forward_stages(x, 0, stages))
    trunk.to(memory_format=torch.channels_last)
    ds = ImageDataset(dataset, image_size=image_size, normalization=model.normalization)
    ids, feats = [], []
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    for batch in tqdm(loader, desc="caching frozen backbone stages", unit="batch", leave=False):
        x = batch["image"].to(device).contiguous(memory_format=torch.channels_last)
        views = [trunk.forward_stages(v, 0, stages).contiguous() for v in (x, x.flip(-1))]
        feats.append(torch.stack(views, dim=1).float().cpu())
        ids.append(batch["image_id"])
    return TrunkCache(torch.cat(ids).numpy(), torch.cat(feats), stages)


def load_or_build_trunk_cache(
    model: ImageBranch, dataset: AimsDataset, image_size: int, weights: str | None, cache_dir: Path,
    device: torch.device, num_workers: int = 0,
) -> TrunkCache:
    """The cache of this dataset, backbone start and input size: read from ``cache_dir`` when
    an earlier run wrote it, else built and written atomically."""
    stages = model.backbone.frozen_stages
    path = cache_dir / f"trunk_{model.arch}_{stages}stages_{image_size}px_{cache_key(dataset, model.arch, weights, stages, image_size)}.pt"
    if path.is_file():
        state = load_weights_file(path)
        log.info("trunk cache read from %s", path)
        return TrunkCache(state["image_id"].numpy(), state["features"], int(state["stages"]))
    cache = build_trunk_cache(model, dataset, image_size, device, num_workers=num_workers)
    write_torch(path, {"image_id": torch.from_numpy(cache.image_id), "features": cache.features, "stages": cache.stages})
    log.info("trunk cache of %d images written to %s", len(cache.image_id), path)
    return cache


class TrunkFeatureDataset(Dataset):
    """Like :class:`ImageDataset`, but its ``image`` is the cached output of the frozen stages:
    with ``train`` a random one of the two views (a horizontal flip), else the unflipped one."""

    def __init__(self, cache: TrunkCache, samples: list[Sample], train: bool = False) -> None:
        self.cache = cache
        self.samples = list(samples)
        self.rows = cache.rows(self.samples)
        self.train = train

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.samples[index]
        view = int(torch.randint(2, ())) if self.train else 0
        return {
            "image": self.cache.features[self.rows[index], view],
            "coarse": s.coarse_id,
            "fine": s.fine_id,
            "domain": DOMAINS.index(s.domain),
            "image_id": s.image_id,
        }
