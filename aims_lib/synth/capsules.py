"""Distances between points, segments and capsules: the geometry of the sampler's capsule model
of the body (limb radii, self-intersection) and of the bolster's contact checks."""

from __future__ import annotations

import numpy as np


def point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of points ``p`` to the segment [a, b], batched over leading axes."""
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def segment_segment_distance(p1: np.ndarray, q1: np.ndarray, p2: np.ndarray, q2: np.ndarray) -> np.ndarray:
    """Closest distance between segments [p1, q1] and [p2, q2], batched over leading axes."""
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a = np.maximum(np.sum(d1 * d1, -1), 1e-12)
    e = np.maximum(np.sum(d2 * d2, -1), 1e-12)
    b, c, f = np.sum(d1 * d2, -1), np.sum(d1 * r, -1), np.sum(d2 * r, -1)
    denom = a * e - b * b
    s = np.where(denom > 1e-12, np.clip((b * f - c * e) / np.maximum(denom, 1e-12), 0.0, 1.0), 0.0)
    t = (b * s + f) / e
    s = np.where(t < 0.0, np.clip(-c / a, 0.0, 1.0), np.where(t > 1.0, np.clip((b - c) / a, 0.0, 1.0), s))
    t = np.clip(t, 0.0, 1.0)
    return np.linalg.norm((p1 + s[..., None] * d1) - (p2 + t[..., None] * d2), axis=-1)


def capsule_distance(points: np.ndarray, capsule: tuple[np.ndarray, np.ndarray, float]) -> np.ndarray:
    """Signed distance of ``points`` to the surface of ``capsule`` = (end a, end b, radius)."""
    a, b, r = capsule
    return point_segment_distance(points, a, b) - r
