import json
import re
import shutil
import subprocess
import sys

import pytest
from pycocotools.coco import COCO

from aims_lib.data import DatasetError, load_dataset
from aims_lib.data.import_syrip import assign_splits, import_syrip, main


def _args(syrip, out, *extra):
    return [
        "--coco", str(syrip / "annotations" / "person_keypoints_train_infant.json"),
        "--images", str(syrip / "images" / "train_infant"),
        "--labels", str(syrip / "aims_labels.csv"),
        "--out", str(out), *extra,
    ]


def test_import_converts_labels_domains_and_3d(syrip_tiny, tmp_path):
    out = tmp_path / "imported"
    assert main(_args(syrip_tiny, out, "--split", "train")) == 0
    ds = load_dataset(out)
    by_src = {s.file_name.split("/")[-1]: s for s in ds.samples}
    assert len(ds) == 7  # train00007 has no AIMS label and is left out
    assert "train00007.jpg" not in by_src
    assert by_src["train00001.jpg"].fine == "Supine Lying"
    assert by_src["train00003.jpg"].fine == "Sitting w/ Arm Support"  # lenient spelling
    assert by_src["syn00001.jpg"].domain == "synthetic"
    assert by_src["train00002.jpg"].domain == "real"
    assert by_src["train00002.jpg"].keypoints_3d is not None  # normalised on import
    assert by_src["train00001.jpg"].keypoints_3d is None
    assert {s.split for s in ds.samples} == {"train"}
    assert ds.info["source"] == "import"
    COCO(str(out / "annotations.json"))  # pycocotools loads the result unchanged


def test_posture_disagreement_is_reported_not_overwritten(syrip_tiny, tmp_path, capsys):
    out = tmp_path / "imported"
    main(_args(syrip_tiny, out))
    printed = capsys.readouterr().out
    assert "train00004.jpg" in printed and "posture disagreement" in printed
    report = json.loads((out / "import_report.json").read_text())
    assert [d["file_name"] for d in report["posture_disagreements"]] == ["train00004.jpg"]
    s = next(s for s in load_dataset(out).samples if s.file_name.endswith("train00004.jpg"))
    assert (s.fine, s.coarse) == ("Sitting w/o Support", "Sitting")  # the fine label holds
    raw = json.loads((out / "annotations.json").read_text())
    entry = next(i for i in raw["images"] if i["file_name"].endswith("train00004.jpg"))
    assert entry["syrip_posture"] == "Supine"  # kept for the record
    # "All Fours" admits four-point standing: no disagreement for train00005
    assert report["unlabelled_images_left_out"] == 1


def test_source_files_are_not_modified(syrip_tiny, tmp_path):
    coco_file = syrip_tiny / "annotations" / "person_keypoints_train_infant.json"
    before = coco_file.read_bytes()
    import_syrip(coco_file, syrip_tiny / "images" / "train_infant", syrip_tiny / "aims_labels.csv", tmp_path / "o")
    assert coco_file.read_bytes() == before


def test_unknown_label_in_table_names_the_row(syrip_tiny, tmp_path):
    labels = tmp_path / "labels.csv"
    labels.write_text("file_name,fine\ntrain00001.jpg,Supine Lying\ntrain00002.jpg,Flying\n")
    with pytest.raises(DatasetError, match=r"labels.csv: line 3 \(train00002.jpg\): field 'fine'.*Flying"):
        import_syrip(
            syrip_tiny / "annotations" / "person_keypoints_train_infant.json",
            syrip_tiny / "images" / "train_infant", labels, tmp_path / "o",
        )


def test_missing_columns_and_no_matches(syrip_tiny, tmp_path):
    coco = syrip_tiny / "annotations" / "person_keypoints_train_infant.json"
    images = syrip_tiny / "images" / "train_infant"
    labels = tmp_path / "labels.csv"
    labels.write_text("name,fine\nx.jpg,Standing\n")
    with pytest.raises(DatasetError, match="column 'file_name' missing"):
        import_syrip(coco, images, labels, tmp_path / "o")
    labels.write_text("file_name,fine\nother.jpg,Standing\n")
    with pytest.raises(DatasetError, match="no file_name matches"):
        import_syrip(coco, images, labels, tmp_path / "o")


def test_missing_image_file_is_named(syrip_tiny, tmp_path):
    src = tmp_path / "syrip"
    shutil.copytree(syrip_tiny, src)
    (src / "images" / "train_infant" / "train00002.jpg").unlink()
    with pytest.raises(DatasetError, match="train00002.jpg.*image file not found"):
        import_syrip(src / "annotations" / "person_keypoints_train_infant.json",
                     src / "images" / "train_infant", src / "aims_labels.csv", tmp_path / "o")


