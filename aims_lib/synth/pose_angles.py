"""Step 1 of the pose sampler: local joint rotations drawn from a class's table
(:class:`~aims_lib.synth.pose_specs.PoseSpec`), limbs in anatomical terms, mirrored left/right
with probability 1/2.

The draw is split in two so that a domain shift (:mod:`~aims_lib.synth.pose_shift`) can act
between them: :func:`draw_angles` draws the angles (degrees, left-side terms) and the mirror
flag, :func:`angles_to_rotations` turns them into joint rotations.
"""

from __future__ import annotations

from typing import Any, Final, Sequence, TypeVar

import numpy as np

from aims_lib.body.rotations import EX, EY, EZ, euler_yxz, rotation_about, rotation_between, unit
from aims_lib.body.skeleton import JOINT_INDEX as J
from aims_lib.body.skeleton import MIRROR_MATRIX, MIRROR_PERM, NUM_JOINTS
from aims_lib.synth.pose_specs import PoseSpec, Range, Triple

_T = TypeVar("_T")

#: Drawn angles of a batch, degrees: "pitch", "roll" (n,); "spine1".."spine3", "neck", "head" and
#: each side's "collar", "wrist", "ankle" Euler (x, y, z) (n, 3); each side's "shoulder" and "hip"
#: (flexion, abduction, external rotation) (n, 3); "elbow", "knee", "fingers" (n,). Sides are
#: prefixed "left_"/"right_", both in left-side terms (the right side is mirrored when built).
Angles = dict[str, np.ndarray]

SIDES: Final[tuple[str, str]] = ("left", "right")


def _draw(rng: np.random.Generator, r: Range, n: int) -> np.ndarray:
    """``n`` uniform draws from a range."""
    return rng.uniform(r[0], r[1], n)


def _draw3(rng: np.random.Generator, t: Triple, n: int) -> np.ndarray:
    """``n`` draws of each of three Euler angles, (n, 3): all x first, then y, then z."""
    return np.stack([_draw(rng, t[0], n), _draw(rng, t[1], n), _draw(rng, t[2], n)], 1)


def choose(rng: np.random.Generator, options: _T | tuple[_T, ...], n: int) -> list[_T]:
    """One of the alternatives per sample."""
    opts = options if isinstance(options, tuple) else (options,)
    return [opts[k] for k in rng.integers(len(opts), size=n)]


def limb_field(items: Sequence[Any], name: str, rng: np.random.Generator) -> np.ndarray:
    """Draw one field for samples whose alternatives differ (ranges gathered per sample)."""
    r = np.array([getattr(it, name) for it in items], dtype=np.float64)
    return rng.uniform(r[..., 0], r[..., 1])


def _swing_twist(rest_dir: np.ndarray, flex: np.ndarray, abd: np.ndarray, ext: np.ndarray) -> np.ndarray:
    """Ball-joint rotation (left side): swing the rest bone to the direction given by flexion and
    abduction (from hanging straight down), then turn it outward by ``ext`` about itself."""
    f, a = np.radians(flex), np.radians(abd)
    target = np.stack([np.sin(a), -np.cos(a) * np.cos(f), np.cos(a) * np.sin(f)], -1)
    return rotation_about(target, -np.radians(ext)) @ rotation_between(unit(rest_dir), target)


def draw_angles(spec: PoseSpec, rng: np.random.Generator, n: int) -> tuple[Angles, np.ndarray]:
    """``n`` samples of a pose variant's angles (:data:`Angles`) and whether each is mirrored
    left/right (probability 1/2). Each side picks its limb alternatives and draws its angles on
    its own; ``right_arm``/``right_leg`` give the right side other ranges."""
    a: Angles = {"pitch": _draw(rng, spec.pitch, n), "roll": _draw(rng, spec.roll, n)}
    for name in ("spine1", "spine2", "spine3"):
        a[name] = _draw3(rng, spec.spine, n)
    a["neck"] = _draw3(rng, spec.neck, n)
    a["head"] = _draw3(rng, spec.head, n)
    for side in SIDES:
        arm_opts = spec.right_arm if side == "right" and spec.right_arm is not None else spec.arm
        leg_opts = spec.right_leg if side == "right" and spec.right_leg is not None else spec.leg
        arms = choose(rng, arm_opts, n)
        legs = choose(rng, leg_opts, n)
        a[f"{side}_collar"] = limb_field(arms, "collar", rng)
        a[f"{side}_shoulder"] = np.stack([limb_field(arms, k, rng) for k in ("flex", "abd", "ext")], 1)
        for key, name in (("elbow", "elbow"), ("wrist", "wrist"), ("fingers", "fingers")):
            a[f"{side}_{key}"] = limb_field(arms, name, rng)
        a[f"{side}_hip"] = np.stack([limb_field(legs, k, rng) for k in ("flex", "abd", "ext")], 1)
        a[f"{side}_knee"] = limb_field(legs, "knee", rng)
        a[f"{side}_ankle"] = limb_field(legs, "ankle", rng)
    return a, rng.random(n) < 0.5


def angles_to_rotations(a: Angles, flip: np.ndarray, rest: np.ndarray) -> np.ndarray:
    """Local joint rotations (n, 24, 3, 3) of drawn angles ([:, 0] is the base orientation: pitch
    about the left axis after roll about the long axis); ``flip`` samples are mirrored."""
    n = rest.shape[0]
    rots = np.broadcast_to(np.eye(3), (n, NUM_JOINTS, 3, 3)).copy()
    rots[:, 0] = rotation_about(EX, np.radians(a["pitch"])) @ rotation_about(EY, np.radians(a["roll"]))
    for name in ("spine1", "spine2", "spine3", "neck", "head"):
        rots[:, J[name]] = euler_yxz(*a[name].T)
    for side, m in zip(SIDES, (np.eye(3), MIRROR_MATRIX)):
        shoulder_dir = (rest[:, J[f"{side}_elbow"]] - rest[:, J[f"{side}_shoulder"]]) @ m
        hip_dir = (rest[:, J[f"{side}_knee"]] - rest[:, J[f"{side}_hip"]]) @ m
        local = {
            "collar": euler_yxz(*a[f"{side}_collar"].T),
            "shoulder": _swing_twist(shoulder_dir, *a[f"{side}_shoulder"].T),
            "elbow": rotation_about(-EY, np.radians(a[f"{side}_elbow"])),
            "wrist": euler_yxz(*a[f"{side}_wrist"].T),
            "hand": rotation_about(EZ, -np.radians(a[f"{side}_fingers"])),
            "hip": _swing_twist(hip_dir, *a[f"{side}_hip"].T),
            "knee": rotation_about(EX, np.radians(a[f"{side}_knee"])),
            "ankle": euler_yxz(*a[f"{side}_ankle"].T),
        }
        for joint, r in local.items():
            rots[:, J[f"{side}_{joint}"]] = m @ r @ m
    rots[flip] = MIRROR_MATRIX @ rots[flip][:, list(MIRROR_PERM)] @ MIRROR_MATRIX
    return rots


def sample_rotations(spec: PoseSpec, rng: np.random.Generator, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local joint rotations (n, 24, 3, 3) of one pose variant ([:, 0] is the base orientation)
    and which samples were mirrored left/right."""
    a, flip = draw_angles(spec, rng, rest.shape[0])
    return angles_to_rotations(a, flip, rest), flip
