"""The 2D keypoint estimator: mmcv-lite shim, heatmap decoding, training, checkpoints, resume."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from aims_lib.data.format import load_dataset
from aims_lib.pose_branch import keypoints2d as k2d
from aims_lib.pose_branch import mmcv_shim

K = 17


def test_shim_imports_mmpose_and_compiled_ops_fail_clearly() -> None:
    mmpose = mmcv_shim.import_mmpose()
    assert mmpose.__version__
    if not mmcv_shim.is_placeholder_installed():
        pytest.skip("a full mmcv with compiled ops is installed: the shim is not in use")
    import mmcv.ops
    import torch

    assert not hasattr(sys.modules[mmcv_shim.EXT_NAME], "__path__")  # not mistaken for a package
    with pytest.raises(mmcv_shim.MissingCompiledOpError, match="'nms' is not available.*mmcv-lite"):
        mmcv.ops.nms(torch.rand(3, 4), torch.rand(3), 0.5)


@pytest.fixture(scope="module")
def random_estimator() -> k2d.Pose2DEstimator:
    return k2d.Pose2DEstimator.load(k2d.CPU_CONFIG)


def _heatmaps(peaks: np.ndarray, size: tuple[int, int], sigma: float = 1.0) -> np.ndarray:
    """(1, K, H, W) Gaussians with their maxima at ``peaks`` (K, 2) heatmap pixels."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w]
    d2 = (xs[None] - peaks[:, 0, None, None]) ** 2 + (ys[None] - peaks[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * sigma**2))[None].astype(np.float32)


@pytest.mark.parametrize("offset, tol_hm", [(0.0, 1e-4), (0.3, 0.25)])
def test_heatmap_peak_decodes_to_image_coordinates(
    random_estimator: k2d.Pose2DEstimator, monkeypatch: pytest.MonkeyPatch, offset: float, tol_hm: float
) -> None:
    import torch

    est = random_estimator
    codec = est.model.cfg.codec
    (w_in, h_in), (w_hm, h_hm) = codec["input_size"], codec["heatmap_size"]
    peaks = np.stack([np.arange(K) + 3 + offset, 20 - np.arange(K) + offset], axis=1)
    monkeypatch.setattr(est.model.head, "forward", lambda feats: torch.from_numpy(_heatmaps(peaks, (w_hm, h_hm))))
    monkeypatch.setitem(est.model.test_cfg, "flip_test", False)

    x, y, w, h = 10.0, 20.0, 40.0, 30.0
    keypoints, scores = est.predict([np.zeros((80, 100, 3), np.uint8)], [[x, y, w, h]])

    # mmpose's top-down crop: the box padded by 1.25, widened to the input's aspect ratio
    sw, sh = 1.25 * w, 1.25 * h
    sw, sh = (sw, sw * h_in / w_in) if sw / sh > w_in / h_in else (sh * w_in / h_in, sh)
    expected = np.stack([x + w / 2 - sw / 2 + peaks[:, 0] / w_hm * sw, y + h / 2 - sh / 2 + peaks[:, 1] / h_hm * sh], 1)
    assert keypoints.shape == (1, K, 2) and scores.shape == (1, K)
    np.testing.assert_allclose(keypoints[0], expected, atol=tol_hm * sw / w_hm + 1e-4)
    np.testing.assert_allclose(scores[0], np.exp(-(offset**2) / 2) ** 2 if offset else 1.0, rtol=0.05)


def test_bad_inputs(random_estimator: k2d.Pose2DEstimator, tmp_path: Path) -> None:
    img = np.zeros((40, 48, 3), np.uint8)
    with pytest.raises(ValueError, match="2 images but 1 bboxes"):
        random_estimator.predict([img, img], [[0, 0, 10, 10]])
    with pytest.raises(ValueError, match="no area"):
        random_estimator.predict([img], [[0, 0, 0, 10]])
    with pytest.raises(ValueError, match="uint8 RGB"):
        random_estimator.predict([img.astype(np.float32)])
    with pytest.raises(FileNotFoundError, match="missing.png"):
        random_estimator.predict([tmp_path / "missing.png"])
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        k2d.Pose2DEstimator.load(k2d.CPU_CONFIG, checkpoint=tmp_path / "nowhere.pth")
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        k2d.Pose2DTrainConfig(checkpoint=str(tmp_path / "nowhere.pth")).validate()
    with pytest.raises(FileNotFoundError, match="not a keypoints2d run"):
        k2d.Pose2DEstimator.load(tmp_path)
    assert random_estimator.predict([])[0].shape == (0, K, 2)


