"""The paper's setting with a user's data, end to end: real images exported in SyRIP's layout,
imported, given rendered synthetic images by notebook 01, and run through every notebook with the
command a user types: ``make reproduce PROFILE=paper DRY_RUN=1 DATA_DIR=...``, the paper profile's
code path (ResNet-50 at 224 px pretrained on the synthetic images first, HRNet-W32 at 256x192,
256 px renders, both adaptation sources) on a handful of images. One run checks both (the two
were separate chains and cost the suite minutes; the embedded benchmark's chain is
tests/test_notebooks.py's smoke run)."""

from __future__ import annotations

import csv
import hashlib
import json
from pathlib import Path

import pytest

from aims_lib.data import load_dataset
from aims_lib.data.import_syrip import main as import_main
from aims_lib.profiles import DRY_RUN_SETTINGS
from aims_lib.records import DatasetRecord, DeploymentRecord, FullModelRecord
from aims_lib.reproduce import main as reproduce_main
from aims_lib.reproduce import notebooks, results_markdown
from aims_lib.synth.generator import GeneratorConfig, generate


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def export_syrip_layout(dataset_dir: Path, out: Path) -> tuple[Path, Path, Path]:
    """A dataset's images as SyRIP ships them: flat image names, a COCO keypoint file without
    AIMS fields, and a ``file_name,fine`` label table (what a user with the licensed data has)."""
    ds = load_dataset(dataset_dir)
    images_dir = out / "images" / "train_infant"
    images_dir.mkdir(parents=True)
    coco = {"images": [], "annotations": [], "categories": ds.raw["categories"]}
    rows = []
    anns = {a["image_id"]: a for a in ds.raw["annotations"]}
    for k, img in enumerate(ds.raw["images"], start=1):
        name = f"train{k:05d}.jpg"
        (images_dir / name).write_bytes((ds.root / img["file_name"]).read_bytes())
        coco["images"].append({"id": 100 + k, "file_name": name, "width": img["width"], "height": img["height"]})
        ann = anns[img["id"]]
        coco["annotations"].append({key: ann[key] for key in ("keypoints", "num_keypoints", "bbox", "area", "iscrowd", "category_id")}
                                   | {"id": 500 + k, "image_id": 100 + k})
        rows.append({"file_name": name, "fine": img["aims_fine"]})
    coco_path = out / "annotations" / "person_keypoints_train_infant.json"
    coco_path.parent.mkdir(parents=True)
    coco_path.write_text(json.dumps(coco))
    labels = out / "aims_labels.csv"
    with labels.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["file_name", "fine"])
        writer.writeheader()
        writer.writerows(rows)
    return coco_path, images_dir, labels


#: Images exported as the user's SyRIP-layout data (every split and class of the generator's plan).
IMPORTED = 32


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("realpath")
    generate(GeneratorConfig(0, IMPORTED, image_size=96, seed=7, workers=2), root / "render")
    coco, images, labels = export_syrip_layout(root / "render", root / "syrip")
    data = root / "data" / "syrip_aims"
    assert import_main(["--coco", str(coco), "--images", str(images), "--labels", str(labels),
                        "--out", str(data), "--domain", "real"]) == 0
    before = _digest(data)
    assert reproduce_main(["--profile", "paper", "--dry-run", "--device", "cpu", "--data-dir", str(data),
                           "--reports", str(root / "reports")]) == 0
    return root, data, before


def test_the_import_gets_synthetic_images_and_stays_untouched(real_run: tuple[Path, Path, dict[str, str]]) -> None:
    root, data, before = real_run
    assert _digest(data) == before
    merged = load_dataset(root / "data" / "syrip_aims+synthetic-paper-dry-run-procedural-seed0")
    real = load_dataset(data)
    synthetic = merged.select(domain="synthetic")
    assert len(synthetic) == DRY_RUN_SETTINGS["n_synthetic"] and len(merged.select(domain="real")) == len(real) == IMPORTED
    assert {(s.width, s.height) for s in synthetic} == {(256, 256)}  # the paper profile's renders
    assert [s.split for s in merged.select(domain="real")] == [s.split for s in real.samples]  # splits as imported
    assert (root / "data" / "syrip_aims-synthetic-paper-dry-run-procedural-seed0" / "annotations.json").is_file()


def test_every_notebook_reports_real_data_and_the_dry_run(real_run: tuple[Path, Path, dict[str, str]]) -> None:
    root, _, _ = real_run
    reports = root / "reports" / "paper-dry-run" / "syrip_aims-seed0"
    results = json.loads((reports / "results.json").read_text())
    assert results["data"] == "real" and results["synthetic_body"] == "procedural"
    assert results["dry_run"] is True and results["profile"] == "paper"
    assert set(results["wall_seconds"]) == {nb.stem for nb in notebooks()}
    dataset = DatasetRecord.read(reports)
    assert dataset["data"] == "real" and dataset["counts"]["synthetic/train"] == DRY_RUN_SETTINGS["n_synthetic"]
    assert dataset["dataset"].endswith("syrip_aims+synthetic-paper-dry-run-procedural-seed0/annotations.json")
    for record in sorted(reports.glob("0*.json")):  # every notebook's record says both
        if record.stem[:2].isdigit() and not record.stem.endswith("table2"):
            content = json.loads(record.read_text())
            assert content.get("dry_run") is True, record.name
            if record.stem != "01_dataset":
                assert content["data"] == "DRY RUN (numbers meaningless), real data", record.name
    assert "**DRY RUN**" in results_markdown(results)


def test_the_paper_profiles_models_ran(real_run: tuple[Path, Path, dict[str, str]]) -> None:
    """The code the paper profile picks, not the smoke profile's: what a GPU's hours would run."""
    root, _, _ = real_run
    reports = root / "reports" / "paper-dry-run" / "syrip_aims-seed0"
    results = json.loads((reports / "results.json").read_text())
    assert results["image_backbone"]["name"] == "resnet50"
    assert "pretrained here on the synthetic images" in results["image_backbone"]["weights"]
    assert results["pose2d"]["config"] == "hrnet_w32_256x192.py"
    assert results["uda_methods"]["plan"] == {m: ["synthetic", "synthetic+real"] for m in results["uda_methods"]["plan"]}
    assert FullModelRecord.read(reports)["train_keypoints"] == DRY_RUN_SETTINGS["hipc_keypoints"] == "smplify_gt2d"
    assert DeploymentRecord.read(reports)["orientation"]["n"] == DRY_RUN_SETTINGS["orientation_images"] == 2