def test_auto_split_is_stratified_and_seeded():
    items = [(f"img{i:03d}.jpg", "Standing" if i % 2 else "Rolling") for i in range(200)]
    a = assign_splits(items, seed=3)
    assert a == assign_splits(items, seed=3)
    assert a != assign_splits(items, seed=4)
    counts = {fine: {s: sum(1 for n, f in items if f == fine and a[n] == s) for s in ("train", "val", "test")}
              for fine in ("Standing", "Rolling")}
    assert sum(c["test"] for c in counts.values()) == 53  # round(200 * 198/750)
    assert sorted(c["test"] for c in counts.values()) == [26, 27]  # 26.4 each: the one left over to one class
    assert [c["val"] for c in counts.values()] == [10, 10]  # 10 %


def test_auto_split_gives_small_classes_validation_images():
    """12 classes of 4 images: per-class rounding would give no validation image at all."""
    from aims_lib import taxonomy

    items = [(f"img{i:03d}.jpg", taxonomy.FINE[i % 12]) for i in range(48)]
    a = assign_splits(items, seed=0)
    assert sum(v == "test" for v in a.values()) == 13 and sum(v == "val" for v in a.values()) == 5  # round(12.7), round(4.8)
    for fine in taxonomy.FINE:
        assert sum(a[n] == "train" for n, f in items if f == fine) >= 1


def test_cli_rejects_missing_paths(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "aims_lib.data.import_syrip", "--coco", str(tmp_path / "no.json"),
         "--images", str(tmp_path), "--labels", str(tmp_path / "l.csv"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "--coco: file not found" in proc.stderr


# --- input checks of issue #16 (item 2) ---------------------------------------------------

COCO_NAME = "person_keypoints_train_infant.json"


def _copy(syrip_tiny, tmp_path):
    """A writable copy of the fixture; returns (coco path, images dir, labels path, parsed coco)."""
    src = tmp_path / "syrip"
    shutil.copytree(syrip_tiny, src)
    coco = src / "annotations" / COCO_NAME
    return coco, src / "images" / "train_infant", src / "aims_labels.csv", json.loads(coco.read_text())


def test_partly_filled_split_column_is_an_error(syrip_tiny, tmp_path):
    coco, images, labels, _ = _copy(syrip_tiny, tmp_path)
    rows = labels.read_text().splitlines()
    filled = [rows[0] + ",split", rows[1] + ",test"] + [r + "," for r in rows[2:]]
    labels.write_text("\n".join(filled) + "\n")
    with pytest.raises(DatasetError, match=r"aims_labels.csv: line 3 \(train00002.jpg\): field 'split': empty") as err:
        import_syrip(coco, images, labels, tmp_path / "o")
    assert "line 2 has 'test'" in str(err.value) and "6 of 7 rows" in str(err.value)
    assert not (tmp_path / "o").exists()  # nothing written, nothing re-split
    # A complete split column that contradicts --split is refused too (no silent override).
    labels.write_text("\n".join([rows[0] + ",split"] + [r + ",test" for r in rows[1:]]) + "\n")
    with pytest.raises(DatasetError, match=r"aims_labels.csv: line 2 \(train00001.jpg\): field 'split': 'test' conflicts with --split train"):
        import_syrip(coco, images, labels, tmp_path / "o", split="train")


def test_duplicate_coco_image_id_is_an_error(syrip_tiny, tmp_path):
    coco, images, labels, data = _copy(syrip_tiny, tmp_path)
    data["images"][1]["id"] = data["images"][0]["id"]
    coco.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=rf"{COCO_NAME}: images\[1\] \(train00002.jpg\): field 'id': duplicate image id 1 \(also images\[0\]\)"):
        import_syrip(coco, images, labels, tmp_path / "o")


def test_several_annotations_keep_the_most_labelled_with_a_warning(syrip_tiny, tmp_path):
    coco, images, labels, data = _copy(syrip_tiny, tmp_path)
    extra = json.loads(json.dumps(data["annotations"][0]))
    extra["id"] = 99
    extra["keypoints"][2::3] = [2.0] * 10 + [0.0] * 7  # fewer labelled keypoints
    data["annotations"].insert(0, extra)  # first in file order, but not kept
    coco.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match=r"train00001.jpg.*2 annotations.*kept annotation id 1 \(17 labelled keypoints\).*dropped \[99\]"):
        report = import_syrip(coco, images, labels, tmp_path / "o")
    assert report["several_annotations"] == [{"file_name": "train00001.jpg", "kept": 1, "dropped": [99]}]
    s = next(s for s in load_dataset(tmp_path / "o").samples if s.file_name.endswith("train00001.jpg"))
    assert (s.visibility > 0).sum() == 17


