"""The 12 AIMS pose classes as data: per-class distributions of joint angles, base orientation,
floor contacts and the solves that meet them (:data:`POSE_SPECS`, read by the pose sampler).

Angles are uniform ranges in degrees, limbs in anatomical terms and left-side terms (the right
side mirrors them); a class may have several variants and a limb several alternatives.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final, Literal

Range = tuple[float, float]
Triple = tuple[Range, Range, Range]


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
    """Distributions and contact rules of one AIMS pose variant (see :mod:`aims_lib.synth.poses`).

    Orientation: ``pitch`` tips the rest body forward about its left axis (90 = face down,
    -90 = face up), then ``roll`` turns it about its own long axis.

    Contacts: ``contacts`` are vertex regions (:data:`~aims_lib.synth.body_facts.REGIONS`)
    whose lowest points are brought onto one floor plane; two regions, or regions ``along`` the
    body, only level the line through them (``balance`` then also puts the centre of mass above that line). Names ending
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

