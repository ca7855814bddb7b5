"""Batched SMPLify: joints-only body, priors, fits from exact projections, edge cases, metrics."""

from __future__ import annotations

import math
import pickle
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from aims_lib.body import DEFAULT_BETAS, BodyModel, body_forward, coco17_keypoints, load_body_model, procedural_arrays
from aims_lib.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from aims_lib.camera import project, sample_camera, to_camera
from aims_lib.pose_branch.metrics import (
    mpjpe,
    pa_mpjpe,
    procrustes_align,
    reprojection_error,
    world_to_camera_frame,
)
from aims_lib.pose_branch.priors import GMMPosePrior, bending_prior, default_pose_prior, fit_pose_prior, shape_prior
from aims_lib.pose_branch.smplify import KeypointLayer, SMPLify, SMPLifyConfig, default_intrinsics
from aims_lib.synth.poses import sample_poses
from aims_lib.taxonomy import FINE, normalise_keypoints_3d


@pytest.fixture(scope="module")
def model() -> BodyModel:
    return load_body_model(num_betas=DEFAULT_BETAS)


@pytest.fixture(scope="module")
def prior(model: BodyModel) -> GMMPosePrior:
    return default_pose_prior(model)  # fitted once, then read from data/cache


@pytest.fixture(scope="module")
def smplify(model: BodyModel, prior: GMMPosePrior) -> SMPLify:
    return SMPLify(model, prior)


@pytest.fixture(scope="module")
def scenes(model: BodyModel) -> dict[str, np.ndarray]:
    """One sampler pose per AIMS class, each seen by a random 256-px camera."""
    rng = np.random.default_rng(7)
    betas = np.clip(rng.normal(size=(len(FINE), model.num_betas)), -2.0, 2.0)
    poses = sample_poses(list(FINE), rng, model, betas)
    points = np.asarray(coco17_keypoints(poses.vertices, poses.joints), dtype=np.float64)
    pixels, Ks, Rs, truth = [], [], [], []
    for vertices, p in zip(poses.vertices, points):
        lo, hi = vertices.min(0), vertices.max(0)
        camera = sample_camera(rng, 0.5 * (lo + hi), float(0.5 * np.linalg.norm(hi - lo)), 256, fill=(0.6, 0.9))
        pixels.append(project(p, camera.K, camera.R, camera.T))
        Ks.append(camera.K)
        Rs.append(camera.R)
        truth.append(normalise_keypoints_3d(to_camera(p, camera.R, camera.T)))
    return {
        "keypoints_2d": np.stack(pixels),
        "K": np.stack(Ks),
        "R": np.stack(Rs),
        "truth": np.stack(truth),
        "world": normalise_keypoints_3d(points),
        "body_pose": poses.body_pose,
    }


@pytest.fixture(scope="module")
def scene_fit(smplify: SMPLify, scenes: dict[str, np.ndarray]):
    kp = scenes["keypoints_2d"]
    return smplify.fit(kp, np.ones(kp.shape[:2]), scenes["K"])


# --- joints-only body ---------------------------------------------------------------------------


def _random_params(batch: int, num_betas: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "betas": torch.randn(batch, num_betas, generator=g, dtype=dtype),
        "global_orient": torch.randn(batch, 3, generator=g, dtype=dtype),
        "body_pose": 0.6 * torch.randn(batch, 69, generator=g, dtype=dtype),
        "transl": torch.randn(batch, 3, generator=g, dtype=dtype),
    }


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_keypoint_layer_equals_smplx(dtype: torch.dtype) -> None:
    body = load_body_model(num_betas=DEFAULT_BETAS, dtype=dtype)
    p = _random_params(16, body.num_betas, dtype)
    expected = body_forward(body, p["betas"], p["body_pose"], p["global_orient"], p["transl"]).keypoints
    got = KeypointLayer(body)(p["betas"], p["global_orient"], p["body_pose"], p["transl"])
    assert torch.allclose(got, expected.detach(), atol=1e-5, rtol=0)