@pytest.mark.parametrize("bad", ["../train00001.jpg", "/data/train00001.jpg", "sub/../../x.jpg", "C:\\x.jpg"])
def test_absolute_or_parent_file_names_are_rejected(syrip_tiny, tmp_path, bad):
    coco, images, labels, data = _copy(syrip_tiny, tmp_path)
    data["images"][6]["file_name"] = bad  # train00007 has no label: today it is skipped silently
    coco.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=rf"{COCO_NAME}: images\[6\].*field 'file_name'.*outside the images directory"):
        import_syrip(coco, images, labels, tmp_path / "o")


def test_bbox_partly_outside_is_clipped_with_a_warning(syrip_tiny, tmp_path):
    coco, images, labels, data = _copy(syrip_tiny, tmp_path)
    data["annotations"][0]["bbox"] = [-5.0, 3.0, 44.0, 50.0]  # image is 48x40
    coco.write_text(json.dumps(data))
    with pytest.warns(UserWarning, match=rf"{COCO_NAME}: annotations\[0\] \(id=1, train00001.jpg\): field 'bbox'.*outside the 48x40 image; clipped to \[0.0, 3.0, 39.0, 37.0\]"):
        import_syrip(coco, images, labels, tmp_path / "o")
    raw = json.loads((tmp_path / "o" / "annotations.json").read_text())
    entry = next(i for i in raw["images"] if i["source_file_name"] == "train00001.jpg")
    ann = next(a for a in raw["annotations"] if a["image_id"] == entry["id"])
    assert ann["bbox"] == [0.0, 3.0, 39.0, 37.0]


def test_excel_csv_with_bom_is_read(syrip_tiny, tmp_path):
    coco, images, labels, _ = _copy(syrip_tiny, tmp_path)
    labels.write_bytes("\r\n".join(labels.read_text().splitlines()).encode("utf-8-sig"))
    assert import_syrip(coco, images, labels, tmp_path / "o")["imported"] == 7


def test_non_utf8_input_names_the_file(syrip_tiny, tmp_path):
    coco, images, labels, data = _copy(syrip_tiny, tmp_path)
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(labels.read_bytes() + "bébé.jpg,Standing\n".encode("latin-1"))
    with pytest.raises(DatasetError, match=r"latin1.csv: not UTF-8 text"):
        import_syrip(coco, images, latin1, tmp_path / "o")
    data["images"][6]["file_name"] = "bébé.jpg"
    coco.write_bytes(json.dumps(data, ensure_ascii=False).encode("latin-1"))
    with pytest.raises(DatasetError, match=rf"{COCO_NAME}: not UTF-8 text"):
        import_syrip(coco, images, labels, tmp_path / "o")


def test_unreadable_or_wrongly_sized_image_is_caught_at_import(syrip_tiny, tmp_path):
    from PIL import Image

    coco, images, labels, _ = _copy(syrip_tiny, tmp_path)
    (images / "train00002.jpg").write_bytes(b"not an image")
    with pytest.raises(DatasetError, match=rf"{COCO_NAME}: images\[1\] \(train00002.jpg\): field 'file_name': cannot read image .*train00002.jpg"):
        import_syrip(coco, images, labels, tmp_path / "o")
    assert not (tmp_path / "o").exists()
    Image.new("RGB", (10, 12)).save(images / "train00002.jpg", format="JPEG")
    with pytest.raises(DatasetError, match=r"images\[1\] \(train00002.jpg\): field 'width'.*image is 10x12, COCO says 48x40"):
        import_syrip(coco, images, labels, tmp_path / "o")


def test_input_errors_name_the_input_file_not_the_output(syrip_tiny, tmp_path):
    coco, images, labels, data = _copy(syrip_tiny, tmp_path)
    data["annotations"][2]["keypoints"][5] = 3.0  # visibility flag 3
    coco.write_text(json.dumps(data))
    with pytest.raises(DatasetError, match=r"visibility flags must be 0, 1 or 2") as err:
        import_syrip(coco, images, labels, tmp_path / "o")
    assert str(err.value).startswith(f"{coco}: annotations[2] (id=3, train00003.jpg): field 'keypoints'")
    assert "annotations.json" not in str(err.value) and not (tmp_path / "o").exists()


