"""COCO-17 keypoints of an SMPL-format body: the one definition the project uses.

The face keypoints are mesh vertices (SMPL-H ids, the same ones smplx appends as extra
joints); shoulders, elbows, wrists, hips, knees and ankles are SMPL joints. Normalisation of
3D keypoints is :func:`aims_lib.taxonomy.normalise_keypoints_3d`, not redefined here.
"""

from __future__ import annotations

from typing import Final, TypeVar

import numpy as np
import torch

from aims_lib.body.procedural import LANDMARK_IDS
from aims_lib.body.skeleton import JOINT_NAMES
from aims_lib.taxonomy import KEYPOINTS

#: Vertex ids of nose, left eye, right eye, left ear, right ear (COCO order).
COCO17_VERTEX_IDS: Final[tuple[int, ...]] = tuple(
    LANDMARK_IDS[k] for k in ("nose", "leye", "reye", "lear", "rear")
)
#: SMPL joint ids of the remaining twelve COCO keypoints, in COCO order.
COCO17_JOINT_IDS: Final[tuple[int, ...]] = tuple(JOINT_NAMES.index(k) for k in KEYPOINTS[5:])

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def coco17_keypoints(vertices: Array, joints: Array) -> Array:
    """COCO-17 keypoints (..., 17, 3) from vertices (..., 6890, 3) and joints (..., >=24, 3).

    Works on NumPy arrays and (batched, differentiable) torch tensors alike.
    """
    face = vertices[..., list(COCO17_VERTEX_IDS), :]
    body = joints[..., list(COCO17_JOINT_IDS), :]
    if isinstance(vertices, torch.Tensor):
        return torch.cat([face, body], dim=-2)
    return np.concatenate([face, body], axis=-2)
