"""Notebook 04's HIPC study: training plan, inputs, scores by source, Table 2 over seeds and the
error analysis, on small hand-made inputs (HIPC's training and prediction replaced by fakes
where the wiring, not the network, is under test)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from aims_lib import full_model, taxonomy
from aims_lib.data import load_dataset
from aims_lib.full_model import (
    DeployedPredictions,
    HipcData,
    diagnosis,
    errors_across_coarse,
    hipc_data,
    image_branch_runs,
    keypoint_quality,
    paper_comparisons,
    per_class_table,
    score_sources,
    source_rows,
    table2_rows,
    train_plan,
    training_plan,
)
from aims_lib.hipc import HIPCTrainConfig, HIPCTrainResult
from aims_lib.pose_branch.lifting import ground_truth_3d_camera
from aims_lib.statistics import Accuracy, accuracy

# fine ids and their parents: 0, 1 Prone; 4, 5 Supine; 7 Sitting; 11 Standing
FIRST_CHILD = np.array([0, 4, 7, 10])


def test_the_plan_trains_the_pose_branch_on_every_source_and_the_full_model_on_two() -> None:
    assert training_plan("smplify_estimated", [3]) == [
        ("gt3d", "pose_branch", 3), ("gt3d", "full_model", 3), ("smplify_gt2d", "pose_branch", 3),
        ("smplify_estimated", "pose_branch", 3), ("smplify_estimated", "full_model", 3)]
    assert training_plan("gt3d", [0, 2])[-3:] == [  # the ground truth: no second full model; then seed 2's pair
        ("smplify_estimated", "pose_branch", 0), ("gt3d", "pose_branch", 2), ("gt3d", "full_model", 2)]
    assert len(training_plan("gt3d", [0])) == 4
    with pytest.raises(ValueError, match=r"train_keypoints must be one of .*, got 'hrnet'"):
        training_plan("hrnet", [0])
    with pytest.raises(ValueError, match="at least one training seed"):
        training_plan("gt3d", [])


def test_the_image_branch_runs_of_every_seed_or_an_error_naming_the_missing_ones(tmp_path: Path) -> None:
    record = {"runs_by_seed": {"coarse/synthetic+real/lmmd/0": "a", "coarse/synthetic+real/lmmd/1": "a_seed1",
                               "coarse/synthetic/lmmd/2": "b_seed2"}}
    assert image_branch_runs(record, tmp_path, [0, 1]) == {0: tmp_path / "a", 1: tmp_path / "a_seed1"}
    with pytest.raises(ValueError, match=r"no image-branch runs of training seed\(s\) \[2\]: run notebook 02"):
        image_branch_runs(record, tmp_path, [0, 2])


class _Fits:
    """A stand-in for a Pose3DSet: keypoints that carry their image id, NaN for image 11 (a failed fit)."""

    def by_id(self, ids: list[int]) -> np.ndarray:
        out = np.repeat(np.asarray(ids, np.float32)[:, None, None], 17, 1).repeat(3, 2)
        out[np.asarray(ids) == 11] = np.nan
        return out


def test_hipc_data_gathers_keypoints_probabilities_and_labels_by_split(aims_tiny: Path) -> None:
    ds = load_dataset(aims_tiny)
    splits = {"train": ds.select("train"), "val": ds.select("val", "real"), "test": ds.select("test", "real")}
    logits = np.zeros((len(ds.samples), 4))
    logits[[s.image_id == 11 for s in ds.samples], 1] = np.log(3.0)  # image 11: probabilities 1/6, 3/6, 1/6, 1/6
    data = hipc_data(splits, {"smplify_gt2d": _Fits(), "smplify_estimated": _Fits()}, {0: logits}, ds.samples)
    assert [s.image_id for s in splits["test"]] == [7, 11]
    np.testing.assert_allclose(data.coarse_probs[0]["test"], [[0.25] * 4, [1 / 6, 3 / 6, 1 / 6, 1 / 6]])
    assert data.keypoints["smplify_estimated"]["val"][:, 0, 0].tolist() == [2.0, 10.0]
    np.testing.assert_array_equal(data.keypoints["gt3d"]["test"], ground_truth_3d_camera(splits["test"]).astype(np.float32))
    assert data.fine["test"].tolist() == [6, 10] and len(data.fine["train"]) == 8
    failed = data.failed_share()
    assert failed["smplify_gt2d"] == {"train": 0.0, "val": 0.0, "test": 50.0} and failed["gt3d"]["test"] == 0.0


def _data() -> HipcData:
    """Four test images of fine ids 0, 4, 7, 11 (parents 0, 1, 2, 3); keypoints of each source
    carry the fine id a fake pose branch reads from them; the image branch of seed 0 gets every
    parent right, seed 1's calls all Prone."""
    truth = np.array([0, 4, 7, 11])

    def kp(ids: list[int]) -> np.ndarray:
        return np.repeat(np.asarray(ids, np.float32)[:, None, None], 17, 1).repeat(3, 2)

    guesses = {"gt3d": [0, 4, 7, 11], "smplify_gt2d": [0, 4, 7, 10], "smplify_estimated": [0, 5, 8, 1]}
    keypoints = {src: {"train": kp([0, 1]), "val": kp([2]), "test": kp(g)} for src, g in guesses.items()}
    keypoints["gt3d"]["train"] = kp([3, 3])
    coarse = {0: {"train": np.full((2, 4), 0.25), "val": np.full((1, 4), 0.25), "test": np.eye(4)},
              1: {"train": np.full((2, 4), 0.5), "val": np.full((1, 4), 0.5), "test": np.eye(4)[[0, 0, 0, 0]]}}
    return HipcData(keypoints, coarse, {"train": np.array([0, 1]), "val": np.array([2]), "test": truth})


