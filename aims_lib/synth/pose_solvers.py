"""Steps 2 and 3 of the pose sampler: closed-form solves that make sampled joint angles meet a
class's floor contacts, which sampling alone rarely does.

The contact tilt turns the body rigidly until its contact regions' lowest points lie on one
horizontal plane; the limb solves (two-bone arm IK, hinge solves that lay forearms, shins, palms
and soles flat, the spine turn that four contacts need) act on local joint rotations in place and
report where the solved joints leave plausible limits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Sequence

import numpy as np

from aims_lib.body.kinematics import forward_kinematics
from aims_lib.body.rotations import (
    EX,
    EY,
    rotation_about,
    rotation_angle,
    rotation_between,
    twist_part,
    unit,
    yaw_between,
)
from aims_lib.body.skeleton import JOINT_INDEX as J
from aims_lib.body.skeleton import MIRROR_MATRIX, PARENTS
from aims_lib.synth.body_facts import SEGMENT_INDEX, BodyInfo
from aims_lib.synth.pose_angles import choose, limb_field
from aims_lib.synth.pose_specs import PoseSpec

#: Largest wrist bend (degrees) for a hand laid flat; infant wrists extend further than adults'.
WRIST_LIMIT: Final[float] = 105.0


def _mirror_name(name: str) -> str:
    """The region of the other side (``hand_l`` <-> ``hand_r``); central regions map to themselves."""
    return name[:-2] + {"_l": "_r", "_r": "_l"}[name[-2:]] if name[-2:] in ("_l", "_r") else name


def contact_names(spec: PoseSpec) -> list[str]:
    """Regions the solves look at: the contacts on both sides, and the whole-body sample."""
    return sorted({*spec.contacts, *map(_mirror_name, spec.contacts), "body"})


def tilt(pts: dict[str, np.ndarray], spec: PoseSpec, flipped: np.ndarray, iterations: int = 3) -> np.ndarray:
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
            step = rotation_between(d, unit(d * [1, 0, 1]))
            if spec.balance:  # also turn about the line until the centre of mass is above it
                e = unit(d * [1, 0, 1])
                w = np.einsum("nij,nj->ni", step, com - c)
                w = unit(w - np.sum(w * e, -1, keepdims=True) * e)
                step = rotation_between(w, np.broadcast_to(EY, w.shape)) @ step
        else:
            normal = vt[:, -1] * np.sign(np.sum(vt[:, -1] * (com - c), -1, keepdims=True))
            step = rotation_between(normal, np.broadcast_to(EY, normal.shape))
        total = step @ total
    return total


def rigid(x: np.ndarray, r: np.ndarray, root: np.ndarray) -> np.ndarray:
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
    dn = unit(d)
    cos_a = np.clip((l1**2 + dist**2 - l2**2) / (2 * l1 * dist), -1.0, 1.0)
    side = unit(pole - np.sum(pole * dn, -1, keepdims=True) * dn)
    elbow = s + l1[:, None] * (cos_a[:, None] * dn + np.sqrt(1 - cos_a**2)[:, None] * side)
    target = s + dist[:, None] * dn
    return unit(elbow - s), unit(target - elbow), ok


def _solve_arms(
    rots: np.ndarray,
    rest: np.ndarray,
    wrist_target: np.ndarray,
    pole_local: np.ndarray,
    arms: np.ndarray | None = None,
) -> np.ndarray:
    """Set shoulder and elbow rotations so each wrist reaches ``wrist_target`` (n, 2, 3) in the
    frame of ``rots[:, 0]``; ``pole_local`` (n, 2, 3) is where each elbow points, in chest axes
    (outward, up, front). ``arms`` (n, 2) selects the arms solved (default: all); the others
    keep their rotations. Returns the per-sample reachability of the solved arms (n,)."""
    g, p = forward_kinematics(rots, rest)
    ok = np.ones(len(rots), dtype=bool)
    arms = np.ones((len(rots), 2), dtype=bool) if arms is None else arms
    for k, (side, m) in enumerate((("left", np.eye(3)), ("right", MIRROR_MATRIX))):
        sel = arms[:, k]
        sh, el, wr = J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]
        l1 = np.linalg.norm(rest[:, el] - rest[:, sh], axis=-1)
        l2 = np.linalg.norm(rest[:, wr] - rest[:, el], axis=-1)
        pole = np.einsum("nij,nj->ni", g[:, J["spine3"]], pole_local[:, k] @ m)
        u, f, reach = _two_bone_ik(p[:, sh], wrist_target[:, k], l1, l2, pole)
        r1 = unit(rest[:, el] - rest[:, sh])
        r2 = unit(rest[:, wr] - rest[:, el])
        h0 = np.linalg.det(m) * (m @ -EY)  # flexion axis; an axis mirrors as a pseudo-vector
        hinge = unit(h0 - np.sum(h0 * r1, -1, keepdims=True) * r1)
        n_axis = unit(np.cross(u, f))
        frame = lambda a, b: np.stack([a, b, np.cross(a, b)], -1)  # noqa: E731
        g_sh = frame(u, n_axis) @ np.swapaxes(frame(r1, hinge), -1, -2)
        rots[sel, sh] = (np.swapaxes(g[:, J[f"{side}_collar"]], -1, -2) @ g_sh)[sel]
        f_loc = np.einsum("nji,nj->ni", g_sh, f)
        r2p = r2 - np.sum(r2 * hinge, -1, keepdims=True) * hinge
        fp = f_loc - np.sum(f_loc * hinge, -1, keepdims=True) * hinge
        phi = np.arctan2(np.sum(hinge * np.cross(r2p, fp), -1), np.sum(r2p * fp, -1))
        rots[sel, el] = rotation_about(hinge, phi)[sel]
        ok &= ~sel | (reach & (phi > -0.05) & (phi < np.radians(150.0)))
    return ok


def reach_legs(rots: np.ndarray, rest: np.ndarray, spec: PoseSpec, info: BodyInfo, rng: np.random.Generator) -> np.ndarray:
    """Hands to knees or feet: put each wrist half a hand length plus the limb's radius short of
    the same-side knee or foot, on the shoulder's side; the hand (flexed, fingers curled, see
    ``_ARM_GRASP``) then lies on its surface."""
    _, p = forward_kinematics(rots, rest)
    n = len(rots)
    targets = []
    for side in ("left", "right"):
        if spec.reach == "knee":
            t, radius = p[:, J[f"{side}_knee"]], info.knee_radius
        else:
            t, radius = 0.5 * (p[:, J[f"{side}_ankle"]] + p[:, J[f"{side}_foot"]]), info.radii[SEGMENT_INDEX["foot_l"]]
        towards = unit(p[:, J[f"{side}_shoulder"]] - t)
        gap = radius + 0.5 * np.linalg.norm(rest[:, J[f"{side}_hand"]] - rest[:, J[f"{side}_wrist"]], axis=-1)
        jitter = rng.normal(0.0, 0.01, (n, 3))
        targets.append(t + towards * gap[:, None] + jitter)
    return _solve_arms(rots, rest, np.stack(targets, 1), np.broadcast_to([1.0, -0.3, -0.6], (n, 2, 3)))


@dataclass(frozen=True)
class Spot:
    """A place on the body a hand can touch: on the surface of the capsule ``segment``
    (:data:`~aims_lib.synth.body_facts.SEGMENTS`), at ``at`` of the way from joint ``a`` to joint
    ``b``, on the front of joint ``frame`` (its rest +z axis, posed). ``{side}`` in a joint name is
    the hand's side. ``pole`` is where the elbow points, in chest axes (outward, up, front)."""

    a: str
    b: str
    at: float
    segment: str
    frame: str
    pole: tuple[float, float, float]


