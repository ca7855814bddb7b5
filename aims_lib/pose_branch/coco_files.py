"""The 2D estimator's data sets as plain COCO keypoint files, the format mmpose reads.

mmpose's ``CocoDataset`` and ``CocoMetric`` (and xtcocotools' OKS evaluation) read COCO files,
so each set is written as one: train = the training images of the chosen domains (synthetic
and real by default), val = real val, test = real test. Paths are relative to the dataset root;
``area`` (the OKS scale) is the file's when it has one, else the box area.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from aims_lib.data.format import DOMAINS, AimsDataset, Sample, person_category
from aims_lib.files import write_json


def coco_dict(ds: AimsDataset, samples: Sequence[Sample]) -> dict[str, Any]:
    """A plain COCO keypoint dict of ``samples`` (module docstring: paths and ``area``)."""
    areas = {a["image_id"]: a.get("area") for a in ds.raw["annotations"]}
    return {
        "info": {"description": "written by aims_lib.pose_branch.coco_files"},
        "images": [
            {"id": s.image_id, "file_name": s.file_name, "width": s.width, "height": s.height} for s in samples
        ],
        "annotations": [
            {
                "id": s.image_id,
                "image_id": s.image_id,
                "category_id": 1,
                "keypoints": np.column_stack([s.keypoints_2d, s.visibility]).ravel().tolist(),
                "num_keypoints": int((s.visibility > 0).sum()),
                "bbox": s.bbox.tolist(),
                "area": float(areas.get(s.image_id) or s.bbox[2] * s.bbox[3]),
                "iscrowd": 0,
            }
            for s in samples
        ],
        "categories": [person_category()],
    }


def split_sets(ds: AimsDataset, train_domains: Sequence[str] = DOMAINS) -> dict[str, list[Sample]]:
    """The estimator's sets: train = the training images of ``train_domains`` (synthetic and
    real by default); val, test = real."""
    unknown = set(train_domains) - set(DOMAINS)
    if unknown or not train_domains:
        raise ValueError(f"train_domains must be a non-empty subset of {DOMAINS}, got {tuple(train_domains)}")
    return {
        "train": [s for s in ds.select("train") if s.domain in train_domains],
        "val": ds.select("val", "real"),
        "test": ds.select("test", "real"),
    }


def write_coco_splits(ds: AimsDataset, out_dir: Path, train_domains: Sequence[str] = DOMAINS) -> dict[str, Path]:
    """Write one COCO file per set (``<out_dir>/<set>.json``); returns their paths by set."""
    paths = {}
    for name, samples in split_sets(ds, train_domains).items():
        paths[name] = out_dir / f"{name}.json"
        write_json(paths[name], coco_dict(ds, samples), indent=None)
    return paths