def _fake_predict(model: Any, keypoints: np.ndarray, coarse_probs: np.ndarray | None = None) -> np.ndarray:
    """The pose branch reads the fine id its keypoints carry; the full model answers the first child
    of the coarse label it is given (log-probabilities)."""
    fine = keypoints[:, 0, 0].astype(int) if coarse_probs is None else FIRST_CHILD[coarse_probs.argmax(1)]
    return np.log(np.eye(taxonomy.NUM_FINE)[fine] * 0.88 + 0.01)


def _result(hierarchical: bool, seed: int, val: float = 50.0) -> HIPCTrainResult:
    return HIPCTrainResult(model=None, config=HIPCTrainConfig(hierarchical=hierarchical, seed=seed), history=[],
                           best_epoch=3, best_val_acc=val, n_train=2, n_excluded=1, seconds=0.5)


def test_train_plan_gives_each_model_its_inputs_and_selects_on_the_deployable_input(monkeypatch) -> None:
    data, calls = _data(), []

    def fake_train(keypoints, labels, cfg, coarse_probs=None, val_keypoints=None, val_labels=None, val_coarse_probs=None):
        calls.append((keypoints, cfg, coarse_probs, val_keypoints, val_coarse_probs))
        return _result(cfg.hierarchical, cfg.seed)

    monkeypatch.setattr(full_model, "train_hipc", fake_train)
    models = train_plan(data, [("gt3d", "pose_branch", 0), ("smplify_estimated", "full_model", 1)], epochs=2, seed=0)
    assert list(models) == [("gt3d", "pose_branch", 0), ("smplify_estimated", "full_model", 1)]
    (kp_pose, cfg_pose, cp_pose, val_pose, vcp_pose), (kp_full, cfg_full, cp_full, val_full, vcp_full) = calls
    assert kp_pose is data.keypoints["gt3d"]["train"] and cp_pose is None and vcp_pose is None
    assert (cfg_pose.hierarchical, cfg_pose.seed, cfg_pose.epochs) == (False, 0, 2)
    assert (cfg_full.hierarchical, cfg_full.seed) == (True, 1)  # the run's seed, over the settings'
    assert cp_full is data.coarse_probs[1]["train"] and vcp_full is data.coarse_probs[1]["val"]
    assert val_pose is val_full is data.keypoints["smplify_estimated"]["val"]


def test_a_source_whose_fits_all_failed_is_left_out_with_a_warning(monkeypatch, caplog) -> None:
    data = _data()
    data.keypoints["smplify_estimated"]["train"][:] = np.nan  # every fit failed (a 2D model of one epoch)
    data.keypoints["smplify_gt2d"]["train"][1] = np.nan  # one fit left: too few
    monkeypatch.setattr(full_model, "train_hipc", lambda keypoints, labels, cfg, **kw: _result(cfg.hierarchical, cfg.seed))
    plan = training_plan("smplify_estimated", [0])
    with caplog.at_level("WARNING", logger="aims_lib.full_model"):
        models = train_plan(data, plan, epochs=2)
    assert list(models) == [("gt3d", "pose_branch", 0), ("gt3d", "full_model", 0)]
    assert "pose_branch on smplify_estimated, seed 0: not trained, 0 training images" in caplog.text
    assert "pose_branch on smplify_gt2d, seed 0: not trained, 1 training images" in caplog.text
    with pytest.raises(ValueError, match="no pose_branch and full_model trained on smplify_estimated .seed 0."):
        full_model.deployed_predictions(models, data, "smplify_estimated", 0)


