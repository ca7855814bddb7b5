"""Samplers for the 12 AIMS fine poses on an SMPL-format body (procedural infant or SMIL).

Why this shape: the classes differ mainly in *which body parts touch the floor* and in a few joint
angles, so a sample is built in steps that use only SMPL joint semantics (joint order, kinematic
tree, rest T-pose, skinning weights), never the mesh's particulars, so that the same sampler
drives the procedural body and the real SMIL model:

1. **Joint angles from a per-class table** (:data:`POSE_SPECS`, one or more :class:`PoseSpec`
   variants per class): uniform ranges (degrees) for the spine, neck and head, and for each
   limb in anatomical terms (:class:`Arm`, :class:`Leg`: shoulder/hip flexion, abduction and
   external rotation as a swing-twist from the rest bone, elbow/knee flexion about their hinge,
   wrist/ankle Euler angles). Limbs are given in left-side terms and mirrored for the right;
   a limb may list alternatives ("W" arms or arms along the body) drawn independently, and the
   whole pose is mirrored left/right with probability 1/2: varied, asymmetric, recognisable.
2. **Contact tilt**: a base orientation (pitch/roll) puts the body roughly in its posture, then
   it is tilted rigidly until the lowest points of the class's contact regions (hands and knees
   for kneeling, buttocks and lower legs for sitting, ...) lie on one horizontal plane. Regions
   are vertices grouped by their dominant skinning joint (:data:`REGIONS`).
3. **Limb solves** where sampling alone cannot meet a contact: two-bone arm IK puts the wrists at
   the knees/feet or the hands on the floor (:class:`Plant`); closed-form hinge solves lay
   forearms, shins, palms and soles flat and bring prone knees down; a turn of the chest about
   the spine takes up the warp that four contacts (crawling) leave. Each round of solves is
   followed by another tilt. These steps pose only the contact regions, with the model's own
   linear blend skinning in NumPy (:func:`_lbs`), which is much cheaper than a full forward.
4. **Placement**: a random yaw about the vertical, the full mesh (same numbers as a smplx
   forward), then a translation that puts the lowest vertex at y = 0 and the centre of the
   vertex bounding box's x/z on the origin.

Sitting w/ Support is modelled with a support object: a cylindrical bolster with rounded ends
(a rolled cushion, radius about half the spine length) lying on the floor across the infant's
back, pushed against the body until it touches without entering it; the hip angles make the
torso lean back onto it. It is returned as a :class:`Prop` (mesh, placement, colour hint and
exact capsule) for the renderer.

Every candidate is checked with the class predicates (:func:`check_pose`), the gross
self-intersection test (:func:`self_intersecting`) and the joint limits of the solved joints;
failures are re-drawn. Conventions: SMPL joint order, rest T-pose with y up, the body facing +z
and its left at +x; world in metres, y up, the floor is y = 0.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal, Sequence, TypeVar

import numpy as np
import trimesh
from scipy.spatial.transform import Rotation

from aims_lib.body.procedural import JOINT_NAMES, NUM_JOINTS, PARENTS
from aims_lib.taxonomy import FINE, parse_fine

# --- skeleton ----------------------------------------------------------------------------------

J: Final[dict[str, int]] = {n: i for i, n in enumerate(JOINT_NAMES)}

#: Joint permutation that swaps left and right.
MIRROR_PERM: Final[tuple[int, ...]] = tuple(
    J[n.replace("left_", "right_") if n.startswith("left_") else n.replace("right_", "left_")]
    for n in JOINT_NAMES
)
#: Reflection through the sagittal plane (x -> -x); a rotation R mirrors to M R M.
_M: Final[np.ndarray] = np.diag([-1.0, 1.0, 1.0])
_Y: Final[np.ndarray] = np.array([0.0, 1.0, 0.0])

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
_SEG: Final[dict[str, int]] = {s[0]: i for i, s in enumerate(SEGMENTS)}
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

# --- predicate thresholds, in units of the spine length L (pelvis -> neck along the spine) -----

FLOOR_TOL: Final[float] = 1e-4  # metres: the lowest vertex must be within this of y = 0
JOINT_SPHERE: Final[float] = 0.30  # radius of the body region around a joint, for contacts
TOUCH: Final[float] = 0.10  # a region touches the floor when its lowest vertex is below this
LIMB_RESTING: Final[float] = 0.60  # joints of limbs resting near the floor are below this height
CHEST_RAISED: Final[float] = 0.05  # upper-chest clearance of a chest lifted on the forearms
BELLY_UP: Final[float] = 0.15  # belly clearance of a body on hands and knees
LEAD: Final[float] = 0.15  # a hand or knee this far ahead of the other: a reciprocal step
REACH: Final[float] = 0.50  # a hand at a knee or foot: this fraction of the arm's length away


#: Samples posed together: bounds the memory of the skinning (about 70 MB per 100 samples).
BATCH: Final[int] = 256

#: Largest wrist bend (degrees) for a hand laid flat; infant wrists extend further than adults'.
WRIST_LIMIT: Final[float] = 105.0

# --- rotations (batched numpy) -----------------------------------------------------------------


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-12)


def _axis_angle(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
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


_EX, _EY, _EZ = np.eye(3)


def _euler(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Intrinsic Y-X-Z rotation from degrees: turn (y), then flex (x), then bend (z)."""
    return (
        _axis_angle(_EY, np.radians(y))
        @ _axis_angle(_EX, np.radians(x))
        @ _axis_angle(_EZ, np.radians(z))
    )


def _rot_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking unit vectors ``a`` to ``b`` (..., 3); never called near a = -b."""
    axis = np.cross(a, b)
    s = np.linalg.norm(axis, axis=-1)
    c = np.sum(a * b, axis=-1)
    return _axis_angle(_unit(axis), np.arctan2(s, c))


def _yaw_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rotation about +y taking the horizontal direction of ``a`` to that of ``b``."""
    ah, bh = _unit(a * [1, 0, 1]), _unit(b * [1, 0, 1])
    ang = np.arctan2(np.cross(ah, bh)[..., 1], np.sum(ah * bh, -1))
    return _axis_angle(_Y, ang)


def _angle_of(r: np.ndarray) -> np.ndarray:
    """Rotation angle (radians) of matrices (..., 3, 3)."""
    return np.arccos(np.clip((np.trace(r, axis1=-2, axis2=-1) - 1.0) / 2.0, -1.0, 1.0))


def _to_rotvec(r: np.ndarray) -> np.ndarray:
    return Rotation.from_matrix(r.reshape(-1, 3, 3)).as_rotvec().reshape(r.shape[:-2] + (3,))


# --- per-class tables --------------------------------------------------------------------------

Range = tuple[float, float]
Triple = tuple[Range, Range, Range]
_T = TypeVar("_T")


@dataclass(frozen=True)
class Arm:
    """Left-arm angle ranges in degrees (the right arm is the mirror image).

    ``flex`` swings the arm forward from hanging down (90 = pointing forward, 180 = overhead),
    ``abd`` out to the side (90 = T-pose), ``ext`` turns it outward about its own axis (90 makes a
    bent elbow point the forearm to the head: "W" arms). ``elbow`` is flexion about the hinge.
    ``wrist``/``collar`` are Euler angles (x, y, z); wrist z > 0 extends the hand.
    """

    flex: Range = (0.0, 20.0)
    abd: Range = (20.0, 40.0)
    ext: Range = (0.0, 20.0)
    elbow: Range = (10.0, 40.0)
    wrist: Triple = ((-10.0, 10.0), (-10.0, 10.0), (-10.0, 20.0))
    collar: Triple = ((-5.0, 5.0), (-5.0, 5.0), (-5.0, 5.0))
    fingers: Range = (0.0, 40.0)


@dataclass(frozen=True)
class Leg:
    """Left-leg angle ranges in degrees: ``flex`` swings the thigh forward from straight down,
    ``abd`` out to the side, ``ext`` rotates it outward, ``knee`` flexes; ``ankle`` is Euler
    (x, y, z) with x > 0 pointing the toes (plantar flexion)."""

    flex: Range = (0.0, 15.0)
    abd: Range = (5.0, 20.0)
    ext: Range = (0.0, 30.0)
    knee: Range = (0.0, 20.0)
    ankle: Triple = ((0.0, 20.0), (-10.0, 10.0), (-5.0, 5.0))


@dataclass(frozen=True)
class Plant:
    """Where arm IK puts a hand flat on the floor: ``angle`` degrees outward from a horizontal
    torso ``axis`` ("up" = towards the head, "front", "down" = towards the feet), at ``extent``
    of the arm's length from the shoulder, the elbow bent towards ``pole`` (chest axes: outward,
    up, front)."""

    axis: Literal["up", "front", "down"]
    angle: Range
    extent: Range
    pole: tuple[float, float, float]
    flat: bool = True