@pytest.mark.parametrize("naming", ["mmpose0", "hrnet_original"])
def test_foreign_checkpoint_layouts_load(random_estimator: k2d.Pose2DEstimator, tmp_path: Path, naming: str) -> None:
    """mmpose 0.x names the head ``keypoint_head``; the original HRNet code has no prefixes."""
    import torch

    state = random_estimator.model.state_dict()
    rename = {
        "mmpose0": lambda k: k.replace("head.", "keypoint_head.", 1) if k.startswith("head.") else k,
        "hrnet_original": lambda k: k.split(".", 1)[1],
    }[naming]
    torch.save({rename(k): v for k, v in state.items()}, tmp_path / "foreign.pth")
    loaded = k2d.Pose2DEstimator.load(k2d.CPU_CONFIG, checkpoint=tmp_path / "foreign.pth")
    img = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded.predict([img])[0], random_estimator.predict([img])[0], atol=1e-4)


def test_whole_image_box_and_rgb_arrays_match_files(random_estimator: k2d.Pose2DEstimator, aims_tiny: Path) -> None:
    from PIL import Image

    samples = load_dataset(aims_tiny).samples[:3]
    paths = [s.path for s in samples]
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    from_files = random_estimator.predict(paths, batch_size=2)
    from_arrays = random_estimator.predict(arrays, [[0, 0, a.shape[1], a.shape[0]] for a in arrays])
    np.testing.assert_allclose(from_files[0], from_arrays[0], atol=1e-4)
    np.testing.assert_allclose(from_files[1], from_arrays[1], atol=1e-5)


def test_evaluation_of_perfect_and_shifted_predictions(aims_tiny: Path) -> None:
    ds = load_dataset(aims_tiny)
    samples = list(ds.samples)
    gt = np.stack([s.keypoints_2d for s in samples])
    ones = np.ones(gt.shape[:2])
    perfect = k2d.evaluate_keypoints_2d(ds, samples, gt, ones)
    assert perfect["AP"] == pytest.approx(1.0) and perfect["PCK@0.05"] == 1.0 and perfect["n"] == len(samples)
    size = np.array([max(s.bbox[2], s.bbox[3]) for s in samples])
    shifted = gt + np.array([0.06, 0.0]) * size[:, None, None]  # just beyond the PCK radius
    assert k2d.pck(samples, shifted) == 0.0
    assert k2d.pck(samples, gt + np.array([0.04, 0.0]) * size[:, None, None]) == 1.0
    assert k2d.evaluate_keypoints_2d(ds, samples, shifted, ones)["AP"] < perfect["AP"]


def test_pck_counts_per_image_and_training_domains(aims_tiny: Path) -> None:
    ds = load_dataset(aims_tiny)
    samples = list(ds.samples)
    gt = np.stack([s.keypoints_2d for s in samples]).astype(np.float64)
    size = np.array([max(s.bbox[2], s.bbox[3]) for s in samples])
    moved = gt.copy()
    moved[0] += 0.2 * size[0]  # every keypoint of the first image far off
    hits, counts = k2d.pck_counts(samples, moved)
    labelled = np.array([(s.visibility > 0).sum() for s in samples])
    np.testing.assert_array_equal(counts, labelled)
    np.testing.assert_array_equal(hits, np.r_[0, labelled[1:]])
    assert k2d.pck(samples, moved) == pytest.approx(hits.sum() / counts.sum())

    both, synthetic = k2d.split_sets(ds), k2d.split_sets(ds, ("synthetic",))
    assert {s.domain for s in both["train"]} == {"synthetic", "real"}
    assert [s.image_id for s in synthetic["train"]] == [s.image_id for s in both["train"] if s.domain == "synthetic"]
    assert synthetic["val"] == both["val"] and synthetic["test"] == both["test"]  # always real
    for bad in ((), ("target",)):
        with pytest.raises(ValueError, match="train_domains must be a non-empty subset"):
            k2d.split_sets(ds, bad)


def test_pck_per_keypoint_finds_the_wrong_joint(aims_tiny: Path) -> None:
    samples = load_dataset(aims_tiny).samples
    gt = np.stack([s.keypoints_2d for s in samples]).astype(np.float64)
    size = np.array([max(s.bbox[2], s.bbox[3]) for s in samples])
    moved = gt.copy()
    moved[:, 9] += np.array([0.0, 0.2]) * size[:, None]  # the left wrist, far off in every image
    moved[0, 3] += 0.2 * size[0]  # the left ear, off in the first image only
    per = k2d.pck_per_keypoint(samples, moved)
    labelled = np.stack([s.visibility > 0 for s in samples])
    expected = np.ones(K)
    expected[9] = 0.0
    expected[3] = (labelled[1:, 3].sum()) / labelled[:, 3].sum() if labelled[0, 3] else 1.0
    np.testing.assert_allclose(per, expected)
    assert k2d.pck(samples, moved) == pytest.approx((labelled.sum() - labelled[:, 9].sum() - labelled[0, 3]) / labelled.sum())


