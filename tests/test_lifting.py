"""Dataset-level lifting (aims_lib.pose_branch.lifting): the 3D keypoint set file, lookups by
image id, lifting of ground-truth 2D, the camera-frame ground truth, failed fits."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from aims_lib.body import DEFAULT_BETAS, coco17_keypoints, load_body_model
from aims_lib.camera import project, sample_camera, to_camera
from aims_lib.data import load_dataset
from aims_lib.data.format import AimsDataset, Sample
from aims_lib.pose_branch.lifting import (
    Pose3DSet,
    constant_skeleton_baseline,
    evaluate_lifting,
    ground_truth_2d,
    ground_truth_3d_camera,
    intrinsics,
    lift_dataset,
)
from aims_lib.pose_branch.smplify import SMPLify
from aims_lib.synth.poses import sample_poses
from aims_lib.taxonomy import FINE, normalise_keypoints_3d


@pytest.fixture(scope="module")
def tiny(request: pytest.FixtureRequest) -> AimsDataset:
    return load_dataset(Path(request.config.rootpath) / "data" / "fixtures" / "aims_tiny")


@pytest.fixture(scope="module")
def scenes(tiny: AimsDataset) -> tuple[list[Sample], np.ndarray]:
    """The fixture's 12 samples with consistent annotations (its own 2D keypoints are random):
    one sampler pose per AIMS class seen by a random 256-px camera, as the generator writes
    them (world-frame normalised 3D keypoints, x2d = K [R|T] X); plus the camera-frame truth."""
    model = load_body_model(num_betas=DEFAULT_BETAS)
    rng = np.random.default_rng(3)
    betas = np.clip(rng.normal(size=(len(FINE), model.num_betas)), -2.0, 2.0)
    poses = sample_poses(list(FINE), rng, model, betas)
    points = np.asarray(coco17_keypoints(poses.vertices, poses.joints), dtype=np.float64)
    samples, truth = [], []
    for s, vertices, p in zip(tiny.samples, poses.vertices, points, strict=True):
        lo, hi = vertices.min(0), vertices.max(0)
        cam = sample_camera(rng, 0.5 * (lo + hi), float(0.5 * np.linalg.norm(hi - lo)), 256, fill=(0.6, 0.9))
        xy = project(p, cam.K, cam.R, cam.T)
        box = np.r_[xy.min(0), xy.max(0) - xy.min(0)]
        samples.append(dataclasses.replace(
            s, width=256, height=256, keypoints_2d=xy, visibility=np.full(17, 2), bbox=box,
            keypoints_3d=normalise_keypoints_3d(p), camera={"K": cam.K, "R": cam.R, "T": cam.T}))
        truth.append(normalise_keypoints_3d(to_camera(p, cam.R, cam.T)))
    return samples, np.stack(truth)


@pytest.fixture(scope="module")
def smplify() -> SMPLify:
    return SMPLify()


@pytest.fixture(scope="module")
def lifted(tiny: AimsDataset, scenes, smplify: SMPLify) -> Pose3DSet:
    samples, _ = scenes
    return lift_dataset(tiny, samples, *ground_truth_2d(samples), source="gt", smplify=smplify)


def _toy_set() -> Pose3DSet:
    kp = np.arange(3 * 17 * 3, dtype=np.float32).reshape(3, 17, 3)
    kp[1] = np.nan
    return Pose3DSet(image_id=np.array([7, 3, 11]), keypoints_3d=kp, failed=np.array([False, True, False]),
                     reprojection_error=np.array([1.5, np.nan, 0.25]), source="estimated", seconds=2.0)


def test_save_load_round_trip(tmp_path: Path) -> None:
    original = _toy_set()
    path = original.save(tmp_path / "runs" / "pose3d_estimated.npz")
    loaded = Pose3DSet.load(path)
    assert (loaded.source, loaded.seconds, loaded.fits_per_second) == ("estimated", 2.0, 1.5)
    for name in ("image_id", "keypoints_3d", "failed", "reprojection_error"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(original, name), err_msg=name)
    assert loaded.keypoints_3d.dtype == np.float32 and loaded.failed.dtype == bool
    assert loaded.loss is None and loaded.keypoints_2d_fit is None  # optional diagnostics absent
    assert not list(path.parent.glob(".*.tmp"))  # written atomically
    with pytest.raises(FileNotFoundError, match="notebook 03"):
        Pose3DSet.load(tmp_path / "missing.npz")


def test_by_id_returns_rows_in_the_given_order_and_names_missing_ids() -> None:
    s = _toy_set()
    out = s.by_id([11, 7, 11])
    np.testing.assert_array_equal(out[0], s.keypoints_3d[2])
    np.testing.assert_array_equal(out[1], s.keypoints_3d[0])
    assert out.shape == (3, 17, 3)
    assert np.isnan(s.by_id([3])).all()  # a failed fit stays NaN
    with pytest.raises(KeyError, match=r"2 image id\(s\) not in .*: 5, 99"):
        s.by_id([7, 5, 99])
    with pytest.raises(ValueError, match="unique"):
        Pose3DSet(np.array([1, 1]), np.zeros((2, 17, 3)), np.zeros(2, bool), np.zeros(2), "gt", 1.0)


def test_ground_truth_3d_is_rotated_into_the_camera_frame(scenes, tiny: AimsDataset) -> None:
    samples, truth = scenes
    np.testing.assert_allclose(ground_truth_3d_camera(samples), truth, atol=1e-9)
    np.testing.assert_allclose(intrinsics(samples), np.stack([s.camera["K"] for s in samples]))
    # the fixture's cameras are R = I: the world frame is the camera frame
    s = tiny.samples[0]
    np.testing.assert_allclose(ground_truth_3d_camera([s])[0], s.keypoints_3d)
    no_camera = dataclasses.replace(s, camera=None, width=64, height=32)
    assert np.isnan(ground_truth_3d_camera([no_camera])).all()
    np.testing.assert_allclose(intrinsics([no_camera])[0], [[64, 0, 31.5], [0, 64, 15.5], [0, 0, 1]])


def test_lifting_ground_truth_2d_recovers_the_3d_keypoints(lifted: Pose3DSet, scenes) -> None:
    samples, truth = scenes
    assert lifted.source == "gt" and lifted.seconds > 0 and not lifted.failed.any()
    np.testing.assert_array_equal(lifted.image_id, [s.image_id for s in samples])
    result = evaluate_lifting(lifted, samples)
    assert result["n"] == result["n_with_gt"] == 12 and result["failed_rate"] == 0.0
    # small errors without alignment too: the output is in the ground truth's (camera) frame
    assert result["pa_mpjpe"] < 0.08 and result["mpjpe"] < 0.12
    assert result["reprojection_error"] < 2.0
    np.testing.assert_allclose(np.linalg.norm(lifted.keypoints_3d[:, 0], axis=-1), 1.0, rtol=1e-4)  # nose at 1
    assert np.abs(lifted.keypoints_2d_fit - np.stack([s.keypoints_2d for s in samples])).mean() < 2.0
    # a subset, in another order, is evaluated on its own images
    assert evaluate_lifting(lifted, samples[:0:-1])["n"] == 11


def test_failed_fits_stay_nan_and_are_flagged(tiny: AimsDataset, scenes, smplify: SMPLify) -> None:
    samples, _ = scenes
    kp, weight = ground_truth_2d(samples[:3])
    kp[1] = np.nan  # an image where nothing was detected
    weight[2, :14] = 0.0  # three confident keypoints cannot constrain a body
    out = lift_dataset(tiny, samples[:3], kp, weight, smplify=smplify)
    assert out.failed.tolist() == [False, True, True]
    assert np.isnan(out.keypoints_3d[1:]).all() and np.isnan(out.reprojection_error[1:]).all()
    assert np.isfinite(out.keypoints_3d[0]).all()
    result = evaluate_lifting(out, samples[:3])
    assert result["failed_rate"] == pytest.approx(2 / 3) and result["n_failed"] == 2
    assert np.isfinite(result["pa_mpjpe"])  # the mean covers the fit that worked
    # a fit that does not explain its 2D keypoints (diverged) is flagged too
    strict = lift_dataset(tiny, samples[:1], *ground_truth_2d(samples[:1]), smplify=smplify, max_reprojection=0.0)
    assert strict.failed.all() and np.isnan(strict.keypoints_3d).all()
    assert np.isnan(evaluate_lifting(strict, samples[:1])["pa_mpjpe"])


def test_bad_inputs(tiny: AimsDataset, scenes) -> None:
    samples, _ = scenes
    kp, weight = ground_truth_2d(samples[:2])
    with pytest.raises(ValueError, match="source"):
        lift_dataset(tiny, samples[:2], kp, weight, source="openpose")
    with pytest.raises(ValueError, match=r"\(2, 17, 2\)"):
        lift_dataset(tiny, samples[:2], kp[:1], weight[:1])
    stranger = dataclasses.replace(samples[0], image_id=999)
    with pytest.raises(ValueError, match="not in"):
        lift_dataset(tiny, [stranger], kp[:1], weight[:1])


def test_constant_skeleton_baseline(scenes, lifted: Pose3DSet) -> None:
    samples, _ = scenes
    same = [dataclasses.replace(s, keypoints_3d=samples[0].keypoints_3d) for s in samples]
    assert constant_skeleton_baseline(same, same)["pa_mpjpe"] == pytest.approx(0.0, abs=1e-9)
    # twelve different classes: one skeleton for all is far off, the lifted ones are not
    baseline = constant_skeleton_baseline(samples, samples)
    assert baseline["n"] == 12 and baseline["pa_mpjpe"] > 2 * evaluate_lifting(lifted, samples)["pa_mpjpe"]


def test_constant_skeleton_baseline_without_3d_ground_truth_is_nan(scenes) -> None:
    """Real images often come without 3D keypoints: the baseline is undefined, not an error."""
    samples, _ = scenes
    no_3d = [dataclasses.replace(s, keypoints_3d=None) for s in samples]
    result = constant_skeleton_baseline(samples, no_3d)
    assert result["n"] == 0 and np.isnan(result["pa_mpjpe"])