@dataclass(frozen=True)
class PoseSpec:
    """Distributions and contact rules of one AIMS pose variant (see the module docstring).

    Orientation: ``pitch`` tips the rest body forward about its left axis (90 = face down,
    -90 = face up), then ``roll`` turns it about its own long axis.

    Contacts: ``contacts`` are vertex regions (:data:`REGIONS`) whose lowest points are brought
    onto one floor plane; two regions, or regions ``along`` the body, only level the line
    through them (``balance`` then also puts the centre of mass above that line). Names ending
    in _l/_r follow a left/right mirrored sample.

    Angles: ``spine`` is drawn for each of the three spine joints, ``neck`` and ``head`` once
    (Euler x, y, z: x > 0 bends forward, y turns, z bends sideways). ``arm``/``leg`` (and
    ``right_arm``/``right_leg`` for asymmetric poses, default: the same ranges) may list
    alternatives drawn independently per limb. Every sample is mirrored left/right with
    probability 1/2.

    Solves after the contact tilt: ``reach`` puts the wrists at the knees or feet (arm IK),
    ``plant`` puts the hands on the floor (arm IK), ``hands_flat`` lays palms flat pointing to
    the head ("up") or along the forearm, ``feet_flat`` lays the soles flat, ``shins_flat`` the
    shins and the tops of the feet (kneeling), ``forearms_flat`` the forearms (elbow flexion),
    ``knees_down`` flexes the hips until the knees rest on the floor (prone), ``untwist`` turns
    the chest about the spine so that all four hand and knee (or foot) contacts touch, and
    ``support`` adds a bolster behind the back.
    """

    pitch: Range
    contacts: tuple[str, ...]
    arm: Arm | tuple[Arm, ...]
    leg: Leg | tuple[Leg, ...]
    roll: Range = (-5.0, 5.0)
    along: bool = False
    balance: bool = False
    spine: Triple = ((-3.0, 3.0), (-3.0, 3.0), (-3.0, 3.0))
    neck: Triple = ((-5.0, 5.0), (-10.0, 10.0), (-5.0, 5.0))
    head: Triple = ((-5.0, 5.0), (-30.0, 30.0), (-8.0, 8.0))
    right_arm: Arm | tuple[Arm, ...] | None = None
    right_leg: Leg | tuple[Leg, ...] | None = None
    reach: Literal["knee", "foot"] | None = None
    plant: Plant | tuple[Plant, ...] | None = None
    hands_flat: Literal["up", "forearm"] | None = None
    feet_flat: bool = False
    shins_flat: bool = False
    forearms_flat: bool = False
    knees_down: bool = False
    untwist: bool = False
    support: bool = False


# Reusable limb postures.
_ARM_W = Arm(flex=(-5.0, 20.0), abd=(60.0, 110.0), ext=(60.0, 95.0), elbow=(50.0, 120.0))
_ARM_SIDE = Arm(flex=(-10.0, 25.0), abd=(10.0, 40.0), ext=(-10.0, 20.0), elbow=(0.0, 30.0))
_ARM_TUMMY = Arm(flex=(5.0, 35.0), abd=(10.0, 35.0), ext=(-20.0, 10.0), elbow=(50.0, 100.0))
_ARM_UP = Arm(flex=(50.0, 100.0), abd=(5.0, 35.0), ext=(-10.0, 30.0), elbow=(10.0, 70.0))
_ARM_GUARD = Arm(flex=(0.0, 40.0), abd=(45.0, 85.0), ext=(40.0, 80.0), elbow=(50.0, 110.0))
_ARM_PLAY = Arm(flex=(30.0, 80.0), abd=(10.0, 40.0), ext=(-10.0, 30.0), elbow=(20.0, 90.0))
_ARM_GRASP = Arm(wrist=((-15.0, 15.0), (-10.0, 10.0), (-50.0, -20.0)), fingers=(30.0, 70.0))
_ARM_LAP = Arm(flex=(10.0, 45.0), abd=(5.0, 30.0), ext=(-10.0, 20.0), elbow=(40.0, 90.0))
_LEG_LONG = Leg(flex=(80.0, 100.0), abd=(15.0, 35.0), ext=(10.0, 40.0), knee=(0.0, 35.0))
_LEG_RING = Leg(flex=(75.0, 100.0), abd=(30.0, 50.0), ext=(75.0, 95.0), knee=(70.0, 110.0))
_LEG_FROG = Leg(flex=(20.0, 60.0), abd=(25.0, 45.0), ext=(30.0, 60.0), knee=(50.0, 100.0))
_LEG_STRAIGHT = Leg(flex=(0.0, 20.0), abd=(5.0, 20.0), ext=(0.0, 30.0), knee=(0.0, 30.0))
_LEG_KICK = Leg(flex=(40.0, 80.0), abd=(5.0, 20.0), ext=(0.0, 30.0), knee=(40.0, 90.0))
_KNEEL_LEG = Leg(flex=(82.0, 98.0), abd=(3.0, 12.0), ext=(-5.0, 10.0), knee=(85.0, 100.0),
                 ankle=((20.0, 45.0), (-10.0, 10.0), (-5.0, 5.0)))  # fmt: skip
_POINTED: Final[Triple] = ((50.0, 80.0), (-10.0, 10.0), (-5.0, 5.0))  # tops of the feet down
# Prone legs: straight-ish, or frog (thigh out, turned out so the bent shin lies on the floor).
_PRONE_LEGS: Final[tuple[Leg, ...]] = (
    Leg(flex=(0.0, 20.0), abd=(5.0, 25.0), ext=(-10.0, 25.0), knee=(0.0, 35.0), ankle=_POINTED),
    Leg(flex=(0.0, 20.0), abd=(35.0, 55.0), ext=(70.0, 95.0), knee=(20.0, 60.0), ankle=_POINTED),
)
_PRONE_LOOK: Final[dict[str, Triple]] = {
    "neck": ((-35.0, -15.0), (-10.0, 10.0), (-5.0, 5.0)),
    "head": ((-25.0, -5.0), (-25.0, 25.0), (-8.0, 8.0)),
}
_SIT_LEGS = (_LEG_LONG, _LEG_RING)

POSE_SPECS: Final[dict[str, tuple[PoseSpec, ...]]] = {
    "Prone Lying": (
        PoseSpec(
            pitch=(88.0, 92.0), contacts=("chest", "pelvis"),
            spine=((-5.0, 1.0), (-4.0, 4.0), (-4.0, 4.0)),
            neck=((-15.0, 0.0), (-10.0, 10.0), (-5.0, 5.0)),
            head=((-15.0, 0.0), (-80.0, 80.0), (-10.0, 10.0)),
            arm=Arm(wrist=((-10.0, 10.0), (-10.0, 10.0), (-25.0, 0.0))),
            plant=(Plant("up", (20.0, 80.0), (0.6, 0.9), (1.0, -0.5, 0.3)),
                   Plant("down", (10.0, 40.0), (0.85, 0.97), (1.0, 0.0, -0.5), flat=False)),
            leg=_PRONE_LEGS,
            hands_flat="forearm", knees_down=True,
        ),
    ),
    "Forearm Support": (
        PoseSpec(
            pitch=(70.0, 80.0), contacts=("forearm_l", "forearm_r", "pelvis"),
            spine=((-14.0, -6.0), (-4.0, 4.0), (-3.0, 3.0)), **_PRONE_LOOK,
            arm=Arm(flex=(55.0, 85.0), abd=(0.0, 15.0), ext=(80.0, 100.0), elbow=(75.0, 105.0)),
            leg=_PRONE_LEGS,
            forearms_flat=True, hands_flat="forearm", knees_down=True,
        ),
    ),
    "Reciprocal Crawling": (
        PoseSpec(
            pitch=(80.0, 100.0), contacts=("hand_l", "hand_r", "knee_l", "knee_r"),
            spine=((-4.0, 4.0), (-5.0, 5.0), (-3.0, 3.0)), **_PRONE_LOOK,
            arm=Arm(flex=(97.0, 115.0), abd=(0.0, 15.0), ext=(-10.0, 15.0), elbow=(0.0, 15.0)),
            right_arm=Arm(flex=(72.0, 86.0), abd=(0.0, 15.0), ext=(-10.0, 15.0), elbow=(0.0, 15.0)),
            leg=replace(_KNEEL_LEG, flex=(60.0, 78.0)),
            right_leg=replace(_KNEEL_LEG, flex=(105.0, 125.0), knee=(100.0, 125.0)),
            hands_flat="up", shins_flat=True, untwist=True,
        ),
    ),
    "Four-Point Kneeling": (
        PoseSpec(
            pitch=(85.0, 95.0), contacts=("hand_l", "hand_r", "knee_l", "knee_r"),
            spine=((-4.0, 3.0), (-3.0, 3.0), (-2.0, 2.0)), **_PRONE_LOOK,
            arm=Arm(flex=(85.0, 95.0), abd=(0.0, 12.0), ext=(-10.0, 15.0), elbow=(0.0, 12.0)),
            leg=replace(_KNEEL_LEG, flex=(85.0, 95.0)),
            hands_flat="up", shins_flat=True, untwist=True,
        ),
    ),
    "Supine Lying": (
        PoseSpec(
            pitch=(-92.0, -88.0), contacts=("head", "chest", "pelvis"), along=True,
            neck=((0.0, 15.0), (-10.0, 10.0), (-5.0, 5.0)),
            head=((-5.0, 10.0), (-70.0, 70.0), (-10.0, 10.0)),
            arm=(_ARM_W, _ARM_SIDE, _ARM_TUMMY, _ARM_UP),
            leg=(_LEG_STRAIGHT, _LEG_FROG, _LEG_KICK),
        ),
    ),
    "Hands to Knee/Feet": (
        PoseSpec(
            pitch=(-92.0, -88.0), contacts=("chest", "pelvis"), reach="knee",
            spine=((4.0, 12.0), (-3.0, 3.0), (-3.0, 3.0)),
            neck=((5.0, 25.0), (-10.0, 10.0), (-5.0, 5.0)),
            arm=_ARM_GRASP,
            leg=Leg(flex=(110.0, 140.0), abd=(5.0, 25.0), ext=(0.0, 30.0), knee=(60.0, 110.0)),
        ),
        PoseSpec(
            pitch=(-92.0, -88.0), contacts=("chest", "pelvis"), reach="foot",
            spine=((8.0, 15.0), (-3.0, 3.0), (-3.0, 3.0)),
            neck=((10.0, 30.0), (-10.0, 10.0), (-5.0, 5.0)),
            arm=_ARM_GRASP,
            leg=Leg(flex=(125.0, 150.0), abd=(5.0, 25.0), ext=(10.0, 40.0), knee=(5.0, 45.0)),
        ),
    ),
    "Rolling": (
        PoseSpec(
            pitch=(-92.0, -88.0), roll=(70.0, 100.0), contacts=("chest", "pelvis"),
            spine=((0.0, 8.0), (-8.0, 2.0), (-5.0, 5.0)),
            neck=((0.0, 20.0), (-10.0, 10.0), (-10.0, 10.0)),
            arm=(Arm(flex=(60.0, 100.0), abd=(-10.0, 5.0), elbow=(10.0, 50.0)),
                 Arm(flex=(130.0, 165.0), abd=(-5.0, 10.0), elbow=(0.0, 40.0))),
            right_arm=Arm(flex=(50.0, 100.0), abd=(-20.0, 5.0), ext=(-10.0, 20.0), elbow=(10.0, 60.0)),
            leg=Leg(flex=(0.0, 40.0), abd=(-10.0, 5.0), knee=(10.0, 60.0)),
            right_leg=Leg(flex=(40.0, 90.0), abd=(-15.0, 0.0), ext=(-15.0, 15.0), knee=(40.0, 100.0)),
        ),
    ),
    "Sitting w/ Support": (
        PoseSpec(
            pitch=(-5.0, 5.0), contacts=("seat", "lowleg_l", "lowleg_r"), support=True,
            spine=((-2.0, 5.0), (-4.0, 4.0), (-3.0, 3.0)),
            neck=((-5.0, 15.0), (-10.0, 10.0), (-5.0, 5.0)),
            arm=(_ARM_LAP, _ARM_SIDE, _ARM_PLAY),
            leg=(replace(_LEG_LONG, flex=(55.0, 75.0)), replace(_LEG_RING, flex=(55.0, 75.0))),
        ),
    ),
    "Sitting w/ Arm Support": (
        PoseSpec(
            pitch=(-5.0, 5.0), contacts=("seat", "lowleg_l", "lowleg_r"),
            plant=Plant("front", (-10.0, 50.0), (0.9, 0.98), (1.0, 0.0, -0.3)),
            spine=((10.0, 16.0), (-4.0, 4.0), (-3.0, 3.0)),
            neck=((-45.0, -30.0), (-10.0, 10.0), (-5.0, 5.0)),
            head=((-35.0, -20.0), (-30.0, 30.0), (-8.0, 8.0)),
            arm=Arm(),
            leg=Leg(flex=(125.0, 145.0), abd=(30.0, 50.0), ext=(10.0, 40.0), knee=(0.0, 30.0)),
            hands_flat="forearm",
        ),
    ),
    "Sitting w/o Support": (
        PoseSpec(
            pitch=(-5.0, 5.0), contacts=("seat", "lowleg_l", "lowleg_r"),
            spine=((1.0, 6.0), (-5.0, 5.0), (-3.0, 3.0)),
            neck=((-15.0, 5.0), (-10.0, 10.0), (-5.0, 5.0)),
            head=((-10.0, 10.0), (-40.0, 40.0), (-8.0, 8.0)),
            arm=(_ARM_PLAY, _ARM_GUARD, _ARM_LAP),
            leg=_SIT_LEGS,
        ),
    ),
    "Four-Point Standing": (
        PoseSpec(
            pitch=(115.0, 135.0), contacts=("hand_l", "hand_r", "foot_l", "foot_r"),
            spine=((-2.0, 5.0), (-3.0, 3.0), (-3.0, 3.0)),
            neck=((-40.0, -15.0), (-10.0, 10.0), (-5.0, 5.0)),
            head=((-20.0, 0.0), (-20.0, 20.0), (-8.0, 8.0)),
            arm=Arm(flex=(135.0, 160.0), abd=(0.0, 15.0), ext=(-10.0, 15.0), elbow=(0.0, 12.0)),
            leg=Leg(flex=(105.0, 135.0), abd=(5.0, 18.0), ext=(0.0, 20.0), knee=(0.0, 30.0)),
            hands_flat="up", feet_flat=True, untwist=True,
        ),
    ),
    "Standing": (
        PoseSpec(
            pitch=(-3.0, 3.0), contacts=("foot_l", "foot_r"), balance=True,
            spine=((-3.0, 3.0), (-4.0, 4.0), (-3.0, 3.0)),
            arm=(_ARM_GUARD, _ARM_SIDE, _ARM_PLAY),
            leg=Leg(flex=(-5.0, 12.0), abd=(4.0, 15.0), ext=(0.0, 25.0), knee=(0.0, 12.0)),
            feet_flat=True,
        ),
    ),
}