def test_hidden_keypoints_are_evaluated_as_coco_does(aims_tiny: Path) -> None:
    """COCO: a keypoint flagged v=1 (labelled, hidden by an occluder) counts in PCK and OKS
    exactly as a visible one (v=2); one flagged v=0 (unlabelled, e.g. outside the image) does not."""
    ds = load_dataset(aims_tiny)
    samples = list(ds.samples)
    gt = np.stack([s.keypoints_2d for s in samples]).astype(np.float64)
    size = np.array([max(s.bbox[2], s.bbox[3]) for s in samples])
    ankle = 15
    wrong = gt.copy()
    wrong[:, ankle] += np.array([0.3, 0.0]) * size[:, None]  # the left ankle far off in every image
    ones = np.ones(gt.shape[:2])

    def flagged(v: int) -> list:
        out = []
        for s in samples:
            vis, kps = s.visibility.copy(), s.keypoints_2d.copy()
            vis[ankle] = v
            kps[ankle] = kps[ankle] if v else 0.0
            out.append(dataclasses.replace(s, visibility=vis, keypoints_2d=kps))
        return out

    hidden, shown, unlabelled = flagged(1), flagged(2), flagged(0)
    labelled = sum(int((s.visibility > 0).sum()) for s in hidden)
    assert k2d.pck(hidden, wrong) == pytest.approx((labelled - len(samples)) / labelled)
    assert k2d.pck_per_keypoint(hidden, wrong)[ankle] == 0.0
    assert k2d.pck(unlabelled, wrong) == 1.0 and np.isnan(k2d.pck_per_keypoint(unlabelled, wrong)[ankle])
    ap_hidden, ap_shown = k2d.coco_ap(ds, hidden, wrong, ones), k2d.coco_ap(ds, shown, wrong, ones)
    assert ap_hidden == ap_shown and ap_hidden["AP"] < 1.0
    assert k2d.coco_ap(ds, unlabelled, wrong, ones)["AP"] == pytest.approx(1.0)


def test_learning_curve_in_minutes_and_gains() -> None:
    history = [
        {"epoch": 1, "loss": 0.01, "seconds": 30.0, "coco/AP": 0.1, "PCK": 0.30},
        {"epoch": 2, "loss": 0.008, "seconds": 60.0, "coco/AP": 0.2, "PCK": 0.40},
        {"epoch": 3, "loss": 0.007, "seconds": 30.0},  # its validation record lost: its time still counts
        {"epoch": 4, "loss": 0.006, "seconds": 30.0, "coco/AP": 0.3, "PCK": 0.50},
    ]
    curve = k2d.learning_curve(history)
    assert [r["epoch"] for r in curve] == [1, 2, 4]
    assert [r["train minutes"] for r in curve] == [0.5, 1.5, 2.5]
    assert np.isnan(curve[0]["PCK points per minute"])
    assert [r["PCK points per minute"] for r in curve[1:]] == pytest.approx([10.0, 10.0])
    assert curve[1]["val AP"] == 0.2


def test_schedule_rescaled_to_run_length() -> None:
    schedule = [
        dict(type="LinearLR", begin=0, end=500, start_factor=0.001, by_epoch=False),
        dict(type="MultiStepLR", begin=0, end=210, milestones=[170, 200], gamma=0.1, by_epoch=True),
    ]
    short = k2d.rescale_schedule(schedule, 210, 21, total_iters=40)
    assert short[0]["end"] == 4 and short[1]["milestones"] == [17, 20] and short[1]["end"] == 21
    assert k2d.rescale_schedule(schedule, 210, 1, total_iters=3)[0]["end"] == 2  # LinearLR needs 2
    assert k2d.rescale_schedule(schedule, 210, 210, total_iters=10**5) == schedule


