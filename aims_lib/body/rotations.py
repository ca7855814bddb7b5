"""Rotation conversions of the project, batched over leading axes: NumPy for the pose sampler,
torch (differentiable) for SMPLify and HIPC's augmentation.

The two sides are separate formulas on purpose: each is the one its caller's numbers were
produced with, and the generator's output and the fits must not move in the last bit. The
camera keeps its own Rodrigues form (:func:`aims_lib.camera.sample_camera`) for the same reason.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

# --- NumPy --------------------------------------------------------------------------------------

#: Unit axes of the rest frame: x to the body's left, y up, z to its front.
EX, EY, EZ = np.eye(3)


def unit(v: np.ndarray) -> np.ndarray:
    """Unit vectors along the last axis (zero vectors stay finite)."""
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def rotation_about(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rotation matrices (..., 3, 3) about unit ``axis`` (..., 3) by ``angle`` (...) radians."""
    axis = np.broadcast_to(axis, np.shape(angle) + (3,))
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    c, s = np.cos(angle), np.sin(angle)
    t = 1.0 - c
    return np.stack(
        [
            np.stack([c + x * x * t, x * y * t - z * s, x * z * t + y * s], -1),
            np.stack([y * x * t + z * s, c + y * y * t, y * z * t - x * s], -1),
            np.stack([z * x * t - y * s, z * y * t + x * s, c + z * z * t], -1),
        ],
        -2,
    )


def euler_yxz(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Intrinsic Y-X-Z rotation from degrees: turn (y), then flex (x), then bend (z)."""
    return (
        rotation_about(EY, np.radians(y))
        @ rotation_about(EX, np.radians(x))
        @ rotation_about(EZ, np.radians(z))
    )


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vectors ``a`` to ``b`` (..., 3); undefined near a = -b."""
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)
    c = np.sum(a * b, axis=-1)
    return rotation_about(unit(axis), np.arctan2(s, c))


def yaw_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation about +y taking the horizontal direction of ``a`` to that of ``b``."""
    ah, bh = unit(a * [1, 0, 1]), unit(b * [1, 0, 1])
    ang = np.arctan2(np.cross(ah, bh)[..., 1], np.sum(ah * bh, -1))
    return rotation_about(EY, ang)


def rotation_angle(r: np.ndarray) -> np.ndarray:
    """Rotation angle (radians) of matrices (..., 3, 3)."""
    return np.arccos(np.clip((np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0))


def matrix_to_rotvec(r: np.ndarray) -> np.ndarray:
    """Axis-angle (..., 3) of matrices (..., 3, 3), through scipy."""
    return Rotation.from_matrix(r.reshape(-1, 3, 3)).as_rotvec().reshape(r.shape[:-2] + (3,))


def twist_part(r: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Twist of rotations ``r`` (N, 3, 3) about unit ``axis`` (swing-twist split, r = swing @ twist)."""
    q = Rotation.from_matrix(r).as_quat()  # (x, y, z, w)
    along = np.sum(q[:, :3] * axis, -1, keepdims=True) * axis
    tw = np.concatenate([along, q[:, 3:]], -1)
    tw /= np.maximum(np.linalg.norm(tw, axis=-1, keepdims=True), 1e-12)
    return Rotation.from_quat(tw).as_matrix()


# --- torch --------------------------------------------------------------------------------------


def axis_angle_to_matrix(rotvec: torch.Tensor) -> torch.Tensor:
    """Rodrigues' formula, (..., 3) -> (..., 3, 3).

    ``R = I + a [r]x + b (r r^T - |r|^2 I)`` (``[r]x^2`` written out) with
    ``a = sin(t)/t``, ``b = 2 sin^2(t/2)/t^2`` and ``t = sqrt(|r|^2 + 1e-16)``: the offset keeps
    value and gradient finite at r = 0 (as smplx's 1e-8), the half-angle form keeps small angles
    accurate in float32; written out entry by entry, it costs a few elementwise operations.
    """
    x, y, z = rotvec.unbind(-1)
    xx, yy, zz = x * x, y * y, z * z
    theta = torch.sqrt(xx + yy + zz + 1e-16)
    a = torch.sin(theta) / theta
    b = 2.0 * (torch.sin(theta / 2.0) / theta) ** 2
    ax, ay, az = a * x, a * y, a * z
    bxy, bxz, byz = b * x * y, b * x * z, b * y * z
    entries = (
        1.0 - b * (yy + zz), bxy - az, bxz + ay,
        bxy + az, 1.0 - b * (xx + zz), byz - ax,
        bxz - ay, byz + ax, 1.0 - b * (xx + yy),
    )  # fmt: skip
    return torch.stack(entries, -1).reshape(rotvec.shape + (3,))


def matrix_to_axis_angle(rotation: torch.Tensor) -> torch.Tensor:
    """Axis-angle (..., 3) of rotation matrices (..., 3, 3), through the unit quaternion
    (Shepperd: built from the largest of its four squared components, stable at any angle)."""
    m = rotation
    m00, m01, m02, m10, m11, m12, m20, m21, m22 = m.flatten(-2).unbind(-1)
    trace = m00 + m11 + m22
    # Row i is 4 q_i q (q = w, x, y, z); the row of the largest q_i is the best conditioned.
    rows = torch.stack(
        [
            torch.stack([1 + trace, m21 - m12, m02 - m20, m10 - m01], -1),
            torch.stack([m21 - m12, 1 + 2 * m00 - trace, m01 + m10, m02 + m20], -1),
            torch.stack([m02 - m20, m01 + m10, 1 + 2 * m11 - trace, m12 + m21], -1),
            torch.stack([m10 - m01, m02 + m20, m12 + m21, 1 + 2 * m22 - trace], -1),
        ],
        -2,
    )
    best = torch.diagonal(rows, dim1=-2, dim2=-1).argmax(-1)
    q = torch.gather(rows, -2, best[..., None, None].expand(*best.shape, 1, 4))[..., 0, :]
    q = q / q.norm(dim=-1, keepdim=True)
    q = torch.where(q[..., :1] < 0, -q, q)
    sin_half = q[..., 1:].norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, q[..., :1])
    ratio = torch.where(sin_half > 1e-12, angle / sin_half.clamp(min=1e-12), torch.full_like(angle, 2.0))
    return q[..., 1:] * ratio


def coordinate_rotation(axis: int, angle: torch.Tensor) -> torch.Tensor:
    """Right-handed rotations (B, 3, 3) by ``angle`` (B,) radians about coordinate axis 0, 1 or 2."""
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    i, j = (axis + 1) % 3, (axis + 2) % 3
    rows = [[one if a == b and a == axis else zero for b in range(3)] for a in range(3)]
    rows[i][i], rows[i][j], rows[j][i], rows[j][j] = c, -s, s, c
    return torch.stack([torch.stack(r, -1) for r in rows], -2)
