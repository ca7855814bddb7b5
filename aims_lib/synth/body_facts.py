"""What the pose sampler knows about a body model: contact regions, limb capsules and radii,
torso axes and spine length, derived from SMPL joint semantics only (joint order, skinning
weights), never from a mesh's particulars, so the procedural infant and SMIL are treated alike.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from aims_lib.body.kinematics import BodyArrays
from aims_lib.body.rotations import unit
from aims_lib.body.skeleton import JOINT_INDEX as J
from aims_lib.synth.capsules import point_segment_distance

#: Vertex regions used as floor contacts: the joints whose skinning weight dominates.
REGIONS: Final[dict[str, tuple[int, ...]]] = {
    "pelvis": (0,),
    "head": (15,),
    "seat": (0, 1, 2),
    "chest": (6, 9),
    "hand_l": (20, 22),
    "hand_r": (21, 23),
    "forearm_l": (18,),
    "forearm_r": (19,),
    "foot_l": (7, 10),
    "foot_r": (8, 11),
    "lowleg_l": (4, 7, 10),
    "lowleg_r": (5, 8, 11),
    "knee_l": (1, 4),  # limited to the knee by _KNEE_RADIUS
    "knee_r": (2, 5),
}
#: Knee regions keep only vertices this close to the knee (fraction of the rest shin length).
_KNEE_RADIUS: Final[float] = 0.4

# Capsules of the gross self-intersection test: (name, joint a, joint b, skinning joints whose
# vertices give the radius). "head" ends at the centroid of the head vertices (b = -1), since the
# SMPL head joint sits low in the skull.
SEGMENTS: Final[tuple[tuple[str, int, int, tuple[int, ...]], ...]] = (
    ("torso_lo", 0, 6, (0, 3)),
    ("torso_hi", 6, 12, (6, 9)),
    ("head", 12, -1, (15,)),
    ("upperarm_l", 16, 18, (16,)),
    ("upperarm_r", 17, 19, (17,)),
    ("forearm_l", 18, 20, (18,)),
    ("forearm_r", 19, 21, (19,)),
    ("hand_l", 20, 22, (20,)),
    ("hand_r", 21, 23, (21,)),
    ("thigh_l", 1, 4, (1,)),
    ("thigh_r", 2, 5, (2,)),
    ("shin_l", 4, 7, (4,)),
    ("shin_r", 5, 8, (5,)),
    ("foot_l", 7, 10, (7,)),
    ("foot_r", 8, 11, (8,)),
)  # fmt: skip
SEGMENT_INDEX: Final[dict[str, int]] = {s[0]: i for i, s in enumerate(SEGMENTS)}



@dataclass(frozen=True)
class BodyInfo:
    """What the sampler needs from a model: its arrays, regions, limb radii (mean shape)."""

    arrays: BodyArrays  # what the NumPy forward reads
    regions: dict[str, np.ndarray]  # vertex indices per contact region
    solve_regions: dict[str, np.ndarray]  # every third of those: enough to find lowest points
    part: np.ndarray  # (V,) dominant skinning joint of every vertex
    radii: np.ndarray  # (len(SEGMENTS),) capsule radii at the mean shape
    palm_depth: float  # wrist joint height above the palm surface, rest pose
    knee_radius: float  # typical distance from the knee joint to the knee's surface


_INFO: "weakref.WeakKeyDictionary[Any, BodyInfo]" = weakref.WeakKeyDictionary()


def body_info(model: Any) -> BodyInfo:
    """Facts about ``model`` (cached per model object); only SMPL joint semantics are used."""
    if model in _INFO:
        return _INFO[model]
    arrays = BodyArrays.of(model)
    v, jt = arrays.v_template, arrays.j_template
    part = model.lbs_weights.detach().cpu().numpy().argmax(1)
    regions = {k: np.flatnonzero(np.isin(part, js)) for k, js in REGIONS.items()}
    regions["body"] = np.arange(0, len(v), 8)  # a spread-out eighth of the mesh: centre of mass
    for side, knee, ankle in (("l", 4, 7), ("r", 5, 8)):
        idx = regions[f"knee_{side}"]
        near = np.linalg.norm(v[idx] - jt[knee], axis=1) < _KNEE_RADIUS * np.linalg.norm(jt[ankle] - jt[knee])
        regions[f"knee_{side}"] = idx[near]
    ends = segment_ends(jt[None], v[None], part)[0]
    radii = np.array(
        [
            np.percentile(point_segment_distance(v[np.isin(part, js)], ends[i, 0], ends[i, 1]), 30)
            for i, (_, _, _, js) in enumerate(SEGMENTS)
        ]
    )
    hand = v[regions["hand_l"]]
    info = BodyInfo(
        arrays=arrays,
        regions=regions,
        solve_regions={k: r[::3] for k, r in regions.items()},
        part=part,
        radii=radii,
        palm_depth=float(jt[J["left_wrist"], 1] - hand[:, 1].min()),
        knee_radius=float(np.median(np.linalg.norm(v[regions["knee_l"]] - jt[J["left_knee"]], axis=1))),
    )
    _INFO[model] = info
    return info


def segment_ends(joints: np.ndarray, vertices: np.ndarray, part: np.ndarray) -> np.ndarray:
    """Capsule axis end points (N, S, 2, 3); the head ends at its vertex centroid."""
    a = np.stack([joints[:, s[1]] for s in SEGMENTS], 1)
    b = np.stack(
        [joints[:, s[2]] if s[2] >= 0 else vertices[:, part == J["head"]].mean(1) for s in SEGMENTS], 1
    )
    return np.stack([a, b], 2)


def limb_radii(model: Any) -> np.ndarray:
    """Capsule radii (metres, mean shape) of :data:`SEGMENTS`: the 30th percentile of the distance
    from the segment's vertices (by dominant skinning joint) to its axis, so the thinner side of
    a flattened part counts."""
    return body_info(model).radii.copy()


def spine_length(joints: np.ndarray) -> np.ndarray:
    """Pelvis to neck along the spine joints, (N,): the body's unit of length."""
    chain = joints[:, [0, 3, 6, 9, 12]]
    return np.linalg.norm(np.diff(chain, axis=1), axis=-1).sum(1)


def torso_axes(j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Torso up (pelvis -> neck), left (from shoulders and hips) and front, (N, 3) each."""
    up = unit(j[:, 12] - j[:, 0])
    left = j[:, 16] - j[:, 17] + j[:, 1] - j[:, 2]
    front = unit(np.cross(left, up))
    return up, np.cross(up, front), front