TINY = k2d.Pose2DTrainConfig(epochs=2, batch_size=4, predict_batch_size=8)
TINY_DATA = Path(__file__).resolve().parents[1] / "data" / "fixtures" / "aims_tiny"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """Two epochs on the fixture, interrupted right after epoch 1 is saved, then resumed."""
    from mmengine.hooks import CheckpointHook

    run = tmp_path_factory.mktemp("pose2d") / "run"
    save = CheckpointHook.after_train_epoch

    def save_then_interrupt(self: CheckpointHook, runner: object) -> None:
        save(self, runner)
        raise KeyboardInterrupt

    with pytest.MonkeyPatch.context() as m:
        m.setattr(CheckpointHook, "after_train_epoch", save_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            k2d.train_keypoints_2d(TINY_DATA, run, TINY)
    interrupted_at = k2d.latest_checkpoint(run).name
    return run, k2d.train_keypoints_2d(TINY_DATA, run, TINY), interrupted_at


def test_tiny_training_writes_predictions_and_metrics(tiny_run: tuple[Path, dict, str], aims_tiny: Path) -> None:
    run, metrics, _ = tiny_run
    ds = load_dataset(aims_tiny)
    pred = np.load(run / k2d.PREDICTIONS_FILE)
    assert sorted(pred["image_id"].tolist()) == sorted(s.image_id for s in ds.samples)
    assert pred["keypoints"].shape == (len(ds), K, 2) and pred["scores"].shape == (len(ds), K)
    assert np.isfinite(pred["keypoints"]).all() and np.isfinite(pred["scores"]).all()
    assert set(metrics["test"]) >= {"AP", "AP50", "AR", "PCK@0.05"} and metrics["test"]["n"] == 2
    assert {"coco/AP", "PCK", "loss"} <= set(metrics["history"][-1]) and metrics["checkpoint"].startswith("best_PCK_epoch_")
    assert json.loads((run / k2d.METRICS_FILE).read_text())["test"] == metrics["test"]


def test_resume_after_interruption(tiny_run: tuple[Path, dict, str]) -> None:
    run, metrics, interrupted_at = tiny_run
    assert interrupted_at == "epoch_1.pth" and k2d.latest_checkpoint(run).name == "epoch_2.pth"
    assert metrics["resumed"] and [h["epoch"] for h in metrics["history"]] == [1, 2]
    with pytest.raises(ValueError, match="other settings.*seed"):
        k2d.train_keypoints_2d(TINY_DATA, run, k2d.Pose2DTrainConfig(epochs=2, batch_size=4, seed=1))


def test_checkpoint_loads_into_estimator_with_same_predictions(tiny_run: tuple[Path, dict, str], aims_tiny: Path) -> None:
    run, _, _ = tiny_run
    samples = load_dataset(aims_tiny).samples
    pred = np.load(run / k2d.PREDICTIONS_FILE)
    est = k2d.Pose2DEstimator.load(run / k2d.RUN_CONFIG_FILE, checkpoint=k2d.best_checkpoint(run))
    keypoints, scores = k2d.estimate_keypoints_2d([s.path for s in samples], [s.bbox for s in samples], est)
    order = {int(i): n for n, i in enumerate(pred["image_id"])}
    rows = [order[s.image_id] for s in samples]
    np.testing.assert_allclose(keypoints, pred["keypoints"][rows], atol=1e-4)
    np.testing.assert_allclose(scores, pred["scores"][rows], atol=1e-5)
    with pytest.raises(ValueError, match="does not fit the model"):
        k2d.Pose2DEstimator.load(k2d.PAPER_CONFIG, checkpoint=k2d.best_checkpoint(run))


def test_two_processes_train_the_2d_model_with_mmengines_launcher(tmp_path: Path, aims_tiny: Path) -> None:
    """GPUS=N for the 2D estimator: torchrun, mmengine's pytorch launcher (gloo here), each process
    a share of the batch; the notebook's process predicts and evaluates afterwards."""
    run = tmp_path / "run"
    metrics = k2d.train_keypoints_2d(TINY_DATA, run, dataclasses.replace(TINY, epochs=1, processes=2))
    config = json.loads((run / k2d.RUN_CONFIG_FILE).read_text())
    assert config["train_dataloader"]["batch_size"] == 2  # the global 4 over 2 processes
    assert (run / "torchrun.log").is_file() and k2d.latest_checkpoint(run).name == "epoch_1.pth"
    assert len((run / k2d.HISTORY_FILE).read_text().splitlines()) == 2  # process 0's training and validation records
    assert [h["epoch"] for h in metrics["history"]] == [1] and {"loss", "PCK"} <= set(metrics["history"][0])
    pred = np.load(run / k2d.PREDICTIONS_FILE)
    assert pred["keypoints"].shape == (len(load_dataset(aims_tiny)), K, 2) and np.isfinite(pred["keypoints"]).all()
    with pytest.raises(ValueError, match="batch_size 4 does not split over 3 processes"):
        k2d.train_keypoints_2d(TINY_DATA, tmp_path / "odd", dataclasses.replace(TINY, epochs=1, processes=3))
