"""The sampler's gross self-intersection test: body parts as capsules between joints, two
parts not joined to each other may touch but not pass through each other."""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from aims_lib.synth.body_facts import SEGMENTS, body_info, segment_ends, spine_length
from aims_lib.synth.capsules import segment_segment_distance

# Pairs that touch by construction (joined through a girdle or the neck) and are not checked.
_ATTACHED: Final[frozenset[frozenset[str]]] = frozenset(
    frozenset(p)
    for p in (
        ("torso_lo", "torso_hi"), ("torso_hi", "head"), ("torso_lo", "thigh_l"),
        ("torso_lo", "thigh_r"), ("torso_hi", "upperarm_l"), ("torso_hi", "upperarm_r"),
        ("head", "upperarm_l"), ("head", "upperarm_r"), ("thigh_l", "thigh_r"),
        ("upperarm_l", "forearm_l"), ("upperarm_r", "forearm_r"), ("forearm_l", "hand_l"),
        ("forearm_r", "hand_r"), ("thigh_l", "shin_l"), ("thigh_r", "shin_r"),
        ("shin_l", "foot_l"), ("shin_r", "foot_r"), ("torso_lo", "upperarm_l"),
        ("torso_lo", "upperarm_r"),
    )
)  # fmt: skip
_PAIRS: Final[np.ndarray] = np.array(
    [
        (a, b)
        for a in range(len(SEGMENTS))
        for b in range(a + 1, len(SEGMENTS))
        if frozenset((SEGMENTS[a][0], SEGMENTS[b][0])) not in _ATTACHED
    ]
)
#: Gross self-intersection: two non-attached capsule axes closer than this fraction of the sum
#: of their radii (the surfaces then overlap by more than half their combined thickness).
INTERSECTION_FRACTION: Final[float] = 0.5


def self_intersecting(model: Any, joints: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Gross self-intersection test, (N,) bool.

    Each body part is a capsule between two joints (:data:`~aims_lib.synth.body_facts.SEGMENTS`,
    radii from :func:`~aims_lib.synth.body_facts.limb_radii` scaled by the sample's spine
    length). Two parts that are not attached to each other intersect grossly when their axes
    come closer than :data:`INTERSECTION_FRACTION` of the sum of their radii, e.g. a hand inside
    the head, a forearm through the belly, or crossed shins passing through each other. Touching
    (hands on knees, a shin resting on the other) passes.
    """
    info = body_info(model)
    joints = np.asarray(joints, dtype=np.float64)
    ends = segment_ends(joints, np.asarray(vertices, dtype=np.float64), info.part)
    scale = (spine_length(joints) / spine_length(info.arrays.j_template[None]))[:, None]
    a, b = _PAIRS[:, 0], _PAIRS[:, 1]
    dist = segment_segment_distance(ends[:, a, 0], ends[:, a, 1], ends[:, b, 0], ends[:, b, 1])
    limit = INTERSECTION_FRACTION * (info.radii[a] + info.radii[b])[None] * scale
    return (dist < limit).any(1)