#: Spots of hand-to-body contacts: the mouth (the front of the face at the head joint, low in
#: the skull), the belly (the front of the torso between the lower and the middle spine joint)
#: and the same side's upper thigh (an infant's arms are short: standing, the hands reach the
#: hips, not the knees).
HAND_SPOTS: Final[dict[str, Spot]] = {
    "mouth": Spot("head", "head", 0.0, "head", "head", (0.3, -1.0, 0.5)),
    "belly": Spot("spine1", "spine2", 0.5, "torso_lo", "spine1", (1.0, -0.5, 0.0)),
    "thigh": Spot("{side}_hip", "{side}_knee", 0.3, "thigh_l", "{side}_hip", (1.0, -0.3, -0.3)),
}


def hands_to_body(
    rots: np.ndarray, rest: np.ndarray, hands: np.ndarray, spots: np.ndarray, names: Sequence[str], info: BodyInfo
) -> np.ndarray:
    """Put the selected hands (``hands`` (n, 2): left, right) on a spot of the body
    (``names[spots]``, :data:`HAND_SPOTS`) with arm IK; in place, the other arms untouched.

    The knuckles (the hand joint) go one hand radius out from the spot's surface point, so the
    hand ends on the body; the wrist target is the knuckles less the hand's vector, first
    guessed along the line from the shoulder, then taken from the solved arm (its wrist angles
    kept) and solved again, four solves in all (the knuckles then land within a centimetre of
    the spot, ``tests/test_pose_shift.py``). Returns whether the solved arms reached and stayed
    within the elbow's limits (n,)."""
    g, p = forward_kinematics(rots, rest)
    n = len(rots)
    hand_radius = info.radii[SEGMENT_INDEX["hand_l"]]
    knuckles = p[:, [J["left_hand"], J["right_hand"]]]  # unselected arms: where they are
    poles = np.broadcast_to([1.0, 0.0, 0.0], (n, 2, 3)).copy()
    for k, side in enumerate(("left", "right")):
        for s, name in enumerate(names):
            spot = HAND_SPOTS[name]
            a, b, frame = (J[x.format(side=side)] for x in (spot.a, spot.b, spot.frame))
            surface = info.radii[SEGMENT_INDEX[spot.segment]] + hand_radius
            target = p[:, a] + spot.at * (p[:, b] - p[:, a]) + g[:, frame, :, 2] * surface
            rows = hands[:, k] & (spots == s)
            knuckles[rows, k], poles[rows, k] = target[rows], spot.pole
    wrists, tips = [J["left_wrist"], J["right_wrist"]], [J["left_hand"], J["right_hand"]]
    length = np.linalg.norm(rest[:, tips] - rest[:, wrists], axis=-1)[..., None]
    hand = unit(knuckles - p[:, [J["left_shoulder"], J["right_shoulder"]]]) * length
    for _ in range(4):
        ok = _solve_arms(rots, rest, knuckles - hand, poles, hands)
        _, p = forward_kinematics(rots, rest)
        hand = p[:, tips] - p[:, wrists]
    return ok