def test_reimport_replaces_a_stale_copy_of_the_same_size(syrip_tiny, tmp_path):
    coco, images, labels, _ = _copy(syrip_tiny, tmp_path)
    out = tmp_path / "o"
    import_syrip(coco, images, labels, out)
    copy = out / "images" / "train00001.jpg"
    stale = bytes(b ^ 0xFF for b in copy.read_bytes())  # same size, other content
    copy.write_bytes(stale)
    import_syrip(coco, images, labels, out)
    assert copy.read_bytes() == (images / "train00001.jpg").read_bytes()


# --- outputs never overwrite inputs; no symbolic link out of --images (issue #24) -----------


@pytest.mark.parametrize(("out", "relation", "flag", "source"), [
    (".", "contains", "--coco", f"annotations/{COCO_NAME}"),
    ("annotations", "contains", "--coco", f"annotations/{COCO_NAME}"),
    (f"annotations/{COCO_NAME}", "is", "--coco", f"annotations/{COCO_NAME}"),
    ("aims_labels.csv", "is", "--labels", "aims_labels.csv"),
    ("images", "contains", "--images", "images/train_infant"),
    ("images/train_infant", "is", "--images", "images/train_infant"),
    ("images/train_infant/imported", "lies inside", "--images", "images/train_infant"),
    ("link/annotations", "contains", "--coco", f"annotations/{COCO_NAME}"),  # judged on resolved paths
])
def test_an_import_into_its_own_source_is_refused(syrip_tiny, tmp_path, capsys, out, relation, flag, source):
    coco, images, labels, _ = _copy(syrip_tiny, tmp_path)
    src = coco.parents[1]
    (tmp_path / "link").symlink_to(src, target_is_directory=True)
    before = {p: p.read_bytes() for p in src.rglob("*") if p.is_file()}
    target = src / out if not out.startswith("link") else tmp_path / out
    assert main(_args(src, target)) == 2
    err = capsys.readouterr().err
    assert f"--out {(src / out.removeprefix('link/')).resolve()} {relation} {flag} {(src / source).resolve()}:" in err
    assert {p: p.read_bytes() for p in src.rglob("*") if p.is_file()} == before  # nothing written, nothing replaced


def test_an_import_beside_its_source_is_fine(syrip_tiny, tmp_path):
    coco, images, labels, _ = _copy(syrip_tiny, tmp_path)
    out = coco.parents[1] / "aims"  # inside the SyRIP folder, overlapping no input
    assert import_syrip(coco, images, labels, out)["imported"] == 7


def test_a_symbolic_link_out_of_images_is_refused(syrip_tiny, tmp_path):
    coco, images, labels, data = _copy(syrip_tiny, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    (images / "train00002.jpg").rename(outside / "train00002.jpg")
    (images / "train00002.jpg").symlink_to(outside / "train00002.jpg")  # a file outside the dataset
    with pytest.raises(DatasetError, match=rf"{COCO_NAME}: images\[1\] \(train00002.jpg\): field 'file_name': .*train00002.jpg leads to {re.escape(str(outside))}/train00002.jpg, outside --images {re.escape(str(images))}"):
        import_syrip(coco, images, labels, tmp_path / "o")
    assert not (tmp_path / "o").exists()
    # a folder outside, linked into --images
    (images / "train00002.jpg").unlink()
    (images / "linked").symlink_to(outside, target_is_directory=True)
    data["images"][1]["file_name"] = "linked/train00002.jpg"
    coco.write_text(json.dumps(data))
    labels.write_text(labels.read_text().replace("train00002.jpg", "linked/train00002.jpg"))
    with pytest.raises(DatasetError, match=rf"images\[1\] \(linked/train00002.jpg\): field 'file_name': .*leads to {re.escape(str(outside))}/train00002.jpg, outside --images"):
        import_syrip(coco, images, labels, tmp_path / "o")
    # a link that stays inside --images is fine
    (images / "linked").unlink()
    (images / "sub").mkdir()
    (outside / "train00002.jpg").rename(images / "sub" / "train00002.jpg")
    (images / "linked").symlink_to("sub", target_is_directory=True)
    assert import_syrip(coco, images, labels, tmp_path / "o")["imported"] == 7
    assert (tmp_path / "o" / "images" / "linked" / "train00002.jpg").read_bytes() == (images / "sub" / "train00002.jpg").read_bytes()
    assert not (tmp_path / "o" / "images" / "linked").is_symlink()  # the import holds a copy, not the link
