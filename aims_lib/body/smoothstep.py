"""The smooth step that cross-fades skinning weights (body builder) and soft colour edges
(appearance): one definition, with GLSL's argument order."""

from __future__ import annotations

import numpy as np


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 below ``edge0``, 1 above ``edge1``, the cubic ``3t^2 - 2t^3`` in between (zero slope at
    both edges, so blends have no visible seam)."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
