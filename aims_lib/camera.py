"""The pinhole camera of the project: projection ``x2d = K [R|T] X3d`` (paper eq. 2) and its helpers.

Conventions, fixed for the whole project:

* World coordinates in metres, ``y`` up, the floor is the plane ``y = 0``; the infant lies, sits
  or stands on it around the origin.
* OpenCV camera: ``X_cam = R @ X_world + T``, the camera looks along ``+z``, image ``x`` points
  right and ``y`` down, ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` in pixels.
* Pixel centres lie on integer coordinates (OpenCV's convention): pixel ``(row i, column j)``
  covers ``[j - 0.5, j + 0.5] x [i - 0.5, i + 0.5]``, so a ``W``-wide image spans
  ``[-0.5, W - 0.5]`` and its centre is ``(W - 1) / 2``. The renderer follows the same
  convention, so projected keypoints land on the pixels that show them.

:func:`project` and :func:`to_camera` use only operations that NumPy arrays and torch tensors
share (matmul, indexing, broadcasting), so the generator (NumPy) and SMPLify (batched torch on
a GPU) run the same definition.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, TypeVar

import numpy as np

ArrayT = TypeVar("ArrayT")  # np.ndarray or torch.Tensor: the functions keep the caller's type

#: Default depth tolerance of :func:`keypoint_visibility`, in metres. Joints such as elbows,
#: knees or hips are not on the surface but inside the limb, about one limb radius behind the
#: surface that shows them, more when seen obliquely: on the procedural infant the nearest skin
#: is 1-1.5 cm from wrists and ankles, 2.5-3 cm from shoulders and elbows, 3-5 cm from hips and
#: knees. A larger gap means another body part (or a prop) lies in front of the joint. Pass one
#: tolerance per point to be stricter for surface points (nose, eyes, ears).
OCCLUSION_TOL: Final[float] = 0.06


def _shape_error(func: str, name: str, expected: str, got: Any) -> ValueError:
    return ValueError(f"{func}: {name} must have shape {expected}, got {tuple(got.shape)}")


def to_camera(points: ArrayT, R: ArrayT, T: ArrayT) -> ArrayT:
    """Points (..., N, 3) in world coordinates -> camera coordinates (..., N, 3); z is the depth."""
    if points.ndim < 2 or points.shape[-1] != 3:
        raise _shape_error("to_camera", "points", "(..., N, 3)", points)
    if R.ndim < 2 or tuple(R.shape[-2:]) != (3, 3):
        raise _shape_error("to_camera", "R", "(..., 3, 3)", R)
    if T.ndim < 1 or T.shape[-1] != 3:
        raise _shape_error("to_camera", "T", "(..., 3)", T)
    return points @ R.swapaxes(-1, -2) + T[..., None, :]


def project(points: ArrayT, K: ArrayT, R: ArrayT, T: ArrayT) -> ArrayT:
    """Pixel coordinates (..., N, 2) of world points (..., N, 3): ``x2d = K [R|T] X3d``.

    Leading dimensions broadcast (one camera for a batch of point sets, or one per set); torch
    inputs must share one dtype and device. Points behind the camera (z <= 0) give meaningless
    coordinates; :func:`keypoint_visibility` flags them.
    """
    if K.ndim < 2 or tuple(K.shape[-2:]) != (3, 3):
        raise _shape_error("project", "K", "(..., 3, 3)", K)
    homogeneous = to_camera(points, R, T) @ K.swapaxes(-1, -2)
    return homogeneous[..., :2] / homogeneous[..., 2:3]


@dataclass(frozen=True, eq=False)
class Camera:
    """One camera as the dataset stores it: intrinsics ``K`` (3, 3), rotation ``R`` (3, 3), ``T`` (3,)."""

    K: np.ndarray
    R: np.ndarray
    T: np.ndarray

    def __post_init__(self) -> None:
        for name, shape in (("K", (3, 3)), ("R", (3, 3)), ("T", (3,))):
            value = np.array(getattr(self, name), dtype=np.float64)
            if value.shape != shape:
                raise ValueError(f"Camera: {name} must have shape {shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"Camera: {name} has non-finite entries: {value.tolist()}")
            object.__setattr__(self, name, value)

    @property
    def position(self) -> np.ndarray:
        """The camera centre in world coordinates, ``-R^T T``."""
        return -self.R.T @ self.T

    def to_dict(self) -> dict[str, list]:
        """Plain lists for JSON (the dataset's ``camera`` field)."""
        return {"K": self.K.tolist(), "R": self.R.tolist(), "T": self.T.tolist()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Camera:
        """Inverse of :meth:`to_dict`; accepts lists or arrays."""
        missing = [key for key in ("K", "R", "T") if key not in data]
        if missing:
            raise ValueError(f"Camera.from_dict: missing keys {missing} in {sorted(data)}")
        return cls(K=data["K"], R=data["R"], T=data["T"])


def _check_range(name: str, bounds: tuple[float, float], low: float, high: float) -> None:
    lo, hi = bounds
    if not (low <= lo <= hi <= high):
        raise ValueError(f"sample_camera: {name} must satisfy {low} <= low <= high <= {high}, got {bounds}")


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rodrigues' formula: rotation by ``angle`` (radians) about the unit ``axis``.

    Not :func:`aims_lib.body.rotations.rotation_about`: the two differ in the last bit for about
    half of the aim rotations, and the generator's cameras are drawn with this one."""
    x, y, z = axis
    skew = np.array([[0.0, -z, y], [z, 0.0, -x], [-y, x, 0.0]])
    return np.eye(3) + math.sin(angle) * skew + (1.0 - math.cos(angle)) * skew @ skew


def sample_camera(
    rng: np.random.Generator,
    target: np.ndarray,
    extent: float,
    image_size: int,
    *,
    fov_deg: tuple[float, float] = (35.0, 65.0),
    azimuth_deg: tuple[float, float] = (0.0, 360.0),
    elevation_deg: tuple[float, float] = (20.0, 80.0),
    roll_deg: tuple[float, float] = (-10.0, 10.0),
    fill: tuple[float, float] = (0.45, 0.85),
    principal_jitter: float = 0.02,
    aim_offset: float = 0.5,
    overflow: tuple[float, float] | None = None,
) -> Camera:
    """A random photographer's camera around a body centred at ``target`` with bounding radius ``extent``.

    Assumptions (all ranges are uniform and can be changed):

    * square pixels (``fx = fy``) from a vertical field of view in ``fov_deg``; the principal
      point is the image centre moved by up to ``principal_jitter * image_size`` per axis;
    * the camera stands at azimuth uniform in ``azimuth_deg`` (0 is in front of a body in the
      rest pose, which faces +z; default the full circle) and elevation in
      ``elevation_deg`` above the horizontal (infant photos are mostly taken from above;
      90 is straight down), with a roll about the optical axis in ``roll_deg``;
    * the distance makes the bounding sphere's apparent diameter ``fill`` times the image size
      (the body itself, rarely a sphere, covers less);
    * the camera does not aim exactly at ``target``: the target lands off the principal point by
      up to ``aim_offset`` of the margin the sphere leaves, so the whole sphere stays inside the
      image;
    * with ``overflow`` = (low, high) (framing that crops the body) the target is placed instead
      so that a share ``u`` drawn in that range of the sphere's angular diameter lies beyond the
      margin cone (the largest circle around the principal point inside the image):
      ``theta = theta_margin - alpha + 2 alpha u``. The corners of the image may still show some
      of that share, and the body, which fills less than its sphere, loses less than ``u``.
    """
    target = np.asarray(target, dtype=np.float64)
    if target.shape != (3,):
        raise ValueError(f"sample_camera: target must have shape (3,), got {target.shape}")
    if not extent > 0:
        raise ValueError(f"sample_camera: extent must be > 0 metres, got {extent}")
    if image_size < 1:
        raise ValueError(f"sample_camera: image_size must be >= 1, got {image_size}")
    if not 0.0 <= principal_jitter < 0.25:
        raise ValueError(f"sample_camera: principal_jitter must be in [0, 0.25), got {principal_jitter}")
    _check_range("fov_deg", fov_deg, 1.0, 170.0)
    _check_range("azimuth_deg", azimuth_deg, -360.0, 720.0)
    _check_range("elevation_deg", elevation_deg, -90.0, 90.0)
    _check_range("roll_deg", roll_deg, -180.0, 180.0)
    # The sphere must fit the image even with the principal point moved to its limit.
    _check_range("fill", fill, 1e-3, 1.0 - 2.0 * principal_jitter - 1e-3)
    if not 0.0 <= aim_offset <= 1.0:
        raise ValueError(f"sample_camera: aim_offset must be in [0, 1], got {aim_offset}")
    if overflow is not None:
        _check_range("overflow", overflow, 0.0, 1.0)

    # Intrinsics.
    half_fov = math.radians(rng.uniform(*fov_deg)) / 2.0
    focal = (image_size / 2.0) / math.tan(half_fov)
    centre = (image_size - 1) / 2.0
    cx, cy = centre + rng.uniform(-principal_jitter, principal_jitter, size=2) * image_size
    K = np.array([[focal, 0.0, cx], [0.0, focal, cy], [0.0, 0.0, 1.0]])

    # Distance: the sphere's angular radius alpha gives a projected radius fill * image_size / 2.
    alpha = math.atan(rng.uniform(*fill) * math.tan(half_fov))
    distance = extent / math.sin(alpha)

    # Look-at rotation; rows of R are the camera axes (x right, y down, z forward) in the world.
    azimuth = math.radians(rng.uniform(*azimuth_deg))
    elevation = math.radians(rng.uniform(*elevation_deg))
    to_camera_dir = np.array(
        [math.cos(elevation) * math.sin(azimuth), math.sin(elevation), math.cos(elevation) * math.cos(azimuth)]
    )
    forward = -to_camera_dir
    right = np.array([math.cos(azimuth), 0.0, -math.sin(azimuth)])  # forward x up, exact even top-down
    down = np.cross(forward, right)
    R = np.stack([right, down, forward])
    R = _rotation(np.array([0.0, 0.0, 1.0]), math.radians(rng.uniform(*roll_deg))) @ R

    # Aim offset: turn the camera so the target sits at angle theta off the optical axis. The
    # sphere then stays within the cone of half-angle theta + alpha, inside the image if that
    # cone fits the largest circle around the principal point that the image contains (the
    # margin cone, half-angle theta_margin >= alpha by the fill check above, so theta >= 0).
    margin_px = min(cx + 0.5, image_size - 0.5 - cx, cy + 0.5, image_size - 0.5 - cy)
    theta_margin = math.atan(margin_px / focal)
    if overflow is None:
        theta = rng.uniform(0.0, aim_offset) * (theta_margin - alpha)
    else:
        theta = theta_margin - alpha + 2.0 * alpha * rng.uniform(*overflow)
    psi = rng.uniform(0.0, 2.0 * math.pi)
    R = _rotation(np.array([-math.sin(psi), math.cos(psi), 0.0]), theta) @ R

    position = target + distance * to_camera_dir
    return Camera(K=K, R=R, T=-R @ position)


def keypoint_visibility(
    points_world: np.ndarray,
    K: np.ndarray,
    R: np.ndarray,
    T: np.ndarray,
    depth_map: np.ndarray,
    image_size: int,
    *,
    tol: float | np.ndarray = OCCLUSION_TOL,
) -> np.ndarray:
    """COCO visibility flags (N,) of world points against the rendered square depth map.

    0: behind the camera or outside the image; 1: inside but occluded, i.e. the depth map at
    the point's pixel is nearer than the point by more than ``tol`` (metres; a scalar or one per
    point, see :data:`OCCLUSION_TOL`); 2: visible. A point whose pixel shows background (depth 0)
    counts as visible: nothing is in front of it.
    """
    points_world = np.asarray(points_world, dtype=np.float64)
    depth_map = np.asarray(depth_map)
    if points_world.ndim != 2 or points_world.shape[1] != 3:
        raise _shape_error("keypoint_visibility", "points_world", "(N, 3)", points_world)
    if depth_map.shape != (image_size, image_size):
        raise _shape_error("keypoint_visibility", "depth_map", f"({image_size}, {image_size})", depth_map)
    height, width = depth_map.shape
    depth = to_camera(points_world, np.asarray(R), np.asarray(T))[:, 2]
    flags = np.zeros(len(points_world), dtype=np.int64)
    in_front = depth > 0
    pixels = np.floor(project(points_world[in_front], np.asarray(K), np.asarray(R), np.asarray(T)) + 0.5)
    inside = np.zeros_like(in_front)
    inside[in_front] = (
        (pixels[:, 0] >= 0) & (pixels[:, 0] < width) & (pixels[:, 1] >= 0) & (pixels[:, 1] < height)
    )
    cols, rows = pixels[inside[in_front]].astype(np.int64).T
    surface = depth_map[rows, cols]
    tol = np.broadcast_to(np.asarray(tol, dtype=np.float64), depth.shape)[inside]
    occluded = (surface > 0) & (surface < depth[inside] - tol)
    flags[inside] = np.where(occluded, 1, 2)
    return flags


def bbox_from_mask(mask: np.ndarray) -> list[float]:
    """Tight COCO box ``[x, y, w, h]`` of a boolean silhouette (as ``pycocotools.mask.toBbox``)."""
    mask = np.asarray(mask, dtype=bool)
    if mask.ndim != 2:
        raise ValueError(f"bbox_from_mask: mask must have shape (H, W), got {mask.shape}")
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        raise ValueError(f"bbox_from_mask: the mask of shape {mask.shape} is empty")
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]
