"""The geometric predicates of the 12 AIMS poses on placed bodies (floor at y = 0): what the
sampler's candidates must meet to count as their class, and what tells the classes apart.

Measured in spine lengths, so they hold for any body size; the sampler re-draws candidates that
fail any of them."""

from __future__ import annotations

from typing import Any, Final, Sequence

import numpy as np

from aims_lib.body.rotations import unit
from aims_lib.body.skeleton import JOINT_INDEX as J
from aims_lib.body.skeleton import NUM_JOINTS
from aims_lib.synth.body_facts import spine_length, torso_axes
from aims_lib.synth.capsules import capsule_distance
from aims_lib.synth.props import Prop
from aims_lib.taxonomy import parse_fine

# Thresholds, in units of the spine length L (pelvis -> neck along the spine) unless in metres.
FLOOR_TOL: Final[float] = 1e-4  # metres: the lowest vertex must be within this of y = 0
JOINT_SPHERE: Final[float] = 0.30  # radius of the body region around a joint, for contacts
TOUCH: Final[float] = 0.10  # a region touches the floor when its lowest vertex is below this
LIMB_RESTING: Final[float] = 0.60  # joints of limbs resting near the floor are below this height
CHEST_RAISED: Final[float] = 0.05  # upper-chest clearance of a chest lifted on the forearms
BELLY_UP: Final[float] = 0.15  # belly clearance of a body on hands and knees
LEAD: Final[float] = 0.15  # a hand or knee this far ahead of the other: a reciprocal step
REACH: Final[float] = 0.50  # a hand at a knee or foot: this fraction of the arm's length away


class _Measure:
    """Measurements of placed bodies for the predicates; lengths are in spine lengths ``L``
    (pelvis to neck along the spine), so they hold for any body size."""

    def __init__(self, joints: np.ndarray, vertices: np.ndarray) -> None:
        self.j, self.v = joints, vertices
        self._near = np.ascontiguousarray(vertices[:, ::2])  # every second vertex is enough here
        self._near2 = np.einsum("nvc,nvc->nv", self._near, self._near)
        self.L = spine_length(joints)
        self.h = joints[..., 1] / self.L[:, None]  # joint heights
        self.up, self.left, self.front = torso_axes(joints)
        self.up_y, self.front_y = self.up[:, 1], self.front[:, 1]
        # Horizontal direction the body faces or heads to: sitting, crawling and lying alike.
        self.ahead = unit((self.up + self.front) * [1, 0, 1])

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
        down = np.all(unit(self.j[:, [18, 19]] - self.j[:, [16, 17]])[..., 1] < -np.cos(np.radians(45.0)), axis=1)
        return down & self.touching("left_elbow", "right_elbow")

    def leg_length(self) -> np.ndarray:
        return 0.5 * (self.bone(1, 4) + self.bone(4, 7) + self.bone(2, 5) + self.bone(5, 8))

    def knee_angles(self) -> np.ndarray:
        """Knee angle (degrees, 180 = straight), (N, 2)."""
        thigh = unit(self.j[:, [1, 2]] - self.j[:, [4, 5]])
        shin = unit(self.j[:, [7, 8]] - self.j[:, [4, 5]])
        return np.degrees(np.arccos(np.clip(np.sum(thigh * shin, -1), -1.0, 1.0)))

    def hip_flexion(self) -> np.ndarray:
        """Angle (degrees) between each thigh and the torso's downward axis, (N, 2)."""
        thigh = unit(self.j[:, [4, 5]] - self.j[:, [1, 2]])
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
    thighs = unit(m.j[:, [1, 2]] - m.j[:, [4, 5]])
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
            d = capsule_distance(m.v[i], prop.capsule) / m.L[i]
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