def test_keypoint_layer_with_pose_blend_shapes() -> None:
    """SMIL has pose correctives (the procedural body has none): the face vertices must get them."""
    arrays = dict(procedural_arrays())
    arrays["posedirs"] = np.random.default_rng(0).normal(0.0, 0.02, arrays["posedirs"].shape)
    body = BodyModel(arrays, num_betas=12, dtype=torch.float64)
    p = _random_params(8, 12, torch.float64)
    expected = body_forward(body, p["betas"], p["body_pose"], p["global_orient"], p["transl"]).keypoints
    layer = KeypointLayer(body)
    assert layer.has_posedirs
    got = layer(p["betas"], p["global_orient"], p["body_pose"], p["transl"])
    assert torch.allclose(got, expected.detach(), atol=1e-5, rtol=0)


def test_axis_angle_round_trip() -> None:
    rotvec = torch.randn(500, 3, dtype=torch.float64)
    angles = torch.linspace(0.0, math.pi - 1e-3, 500, dtype=torch.float64)[:, None]
    rotvec = rotvec / rotvec.norm(dim=-1, keepdim=True) * angles
    assert torch.allclose(matrix_to_axis_angle(axis_angle_to_matrix(rotvec)), rotvec, atol=1e-9)
    turn = axis_angle_to_matrix(torch.tensor([[math.pi, 0.0, 0.0]], dtype=torch.float64))
    assert torch.allclose(axis_angle_to_matrix(matrix_to_axis_angle(turn)), turn, atol=1e-12)


# --- priors ---------------------------------------------------------------------------------------


def test_gmm_prior_prefers_sampler_poses(prior: GMMPosePrior, scenes: dict[str, np.ndarray]) -> None:
    sampled = prior(torch.as_tensor(scenes["body_pose"]))
    random = prior(torch.as_tensor(np.random.default_rng(0).uniform(-1.0, 1.0, (200, 69))))
    assert prior.means.shape == (8, 69)
    assert float(sampled.max()) < float(random.min())


def test_gmm_prior_equals_its_formula(prior: GMMPosePrior) -> None:
    poses = torch.as_tensor(np.random.default_rng(1).normal(0.0, 0.5, (20, 69)))
    diff = poses[:, None] - prior.means
    covars = torch.as_tensor(prior.covars)
    expected = (
        0.5 * torch.einsum("bkd,kde,bke->bk", diff, torch.linalg.inv(covars), diff)
        - torch.log(torch.as_tensor(prior.weights))
        + 0.5 * torch.logdet(covars)
    ).min(1).values
    assert torch.allclose(prior(poses), expected, rtol=1e-9, atol=1e-6)


def test_gmm_fit_is_deterministic_and_files_round_trip(tmp_path: Path) -> None:
    poses = np.random.default_rng(2).normal(0.0, 0.3, (400, 69))
    a, b = fit_pose_prior(poses), fit_pose_prior(poses)
    assert np.array_equal(a.means.numpy(), b.means.numpy()) and np.array_equal(a.covars, b.covars)
    a.save(tmp_path / "prior.npz")
    with open(tmp_path / "gmm_08.pkl", "wb") as f:  # SMPLify's layout
        pickle.dump({"means": a.means.numpy(), "covars": a.covars, "weights": a.weights}, f, protocol=2)
    x = torch.as_tensor(poses[:10])
    for path in ("prior.npz", "gmm_08.pkl"):
        assert torch.allclose(GMMPosePrior.load(tmp_path / path)(x), a(x))


def test_gmm_prior_rejects_bad_files(tmp_path: Path) -> None:
    with open(tmp_path / "bad.pkl", "wb") as f:
        pickle.dump({"means": np.zeros((8, 69))}, f)
    with pytest.raises(ValueError, match="missing"):
        GMMPosePrior.load(tmp_path / "bad.pkl")


