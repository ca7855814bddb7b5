"""The 2D-estimator interface: registry, a fake estimator through the predictor, the predictions
file, and the ImageNet backbone inside an mmpose model."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from aims_lib.data import load_dataset
from aims_lib.data.format import AimsDataset
from aims_lib.pose_branch import estimator as est
from aims_lib.pose_branch.model_config import CONFIG_DIR

LITE0_CONFIG = CONFIG_DIR / "lite0_160x160.py"


class BoxCornerEstimator:
    """A fake estimator: every keypoint k at the box's top-left corner plus (k, 2k) pixels."""

    def __init__(self, source: Path, checkpoint: Path | None) -> None:
        self.source, self.checkpoint = source, checkpoint

    @classmethod
    def load(cls, source: str | Path, checkpoint: str | Path | None = None, device: str = "cpu", *,
             trusted: bool = False, trusted_config: bool = False) -> BoxCornerEstimator:
        return cls(Path(source), None if checkpoint is None else Path(checkpoint))

    def predict(self, images: Sequence[np.ndarray | str | Path], bboxes: np.ndarray | None = None,
                batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        n = len(images)
        boxes = np.zeros((n, 4)) if bboxes is None else np.asarray(bboxes, np.float64)
        offsets = np.stack([np.arange(17), 2 * np.arange(17)], axis=1)
        return (boxes[:, None, :2] + offsets).astype(np.float32), np.full((n, 17), 0.9, np.float32)


@pytest.fixture
def fake_registered(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(est.ESTIMATORS, "box-corner", f"{__name__}:BoxCornerEstimator")
    return "box-corner"


@pytest.fixture(scope="module")
def tiny() -> AimsDataset:
    return load_dataset(Path(__file__).resolve().parents[1] / "data" / "fixtures" / "aims_tiny" / "annotations.json")


def test_registry_loads_by_name_and_names_the_choices(fake_registered: str, tmp_path: Path) -> None:
    loaded = est.load_estimator(tmp_path, tmp_path / "w.pth", name=fake_registered)
    assert isinstance(loaded, BoxCornerEstimator) and isinstance(loaded, est.KeypointEstimator)
    assert loaded.checkpoint == tmp_path / "w.pth"
    assert est.estimator_class().__name__ == "Pose2DEstimator"  # the default: mmpose
    with pytest.raises(ValueError, match="registered: box-corner, mmpose"):
        est.load_estimator(tmp_path, name="openpose")


def test_a_registered_class_without_predict_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(est.ESTIMATORS, "bad", f"{__name__}:AimsDataset")
    with pytest.raises(TypeError, match="not a KeypointEstimator"):
        est.estimator_class("bad")


def test_predictor_uses_the_manifests_estimator(fake_registered: str, tmp_path: Path, tiny: AimsDataset) -> None:
    """The predictor reaches the 2D keypoints only through the interface: a fake estimator's
    keypoints are the predictor's."""
    from aims_lib.hipc import HIPCTrainConfig, save_hipc, train_hipc
    from aims_lib.image_branch import ImageTrainConfig, train_image_branch
    from aims_lib.predict import AIMSPosePredictor, write_manifest

    train_image_branch(tiny.path, tmp_path / "image", ImageTrainConfig(
        level="coarse", method="source_only", arch="resnet18", image_size=32, batch_size=4, epochs=1, iters_per_epoch=1))
    kp = np.stack([s.keypoints_3d for s in tiny.samples]).astype(np.float32)
    labels = np.array([s.fine_id for s in tiny.samples])
    save_hipc(tmp_path / "hipc.pt", train_hipc(kp, labels, HIPCTrainConfig(epochs=1, batch_size=8),
                                               np.full((len(labels), 4), 0.25)))
    (tmp_path / "pose2d").mkdir()
    write_manifest(tmp_path / "full", image_branch=tmp_path / "image", pose2d=tmp_path / "pose2d",
                   pose2d_estimator=fake_registered, hipc=tmp_path / "hipc.pt",
                   smplify={"stage1_iters": 2, "tilts": [0.0], "pose_starts": 1, "explore_iters": 1, "stage2_iters": 2})
    assert json.loads((tmp_path / "full" / "predictor.json").read_text())["pose2d_estimator"] == fake_registered
    predictor = AIMSPosePredictor.load(tmp_path / "full")
    assert isinstance(predictor.pose2d, BoxCornerEstimator)
    samples = tiny.samples[:2]
    pred = predictor.predict([s.path for s in samples], [s.bbox for s in samples])
    expected, _ = BoxCornerEstimator.load(".").predict([s.path for s in samples], np.stack([s.bbox for s in samples]))
    np.testing.assert_allclose(pred.keypoints_2d, expected)
    np.testing.assert_allclose(pred.keypoint_scores, 0.9)


def test_predictions_file_round_trip_in_sample_order(tmp_path: Path, tiny: AimsDataset) -> None:
    ids = [s.image_id for s in tiny.samples][::-1]
    kp = np.random.default_rng(0).normal(size=(len(ids), 17, 2)).astype(np.float32)
    est.save_predictions(tmp_path / est.PREDICTIONS_FILE, ids, kp, kp[..., 0])
    got, scores = est.load_predictions(tmp_path, tiny.samples[:2])  # a run directory or the file
    np.testing.assert_array_equal(got, kp[[-1, -2]])
    np.testing.assert_array_equal(scores, kp[[-1, -2], :, 0])
    with pytest.raises(KeyError, match="999"):
        est.load_predictions(tmp_path / est.PREDICTIONS_FILE, [dataclasses.replace(tiny.samples[0], image_id=999)])
    with pytest.raises(ValueError, match="keypoints"):
        est.save_predictions(tmp_path / "bad.npz", ids, kp[:, :5], kp[..., 0])
    np.savez(tmp_path / "other.npz", image_id=np.array(ids))
    with pytest.raises(ValueError, match=r"other.npz: no field\(s\) \['keypoints', 'scores'\]"):
        est.load_predictions(tmp_path / "other.npz", tiny.samples[:1])
    with pytest.raises(FileNotFoundError, match="not found"):
        est.load_predictions(tmp_path / "nowhere", tiny.samples[:1])


# ----------------------------------------------------------------------------- mmpose backbone


def _mmpose_model(**backbone: object) -> torch.nn.Module:
    from mmengine.config import Config

    from aims_lib.pose_branch.mmcv_shim import import_mmpose

    import_mmpose()
    from mmpose.apis import init_model

    cfg = Config.fromfile(LITE0_CONFIG)
    cfg.model.backbone.update(backbone)
    return init_model(cfg, None, device="cpu")


def test_lite0_backbone_starts_from_imagenet_inside_mmpose() -> None:
    from aims_lib.image_branch.backbones import imagenet_classifier

    imagenet, _ = imagenet_classifier("efficientnet_lite0")
    reference = {k: v for k, v in imagenet.state_dict().items() if not k.startswith("classifier")}
    model = _mmpose_model()
    model.init_weights()  # what mmengine's Runner calls before training: must not re-initialise
    ours = {k.removeprefix("body.net."): v for k, v in model.backbone.state_dict().items()}
    assert set(reference) == set(ours)
    for key, value in reference.items():
        torch.testing.assert_close(ours[key], value, msg=key)
    # the same check tells random weights apart
    random = _mmpose_model(pretrained=False)
    stem = random.backbone.state_dict()["body.net.conv_stem.weight"]
    assert not torch.allclose(stem, reference["conv_stem.weight"])


def test_lite0_backbone_features_and_frozen_stages() -> None:
    model = _mmpose_model(pretrained=False, frozen_stages=2, out_indices=(2, 3, 5, 7))
    feats = model.backbone(torch.zeros(2, 3, 64, 64))
    assert [tuple(f.shape[1:]) for f in feats] == [(24, 16, 16), (40, 8, 8), (112, 4, 4), (320, 2, 2)]
    model.train()
    body = model.backbone.body
    for i in range(body.num_stages):
        for module in body.stage_modules(i):
            assert all(p.requires_grad == (i >= 2) for p in module.parameters())
            assert all(m.training == (i >= 2) for m in module.modules())
    heatmaps = model.head(model.neck(feats))
    assert heatmaps.shape == (2, 17, 16, 16)  # stride 4: 64 px in, 16 px heatmaps
    from aims_lib.pose_branch.mmpose_backbone import StagedImageBackbone

    with pytest.raises(ValueError, match="increasing stage indices"):
        StagedImageBackbone(out_indices=(5, 3), pretrained=False)
    with pytest.raises(ValueError, match="no packaged ImageNet weights"):
        StagedImageBackbone(arch="resnet18", out_indices=(1,))
