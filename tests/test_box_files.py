"""Boxes from a user's CSV or COCO file, matched to the command line's images."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from aims_lib.box_files import BoxFileError, read_boxes


def _files(tmp_path: Path) -> list[Path]:
    (tmp_path / "a").mkdir()
    return [tmp_path / "a" / "one.png", tmp_path / "two.jpg", tmp_path / "three.png"]


def test_csv_matches_by_path_and_name(tmp_path: Path) -> None:
    files = _files(tmp_path)
    csv_file = tmp_path / "boxes.csv"
    csv_file.write_text(f"file,x,y,w,h,extra\n{files[0]},1,2,3,4,x\ntwo.jpg,5,6,7,8,y\nother.png,1,1,1,1,z\n")
    boxes = read_boxes(csv_file, files)
    np.testing.assert_allclose(boxes[:2], [[1, 2, 3, 4], [5, 6, 7, 8]])
    assert np.isnan(boxes[2]).all()  # no box: the predictor finds the infant


def test_coco_takes_the_largest_box(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    files = _files(tmp_path)
    coco = {"images": [{"id": 7, "file_name": "three.png"}, {"id": 8, "file_name": "a/one.png"}],
            "annotations": [{"image_id": 7, "bbox": [0, 0, 2, 2]}, {"image_id": 7, "bbox": [1, 1, 10, 10]},
                            {"image_id": 8, "bbox": [3, 3, 4, 4]}]}
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(coco))
    with caplog.at_level(logging.WARNING):
        boxes = read_boxes(path, files)
    np.testing.assert_allclose(boxes[2], [1, 1, 10, 10])
    np.testing.assert_allclose(boxes[0], [3, 3, 4, 4])  # relative to the box file's folder
    assert np.isnan(boxes[1]).all()
    assert "1 images have several annotations" in caplog.text


@pytest.mark.parametrize(("text", "message"), [
    ("file,x,y,w\none.png,1,2,3\n", "lacks h"),
    ("file,x,y,w,h\none.png,1,2,abc,4\n", "line 2: w = 'abc' is not a number"),
    ("file,x,y,w,h\none.png,1,2,0,4\n", "positive width"),
    ("file,x,y,w,h\none.png,1,2,inf,4\n", "not finite"),
    ("file,x,y,w,h\none.png,1,2,3,4\na/one.png,1,2,3,4\n", "has two boxes"),
])
def test_bad_csv(tmp_path: Path, text: str, message: str) -> None:
    files = _files(tmp_path)
    path = tmp_path / "boxes.csv"
    path.write_text(text)
    with pytest.raises(BoxFileError, match=message) as info:
        read_boxes(path, files)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("data", "message"), [
    ("not json", "not a JSON file"),
    (json.dumps({"images": []}), "needs lists"),
    (json.dumps({"images": [{"id": 1}], "annotations": []}), r"images\[0\] needs"),
    (json.dumps({"images": [{"id": 1, "file_name": "x.png"}], "annotations": [{"image_id": 2, "bbox": [0, 0, 1, 1]}]}),
     "image_id 2 is not an id"),
    (json.dumps({"images": [{"id": 1, "file_name": "x.png"}], "annotations": [{"image_id": 1, "bbox": [0, 0, 1]}]}),
     r"annotations\[0\]: bbox = \[0, 0, 1\]"),
])
def test_bad_coco(tmp_path: Path, data: str, message: str) -> None:
    path = tmp_path / "coco.json"
    path.write_text(data)
    with pytest.raises(BoxFileError, match=message):
        read_boxes(path, _files(tmp_path))


def test_missing_box_file(tmp_path: Path) -> None:
    with pytest.raises(BoxFileError, match="no such box file"):
        read_boxes(tmp_path / "nope.csv", _files(tmp_path))
