"""Camera model: projection against OpenCV, NumPy/torch agreement, random cameras, visibility, boxes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from pycocotools import mask as mask_utils

from aims_lib.camera import (
    Camera,
    bbox_from_mask,
    keypoint_visibility,
    project,
    sample_camera,
    to_camera,
)

TARGET = np.array([0.1, 0.15, -0.05])
EXTENT = 0.4


def _random_cameras(seed: int, count: int, size: int = 256) -> list[Camera]:
    rng = np.random.default_rng(seed)
    return [sample_camera(rng, TARGET, EXTENT, size) for _ in range(count)]


def _sphere_points(rng: np.random.Generator, count: int) -> np.ndarray:
    directions = rng.normal(size=(count, 3))
    return TARGET + EXTENT * directions / np.linalg.norm(directions, axis=1, keepdims=True)


def test_project_matches_opencv() -> None:
    rng = np.random.default_rng(0)
    for camera in _random_cameras(1, 10):
        points = _sphere_points(rng, 50)
        rvec, _ = cv2.Rodrigues(camera.R)
        expected, _ = cv2.projectPoints(points, rvec, camera.T, camera.K, None)
        np.testing.assert_allclose(project(points, camera.K, camera.R, camera.T), expected[:, 0], atol=1e-8)


def test_numpy_and_torch_agree_and_batch() -> None:
    cameras = _random_cameras(2, 4)
    points = _sphere_points(np.random.default_rng(3), 4 * 7).reshape(4, 7, 3)
    K = np.stack([c.K for c in cameras])
    R = np.stack([c.R for c in cameras])
    T = np.stack([c.T for c in cameras])

    batched = project(points, K, R, T)
    assert batched.shape == (4, 7, 2)
    for b, camera in enumerate(cameras):
        np.testing.assert_allclose(batched[b], project(points[b], camera.K, camera.R, camera.T), atol=1e-10)

    as_torch = project(*(torch.from_numpy(a) for a in (points, K, R, T)))
    assert isinstance(as_torch, torch.Tensor) and as_torch.shape == (4, 7, 2)
    np.testing.assert_allclose(as_torch.numpy(), batched, atol=1e-9)

    # One camera broadcast over a batch of point sets, gradients flow through torch.
    points_t = torch.from_numpy(points).requires_grad_(True)
    one = project(points_t, *(torch.from_numpy(a) for a in (K[0], R[0], T[0])))
    assert one.shape == (4, 7, 2)
    one.sum().backward()
    assert points_t.grad is not None and torch.isfinite(points_t.grad).all()
    assert to_camera(points, R, T).shape == (4, 7, 3)


@pytest.mark.parametrize(
    ("points", "K", "R", "T", "bad"),
    [
        (np.zeros((5, 2)), np.eye(3), np.eye(3), np.zeros(3), "points"),
        (np.zeros(3), np.eye(3), np.eye(3), np.zeros(3), "points"),
        (np.zeros((5, 3)), np.eye(4), np.eye(3), np.zeros(3), "K"),
        (np.zeros((5, 3)), np.eye(3), np.eye(2), np.zeros(3), "R"),
        (np.zeros((5, 3)), np.eye(3), np.eye(3), np.zeros(4), "T"),
    ],
)
def test_project_rejects_bad_shapes(points, K, R, T, bad: str) -> None:
    with pytest.raises(ValueError, match=f"{bad} must have shape"):
        project(points, K, R, T)


def test_sample_camera_geometry() -> None:
    size = 200
    rng = np.random.default_rng(5)
    for camera in _random_cameras(4, 50, size):
        np.testing.assert_allclose(camera.R @ camera.R.T, np.eye(3), atol=1e-10)
        assert np.linalg.det(camera.R) == pytest.approx(1.0)
        assert camera.position[1] > TARGET[1]  # from above: elevation >= 20 degrees
        centre = project(TARGET[None], camera.K, camera.R, camera.T)[0]
        assert np.all(np.abs(centre - (size - 1) / 2) < 0.25 * size)
        pixels = project(_sphere_points(rng, 2000), camera.K, camera.R, camera.T)
        assert np.all((pixels >= -0.5) & (pixels <= size - 0.5))
        # The sphere fills a good part of the image: its projection spans at least 40 %.
        assert np.ptp(pixels, axis=0).max() > 0.4 * size


def test_sample_camera_is_deterministic_and_round_trips() -> None:
    first, second = _random_cameras(7, 1)[0], _random_cameras(7, 1)[0]
    other = _random_cameras(8, 1)[0]
    for name in ("K", "R", "T"):
        assert np.array_equal(getattr(first, name), getattr(second, name))
    assert not np.allclose(first.R, other.R)
    restored = Camera.from_dict(first.to_dict())
    for name in ("K", "R", "T"):
        assert np.array_equal(getattr(restored, name), getattr(first, name))


def test_sample_camera_rejects_bad_arguments() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="extent"):
        sample_camera(rng, TARGET, 0.0, 64)
    with pytest.raises(ValueError, match="target"):
        sample_camera(rng, np.zeros(2), 1.0, 64)
    with pytest.raises(ValueError, match="fill"):
        sample_camera(rng, TARGET, 1.0, 64, fill=(0.5, 1.2))
    with pytest.raises(ValueError, match="elevation_deg"):
        sample_camera(rng, TARGET, 1.0, 64, elevation_deg=(60.0, 20.0))
    with pytest.raises(ValueError, match="R must have shape"):
        Camera(K=np.eye(3), R=np.eye(4), T=np.zeros(3))
    with pytest.raises(ValueError, match="missing keys"):
        Camera.from_dict({"K": np.eye(3)})


def test_sample_camera_overflow_places_the_sphere_across_the_border() -> None:
    """``overflow`` u puts the target at theta = theta_margin - alpha + 2 alpha u off the axis:
    u = 0.5 projects it onto the margin circle (the largest circle around the principal point
    inside the image), u = 1 leaves the sphere outside the margin cone, touching it."""
    size = 200
    rng = np.random.default_rng(11)
    points = _sphere_points(rng, 4000)
    for seed in range(5):
        for u in (0.5, 1.0):
            camera = sample_camera(np.random.default_rng(seed), TARGET, EXTENT, size, overflow=(u, u))
            cx, cy = camera.K[0, 2], camera.K[1, 2]
            margin = min(cx + 0.5, size - 0.5 - cx, cy + 0.5, size - 0.5 - cy)
            if u == 0.5:
                centre = project(TARGET[None], camera.K, camera.R, camera.T)[0]
                assert np.hypot(centre[0] - cx, centre[1] - cy) == pytest.approx(margin, rel=1e-9)
            else:
                radial = np.linalg.norm(project(points, camera.K, camera.R, camera.T) - [cx, cy], axis=1)
                assert radial.min() >= margin * (1 - 1e-9) and radial.min() < margin * 1.02
    with pytest.raises(ValueError, match="overflow"):
        sample_camera(rng, TARGET, EXTENT, size, overflow=(0.2, 1.5))


def test_keypoint_visibility_hand_built() -> None:
    # Camera at the origin looking along +z (identity pose), 10x10 image, pixel centres 0..9.
    K = np.array([[10.0, 0.0, 4.5], [0.0, 10.0, 4.5], [0.0, 0.0, 1.0]])
    R, T = np.eye(3), np.zeros(3)
    depth = np.zeros((10, 10), dtype=np.float32)
    depth[:, :5] = 1.0  # a wall at z = 1 over the left half
    points = np.array(
        [
            [-0.2, 0.0, 1.0],  # on the wall: visible
            [-0.2, 0.0, 1.05],  # just behind the wall surface, within tol: visible (a joint)
            [-0.2, 0.0, 1.5],  # far behind the wall: occluded
            [0.2, 0.0, 2.0],  # over the background half: visible
            [5.0, 0.0, 1.0],  # outside the image
            [0.0, 0.0, -1.0],  # behind the camera
        ]
    )
    np.testing.assert_array_equal(keypoint_visibility(points, K, R, T, depth, 10), [2, 2, 1, 2, 0, 0])
    np.testing.assert_array_equal(keypoint_visibility(points, K, R, T, depth, 10, tol=0.03), [2, 1, 1, 2, 0, 0])
    with pytest.raises(ValueError, match="depth_map"):
        keypoint_visibility(points, K, R, T, depth, 12)


def test_bbox_from_mask() -> None:
    mask = np.zeros((20, 30), dtype=bool)
    mask[3:8, 10:22] = True
    mask[12, 5] = True
    assert bbox_from_mask(mask) == [5.0, 3.0, 17.0, 10.0]
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    np.testing.assert_allclose(bbox_from_mask(mask), mask_utils.toBbox(rle))
    with pytest.raises(ValueError, match="empty"):
        bbox_from_mask(np.zeros((4, 4), dtype=bool))
    with pytest.raises(ValueError, match="mask must have shape"):
        bbox_from_mask(np.zeros(4, dtype=bool))