# --- outputs -----------------------------------------------------------------------------------


@dataclass
class Prop:
    """A rigid object in the scene (the back support of Sitting w/ Support).

    ``mesh`` is in the prop's own frame and ``transform`` (4x4) places it in the world, so a
    renderer adds ``mesh`` with pose ``transform``; ``world_mesh()`` gives a placed copy.
    ``capsule`` = (end a, end b, radius) in world coordinates describes the same surface exactly,
    for contact and penetration checks. ``color`` is an RGB hint in [0, 1].
    """

    name: str
    mesh: trimesh.Trimesh
    transform: np.ndarray
    color: tuple[float, float, float]
    capsule: tuple[np.ndarray, np.ndarray, float]

    def world_mesh(self) -> trimesh.Trimesh:
        return self.mesh.copy().apply_transform(self.transform)


@dataclass
class PoseBatch:
    """Sampled poses with the placed body: SMPL parameters, vertices, joints and scene props.

    ``vertices``/``joints`` are the model's output for these parameters (joints include smplx's
    extra vertex joints after the 24 SMPL joints), already on the floor.
    """

    fine_labels: list[str]
    global_orient: np.ndarray  # (N, 3) axis-angle
    body_pose: np.ndarray  # (N, 69) axis-angle, joints 1..23
    transl: np.ndarray  # (N, 3)
    betas: np.ndarray  # (N, B)
    vertices: np.ndarray  # (N, V, 3)
    joints: np.ndarray  # (N, J, 3)
    props: list[list[Prop]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.fine_labels)


# --- model facts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _BodyInfo:
    """What the sampler needs from a model: skeleton, regions, limb radii (mean shape)."""

    j_template: np.ndarray  # (24, 3) rest joints of the mean shape
    j_shapedirs: np.ndarray  # (24, 3, B) joint displacement per shape coefficient
    v_template: np.ndarray  # (V, 3)
    shapedirs: np.ndarray  # (V, 3, B)
    posedirs: np.ndarray | None  # (207, V * 3) pose blend shapes, None when all zero
    weights: np.ndarray  # (V, 24) skinning weights
    regions: dict[str, np.ndarray]  # vertex indices per contact region
    solve_regions: dict[str, np.ndarray]  # every third of those: enough to find lowest points
    extra_joints: np.ndarray  # vertex ids of smplx's extra joints (nose, eyes, ears, toes, ...)
    part: np.ndarray  # (V,) dominant skinning joint of every vertex
    radii: np.ndarray  # (len(SEGMENTS),) capsule radii at the mean shape
    palm_depth: float  # wrist joint height above the palm surface, rest pose
    knee_radius: float  # typical distance from the knee joint to the knee's surface


_INFO: "weakref.WeakKeyDictionary[Any, _BodyInfo]" = weakref.WeakKeyDictionary()


def _body_info(model: Any) -> _BodyInfo:
    """Facts about ``model`` (cached per model object); only SMPL joint semantics are used."""
    if model in _INFO:
        return _INFO[model]
    parents = model.parents.detach().cpu().numpy()
    if parents.shape != (NUM_JOINTS,) or tuple(int(p) for p in parents[1:]) != PARENTS[1:]:
        raise ValueError("the pose sampler needs an SMPL-layout model (24 joints, SMPL kinematic tree)")
    v = model.v_template.detach().cpu().double().numpy()
    jreg = model.J_regressor.detach().cpu().double().numpy()
    shapedirs = model.shapedirs.detach().cpu().double().numpy()
    part = model.lbs_weights.detach().cpu().numpy().argmax(1)
    jt = jreg @ v
    regions = {k: np.flatnonzero(np.isin(part, js)) for k, js in REGIONS.items()}
    regions["body"] = np.arange(0, len(v), 8)  # a spread-out eighth of the mesh: centre of mass
    for side, knee, ankle in (("l", 4, 7), ("r", 5, 8)):
        idx = regions[f"knee_{side}"]
        near = np.linalg.norm(v[idx] - jt[knee], axis=1) < _KNEE_RADIUS * np.linalg.norm(jt[ankle] - jt[knee])
        regions[f"knee_{side}"] = idx[near]
    ends = _segment_ends(jt[None], v[None], part)[0]
    radii = np.array(
        [
            np.percentile(_point_segment_distance(v[np.isin(part, js)], ends[i, 0], ends[i, 1]), 30)
            for i, (_, _, _, js) in enumerate(SEGMENTS)
        ]
    )
    hand = v[regions["hand_l"]]
    posedirs = model.posedirs.detach().cpu().double().numpy()
    info = _BodyInfo(
        j_template=jt,
        j_shapedirs=np.einsum("jv,vck->jck", jreg, shapedirs),
        v_template=v,
        shapedirs=shapedirs,
        posedirs=posedirs if np.any(posedirs) else None,
        weights=model.lbs_weights.detach().cpu().double().numpy(),
        regions=regions,
        solve_regions={k: r[::3] for k, r in regions.items()},
        extra_joints=model.vertex_joint_selector.extra_joints_idxs.detach().cpu().numpy(),
        part=part,
        radii=radii,
        palm_depth=float(jt[J["left_wrist"], 1] - hand[:, 1].min()),
        knee_radius=float(np.median(np.linalg.norm(v[regions["knee_l"]] - jt[J["left_knee"]], axis=1))),
    )
    _INFO[model] = info
    return info


def _segment_ends(joints: np.ndarray, vertices: np.ndarray, part: np.ndarray) -> np.ndarray:
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
    return _body_info(model).radii.copy()


# --- geometry checks ---------------------------------------------------------------------------


