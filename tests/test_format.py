import copy
import json
import os
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from aims_lib import taxonomy
from aims_lib.data import format as fmt
from aims_lib.data.format import DatasetError, load_dataset, validate, write_dataset


@pytest.fixture
def raw(aims_tiny: Path) -> dict:
    return json.loads(aims_tiny.read_text())


def _check(data: dict, root: Path, *, match: str, check_images: bool = False) -> str:
    with pytest.raises(DatasetError, match=match) as err:
        validate(data, "fixture.json", root, check_images)
    msg = str(err.value)
    assert msg.startswith("fixture.json: ")  # names the file
    return msg


def test_fixture_loads_and_is_complete(aims_tiny):
    ds = load_dataset(aims_tiny)
    assert len(ds) == 12
    assert {s.fine for s in ds.samples} == set(taxonomy.FINE)
    assert {s.domain for s in ds.samples} == {"synthetic", "real"}
    assert {s.split for s in ds.samples} == {"train", "val", "test"}
    s = ds.samples[0]
    assert s.keypoints_2d.shape == (17, 2) and s.visibility.shape == (17,)
    assert s.keypoints_3d.shape == (17, 3) and s.camera["K"].shape == (3, 3)
    assert s.path == aims_tiny.parent / s.file_name and s.path.is_file()
    assert s.fine_id == taxonomy.FINE.index(s.fine)
    assert len(ds.select(split="test", domain="real")) == len(
        [x for x in ds.samples if x.split == "test" and x.domain == "real"]
    )


def test_directory_path_finds_annotations(aims_tiny):
    assert len(load_dataset(aims_tiny.parent)) == 12


def test_pycocotools_loads_fixture_unchanged(aims_tiny):
    coco = COCO(str(aims_tiny))
    assert len(coco.getImgIds()) == 12
    assert coco.loadCats(1)[0]["keypoints"] == list(taxonomy.KEYPOINTS)
    ann = coco.loadAnns(coco.getAnnIds(imgIds=[1]))[0]
    assert len(ann["keypoints"]) == 51


def test_unknown_label(raw, aims_tiny):
    raw["images"][3]["aims_fine"] = "Cartwheel"
    msg = _check(raw, aims_tiny.parent, match="field 'aims_fine'")
    assert "images[3] (id=4)" in msg and "Cartwheel" in msg


def test_coarse_fine_mismatch(raw, aims_tiny):
    raw["images"][0]["aims_coarse"] = "Sitting"  # fine is Prone Lying
    msg = _check(raw, aims_tiny.parent, match="field 'aims_coarse'")
    assert "'Prone'" in msg and "images[0]" in msg


def test_lenient_labels_are_accepted(raw, aims_tiny):
    raw["images"][0]["aims_fine"] = "prone_lying"
    raw["images"][0]["aims_coarse"] = "PRONE"
    samples = validate(raw, "x", aims_tiny.parent)
    assert samples[0].fine == "Prone Lying" and samples[0].coarse == "Prone"


@pytest.mark.parametrize("n", [16, 18])
def test_wrong_keypoint_count(raw, aims_tiny, n):
    raw["annotations"][2]["keypoints"] = raw["annotations"][2]["keypoints"][:48] + [1.0] * (3 * (n - 16))
    msg = _check(raw, aims_tiny.parent, match="field 'keypoints'")
    assert f"({n:g} keypoints)" in msg and "annotations[2]" in msg


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_keypoints(raw, aims_tiny, bad):
    raw["annotations"][1]["keypoints"][4] = bad
    msg = _check(raw, aims_tiny.parent, match="non-finite")
    assert "field 'keypoints'" in msg and "[1, 1]" in msg


def test_non_finite_3d_and_camera(raw, aims_tiny):
    bad = copy.deepcopy(raw)
    bad["annotations"][0]["keypoints_3d"][5][2] = float("nan")
    _check(bad, aims_tiny.parent, match="field 'keypoints_3d'.*non-finite")
    bad = copy.deepcopy(raw)
    bad["annotations"][0]["camera"]["T"][0] = float("inf")
    _check(bad, aims_tiny.parent, match="field 'camera.T'.*non-finite")


def test_3d_keypoints_must_follow_the_convention(raw, aims_tiny):
    raw["annotations"][0]["keypoints_3d"] = (
        np.asarray(raw["annotations"][0]["keypoints_3d"]) * 2.0
    ).tolist()
    _check(raw, aims_tiny.parent, match="nose-to-pelvis 2.0000")


def test_bbox_outside_image(raw, aims_tiny):
    raw["annotations"][0]["bbox"] = [30.0, 10.0, 40.0, 10.0]  # x + w = 70 > width 48
    msg = _check(raw, aims_tiny.parent, match="field 'bbox'.*outside its image")
    assert "48x40" in msg


def test_missing_image_file(raw, aims_tiny):
    raw["images"][5]["file_name"] = "images/not_there.png"
    msg = _check(raw, aims_tiny.parent, match="image file not found", check_images=True)
    assert "not_there.png" in msg and "field 'file_name'" in msg
    validate(raw, "fixture.json", aims_tiny.parent, check_images=False)  # fine without the check