def test_scores_by_source_with_each_test_input_and_the_true_coarse_label(monkeypatch) -> None:
    monkeypatch.setattr(full_model, "predict_hipc", _fake_predict)
    data = _data()
    models = {("smplify_estimated", "pose_branch", 0): _result(False, 0), ("smplify_estimated", "full_model", 0): _result(True, 0),
              ("smplify_estimated", "full_model", 1): _result(True, 1), ("smplify_gt2d", "pose_branch", 0): _result(False, 0, 75.0)}
    by_source = score_sources(models, data, headline=0)
    assert list(by_source) == ["smplify_estimated", "smplify_gt2d"]  # seed 1 is not the headline
    pose = by_source["smplify_estimated"]["pose_branch"]
    assert {src: a["top1"] for src, a in pose["test_input"].items()} == {"gt3d": 100.0, "smplify_gt2d": 75.0, "smplify_estimated": 25.0}
    assert "true_coarse" not in pose and (pose["excluded"], pose["best_epoch"], pose["val_top1"]) == (1, 3, 50.0)
    full = by_source["smplify_estimated"]["full_model"]
    # seed 0's image branch gets every parent right: first children 0, 4, 7, 10 -> 3 of 4
    assert full["test_input"]["smplify_estimated"]["top1"] == 75.0 and full["true_coarse"]["top1"] == 75.0
    assert full["test_input"]["gt3d"] == asdict(accuracy(np.array([0, 4, 7, 10]), data.fine["test"], 12))
    rows = source_rows(by_source)
    assert [(r["train keypoints"], r["model"]) for r in rows] == [
        ("smplify_estimated", "pose branch"), ("smplify_estimated", "full model"), ("smplify_gt2d", "pose branch")]
    assert rows[0]["test (gt3d input)"] == str(Accuracy(**pose["test_input"]["gt3d"])) and rows[2]["real val (selection)"] == 75.0
    assert "test (smplify_estimated input, true coarse)" in rows[1] and "test (smplify_estimated input, true coarse)" not in rows[0]
    record = {"train_keypoints": "smplify_estimated", "hipc_by_source": by_source}
    quality = keypoint_quality(record)
    assert {m: {k: a.top1 for k, a in q.items()} for m, q in quality.items()} == {
        "pose branch": {"ground-truth 2D": 75.0, "estimated 2D": 25.0}, "full model": {"ground-truth 2D": 75.0, "estimated 2D": 75.0}}


def test_table2_rows_are_the_headline_seed_with_every_seed_beside_it(monkeypatch) -> None:
    monkeypatch.setattr(full_model, "predict_hipc", _fake_predict)
    data = _data()
    models = {("smplify_estimated", m, k): _result(m == "full_model", k) for m in ("pose_branch", "full_model") for k in (0, 1)}
    predictions = {k: full_model.deployed_predictions(models, data, "smplify_estimated", k) for k in (1, 0)}
    # pose branch: fine 0, 5, 8, 1 -> fine 1 of 4, parents 0, 1, 2, 0 -> 3 of 4; full model: seed 0 3 of 4, seed 1 1 of 4
    ours, detail = table2_rows(predictions, headline=0)
    assert ours == {"coarse": {"pose": 75.0}, "fine": {"pose": 25.0, "full": 75.0}}
    assert detail["fine"]["full"]["seeds"] == [0, 1] and detail["fine"]["full"]["per_seed"]["top1"] == [75.0, 25.0]
    assert detail["fine"]["full"]["over_seeds"]["mean"] == 50.0 and detail["coarse"]["pose"]["top1"] == 75.0


def _predictions() -> DeployedPredictions:
    """Six test images; the full model's log-probabilities put 0.9 on its fine label."""
    full = np.array([0, 4, 7, 1, 5, 8])
    log_probs = np.log(np.eye(12)[full] * (0.9 - 0.1 / 11) + 0.1 / 11)
    return DeployedPredictions(fine_true=np.array([0, 4, 7, 11, 5, 1]), pose_fine=np.array([4, 5, 7, 10, 0, 1]),
                               full_log_probs=log_probs)