def _point_segment_distance(p: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    ab = b - a
    t = np.clip(np.sum((p - a) * ab, -1) / np.maximum(np.sum(ab * ab, -1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(p - (a + t[..., None] * ab), axis=-1)


def _segment_segment_distance(p1: np.ndarray, q1: np.ndarray, p2: np.ndarray, q2: np.ndarray) -> np.ndarray:
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


def self_intersecting(model: Any, joints: np.ndarray, vertices: np.ndarray) -> np.ndarray:
    """Gross self-intersection test, (N,) bool.

    Each body part is a capsule between two joints (:data:`SEGMENTS`, radii from
    :func:`limb_radii` scaled by the sample's spine length). Two parts that are not attached to
    each other intersect grossly when their axes come closer than
    :data:`INTERSECTION_FRACTION` of the sum of their radii, e.g. a hand inside the head, a
    forearm through the belly, or crossed shins passing through each other. Touching (hands on
    knees, a shin resting on the other) passes.
    """
    info = _body_info(model)
    joints = np.asarray(joints, dtype=np.float64)
    ends = _segment_ends(joints, np.asarray(vertices, dtype=np.float64), info.part)
    scale = (_spine_length(joints) / _spine_length(info.j_template[None]))[:, None]
    a, b = _PAIRS[:, 0], _PAIRS[:, 1]
    dist = _segment_segment_distance(ends[:, a, 0], ends[:, a, 1], ends[:, b, 0], ends[:, b, 1])
    limit = INTERSECTION_FRACTION * (info.radii[a] + info.radii[b])[None] * scale
    return (dist < limit).any(1)


def _spine_length(joints: np.ndarray) -> np.ndarray:
    chain = joints[:, [0, 3, 6, 9, 12]]
    return np.linalg.norm(np.diff(chain, axis=1), axis=-1).sum(1)


def _torso_axes(j: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Torso up (pelvis -> neck), left (from shoulders and hips) and front, (N, 3) each."""
    up = _unit(j[:, 12] - j[:, 0])
    left = j[:, 16] - j[:, 17] + j[:, 1] - j[:, 2]
    front = _unit(np.cross(left, up))
    return up, np.cross(up, front), front


def _capsule_distance(points: np.ndarray, capsule: tuple[np.ndarray, np.ndarray, float]) -> np.ndarray:
    a, b, r = capsule
    return _point_segment_distance(points, a, b) - r


class _Measure:
    """Measurements of placed bodies for the predicates; lengths are in spine lengths ``L``
    (pelvis to neck along the spine), so they hold for any body size."""

    def __init__(self, joints: np.ndarray, vertices: np.ndarray) -> None:
        self.j, self.v = joints, vertices
        self._near = np.ascontiguousarray(vertices[:, ::2])  # every second vertex is enough here
        self._near2 = np.einsum("nvc,nvc->nv", self._near, self._near)
        self.L = _spine_length(joints)
        self.h = joints[..., 1] / self.L[:, None]  # joint heights
        self.up, self.left, self.front = _torso_axes(joints)
        self.up_y, self.front_y = self.up[:, 1], self.front[:, 1]
        # Horizontal direction the body faces or heads to: sitting, crawling and lying alike.
        self.ahead = _unit((self.up + self.front) * [1, 0, 1])

    def bone(self, a: int, b: int) -> np.ndarray:
        return np.linalg.norm(self.j[:, b] - self.j[:, a], axis=-1) / self.L

    def clearance(self, centre: np.ndarray, radius: float) -> np.ndarray:
        """Lowest height of the body within ``radius`` of ``centre`` (N, 3) or centres (N, K, 3):
        how far that part is off the floor."""
        dtype = self._near.dtype
        c = (centre if centre.ndim == 3 else centre[:, None]).astype(dtype)
        # |v - c|^2 < r^2  <=>  |v|^2 - 2 v.c < r^2 - |c|^2, one matrix product for all centres
        limit = ((radius * self.L)[:, None] ** 2 - np.sum(c * c, -1)).astype(dtype)
        near = self._near2[..., None] - 2.0 * (self._near @ np.swapaxes(c, 1, 2)) < limit[:, None]
        low = np.where(near, self._near[..., 1:2], np.inf).min(1) / self.L[:, None]
        return low if centre.ndim == 3 else low[:, 0]

    def touching(self, *names: str) -> np.ndarray:
        """The body near each named joint rests on the floor."""
        return np.all(self.clearance(self.j[:, [J[k] for k in names]], JOINT_SPHERE) < TOUCH, axis=1)

    def lifted(self, *names: str) -> np.ndarray:
        return np.all(self.clearance(self.j[:, [J[k] for k in names]], JOINT_SPHERE) > TOUCH, axis=1)

    def along(self, a: int, b: int) -> np.ndarray:
        """How far joint ``a`` is ahead of joint ``b``."""
        return np.sum((self.j[:, a] - self.j[:, b]) * self.ahead, -1) / self.L

    def hands_at_legs(self) -> np.ndarray:
        """Each hand (wrist to knuckles midpoint) is at a knee, ankle or foot."""
        hands = 0.5 * (self.j[:, [20, 21]] + self.j[:, [22, 23]])
        legs = self.j[:, [4, 5, 7, 8, 10, 11]]
        dist = np.linalg.norm(hands[:, :, None] - legs[:, None], axis=-1).min(2) / self.L[:, None]
        arm = self.bone(16, 18) + self.bone(18, 20)
        return np.all(dist < REACH * arm[:, None], axis=1)

    def propped_on_forearms(self) -> np.ndarray:
        down = np.all(_unit(self.j[:, [18, 19]] - self.j[:, [16, 17]])[..., 1] < -np.cos(np.radians(45.0)), axis=1)
        return down & self.touching("left_elbow", "right_elbow")

    def leg_length(self) -> np.ndarray:
        return 0.5 * (self.bone(1, 4) + self.bone(4, 7) + self.bone(2, 5) + self.bone(5, 8))

    def knee_angles(self) -> np.ndarray:
        """Knee angle (degrees, 180 = straight), (N, 2)."""
        thigh = _unit(self.j[:, [1, 2]] - self.j[:, [4, 5]])
        shin = _unit(self.j[:, [7, 8]] - self.j[:, [4, 5]])
        return np.degrees(np.arccos(np.clip(np.sum(thigh * shin, -1), -1.0, 1.0)))

    def hip_flexion(self) -> np.ndarray:
        """Angle (degrees) between each thigh and the torso's downward axis, (N, 2)."""
        thigh = _unit(self.j[:, [4, 5]] - self.j[:, [1, 2]])
        return np.degrees(np.arccos(np.clip(np.sum(thigh * -self.up[:, None], -1), -1.0, 1.0)))

    def legs_behind(self) -> np.ndarray:
        """The feet trail the pelvis, away from the head: a prone body, not a sitting one."""
        return self.along(7, 0) + self.along(8, 0) < 0.0

    def seated(self) -> np.ndarray:
        """Buttocks on the floor, torso above them, legs out in front."""
        legs_ahead = self.along(7, 0) + self.along(8, 0)
        return (
            (self.clearance(self.j[:, 0], 0.5) < TOUCH)
            & (self.up_y > np.sin(np.radians(15.0)))
            & (legs_ahead > 0.6)
        )

    def lean_back(self) -> np.ndarray:
        """Torso lean from vertical in degrees, > 0 backwards."""
        return np.degrees(np.arcsin(np.clip(self.front_y, -1.0, 1.0)))


def _prone_lying(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    return {
        "faces_down": m.front_y < -np.cos(np.radians(40.0)),
        "legs_behind": m.legs_behind(),
        "torso_on_floor": m.clearance(m.j[:, J["spine2"]], 0.5) < TOUCH,
        "arms_not_propping": ~m.propped_on_forearms(),
        "limbs_resting": np.all(m.h[:, [18, 19, 20, 21, 4, 5, 7, 8]] < LIMB_RESTING, axis=1),
    }


def _forearm_support(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    return {
        "faces_down": m.front_y < -0.3,
        "legs_behind": m.legs_behind(),
        "propped_on_forearms": m.propped_on_forearms() & m.touching("left_wrist", "right_wrist"),
        "chest_raised": m.clearance(0.5 * (m.j[:, 16] + m.j[:, 17]), 0.3) > CHEST_RAISED,
        "belly_down": m.clearance(m.j[:, [0, 3]], 0.5).min(1) < TOUCH,
    }


def _on_hands_and_knees(m: _Measure) -> dict[str, np.ndarray]:
    return {
        "hands_knees_down": m.touching("left_wrist", "right_wrist", "left_knee", "right_knee"),
        "legs_behind": m.legs_behind(),
        "torso_horizontal": np.abs(m.up_y) < np.sin(np.radians(30.0)),
        "belly_up": m.clearance(m.j[:, J["spine2"]], 0.5) > BELLY_UP,
    }


def _reciprocal_crawling(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    lead_hand, lead_knee = m.along(20, 21), m.along(5, 4)  # left hand ahead, right knee ahead
    opposite = (lead_hand * lead_knee > 0) & (np.minimum(np.abs(lead_hand), np.abs(lead_knee)) > LEAD)
    return _on_hands_and_knees(m) | {"opposite_limbs_forward": opposite}


def _four_point_kneeling(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    thighs = _unit(m.j[:, [1, 2]] - m.j[:, [4, 5]])
    return _on_hands_and_knees(m) | {
        "thighs_vertical": np.all(thighs[..., 1] > np.cos(np.radians(30.0)), axis=1),
        "symmetric": (np.abs(m.along(20, 21)) < LEAD) & (np.abs(m.along(5, 4)) < LEAD),
    }


def _supine(m: _Measure, max_tilt: float) -> dict[str, np.ndarray]:
    return {
        "faces_up": m.front_y > np.cos(np.radians(max_tilt)),
        "torso_on_floor": m.clearance(m.j[:, J["spine2"]], 0.5) < TOUCH,
    }


def _supine_lying(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    return _supine(m, 40.0) | {"hands_not_at_legs": ~m.hands_at_legs()}


def _hands_to_knee_feet(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    raised = np.all(m.hip_flexion() > 60.0, axis=1) & (np.minimum(m.h[:, 4], m.h[:, 5]) > m.h[:, 0] + 0.1)
    return _supine(m, 50.0) | {"hands_at_knees_or_feet": m.hands_at_legs(), "legs_raised": raised}


def _rolling(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    return {
        "side_lying": np.abs(m.front_y) < np.sin(np.radians(30.0)),
        "torso_along_floor": np.abs(m.up_y) < np.sin(np.radians(30.0)),
        "hip_or_shoulder_down": m.clearance(m.j[:, [1, 2, 16, 17]], JOINT_SPHERE).min(1) < TOUCH,
    }


def _sitting_with_support(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    return {
        "seated": m.seated(),
        "leans_back": m.lean_back() > 8.0,
        "back_on_support": _back_supported(m, props),
    }


def _sitting_with_arm_support(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    in_front = np.minimum(m.along(20, 0), m.along(21, 0))
    return {
        "seated": m.seated(),
        "leans_forward": m.lean_back() < -5.0,
        "hands_propping_in_front": m.touching("left_wrist", "right_wrist") & (in_front > 0.1),
    }


def _sitting_without_support(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    return {
        "seated": m.seated(),
        "upright": np.abs(m.lean_back()) < 15.0,
        "hands_free": m.lifted("left_wrist", "right_wrist"),
        "unsupported": ~_back_supported(m, props),
    }


def _four_point_standing(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    legs = m.leg_length()
    shoulders = 0.5 * (m.h[:, 16] + m.h[:, 17])
    return {
        "hands_feet_down": m.touching("left_wrist", "right_wrist", "left_ankle", "right_ankle"),
        "knees_off_floor": np.all(m.h[:, [4, 5]] > 0.35 * legs[:, None], axis=1),
        "hips_high": (m.h[:, 0] > shoulders) & (m.h[:, 0] > 0.6 * legs),
    }


def _standing(m: _Measure, props: Any) -> dict[str, np.ndarray]:
    return {
        "upright": m.up_y > np.cos(np.radians(20.0)),
        "feet_down": m.touching("left_ankle", "right_ankle"),
        "legs_straight": np.all(m.knee_angles() > 150.0, axis=1),
        "hips_high": m.h[:, 0] > 0.8 * m.leg_length(),
    }


#: The predicates of each AIMS pose, evaluated on :class:`_Measure`.
PREDICATES: Final[dict[str, Any]] = {
    "Prone Lying": _prone_lying,
    "Forearm Support": _forearm_support,
    "Reciprocal Crawling": _reciprocal_crawling,
    "Four-Point Kneeling": _four_point_kneeling,
    "Supine Lying": _supine_lying,
    "Hands to Knee/Feet": _hands_to_knee_feet,
    "Rolling": _rolling,
    "Sitting w/ Support": _sitting_with_support,
    "Sitting w/ Arm Support": _sitting_with_arm_support,
    "Sitting w/o Support": _sitting_without_support,
    "Four-Point Standing": _four_point_standing,
    "Standing": _standing,
}


def check_pose(
    fine_label: str,
    joints: np.ndarray,
    vertices: np.ndarray,
    props: Sequence[Sequence[Prop]] | Sequence[Prop] | None = None,
) -> dict[str, Any]:
    """Named geometric predicates of an AIMS pose for placed bodies.

    ``joints`` (N, J>=24, 3) or (J, 3) in SMPL order, ``vertices`` (N, V, 3) or (V, 3), world
    coordinates with the floor at y = 0; ``props`` per sample (only Sitting w/ Support uses them:
    without a support object it is not that pose). Returns one boolean (array) per predicate,
    always starting with ``on_floor`` (lowest vertex at y = 0). A body part "touches" the floor
    when the lowest vertex within :data:`JOINT_SPHERE` of its joint is below :data:`TOUCH`.
    """
    label = parse_fine(fine_label)
    single = np.ndim(joints) == 2
    j = np.asarray(joints, dtype=np.float64)
    v = np.asarray(vertices)
    v = v if v.dtype.kind == "f" else v.astype(np.float64)
    if single:
        j, v = j[None], v[None]
        props = None if props is None else [props]  # type: ignore[list-item]
    if j.ndim != 3 or j.shape[1] < NUM_JOINTS or v.ndim != 3 or v.shape[0] != j.shape[0]:
        raise ValueError(f"need joints (N, >=24, 3) and vertices (N, V, 3); got {j.shape}, {v.shape}")
    out = {"on_floor": np.abs(v[..., 1].min(1)) <= FLOOR_TOL} | PREDICATES[label](_Measure(j, v), props)
    return {k: bool(val[0]) for k, val in out.items()} if single else out


def _back_supported(m: _Measure, props: Any) -> np.ndarray:
    """The back (above the pelvis, behind the torso) touches a support prop that nothing enters."""
    ok = np.zeros(len(m.j), dtype=bool)
    if props is None:
        return ok
    for i, sample_props in enumerate(props):
        back = (m.v[i, :, 1] - m.j[i, 0, 1] > 0.25 * m.L[i]) & ((m.v[i] - m.j[i, 0]) @ m.front[i] < 0)
        for prop in sample_props:
            d = _capsule_distance(m.v[i], prop.capsule) / m.L[i]
            ok[i] |= bool(d.min() > -1e-3) and bool((d[back] < 0.02).any())
    return ok


def satisfies_pose(
    fine_label: str,
    joints: np.ndarray,
    vertices: np.ndarray,
    props: Sequence[Sequence[Prop]] | Sequence[Prop] | None = None,
) -> Any:
    """All predicates of :func:`check_pose` hold: a bool, or an (N,) bool array for a batch."""
    checks = check_pose(fine_label, joints, vertices, props)
    return all(checks.values()) if np.ndim(joints) == 2 else np.all(list(checks.values()), axis=0)


# --- sampling ----------------------------------------------------------------------------------


def _draw(rng: np.random.Generator, r: Range, n: int) -> np.ndarray:
    return rng.uniform(r[0], r[1], n)


def _draw3(rng: np.random.Generator, t: Triple, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return _draw(rng, t[0], n), _draw(rng, t[1], n), _draw(rng, t[2], n)


def _choose(rng: np.random.Generator, options: _T | tuple[_T, ...], n: int) -> list[_T]:
    """One of the alternatives per sample."""
    opts = options if isinstance(options, tuple) else (options,)
    return [opts[k] for k in rng.integers(len(opts), size=n)]


def _limb_field(items: Sequence[Any], name: str, rng: np.random.Generator) -> np.ndarray:
    """Draw one field for samples whose alternatives differ (ranges gathered per sample)."""
    r = np.array([getattr(it, name) for it in items], dtype=np.float64)
    return rng.uniform(r[..., 0], r[..., 1])


def _swing_twist(rest_dir: np.ndarray, flex: np.ndarray, abd: np.ndarray, ext: np.ndarray) -> np.ndarray:
    """Ball-joint rotation (left side): swing the rest bone to the direction given by flexion and
    abduction (from hanging straight down), then turn it outward by ``ext`` about itself."""
    f, a = np.radians(flex), np.radians(abd)
    target = np.stack([np.sin(a), -np.cos(a) * np.cos(f), np.cos(a) * np.sin(f)], -1)
    return _axis_angle(target, -np.radians(ext)) @ _rot_between(_unit(rest_dir), target)


def _sample_rotations(spec: PoseSpec, rng: np.random.Generator, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local joint rotations (n, 24, 3, 3) of one pose variant ([:, 0] is the base orientation)
    and which samples were mirrored left/right."""
    n = rest.shape[0]
    rots = np.broadcast_to(np.eye(3), (n, NUM_JOINTS, 3, 3)).copy()
    rots[:, 0] = _axis_angle(_EX, np.radians(_draw(rng, spec.pitch, n))) @ _axis_angle(
        _EY, np.radians(_draw(rng, spec.roll, n))
    )
    for name in ("spine1", "spine2", "spine3"):
        rots[:, J[name]] = _euler(*_draw3(rng, spec.spine, n))
    rots[:, J["neck"]] = _euler(*_draw3(rng, spec.neck, n))
    rots[:, J["head"]] = _euler(*_draw3(rng, spec.head, n))
    for side, m in (("left", np.eye(3)), ("right", _M)):
        arm_opts = spec.right_arm if side == "right" and spec.right_arm is not None else spec.arm
        leg_opts = spec.right_leg if side == "right" and spec.right_leg is not None else spec.leg
        arms = _choose(rng, arm_opts, n)
        legs = _choose(rng, leg_opts, n)
        g = lambda name: _limb_field(arms, name, rng)  # noqa: E731
        shoulder_dir = (rest[:, J[f"{side}_elbow"]] - rest[:, J[f"{side}_shoulder"]]) @ m
        local = {
            "collar": _euler(*(_limb_field(arms, "collar", rng).T)),
            "shoulder": _swing_twist(shoulder_dir, g("flex"), g("abd"), g("ext")),
            "elbow": _axis_angle(-_EY, np.radians(g("elbow"))),
            "wrist": _euler(*(_limb_field(arms, "wrist", rng).T)),
            "hand": _axis_angle(_EZ, -np.radians(g("fingers"))),
        }
        g = lambda name: _limb_field(legs, name, rng)  # noqa: E731
        hip_dir = (rest[:, J[f"{side}_knee"]] - rest[:, J[f"{side}_hip"]]) @ m
        local |= {
            "hip": _swing_twist(hip_dir, g("flex"), g("abd"), g("ext")),
            "knee": _axis_angle(_EX, np.radians(g("knee"))),
            "ankle": _euler(*(_limb_field(legs, "ankle", rng).T)),
        }
        for joint, r in local.items():
            rots[:, J[f"{side}_{joint}"]] = m @ r @ m
    flip = rng.random(n) < 0.5
    rots[flip] = _M @ rots[flip][:, list(MIRROR_PERM)] @ _M
    return rots, flip


def _fk(rots: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global joint rotations and positions (root at its rest position), as smplx computes them."""
    g = np.empty_like(rots)
    p = np.empty_like(rest)
    g[:, 0], p[:, 0] = rots[:, 0], rest[:, 0]
    for i in range(1, NUM_JOINTS):
        k = PARENTS[i]
        g[:, i] = g[:, k] @ rots[:, i]
        p[:, i] = p[:, k] + np.einsum("nij,nj->ni", g[:, k], rest[:, i] - rest[:, k])
    return g, p


def _lbs(info: _BodyInfo, rots: np.ndarray, rest: np.ndarray, betas: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Vertices ``idx`` posed by rotation matrices ``rots`` (n, 24, 3, 3): smplx's linear blend
    skinning (shape and pose blend shapes, root at its rest position, no translation), in NumPy.

    Same numbers as a smplx forward (to float rounding) at a fraction of its CPU cost, and it
    can pose just the few vertices an intermediate step looks at."""
    n, m = len(rots), len(idx)
    shapes = info.shapedirs[idx, :, : betas.shape[1]].reshape(m * 3, -1)
    v = info.v_template[idx][None] + (betas @ shapes.T).reshape(n, m, 3)
    if info.posedirs is not None:
        cols = (idx[:, None] * 3 + np.arange(3)).ravel()
        v = v + ((rots[:, 1:] - np.eye(3)).reshape(n, -1) @ info.posedirs[:, cols]).reshape(n, m, 3)
    g, p = _fk(rots, rest)
    shift = p - np.einsum("nkij,nkj->nki", g, rest)  # translation of each joint's transform
    # Blend the 24 transforms per vertex with one (m, 24) @ (24, n * 12) product in float32
    # (the CPU cost is memory traffic), then apply them to the vertices.
    per_joint = np.concatenate([g, shift[..., None]], -1).astype(np.float32)  # (n, 24, 3, 4)
    blend = info.weights[idx].astype(np.float32) @ per_joint.transpose(1, 0, 2, 3).reshape(NUM_JOINTS, -1)
    homog = np.empty((m, n, 4), np.float32)  # contiguous in the blend's layout: einsum is fast
    homog[..., :3] = v.transpose(1, 0, 2)
    homog[..., 3] = 1.0
    return np.einsum("mnij,mnj->nmi", blend.reshape(m, n, 3, 4), homog)


def _skin(info: _BodyInfo, rots: np.ndarray, rest: np.ndarray, betas: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named vertex regions (decimated, see :func:`_body_info`) posed by ``rots``."""
    idx = np.unique(np.concatenate([info.solve_regions[k] for k in names]))
    posed = _lbs(info, rots, rest, betas, idx)
    return {k: posed[:, np.searchsorted(idx, info.solve_regions[k])] for k in names}


def _pose_body(info: _BodyInfo, rots: np.ndarray, rest: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All vertices and the joints smplx's SMPL outputs (24 joints, then its extra vertex
    joints), float32."""
    v = np.ascontiguousarray(_lbs(info, rots, rest, betas, np.arange(len(info.v_template))))
    _, p = _fk(rots, rest)
    return v, np.concatenate([p.astype(np.float32), v[:, info.extra_joints]], axis=1)


def _mirror_name(name: str) -> str:
    return name[:-2] + {"_l": "_r", "_r": "_l"}[name[-2:]] if name[-2:] in ("_l", "_r") else name


def _contact_names(spec: PoseSpec) -> list[str]:
    """Regions the solves look at: the contacts on both sides, and the whole-body sample."""
    return sorted({*spec.contacts, *map(_mirror_name, spec.contacts), "body"})


def _tilt(pts: dict[str, np.ndarray], spec: PoseSpec, flipped: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Rotation (n, 3, 3) that brings the lowest points of the contact regions (posed region
    vertices ``pts``) onto one horizontal plane, iterated because the lowest points move. Two
    regions, or regions that lie along the body (``spec.along``), only level the line through
    them; ``flipped`` samples were mirrored, so their left and right regions swap."""
    n = len(flipped)
    rows = np.arange(n)
    com0 = pts["body"].mean(1)
    total = np.broadcast_to(np.eye(3), (n, 3, 3)).copy()
    for _ in range(iterations):
        lows = []
        for name in spec.contacts:
            low = []
            for region in (name, _mirror_name(name)):
                rv = pts[region] @ np.swapaxes(total, -1, -2)
                low.append(rv[rows, rv[..., 1].argmin(1)])
            lows.append(np.where(flipped[:, None], low[1], low[0]))
        p = np.stack(lows, 1)
        c = p.mean(1)
        com = np.einsum("nij,nj->ni", total, com0)
        _, _, vt = np.linalg.svd(p - c[:, None])
        if len(lows) == 2 or spec.along:
            d = vt[:, 0]
            step = _rot_between(d, _unit(d * [1, 0, 1]))
            if spec.balance:  # also turn about the line until the centre of mass is above it
                e = _unit(d * [1, 0, 1])
                w = np.einsum("nij,nj->ni", step, com - c)
                w = _unit(w - np.sum(w * e, -1, keepdims=True) * e)
                step = _rot_between(w, np.broadcast_to(_Y, w.shape)) @ step
        else:
            normal = vt[:, -1] * np.sign(np.sum(vt[:, -1] * (com - c), -1, keepdims=True))
            step = _rot_between(normal, np.broadcast_to(_Y, normal.shape))
        total = step @ total
    return total


def _rigid(x: np.ndarray, r: np.ndarray, root: np.ndarray) -> np.ndarray:
    """Apply a change of global orientation ``r`` (about the root joint) to points (n, K, 3)."""
    return (x - root[:, None]) @ np.swapaxes(r, -1, -2) + root[:, None]


def _two_bone_ik(
    s: np.ndarray, w: np.ndarray, l1: np.ndarray, l2: np.ndarray, pole: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Upper and lower bone directions reaching from ``s`` to ``w`` with the middle joint bent
    towards ``pole``; ``ok`` is False where the target is out of reach."""
    d = w - s
    dist = np.linalg.norm(d, axis=-1)
    ok = (dist < 0.995 * (l1 + l2)) & (dist > np.abs(l1 - l2) + 1e-6)
    dist = np.clip(dist, np.abs(l1 - l2) + 1e-6, 0.995 * (l1 + l2))
    dn = _unit(d)
    cos_a = np.clip((l1**2 + dist**2 - l2**2) / (2 * l1 * dist), -1.0, 1.0)
    side = _unit(pole - np.sum(pole * dn, -1, keepdims=True) * dn)
    elbow = s + l1[:, None] * (cos_a[:, None] * dn + np.sqrt(1 - cos_a**2)[:, None] * side)
    target = s + dist[:, None] * dn
    return _unit(elbow - s), _unit(target - elbow), ok


def _solve_arms(
    rots: np.ndarray, rest: np.ndarray, wrist_target: np.ndarray, pole_local: np.ndarray
) -> np.ndarray:
    """Set shoulder and elbow rotations so each wrist reaches ``wrist_target`` (n, 2, 3) in the
    frame of ``rots[:, 0]``; ``pole_local`` (n, 2, 3) is where each elbow points, in chest axes
    (outward, up, front). Returns the per-sample reachability (n,)."""
    g, p = _fk(rots, rest)
    ok = np.ones(len(rots), dtype=bool)
    for k, (side, m) in enumerate((("left", np.eye(3)), ("right", _M))):
        sh, el, wr = J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]
        l1 = np.linalg.norm(rest[:, el] - rest[:, sh], axis=-1)
        l2 = np.linalg.norm(rest[:, wr] - rest[:, el], axis=-1)
        pole = np.einsum("nij,nj->ni", g[:, J["spine3"]], pole_local[:, k] @ m)
        u, f, reach = _two_bone_ik(p[:, sh], wrist_target[:, k], l1, l2, pole)
        r1 = _unit(rest[:, el] - rest[:, sh])
        r2 = _unit(rest[:, wr] - rest[:, el])
        h0 = np.linalg.det(m) * (m @ -_EY)  # flexion axis; an axis mirrors as a pseudo-vector
        hinge = _unit(h0 - np.sum(h0 * r1, -1, keepdims=True) * r1)
        n_axis = _unit(np.cross(u, f))
        frame = lambda a, b: np.stack([a, b, np.cross(a, b)], -1)  # noqa: E731
        g_sh = frame(u, n_axis) @ np.swapaxes(frame(r1, hinge), -1, -2)
        rots[:, sh] = np.swapaxes(g[:, J[f"{side}_collar"]], -1, -2) @ g_sh
        f_loc = np.einsum("nji,nj->ni", g_sh, f)
        r2p = r2 - np.sum(r2 * hinge, -1, keepdims=True) * hinge
        fp = f_loc - np.sum(f_loc * hinge, -1, keepdims=True) * hinge
        phi = np.arctan2(np.sum(hinge * np.cross(r2p, fp), -1), np.sum(r2p * fp, -1))
        rots[:, el] = _axis_angle(hinge, phi)
        ok &= reach & (phi > -0.05) & (phi < np.radians(150.0))
    return ok


def _reach_legs(rots: np.ndarray, rest: np.ndarray, spec: PoseSpec, info: _BodyInfo, rng: np.random.Generator) -> np.ndarray:
    """Hands to knees or feet: put each wrist half a hand length plus the limb's radius short of
    the same-side knee or foot, on the shoulder's side; the hand (flexed, fingers curled, see
    ``_ARM_GRASP``) then lies on its surface."""
    _, p = _fk(rots, rest)
    n = len(rots)
    targets = []
    for side in ("left", "right"):
        if spec.reach == "knee":
            t, radius = p[:, J[f"{side}_knee"]], info.knee_radius
        else:
            t, radius = 0.5 * (p[:, J[f"{side}_ankle"]] + p[:, J[f"{side}_foot"]]), info.radii[_SEG["foot_l"]]
        towards = _unit(p[:, J[f"{side}_shoulder"]] - t)
        gap = radius + 0.5 * np.linalg.norm(rest[:, J[f"{side}_hand"]] - rest[:, J[f"{side}_wrist"]], axis=-1)
        jitter = rng.normal(0.0, 0.01, (n, 3))
        targets.append(t + towards * gap[:, None] + jitter)
    return _solve_arms(rots, rest, np.stack(targets, 1), np.broadcast_to([1.0, -0.3, -0.6], (n, 2, 3)))


def _plant_hands(
    rots: np.ndarray, rest: np.ndarray, floor_y: np.ndarray, spec: PoseSpec, info: _BodyInfo, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Put both hands on the floor with arm IK, each where its :class:`Plant` says; returns
    reachability (n,) and which hands are to be laid flat (n, 2)."""
    g, p = _fk(rots, rest)
    n = len(rots)
    chest = g[:, J["spine3"]]
    # "front" also counts the chest's up axis: a strongly bent-over chest's front points back.
    axes = {"up": chest[:, :, 1], "front": chest[:, :, 1] + chest[:, :, 2], "down": -chest[:, :, 1]}
    palm_y = floor_y + info.palm_depth
    targets, poles, flat, ok = [], [], [], np.ones(n, dtype=bool)
    for side in ("left", "right"):
        plants = _choose(rng, spec.plant, n)  # type: ignore[arg-type]
        sh, el, wr = J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]
        arm_len = np.linalg.norm(rest[:, el] - rest[:, sh], axis=-1) + np.linalg.norm(rest[:, wr] - rest[:, el], axis=-1)
        reach = _limb_field(plants, "extent", rng) * arm_len
        height = p[:, sh, 1] - palm_y
        ok &= reach > height
        radial = np.sqrt(np.maximum(reach**2 - height**2, 0.0))
        base = np.stack([axes[pl.axis][i] for i, pl in enumerate(plants)]) * [1, 0, 1]
        base = _unit(base)
        outward = _unit(np.cross(_Y, base))  # horizontal, across the axis, on the arm's side:
        outward *= np.sign(np.sum(outward * (p[:, sh] - p[:, J["spine3"]]), -1, keepdims=True))
        angle = np.radians(_limb_field(plants, "angle", rng))[:, None]
        t = p[:, sh] * [1, 0, 1] + radial[:, None] * (np.cos(angle) * base + np.sin(angle) * outward)
        t[:, 1] = palm_y
        targets.append(t)
        poles.append(np.array([pl.pole for pl in plants]))
        flat.append(np.array([pl.flat for pl in plants]))
    ok &= _solve_arms(rots, rest, np.stack(targets, 1), np.stack(poles, 1))
    return ok, np.stack(flat, 1)


def _lay_flat(
    rots: np.ndarray,
    rest: np.ndarray,
    spec: PoseSpec,
    flat: np.ndarray,
    floor_y: np.ndarray,
    knee_radius: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Solve joints so that body parts lie on the floor: knees (hip flexion), forearms (elbow
    flexion), palms (wrist, forearm turn), shins and feet (knee, ankle), soles (ankle).

    The desired global orientation of a hand or foot is its rest orientation turned about the
    vertical to the wanted heading (rest palms and soles face down). Returns whether the solved
    joints stay within plausible limits (wrist :data:`WRIST_LIMIT` after moving the turn about
    the forearm into the elbow, forearm turn 120 degrees, ankle 60 degrees)."""
    g, p = _fk(rots, rest)
    n = len(rots)
    ok = np.ones(n, dtype=bool)
    if spec.forearms_flat:
        for side, hinge in (("left", -_EY), ("right", _EY)):
            sh, el, wr = J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]
            phi, good = _hinge_level(g[:, sh], hinge, _unit(rest[:, wr] - rest[:, el]), 20.0, 150.0)
            rots[:, el] = _axis_angle(hinge, phi)
            ok &= good
        g, p = _fk(rots, rest)
    if spec.hands_flat is not None:
        chest = g[:, J["spine3"]]
        for k, side in enumerate(("left", "right")):
            wr = J[f"{side}_wrist"]
            if spec.hands_flat == "forearm":
                heading = _unit((p[:, wr] - p[:, J[f"{side}_elbow"]]) * [1, 0, 1])
            else:
                heading = _unit(chest[:, :, 1] * [1, 0, 1])
            left = _unit(np.cross(_Y, heading))
            turn = np.radians(rng.uniform(-10.0, 30.0, n))
            out = left if k == 0 else -left
            h = np.cos(turn)[:, None] * heading + np.sin(turn)[:, None] * out
            el = J[f"{side}_elbow"]
            rest_axis = rest[:, J[f"{side}_hand"]] - rest[:, wr]
            solved = np.swapaxes(g[:, el], -1, -2) @ _yaw_between(rest_axis, h)
            # The turn about the forearm's axis belongs to the forearm (pronation), not the wrist.
            twist = _twist_part(solved, _unit(rest[:, wr] - rest[:, el]))
            sel = flat[:, k]
            rots[sel, el] = rots[sel, el] @ twist[sel]
            rots[sel, wr] = (np.swapaxes(twist, -1, -2) @ solved)[sel]
            rots[sel, J[f"{side}_hand"]] = np.eye(3)  # straight fingers
            ok &= ~sel | ((_angle_of(rots[:, wr]) < np.radians(WRIST_LIMIT)) & (_angle_of(twist) < np.radians(120.0)))
    if spec.knees_down or spec.shins_flat:
        for side in ("left", "right"):
            hip, kn, an, ft = (J[f"{side}_{x}"] for x in ("hip", "knee", "ankle", "foot"))
            if spec.knees_down:  # swing the thigh until the knee rests on the floor
                _swing_limb(rots, rest, g, p, (hip, kn), floor_y + knee_radius, -80.0, 30.0)  # where possible
                g, _ = _fk(rots, rest)
                # Lying, the shin may rise from the floor but not dip into it.
                phi, level = _hinge_level(g[:, hip], _EX, _unit(rest[:, an] - rest[:, kn]), 0.0, 160.0)
                bend = np.where(level, np.maximum(phi, _angle_of(rots[:, kn])), _angle_of(rots[:, kn]))
                rots[level, kn] = _axis_angle(_EX, bend[level])
            else:  # kneeling: the shin lies on the floor
                phi, level = _hinge_level(g[:, hip], _EX, _unit(rest[:, an] - rest[:, kn]), 0.0, 160.0)
                rots[:, kn] = _axis_angle(_EX, phi)
                ok &= level
            g, _ = _fk(rots, rest)
            # Point the foot so its top lies along the floor where the ankle hinge allows it.
            phi, level = _hinge_level(g[:, kn], _EX, _unit(rest[:, ft] - rest[:, an]), 0.0, 120.0)
            rots[level, an] = _axis_angle(_EX, phi[level])
            ok &= level | bool(spec.knees_down)
        g, p = _fk(rots, rest)
    if spec.feet_flat:
        for side in ("left", "right"):
            an = J[f"{side}_ankle"]
            rest_axis = rest[:, J[f"{side}_foot"]] - rest[:, an]
            now = np.einsum("nij,nj->ni", g[:, an], rest_axis)
            rots[:, an] = np.swapaxes(g[:, J[f"{side}_knee"]], -1, -2) @ _yaw_between(rest_axis, now)
            ok &= _angle_of(rots[:, an]) < np.radians(60.0)
    return ok


def _swing_limb(
    rots: np.ndarray,
    rest: np.ndarray,
    g: np.ndarray,
    p: np.ndarray,
    chain: tuple[int, ...],
    height: np.ndarray,
    lo: float,
    hi: float,
) -> np.ndarray:
    """Swing a whole limb forward or back about its root (``chain[0]``, e.g. the hip), about the
    parent's left axis and by the smallest angle in [lo, hi] degrees (< 0 flexes), so that the
    joint ``chain[-1]`` is at world ``height``; in place where a solution exists, which is
    returned."""
    root = chain[0]
    vec = np.zeros_like(rest[:, 0])
    frame = np.broadcast_to(np.eye(3), rots.shape[:1] + (3, 3))
    for a, b in zip(chain[:-1], chain[1:]):
        frame = frame @ rots[:, a]
        vec = vec + np.einsum("nij,nj->ni", frame, rest[:, b] - rest[:, a])
    length = np.linalg.norm(vec, axis=-1)
    parent = g[:, PARENTS[root]]
    delta, good = _hinge_level(parent, _EX, vec / length[:, None], lo, hi, (height - p[:, root, 1]) / length, 0.0)
    rots[good, root] = _axis_angle(_EX, delta[good]) @ rots[good, root]
    return good


def _untwist(rots: np.ndarray, rest: np.ndarray, pts: dict[str, np.ndarray], spec: PoseSpec) -> None:
    """Turn the chest about the spine so that hands and knees (or feet) can all touch one floor.

    Four contacts fit a plane only up to a warp (one diagonal pair higher than the other), as in
    crawling with opposite limbs forward; an infant takes it up by rotating the trunk, which
    tilts the line between the hands. The turn is solved from the first-order change of the hand
    heights and spread over the three spine joints; in place."""
    _, p = _fk(rots, rest)
    legs = next(c[:-2] for c in spec.contacts if c[:-2] in ("knee", "foot"))
    low = {r: pts[r][..., 1].min(1) for r in ("hand_l", "hand_r", f"{legs}_l", f"{legs}_r")}
    warp = (low["hand_l"] - low["hand_r"]) - (low[f"{legs}_l"] - low[f"{legs}_r"])
    axis = _unit(p[:, J["neck"]] - p[:, J["spine1"]])
    lever = [np.cross(axis, p[:, J[f"{s}_wrist"]] - p[:, J["spine1"]])[:, 1] for s in ("left", "right")]
    gain = lever[0] - lever[1]  # change of the hand height difference per radian of turn
    turn = np.clip(-warp / np.where(np.abs(gain) > 1e-6, gain, 1.0), -0.5, 0.5)
    for k in ("spine1", "spine2", "spine3"):
        rots[:, J[k]] = rots[:, J[k]] @ _axis_angle(_EY, turn / 3.0)


def _twist_part(r: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Twist of rotations ``r`` about unit ``axis`` (swing-twist split, r = swing @ twist)."""
    q = Rotation.from_matrix(r).as_quat()  # (x, y, z, w)
    along = np.sum(q[:, :3] * axis, -1, keepdims=True) * axis
    tw = np.concatenate([along, q[:, 3:]], -1)
    tw /= np.maximum(np.linalg.norm(tw, axis=-1, keepdims=True), 1e-12)
    return Rotation.from_quat(tw).as_matrix()


def _hinge_level(
    g_parent: np.ndarray,
    axis: np.ndarray,
    child: np.ndarray,
    lo: float,
    hi: float,
    rise: np.ndarray | float = 0.0,
    prefer: np.ndarray | float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Rotation angle (radians) about the local hinge ``axis`` (knee, ankle, elbow, hip flexion)
    that gives the unit ``child`` direction the world height ``rise`` (0: horizontal), within
    [lo, hi] degrees; also whether one exists.

    With Rodrigues' formula the child's world height is C + A cos(phi) + B sin(phi), so the two
    roots are solved in closed form and the one inside the range nearest ``prefer`` (degrees;
    default: the middle of the range) is kept.
    """
    w = g_parent[:, 1, :]  # world y, seen from the parent frame
    ar, wa = child @ axis, w @ axis
    a = np.sum(w * child, -1) - wa * ar
    b = np.sum(w * np.cross(axis, child), -1)
    c = wa * ar
    amp = np.maximum(np.hypot(a, b), 1e-12)
    base, spread = np.arctan2(b, a), np.arccos(np.clip((rise - c) / amp, -1.0, 1.0))
    roots = np.angle(np.exp(1j * np.stack([base + spread, base - spread], -1)))
    lo_r, hi_r = np.radians(lo), np.radians(hi)
    inside = (roots >= lo_r) & (roots <= hi_r) & (np.abs(rise - c) <= amp)[:, None]
    aim = np.full(len(roots), 0.5 * (lo_r + hi_r)) if prefer is None else np.radians(np.broadcast_to(prefer, len(roots)))
    cost = np.where(inside, np.abs(roots - aim[:, None]), np.inf)
    best = cost.argmin(1)
    return roots[np.arange(len(roots)), best], inside.any(1)


_CUSHION_COLOURS: Final[tuple[tuple[float, float, float], ...]] = (
    (0.85, 0.55, 0.60), (0.55, 0.70, 0.85), (0.90, 0.82, 0.55), (0.65, 0.80, 0.60),
    (0.80, 0.80, 0.82), (0.75, 0.62, 0.85),
)  # fmt: skip


def _bolster(v: np.ndarray, j: np.ndarray, rng: np.random.Generator) -> Prop:
    """A cylindrical bolster with rounded ends lying on the floor across the back of a sitting
    infant, pushed against the body: the farthest-back position at which no vertex is inside,
    so the back rests on it (contact at one point, no penetration)."""
    L = float(_spine_length(j[None])[0])
    _, left, front = _torso_axes(j[None])
    back = -_unit(front[0] * [1, 0, 1])
    axis = _unit(np.cross(back, _Y))
    r = rng.uniform(0.5, 0.7) * L
    half = rng.uniform(0.8, 1.1) * L
    q = v - j[0]
    qa, qb = q @ axis, q @ back
    dy = v[:, 1] - r
    inside = (np.abs(qa) <= half + r) & (np.abs(dy) < r)
    s = float((qb[inside] + np.sqrt(r**2 - dy[inside] ** 2)).max()) if inside.any() else 0.0
    centre = j[0] * [1, 0, 1] + back * s + _Y * r
    rot = np.stack([back, _Y, axis], 1)  # prop frame: x back, y up, z along the bolster
    transform = np.eye(4)
    transform[:3, :3], transform[:3, 3] = rot, centre
    mesh = trimesh.creation.capsule(height=2 * half, radius=r, count=[24, 24])
    # Widen the tessellated equator to the exact radius, so the mesh touches the floor and body
    # where the capsule does (its ring has a vertex straight down) and stays inside it elsewhere.
    mesh.vertices[:, :2] *= r / np.linalg.norm(mesh.vertices[:, :2], axis=1).max()
    colour = _CUSHION_COLOURS[int(rng.integers(len(_CUSHION_COLOURS)))]
    return Prop("bolster", mesh, transform, colour, (centre - half * axis, centre + half * axis, r))


@dataclass
class _Candidates:
    rots: np.ndarray
    transl: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray
    props: list[list[Prop]]
    feasible: np.ndarray


def _candidates(spec: PoseSpec, rng: np.random.Generator, betas: np.ndarray, info: _BodyInfo) -> _Candidates:
    """One batch of placed candidates of a pose variant (not yet checked)."""
    n = len(betas)
    rest = info.j_template[None] + np.einsum("jck,nk->njc", info.j_shapedirs[..., : betas.shape[1]], betas)
    rots, flipped = _sample_rotations(spec, rng, rest)
    feasible = np.ones(n, dtype=bool)
    if spec.reach in ("knee", "foot"):
        feasible &= _reach_legs(rots, rest, spec, info, rng)
    names = _contact_names(spec)
    adjust = spec.plant or spec.hands_flat or spec.feet_flat or spec.shins_flat or spec.forearms_flat or spec.knees_down
    rounds = 2 if spec.untwist else 1 if adjust else 0
    flat = np.ones((n, 2), dtype=bool)
    # Limb solves need the floor found by the tilt and change what touches it, so each round of
    # them is followed by another tilt; untwisting four contacts needs the hands already flat.
    for round_ in range(rounds + 1):
        pts = _skin(info, rots, rest, betas, names)
        tilt = _tilt(pts, spec, flipped)
        rots[:, 0] = tilt @ rots[:, 0]
        if round_ == rounds:
            break
        pts = {k: _rigid(x, tilt, rest[:, 0]) for k, x in pts.items()}
        if round_ == 1:
            _untwist(rots, rest, pts, spec)
        floor_y = np.min([pts[k][..., 1].min(1) for k in names if k != "body"], axis=0)
        if spec.plant and round_ == 0:
            reached, flat = _plant_hands(rots, rest, floor_y, spec, info, rng)
            feasible &= reached
        feasible &= _lay_flat(rots, rest, spec, flat, floor_y, info.knee_radius, rng)
    rots[:, 0] = _axis_angle(_Y, rng.uniform(0.0, 2 * np.pi, n)) @ rots[:, 0]
    v, jt = _pose_body(info, rots, rest, betas)
    lo, hi = v.min(1), v.max(1)
    transl = -np.stack([0.5 * (lo[:, 0] + hi[:, 0]), lo[:, 1], 0.5 * (lo[:, 2] + hi[:, 2])], 1)
    v, jt = v + transl[:, None], jt + transl[:, None]
    props = [[_bolster(v[i], jt[i], rng)] if spec.support else [] for i in range(n)]
    return _Candidates(rots, transl, v, jt, props, feasible)


def _accept(label: str, c: _Candidates, model: Any) -> tuple[np.ndarray, dict[str, int]]:
    """Which candidates pass; also counts failures per reason for error messages."""
    checks = check_pose(label, c.joints, c.vertices, c.props)
    checks["feasible_joints"] = c.feasible
    checks["no_self_intersection"] = ~self_intersecting(model, c.joints, c.vertices)
    ok = np.all(list(checks.values()), axis=0)
    return ok, {k: int((~val).sum()) for k, val in checks.items() if (~val).any()}


def sample_poses(
    fine_labels: Sequence[str],
    rng: np.random.Generator,
    model: Any,
    betas: np.ndarray,
    max_rounds: int = 30,
) -> PoseBatch:
    """Sample one placed body per label (any spelling :func:`aims_lib.taxonomy.parse_fine`
    accepts); ``betas`` (N, B) are the shapes. Deterministic for a given ``rng`` state.

    Samples of one class are drawn together in batches of up to :data:`BATCH`: the solves pose
    only the contact regions, and the full mesh is skinned once per batch with the model's own
    blend skinning (the same vertices and joints as its smplx forward with the returned
    parameters). Candidates failing the predicates, the self-intersection test or joint limits
    are re-drawn, up to ``max_rounds`` times, after which a ``RuntimeError`` names the failing
    checks.
    """
    labels = [parse_fine(x) for x in fine_labels]
    betas = np.atleast_2d(np.asarray(betas, dtype=np.float64))
    n = len(labels)
    if betas.shape[0] != n:
        raise ValueError(f"betas has {betas.shape[0]} rows for {n} labels")
    info = _body_info(model)
    if betas.shape[1] > info.shapedirs.shape[-1]:
        raise ValueError(f"betas has {betas.shape[1]} columns; the model has {info.shapedirs.shape[-1]} shape components")
    nv = model.v_template.shape[0]
    rots = np.zeros((n, NUM_JOINTS, 3, 3))
    transl = np.zeros((n, 3))
    verts = np.zeros((n, nv, 3), dtype=np.float32)
    joints: np.ndarray | None = None
    props: list[list[Prop]] = [[] for _ in range(n)]
    for label in FINE:
        todo = [i for i, x in enumerate(labels) if x == label]
        failures: dict[str, int] = {}
        for _ in range(max_rounds):
            if not todo:
                break
            specs = POSE_SPECS[label]
            variant = rng.integers(len(specs), size=len(todo))
            accepted: list[int] = []
            for k, spec in enumerate(specs):
                chosen = [i for i, vk in zip(todo, variant) if vk == k]
                for start in range(0, len(chosen), BATCH):
                    sel = chosen[start : start + BATCH]
                    c = _candidates(spec, rng, betas[sel], info)
                    ok, fails = _accept(label, c, model)
                    for key, cnt in fails.items():
                        failures[key] = failures.get(key, 0) + cnt
                    if joints is None:
                        joints = np.zeros((n,) + c.joints.shape[1:], dtype=np.float32)
                    for pos in np.flatnonzero(ok):
                        i = sel[pos]
                        rots[i], transl[i], props[i] = c.rots[pos], c.transl[pos], c.props[pos]
                        verts[i], joints[i] = c.vertices[pos], c.joints[pos]
                        accepted.append(i)
            done = set(accepted)
            todo = [i for i in todo if i not in done]
        if todo:
            raise RuntimeError(f"could not sample {len(todo)} {label!r} poses in {max_rounds} rounds; failures: {failures}")
    aa = _to_rotvec(rots) if n else np.zeros((0, NUM_JOINTS, 3))
    return PoseBatch(
        fine_labels=labels,
        global_orient=aa[:, 0],
        body_pose=aa[:, 1:].reshape(n, -1),
        transl=transl,
        betas=betas,
        vertices=verts,
        joints=joints if joints is not None else np.zeros((0, NUM_JOINTS, 3), dtype=np.float32),
        props=props,
    )
