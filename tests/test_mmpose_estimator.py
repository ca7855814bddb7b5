"""The mmpose estimator: mmcv-lite shim, heatmap decoding, boxes, checkpoint layouts."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from aims_lib.data.format import load_dataset
from aims_lib.pose_branch import mmcv_shim
from aims_lib.pose_branch.keypoints2d import CPU_CONFIG
from aims_lib.pose_branch.mmpose_estimator import Pose2DEstimator

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
def random_estimator() -> Pose2DEstimator:
    return Pose2DEstimator.load(CPU_CONFIG)


def _heatmaps(peaks: np.ndarray, size: tuple[int, int], sigma: float = 1.0) -> np.ndarray:
    """(1, K, H, W) Gaussians with their maxima at ``peaks`` (K, 2) heatmap pixels."""
    w, h = size
    ys, xs = np.mgrid[0:h, 0:w]
    d2 = (xs[None] - peaks[:, 0, None, None]) ** 2 + (ys[None] - peaks[:, 1, None, None]) ** 2
    return np.exp(-d2 / (2 * sigma**2))[None].astype(np.float32)


@pytest.mark.parametrize("offset, tol_hm", [(0.0, 1e-4), (0.3, 0.25)])
def test_heatmap_peak_decodes_to_image_coordinates(
    random_estimator: Pose2DEstimator, monkeypatch: pytest.MonkeyPatch, offset: float, tol_hm: float
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


def test_bad_inputs(random_estimator: Pose2DEstimator, tmp_path: Path) -> None:
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
        Pose2DEstimator.load(CPU_CONFIG, checkpoint=tmp_path / "nowhere.pth")
    with pytest.raises(FileNotFoundError, match="not a keypoints2d run"):
        Pose2DEstimator.load(tmp_path)
    assert random_estimator.predict([])[0].shape == (0, K, 2)


@pytest.mark.parametrize("naming", ["mmpose0", "hrnet_original"])
def test_foreign_checkpoint_layouts_load(random_estimator: Pose2DEstimator, tmp_path: Path, naming: str) -> None:
    """mmpose 0.x names the head ``keypoint_head``; the original HRNet code has no prefixes."""
    import torch

    state = random_estimator.model.state_dict()
    rename = {
        "mmpose0": lambda k: k.replace("head.", "keypoint_head.", 1) if k.startswith("head.") else k,
        "hrnet_original": lambda k: k.split(".", 1)[1],
    }[naming]
    torch.save({rename(k): v for k, v in state.items()}, tmp_path / "foreign.pth")
    loaded = Pose2DEstimator.load(CPU_CONFIG, checkpoint=tmp_path / "foreign.pth")
    img = np.random.default_rng(0).integers(0, 255, (40, 48, 3), dtype=np.uint8)
    np.testing.assert_allclose(loaded.predict([img])[0], random_estimator.predict([img])[0], atol=1e-4)


def test_whole_image_box_and_rgb_arrays_match_files(random_estimator: Pose2DEstimator, aims_tiny: Path) -> None:
    from PIL import Image

    samples = load_dataset(aims_tiny).samples[:3]
    paths = [s.path for s in samples]
    arrays = [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    from_files = random_estimator.predict(paths, batch_size=2)
    from_arrays = random_estimator.predict(arrays, [[0, 0, a.shape[1], a.shape[0]] for a in arrays])
    np.testing.assert_allclose(from_files[0], from_arrays[0], atol=1e-4)
    np.testing.assert_allclose(from_files[1], from_arrays[1], atol=1e-5)


def test_prediction_runs_folded_and_equals_mmpose_test_step(aims_tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """predict runs the backbone and neck with BatchNorm folded (the same keypoints as mmpose's
    own test_step up to rounding), then puts the trained modules back, also after an error; a
    changed weight gives a new folded copy."""
    import torch
    from mmengine.dataset import pseudo_collate

    from aims_lib.pose_branch.mmpose_estimator import _as_bgr

    est = Pose2DEstimator.load(CPU_CONFIG)
    torch.manual_seed(0)
    for m in est.model.modules():  # statistics other than 0 / 1, so that folding changes weights
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5), m.running_var.uniform_(0.5, 2.0)
    backbone, neck = est.model.backbone, torch.nn.Identity()  # this small HRNet has no neck
    paths = [s.path for s in load_dataset(aims_tiny).samples[:3]]
    keypoints, scores = est.predict(paths, batch_size=3)
    assert est.model.backbone is backbone and not hasattr(est.model, "neck")
    items = []
    for p in paths:
        img = _as_bgr(p)
        box = np.array([[0, 0, img.shape[1], img.shape[0]]], np.float32)
        items.append(est.pipeline({"img": img, "bbox": box, "bbox_score": np.ones(1, np.float32), **est.model.dataset_meta}))
    with torch.no_grad():
        plain = est.model.test_step(pseudo_collate(items))
    np.testing.assert_allclose(keypoints, np.stack([r.pred_instances.keypoints[0] for r in plain]), atol=1e-3)
    np.testing.assert_allclose(scores, np.stack([r.pred_instances.keypoint_scores[0] for r in plain]), atol=1e-5)
    folded = est._folded.of(torch.nn.ModuleDict({"backbone": backbone, "neck": neck}), torch.zeros(1))
    with torch.no_grad():
        next(backbone.parameters()).mul_(0.5)
    est.predict(paths[:1])
    assert est._folded._folded is not folded
    with monkeypatch.context() as m:
        m.setattr(est.model.head, "forward", lambda feats: (_ for _ in ()).throw(RuntimeError("head failed")))
        with pytest.raises(RuntimeError, match="head failed"):
            est.predict(paths[:1])
    assert est.model.backbone is backbone
