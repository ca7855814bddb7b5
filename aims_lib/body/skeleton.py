"""SMPL's skeleton: joint names and order, the kinematic tree and the left/right mirror map.

One definition for every SMPL-format body (the procedural infant, SMIL) and for everything that
names joints: the body builder, the pose sampler, SMPLify's keypoints. Conventions (SMPL's): rest
T-pose, y up, the body facing +z, its left side at +x, so the mirror image is x -> -x.
"""

from __future__ import annotations

from typing import Final

import numpy as np

JOINT_NAMES: Final[tuple[str, ...]] = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2",
    "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar",
    "right_collar", "head", "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hand", "right_hand",
)  # fmt: skip
NUM_JOINTS: Final[int] = len(JOINT_NAMES)

#: SMPL's kinematic tree: parent of each joint (-1 for the root); parents come before children.
PARENTS: Final[tuple[int, ...]] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)  # fmt: skip

#: Joint id of every joint name.
JOINT_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(JOINT_NAMES)}


def mirror_name(name: str) -> str:
    """The joint's left/right twin (``left_knee`` <-> ``right_knee``); central joints map to themselves."""
    for this, other in (("left_", "right_"), ("right_", "left_")):
        if name.startswith(this):
            return other + name[len(this) :]
    return name


#: Joint permutation that swaps left and right: joint ``MIRROR_PERM[j]`` is the twin of ``j``.
MIRROR_PERM: Final[tuple[int, ...]] = tuple(JOINT_INDEX[mirror_name(n)] for n in JOINT_NAMES)

#: Reflection through the sagittal plane (x -> -x); a rotation R mirrors to M R M.
MIRROR_MATRIX: Final[np.ndarray] = np.diag([-1.0, 1.0, 1.0])