def test_corrections_put_the_ones_across_coarse_labels_first() -> None:
    pred = _predictions()
    assert pred.full_fine.tolist() == [0, 4, 7, 1, 5, 8] and pred.full_coarse.tolist() == [0, 1, 2, 0, 1, 2]
    c = pred.corrections()
    # image 0: pose said 4 (Supine) for 0 (Prone), across; image 1: 5 for 4, same parent; image 4: 0 for 5, across
    assert c.corrected.tolist() == [0, 1, 4] and c.across_coarse.tolist() == [0, 4]
    assert c.made_wrong == 1  # image 5: the pose branch right, the full model wrong
    assert c.shown() == [0, 4, 1] and c.shown(2) == [0, 4]


def test_reports_per_class_table_and_errors_across_coarse_labels() -> None:
    pred = _predictions()
    reports = pred.reports()
    assert reports["pose_branch"]["fine"]["top1"] == pytest.approx(200 / 6)  # images 2 and 5
    assert reports["full_model"]["fine"]["top1"] == pytest.approx(400 / 6)  # images 0, 1, 2 and 4
    assert reports["pose_branch"]["coarse"]["top1"] == pytest.approx(400 / 6)  # parents 1, 1, 2, 3, 0, 0 for 0, 1, 2, 3, 1, 0
    table = per_class_table(reports, "coarse")
    assert list(table) == ["pose branch", "full model"]
    assert table["full model"]["Prone"] == 50.0 and table["full model"]["Standing"] == 0.0  # Prone: images 0 and 5
    assert table["full model"]["macro (class mean)"] == (50.0 + 100.0 + 100.0 + 0.0) / 4
    assert table["full model"]["top-1"] == reports["full_model"]["coarse"]["top1"] and list(table["full model"])[-2:] == [
        "macro (class mean)", "top-1"]
    confusion = np.zeros((12, 12), int)
    confusion[0, 0], confusion[0, 3], confusion[0, 4], confusion[11, 10], confusion[11, 1] = 5, 2, 3, 1, 4
    assert errors_across_coarse(confusion) == 3 + 4  # 0 -> 4 and 11 -> 1 cross; 0 -> 3 and 11 -> 10 do not
    assert errors_across_coarse(reports["pose_branch"]["fine"]["confusion"]) == 2  # images 0 and 4


def test_paper_comparisons_and_diagnosis_on_the_same_images() -> None:
    from aims_lib.paper_tables import PAPER_COMPARISONS

    pred = _predictions()
    image_coarse, image_fine = np.array([0, 1, 2, 3, 3, 3]), np.array([0, 0, 0, 0, 0, 0])
    comps = paper_comparisons(pred, image_coarse, image_fine, seed=0)
    assert all(c.name in PAPER_COMPARISONS for c in comps)
    full_vs_pose, coarse, fine = comps
    assert (full_vs_pose.a_only, full_vs_pose.b_only, full_vs_pose.difference) == (1, 3, pytest.approx(200 / 6))
    # coarse: the image branch alone right on image 0, the pose branch alone on image 5
    assert (coarse.a, coarse.b, coarse.a_only, coarse.b_only) == ("image branch (LMMD)", "pose branch", 1, 1)
    assert (fine.a_only, fine.b_only) == (1, 2)  # fine: image 0 against images 2 and 5
    by_source = {"smplify_estimated": {"full_model": {"true_coarse": asdict(Accuracy(90.0, 80.0, 95.0, 85.0, 70.0, 92.0, 6))}},
                 "smplify_gt2d": {"pose_branch": {"test_input": {"smplify_gt2d": asdict(Accuracy(60.0, 50.0, 70.0, 55.0, 45.0, 65.0, 6))}}}}
    image_probs = np.eye(4)[[0, 1, 2, 3, 3, 3]] * 0.7 + 0.075
    found = diagnosis(pred, image_probs, by_source, "smplify_estimated", seed=0)
    assert {k: a.top1 for k, a in found.items()} == {
        "image_coarse_top1": pytest.approx(400 / 6), "pose_coarse_top1": pytest.approx(400 / 6),
        "full_coarse_top1": pytest.approx(400 / 6), "full_fine_top1": pytest.approx(400 / 6), "full_fine_top1_true_coarse": 90.0,
        "pose_fine_top1_gt2d_fits": 60.0}