def test_duplicate_image_id(raw, aims_tiny):
    raw["images"][1]["id"] = raw["images"][0]["id"]
    _check(raw, aims_tiny.parent, match="duplicate image id 1")


def test_duplicate_annotation_id(raw, aims_tiny):
    raw["annotations"][1]["id"] = raw["annotations"][0]["id"]
    _check(raw, aims_tiny.parent, match="duplicate annotation id 101")


def test_two_annotations_for_one_image(raw, aims_tiny):
    raw["annotations"][1]["image_id"] = raw["annotations"][0]["image_id"]
    _check(raw, aims_tiny.parent, match="more than one annotation")


def test_bad_domain_split_and_source(raw, aims_tiny):
    bad = copy.deepcopy(raw)
    bad["images"][0]["domain"] = "render"
    _check(bad, aims_tiny.parent, match="field 'domain'.*'render'")
    bad = copy.deepcopy(raw)
    bad["images"][0]["split"] = "dev"
    _check(bad, aims_tiny.parent, match="field 'split'.*'dev'")
    bad = copy.deepcopy(raw)
    bad["info"]["source"] = "internet"
    _check(bad, aims_tiny.parent, match="field 'source'")


def test_missing_field_is_named(raw, aims_tiny):
    del raw["images"][2]["split"]
    _check(raw, aims_tiny.parent, match=r"images\[2\] \(id=3\): field 'split': missing")


def test_invalid_json_names_file(tmp_path):
    p = tmp_path / "annotations.json"
    p.write_text("{not json")
    with pytest.raises(DatasetError, match=str(p)):
        load_dataset(p)
    with pytest.raises(FileNotFoundError, match="nothing.json"):
        load_dataset(tmp_path / "nothing.json")


def test_write_round_trip_is_byte_stable(raw, tmp_path):
    p1 = write_dataset(raw, tmp_path / "a.json")
    p2 = write_dataset(json.loads(p1.read_text()), tmp_path / "b.json")
    assert p1.read_bytes() == p2.read_bytes()
    assert json.loads(p1.read_text()) == raw


def test_write_refuses_invalid_data_and_keeps_old_file(raw, tmp_path):
    target = write_dataset(raw, tmp_path / "annotations.json")
    before = target.read_bytes()
    bad = copy.deepcopy(raw)
    bad["images"][0]["aims_fine"] = "nope"
    with pytest.raises(DatasetError):
        write_dataset(bad, target)
    assert target.read_bytes() == before


def test_write_is_atomic_under_a_crash(raw, tmp_path, monkeypatch):
    target = write_dataset(raw, tmp_path / "annotations.json")
    before = target.read_bytes()
    raw["images"][0]["split"] = "val"

    def crash(*args, **kwargs):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(fmt.os, "replace", crash)
    with pytest.raises(OSError, match="simulated crash"):
        write_dataset(raw, target)
    assert target.read_bytes() == before  # old file intact
    assert os.listdir(tmp_path) == ["annotations.json"]  # no temporary left behind


# --- reader checks of issue #16 (item 3) --------------------------------------------------


def test_visible_keypoint_far_outside_the_image(raw, aims_tiny):
    w = raw["images"][0]["width"]  # 48x40
    raw["annotations"][0]["keypoints"][3 * 9:3 * 9 + 3] = [w * 1.2, 20.0, 2]  # 20 % out: allowed
    raw["annotations"][0]["keypoints"][3 * 10:3 * 10 + 3] = [500.0, 20.0, 0]  # unlabelled: ignored
    validate(raw, "fixture.json", aims_tiny.parent)
    raw["annotations"][0]["keypoints"][3 * 9:3 * 9 + 3] = [w * 1.6, 20.0, 2]  # 60 % out
    msg = _check(raw, aims_tiny.parent, match=r"annotations\[0\] \(id=101\): field 'keypoints'")
    assert "keypoint 9 (left_wrist)" in msg and "(76.8, 20.0)" in msg and "48x40" in msg


@pytest.mark.parametrize("fld, index", [("keypoints", 4), ("bbox", 1)])
def test_numbers_given_as_strings(raw, aims_tiny, fld, index):
    raw["annotations"][1][fld][index] = str(raw["annotations"][1][fld][index])
    msg = _check(raw, aims_tiny.parent, match=rf"annotations\[1\] \(id=102\): field '{fld}': expected numbers")
    assert f"{raw['annotations'][1][fld][index]!r}" in msg and "(a string)" in msg


@pytest.mark.parametrize("bad", ["../outside.png", "/etc/passwd", "images/../../x.png", "C:\\data\\x.png"])
def test_file_name_escaping_the_dataset_folder(raw, aims_tiny, bad):
    raw["images"][2]["file_name"] = bad
    msg = _check(raw, aims_tiny.parent, match=r"images\[2\] \(id=3\): field 'file_name'")
    assert "outside the dataset folder" in msg and repr(bad) in msg