def test_bending_prior_penalises_hyperextension() -> None:
    def knees(angle: float) -> torch.Tensor:
        pose = torch.zeros(1, 69)
        pose[0, 3 * 3] = pose[0, 3 * 4] = angle  # left and right knee about x; flexion is positive
        return bending_prior(pose)

    assert float(knees(-0.5)) > float(knees(0.0)) > float(knees(0.5))
    assert float(knees(-0.5)) == pytest.approx(2.0 + 2.0 * math.exp(1.0))  # elbows at 0 give 1 each
    elbow = torch.zeros(2, 69)
    elbow[0, 3 * 17 + 1] = 0.5  # left elbow about +y: hyper-extension
    elbow[1, 3 * 17 + 1] = -0.5  # flexion
    energy = bending_prior(elbow)
    assert float(energy[0]) > float(energy[1])


def test_shape_prior() -> None:
    assert torch.equal(shape_prior(torch.tensor([[3.0, 4.0]])), torch.tensor([25.0]))


# --- fits -----------------------------------------------------------------------------------------


def test_recovers_sampler_poses_from_exact_projections(scene_fit, scenes: dict[str, np.ndarray]) -> None:
    out = scene_fit.numpy()
    assert not out["failed"].any()
    pa = pa_mpjpe(out["keypoints_3d"], scenes["truth"])
    assert pa.mean() < 0.08 and pa.max() < 0.2
    assert np.nanmean(out["reprojection_error"]) < 2.0
    # Ground truth of the dataset lives in the world frame: rotated by R it is the camera's.
    assert np.allclose(world_to_camera_frame(scenes["world"], scenes["R"]), scenes["truth"], atol=1e-9)
    np.testing.assert_allclose(np.linalg.norm(out["keypoints_3d"][:, 0], axis=-1), 1.0, rtol=1e-5)


def test_fit_is_deterministic(smplify: SMPLify, scenes: dict[str, np.ndarray], scene_fit) -> None:
    kp = scenes["keypoints_2d"]
    again = smplify.fit(kp, np.ones(kp.shape[:2]), scenes["K"])
    for name, value in scene_fit.numpy().items():
        np.testing.assert_array_equal(again.numpy()[name], value, err_msg=name)


