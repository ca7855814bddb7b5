"""Step 1 of the pose sampler: local joint rotations drawn from a class's table
(:class:`~aims_lib.synth.pose_specs.PoseSpec`), limbs in anatomical terms, mirrored left/right
with probability 1/2."""

from __future__ import annotations

from typing import Any, Sequence, TypeVar

import numpy as np

from aims_lib.body.rotations import EX, EY, EZ, euler_yxz, rotation_about, rotation_between, unit
from aims_lib.body.skeleton import JOINT_INDEX as J
from aims_lib.body.skeleton import MIRROR_MATRIX, MIRROR_PERM, NUM_JOINTS
from aims_lib.synth.pose_specs import PoseSpec, Range, Triple

_T = TypeVar("_T")


def _draw(rng: np.random.Generator, r: Range, n: int) -> np.ndarray:
    """``n`` uniform draws from a range."""
    return rng.uniform(r[0], r[1], n)


def _draw3(rng: np.random.Generator, t: Triple, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` draws of each of three Euler angles."""
    return _draw(rng, t[0], n), _draw(rng, t[1], n), _draw(rng, t[2], n)


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


def sample_rotations(spec: PoseSpec, rng: np.random.Generator, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local joint rotations (n, 24, 3, 3) of one pose variant ([:, 0] is the base orientation)
    and which samples were mirrored left/right."""
    n = rest.shape[0]
    rots = np.broadcast_to(np.eye(3), (n, NUM_JOINTS, 3, 3)).copy()
    rots[:, 0] = rotation_about(EX, np.radians(_draw(rng, spec.pitch, n))) @ rotation_about(
        EY, np.radians(_draw(rng, spec.roll, n))
    )
    for name in ("spine1", "spine2", "spine3"):
        rots[:, J[name]] = euler_yxz(*_draw3(rng, spec.spine, n))
    rots[:, J["neck"]] = euler_yxz(*_draw3(rng, spec.neck, n))
    rots[:, J["head"]] = euler_yxz(*_draw3(rng, spec.head, n))
    for side, m in (("left", np.eye(3)), ("right", MIRROR_MATRIX)):
        arm_opts = spec.right_arm if side == "right" and spec.right_arm is not None else spec.arm
        leg_opts = spec.right_leg if side == "right" and spec.right_leg is not None else spec.leg
        arms = choose(rng, arm_opts, n)
        legs = choose(rng, leg_opts, n)
        g = lambda name: limb_field(arms, name, rng)  # noqa: E731
        shoulder_dir = (rest[:, J[f"{side}_elbow"]] - rest[:, J[f"{side}_shoulder"]]) @ m
        local = {
            "collar": euler_yxz(*(limb_field(arms, "collar", rng).T)),
            "shoulder": _swing_twist(shoulder_dir, g("flex"), g("abd"), g("ext")),
            "elbow": rotation_about(-EY, np.radians(g("elbow"))),
            "wrist": euler_yxz(*(limb_field(arms, "wrist", rng).T)),
            "hand": rotation_about(EZ, -np.radians(g("fingers"))),
        }
        g = lambda name: limb_field(legs, name, rng)  # noqa: E731
        hip_dir = (rest[:, J[f"{side}_knee"]] - rest[:, J[f"{side}_hip"]]) @ m
        local |= {
            "hip": _swing_twist(hip_dir, g("flex"), g("abd"), g("ext")),
            "knee": rotation_about(EX, np.radians(g("knee"))),
            "ankle": euler_yxz(*(limb_field(legs, "ankle", rng).T)),
        }
        for joint, r in local.items():
            rots[:, J[f"{side}_{joint}"]] = m @ r @ m
    flip = rng.random(n) < 0.5
    rots[flip] = MIRROR_MATRIX @ rots[flip][:, list(MIRROR_PERM)] @ MIRROR_MATRIX
    return rots, flip