def plant_hands(
    rots: np.ndarray, rest: np.ndarray, floor_y: np.ndarray, spec: PoseSpec, info: BodyInfo, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Put both hands on the floor with arm IK, each where its :class:`Plant` says; returns
    reachability (n,) and which hands are to be laid flat (n, 2)."""
    g, p = forward_kinematics(rots, rest)
    n = len(rots)
    chest = g[:, J["spine3"]]
    # "front" also counts the chest's up axis: a strongly bent-over chest's front points back.
    axes = {"up": chest[:, :, 1], "front": chest[:, :, 1] + chest[:, :, 2], "down": -chest[:, :, 1]}
    palm_y = floor_y + info.palm_depth
    targets, poles, flat, ok = [], [], [], np.ones(n, dtype=bool)
    for side in ("left", "right"):
        plants = choose(rng, spec.plant, n)  # type: ignore[arg-type]
        sh, el, wr = J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]
        arm_len = np.linalg.norm(rest[:, el] - rest[:, sh], axis=-1) + np.linalg.norm(rest[:, wr] - rest[:, el], axis=-1)
        reach = limb_field(plants, "extent", rng) * arm_len
        height = p[:, sh, 1] - palm_y
        ok &= reach > height
        radial = np.sqrt(np.maximum(reach**2 - height**2, 0.0))
        base = np.stack([axes[pl.axis][i] for i, pl in enumerate(plants)]) * [1, 0, 1]
        base = unit(base)
        outward = unit(np.cross(EY, base))  # horizontal, across the axis, on the arm's side:
        outward *= np.sign(np.sum(outward * (p[:, sh] - p[:, J["spine3"]]), -1, keepdims=True))
        angle = np.radians(limb_field(plants, "angle", rng))[:, None]
        t = p[:, sh] * [1, 0, 1] + radial[:, None] * (np.cos(angle) * base + np.sin(angle) * outward)
        t[:, 1] = palm_y
        targets.append(t)
        poles.append(np.array([pl.pole for pl in plants]))
        flat.append(np.array([pl.flat for pl in plants]))
    ok &= _solve_arms(rots, rest, np.stack(targets, 1), np.stack(poles, 1))
    return ok, np.stack(flat, 1)


def lay_flat(
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
    g, p = forward_kinematics(rots, rest)
    n = len(rots)
    ok = np.ones(n, dtype=bool)
    if spec.forearms_flat:
        for side, hinge in (("left", -EY), ("right", EY)):
            sh, el, wr = J[f"{side}_shoulder"], J[f"{side}_elbow"], J[f"{side}_wrist"]
            phi, good = _hinge_level(g[:, sh], hinge, unit(rest[:, wr] - rest[:, el]), 20.0, 150.0)
            rots[:, el] = rotation_about(hinge, phi)
            ok &= good
        g, p = forward_kinematics(rots, rest)
    if spec.hands_flat is not None:
        chest = g[:, J["spine3"]]
        for k, side in enumerate(("left", "right")):
            wr = J[f"{side}_wrist"]
            if spec.hands_flat == "forearm":
                heading = unit((p[:, wr] - p[:, J[f"{side}_elbow"]]) * [1, 0, 1])
            else:
                heading = unit(chest[:, :, 1] * [1, 0, 1])
            left = unit(np.cross(EY, heading))
            turn = np.radians(rng.uniform(-10.0, 30.0, n))
            out = left if k == 0 else -left
            h = np.cos(turn)[:, None] * heading + np.sin(turn)[:, None] * out
            el = J[f"{side}_elbow"]
            rest_axis = rest[:, J[f"{side}_hand"]] - rest[:, wr]
            solved = np.swapaxes(g[:, el], -1, -2) @ yaw_between(rest_axis, h)
            # The turn about the forearm's axis belongs to the forearm (pronation), not the wrist.
            twist = twist_part(solved, unit(rest[:, wr] - rest[:, el]))
            sel = flat[:, k]
            rots[sel, el] = rots[sel, el] @ twist[sel]
            rots[sel, wr] = (np.swapaxes(twist, -1, -2) @ solved)[sel]
            rots[sel, J[f"{side}_hand"]] = np.eye(3)  # straight fingers
            ok &= ~sel | ((rotation_angle(rots[:, wr]) < np.radians(WRIST_LIMIT)) & (rotation_angle(twist) < np.radians(120.0)))
    if spec.knees_down or spec.shins_flat:
        for side in ("left", "right"):
            hip, kn, an, ft = (J[f"{side}_{x}"] for x in ("hip", "knee", "ankle", "foot"))
            if spec.knees_down:  # swing the thigh until the knee rests on the floor
                _swing_limb(rots, rest, g, p, (hip, kn), floor_y + knee_radius, -80.0, 30.0)  # where possible
                g, _ = forward_kinematics(rots, rest)
                # Lying, the shin may rise from the floor but not dip into it.
                phi, level = _hinge_level(g[:, hip], EX, unit(rest[:, an] - rest[:, kn]), 0.0, 160.0)
                bend = np.where(level, np.maximum(phi, rotation_angle(rots[:, kn])), rotation_angle(rots[:, kn]))
                rots[level, kn] = rotation_about(EX, bend[level])
            else:  # kneeling: the shin lies on the floor
                phi, level = _hinge_level(g[:, hip], EX, unit(rest[:, an] - rest[:, kn]), 0.0, 160.0)
                rots[:, kn] = rotation_about(EX, phi)
                ok &= level
            g, _ = forward_kinematics(rots, rest)
            # Point the foot so its top lies along the floor where the ankle hinge allows it.
            phi, level = _hinge_level(g[:, kn], EX, unit(rest[:, ft] - rest[:, an]), 0.0, 120.0)
            rots[level, an] = rotation_about(EX, phi[level])
            ok &= level | bool(spec.knees_down)
        g, p = forward_kinematics(rots, rest)
    if spec.feet_flat:
        for side in ("left", "right"):
            an = J[f"{side}_ankle"]
            rest_axis = rest[:, J[f"{side}_foot"]] - rest[:, an]
            now = np.einsum("nij,nj->ni", g[:, an], rest_axis)
            rots[:, an] = np.swapaxes(g[:, J[f"{side}_knee"]], -1, -2) @ yaw_between(rest_axis, now)
            ok &= rotation_angle(rots[:, an]) < np.radians(60.0)
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
    delta, good = _hinge_level(parent, EX, vec / length[:, None], lo, hi, (height - p[:, root, 1]) / length, 0.0)
    rots[good, root] = rotation_about(EX, delta[good]) @ rots[good, root]
    return good


def untwist(rots: np.ndarray, rest: np.ndarray, pts: dict[str, np.ndarray], spec: PoseSpec) -> None:
    """Turn the chest about the spine so that hands and knees (or feet) can all touch one floor.

    Four contacts fit a plane only up to a warp (one diagonal pair higher than the other), as in
    crawling with opposite limbs forward; an infant takes it up by rotating the trunk, which
    tilts the line between the hands. The turn is solved from the first-order change of the hand
    heights and spread over the three spine joints; in place."""
    _, p = forward_kinematics(rots, rest)
    legs = next(c[:-2] for c in spec.contacts if c[:-2] in ("knee", "foot"))
    low = {r: pts[r][..., 1].min(1) for r in ("hand_l", "hand_r", f"{legs}_l", f"{legs}_r")}
    warp = (low["hand_l"] - low["hand_r"]) - (low[f"{legs}_l"] - low[f"{legs}_r"])
    axis = unit(p[:, J["neck"]] - p[:, J["spine1"]])
    lever = [np.cross(axis, p[:, J[f"{s}_wrist"]] - p[:, J["spine1"]])[:, 1] for s in ("left", "right")]
    gain = lever[0] - lever[1]  # change of the hand height difference per radian of turn
    turn = np.clip(-warp / np.where(np.abs(gain) > 1e-6, gain, 1.0), -0.5, 0.5)
    for k in ("spine1", "spine2", "spine3"):
        rots[:, J[k]] = rots[:, J[k]] @ rotation_about(EY, turn / 3.0)


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
