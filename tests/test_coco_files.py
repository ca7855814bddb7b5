"""The 2D estimator's sets and the COCO files mmpose reads them from."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from aims_lib.data.format import load_dataset
from aims_lib.pose_branch.coco_files import split_sets, write_coco_splits


def test_training_domains_choose_the_training_images_only(aims_tiny: Path) -> None:
    ds = load_dataset(aims_tiny)
    both, synthetic = split_sets(ds), split_sets(ds, ("synthetic",))
    assert {s.domain for s in both["train"]} == {"synthetic", "real"}
    assert [s.image_id for s in synthetic["train"]] == [s.image_id for s in both["train"] if s.domain == "synthetic"]
    assert synthetic["val"] == both["val"] and synthetic["test"] == both["test"]  # always real
    for bad in ((), ("target",)):
        with pytest.raises(ValueError, match="train_domains must be a non-empty subset"):
            split_sets(ds, bad)


def test_coco_files_hold_each_sets_annotations(aims_tiny: Path, tmp_path: Path) -> None:
    ds = load_dataset(aims_tiny)
    paths = write_coco_splits(ds, tmp_path)
    assert paths == {name: tmp_path / f"{name}.json" for name in ("train", "val", "test")}
    for name, samples in split_sets(ds).items():
        coco = json.loads(paths[name].read_text())
        assert [i["id"] for i in coco["images"]] == [s.image_id for s in samples]
        for s, ann in zip(samples, coco["annotations"], strict=True):
            # x, y, v triples; the area is the file's (the OKS scale), not the box's
            np.testing.assert_allclose(np.reshape(ann["keypoints"], (17, 3)), np.column_stack([s.keypoints_2d, s.visibility]))
            assert ann["num_keypoints"] == int((s.visibility > 0).sum()) and ann["bbox"] == s.bbox.tolist()
            assert ann["area"] == next(a["area"] for a in ds.raw["annotations"] if a["image_id"] == s.image_id)