def _side_view(model: BodyModel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A standing body, arms down, seen from its right side and a little from behind."""
    pose = torch.zeros(1, 69)
    pose[0, 3 * 15 + 2], pose[0, 3 * 16 + 2] = -1.2, 1.2  # shoulders
    points = body_forward(model, body_pose=pose).keypoints[0].detach().double().numpy()
    azimuth = math.radians(266.0)  # the body faces +z; 270 would be exactly its right side
    position = np.array([1.2 * math.sin(azimuth), 0.3, 1.2 * math.cos(azimuth)])
    forward = -position / np.linalg.norm(position)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    R = np.stack([right, np.cross(forward, right), forward])
    T = -R @ position
    K = default_intrinsics(256, 256)
    assert (R @ [0.0, 0.0, 1.0])[2] > 0  # the body's front points away: its back is to the camera
    return project(points, K, R, T)[None], K[None], normalise_keypoints_3d(to_camera(points, R, T))[None]


def test_side_view_tries_the_flip_and_keeps_the_better(model: BodyModel, prior: GMMPosePrior) -> None:
    """With one hypothesis per facing (SMPLify-X's setting), the side view needs the flip."""
    pixels, K, truth = _side_view(model)
    gap = np.linalg.norm(pixels[0, 5] - pixels[0, 6])
    torso = np.linalg.norm(pixels[0, 5] + pixels[0, 6] - pixels[0, 11] - pixels[0, 12]) / 2
    assert gap < 0.3 * torso  # shoulders nearly overlap
    single = replace(SMPLifyConfig(), tilts=(0.0,), pose_starts=1)
    conf = np.ones((1, 17))
    with_flip = SMPLify(model, prior, single).fit(pixels, conf, K)
    without = SMPLify(model, prior, replace(single, side_view_ratio=0.0)).fit(pixels, conf, K)
    assert bool(with_flip.flipped[0]) and not bool(without.flipped[0])
    assert float(with_flip.loss[0]) < float(without.loss[0])
    assert pa_mpjpe(with_flip.keypoints_3d, truth)[0] < 0.12 < pa_mpjpe(without.keypoints_3d, truth)[0]


def test_invisible_and_nan_keypoints(smplify: SMPLify, scenes: dict[str, np.ndarray], scene_fit) -> None:
    kp = scenes["keypoints_2d"][:4].copy()
    conf = np.ones(kp.shape[:2])
    conf[:, [9, 3]] = 0.0  # a wrist and an ear unlabelled, their coordinates garbage
    kp[:, [9, 3]] = 1e6
    kp[:, 15] = np.nan  # an ankle lost as NaN (confidence still 1)
    result = smplify.fit(kp, conf, scenes["K"][:4]).numpy()
    for name in ("keypoints_3d", "loss", "reprojection_error", "body_pose", "transl"):
        assert np.isfinite(result[name]).all(), name
    assert not result["failed"].any()
    assert pa_mpjpe(result["keypoints_3d"], scenes["truth"][:4]).mean() < 0.12


def test_degenerate_input_is_flagged_failed(smplify: SMPLify, scenes: dict[str, np.ndarray]) -> None:
    kp = scenes["keypoints_2d"][:2].copy()
    conf = np.ones(kp.shape[:2])
    conf[1] = 0.0  # nothing visible in the second image
    kp[1] = np.nan
    result = smplify.fit(kp, conf, scenes["K"][:2]).numpy()
    assert result["failed"].tolist() == [False, True]
    assert np.isnan(result["keypoints_3d"][1]).all() and np.isfinite(result["keypoints_3d"][0]).all()
    assert not result["converged"][1]


def test_default_intrinsics_from_image_size(smplify: SMPLify, scenes: dict[str, np.ndarray]) -> None:
    K = default_intrinsics(np.array([256, 192]), np.array([128, 256]))
    np.testing.assert_allclose(K[0], [[256, 0, 127.5], [0, 256, 63.5], [0, 0, 1]])
    np.testing.assert_allclose(K[1, [0, 1], [0, 1]], [256, 256])
    kp = scenes["keypoints_2d"][:1]
    result = smplify.fit(kp, np.ones((1, 17)), image_size=np.array([[256, 256]]))
    assert not bool(result.failed[0]) and float(result.reprojection_error[0]) < 5.0


# --- metrics --------------------------------------------------------------------------------------


def test_pa_mpjpe_of_a_similar_copy_is_zero() -> None:
    rng = np.random.default_rng(3)
    target = rng.normal(size=(5, 17, 3))
    rotation = axis_angle_to_matrix(torch.as_tensor(rng.normal(size=(5, 3)))).numpy()
    moved = 2.5 * target @ rotation.swapaxes(-1, -2) + rng.normal(size=(5, 1, 3))
    np.testing.assert_allclose(pa_mpjpe(moved, target), 0.0, atol=1e-9)
    np.testing.assert_allclose(procrustes_align(moved, target), target, atol=1e-9)
    mirrored = target * np.array([-1.0, 1.0, 1.0])  # a reflection is not a similarity
    assert (pa_mpjpe(mirrored, target) > 0.1).all()


def test_mpjpe_of_a_known_offset() -> None:
    target = np.random.default_rng(4).normal(size=(3, 17, 3))
    np.testing.assert_allclose(mpjpe(target + np.array([0.3, 0.0, 0.4]), target), 0.5)
    assert np.isnan(mpjpe(np.full_like(target, np.nan), target)).all()  # failed fits stay visible
    torch_value = pa_mpjpe(torch.as_tensor(target), torch.as_tensor(target))
    np.testing.assert_allclose(torch_value, 0.0, atol=1e-9)


def test_reprojection_error_counts_confident_keypoints_only() -> None:
    target = np.zeros((2, 17, 2))
    pixels = target + np.array([3.0, 4.0])
    weight = np.ones((2, 17))
    weight[1, :16] = 0.0
    pixels[1, :16] = np.nan
    np.testing.assert_allclose(reprojection_error(pixels, target, weight), [5.0, 5.0])
    np.testing.assert_allclose(reprojection_error(pixels[:1], target[:1]), [5.0])
