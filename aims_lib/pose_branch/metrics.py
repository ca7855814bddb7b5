"""Accuracy and speed measures of the pose branch, vectorised over a batch of skeletons.

3D errors are in the project's units, the nose-to-pelvis distance: predicted and ground-truth
keypoints are both normalised (:func:`aims_lib.taxonomy.normalise_keypoints_3d`). SMPLify
predicts in the camera frame while the dataset stores 3D keypoints in the world frame;
normalisation commutes with rotation, so ``keypoints_3d_world @ R.T`` (the annotation's R) is
the ground truth in the camera frame (:func:`world_to_camera_frame`).

Arrays are NumPy or torch (converted to float64 NumPy); keypoints flagged invalid (NaN
predictions of failed fits) give NaN errors for their skeleton, never a silent zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def _array(x: Any) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def world_to_camera_frame(keypoints_3d: Any, R: Any) -> np.ndarray:
    """Normalised keypoints (B, 17, 3) of the world frame rotated into the camera frame of
    rotations R (B, 3, 3): ``X_cam = R X`` (the translation cancels in the normalisation)."""
    return _array(keypoints_3d) @ np.swapaxes(_array(R), -1, -2)


def mpjpe(pred: Any, target: Any) -> np.ndarray:
    """Mean per-joint position error (B,): ``mean_j ||pred_j - target_j||`` of (B, J, 3)."""
    return np.linalg.norm(_array(pred) - _array(target), axis=-1).mean(-1)


def procrustes_align(pred: Any, target: Any) -> np.ndarray:
    """``pred`` (B, J, 3) moved onto ``target`` by the similarity (rotation, uniform scale,
    translation) that minimises the squared error (Umeyama): with centred X, Y and the SVD
    ``X^T Y = U S V^T``, ``R = U D V^T`` (D fixes a reflection), ``s = tr(S D) / |X|^2``."""
    x, y = _array(pred), _array(target)
    mx, my = x.mean(-2, keepdims=True), y.mean(-2, keepdims=True)
    xc, yc = x - mx, y - my
    u, sv, vt = np.linalg.svd(np.swapaxes(xc, -1, -2) @ yc)
    d = np.ones_like(sv)
    d[..., -1] = np.sign(np.linalg.det(u @ vt))
    rotation = (u * d[..., None, :]) @ vt
    scale = (sv * d).sum(-1) / (xc**2).sum((-1, -2))
    return scale[..., None, None] * xc @ rotation + my


def pa_mpjpe(pred: Any, target: Any) -> np.ndarray:
    """MPJPE (B,) after Procrustes alignment with scale (:func:`procrustes_align`)."""
    return mpjpe(procrustes_align(pred, target), target)


def reprojection_error(pixels: Any, target: Any, weight: Any | None = None) -> np.ndarray:
    """Mean pixel distance (B,) between projected and target 2D keypoints (B, J, 2) over the
    keypoints with ``weight > 0`` (all when None); NaN for a skeleton with none."""
    dist = np.linalg.norm(_array(pixels) - _array(target), axis=-1)
    w = np.ones_like(dist) if weight is None else (_array(weight) > 0).astype(np.float64)
    dist = np.where(w > 0, dist, 0.0)  # NaN targets of unused keypoints do not count
    with np.errstate(invalid="ignore", divide="ignore"):
        return dist.sum(-1) / w.sum(-1)


def fits_per_second(fit: Callable[[], T], batch: int) -> tuple[float, float, T]:
    """Time one call of ``fit`` (a batched fit of ``batch`` images; it must wait for the
    device before returning): (images per second, seconds, the fit's output). Warm up first."""
    start = time.perf_counter()
    out = fit()
    seconds = time.perf_counter() - start
    return batch / seconds, seconds, out
