import json
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
    for fine in ("Standing", "Rolling"):
        counts = {s: sum(1 for n, f in items if f == fine and a[n] == s) for s in ("train", "val", "test")}
        assert counts == {"train": 64, "val": 10, "test": 26}  # round(100*198/750)=26, 10 %


def test_cli_rejects_missing_paths(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "aims_lib.data.import_syrip", "--coco", str(tmp_path / "no.json"),
         "--images", str(tmp_path), "--labels", str(tmp_path / "l.csv"), "--out", str(tmp_path / "o")],
        capture_output=True, text=True,
    )
    assert proc.returncode == 2 and "--coco: file not found" in proc.stderr
