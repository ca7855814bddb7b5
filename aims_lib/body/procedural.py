"""A licence-free procedural infant body in SMPL format (6890 vertices, 24 joints).

Why: the real infant model (SMIL) cannot be redistributed, yet the generator and SMPLify need a
body with SMPL's layout. This one is built by code, deterministically, from a handful of
proportions, so every run of the project has the same body without any download.

Construction
    Each body part is a closed parametric surface: a tube along a centre line whose elliptical
    (superelliptical for the trunk and feet) cross-sections follow smooth radius profiles, closed
    by hemispherical caps with one pole vertex each. Parts: trunk (pelvis up through the neck into
    the head), head (deformed ellipsoid with a nose bump), two ears, two arms (shoulder to wrist in
    one tube, so elbows bend smoothly), two palms, ten fingers (the tip pole vertex is the finger
    tip landmark), two legs (hip to ankle) and two feet. The parts overlap like the lumps of a
    clay figure; the mesh is not one watertight surface, which does not matter for rendering or
    for fitting keypoints. Right-side parts are mirror images of the left ones. Part sizes are
    chosen so that the total is exactly 6890 vertices; a final permutation puts the landmark
    vertices at the SMPL-H vertex ids that smplx uses for its extra joints (nose 332, eyes, ears,
    finger tips, toes, heels), so smplx's extra joints land on the right body parts.

Conventions (SMPL's)
    Rest pose is a T-pose, y up, the body facing +z, its left side at +x, metres; the pelvis joint
    is at the origin for every shape.

Joints and skinning
    Every joint is the centroid of one ring of vertices placed exactly at the joint (a collar is
    the mean of a trunk ring and the shoulder ring), so ``J_regressor`` rows are non-negative,
    sum to one and move with the shape. Skinning weights follow each tube's kinematic chain and
    cross-fade with a smoothstep over about one limb radius around every joint. There are no pose
    corrective blend shapes (``posedirs`` is zero).

Shape space
    A shape component is the central finite difference of the whole build with respect to one
    proportion, scaled to one standard deviation (:data:`SHAPE_COMPONENTS`), so every component
    is a smooth deformation field of the template and the regressed joints follow it.

Proportions (sources and assumptions)
    Mean crown-heel length 0.70 m, standard deviation 0.05 m: roughly the 3-12 month range of
    the WHO child growth standards (median length about 61 cm at 3 months, 76 cm at 12 months).
    Head height (crown to chin) 0.17 m, about a quarter of the length: the classic infant
    proportion (head about 1/4 of stature, against 1/8 in adults). Head circumference about
    45 cm (WHO median 43-46 cm at 6-12 months). ASSUMPTIONS, chosen to look like an infant
    rather than measured: crotch height about 29 % of length (sitting height about 70 %), arm
    span about 0.62 m, limb and trunk girths (chubby limbs, big belly), hand and foot sizes,
    and every standard deviation except the one of length.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Callable, Final, NamedTuple

import numpy as np
from scipy.interpolate import PchipInterpolator
from smplx.vertex_ids import vertex_ids as _SMPLX_VERTEX_IDS

from aims_lib.body.skeleton import JOINT_INDEX as J
from aims_lib.body.skeleton import JOINT_NAMES, MIRROR_PERM, NUM_JOINTS, PARENTS
from aims_lib.body.smoothstep import smoothstep

NUM_VERTICES: Final[int] = 6890

#: SMPL-H vertex ids of the landmarks smplx turns into extra joints (nose 332, ...).
LANDMARK_IDS: Final[dict[str, int]] = dict(_SMPLX_VERTEX_IDS["smplh"])


@dataclass(frozen=True)
class Proportions:
    """Body proportions; every field but ``stature`` is a factor on the mean infant (1.0).

    ``stature`` (metres) scales the whole body uniformly; the other factors change one region,
    so the final crown-to-heel length also depends on ``head``, ``legs``, ``torso`` and ``neck``.
    """

    stature: float = 0.70
    head: float = 1.0
    limb_girth: float = 1.0
    legs: float = 1.0
    torso_girth: float = 1.0
    arms: float = 1.0
    torso: float = 1.0
    belly: float = 1.0
    shoulders: float = 1.0
    hips: float = 1.0
    neck: float = 1.0
    head_length: float = 1.0
    hands: float = 1.0
    feet: float = 1.0


#: One shape component per proportion, in ``betas`` order: (field, one standard deviation).
#: The spreads are assumptions sized so that betas in [-2, 2] stay infant-like.
SHAPE_COMPONENTS: Final[tuple[tuple[str, float], ...]] = (
    ("stature", 0.05),
    ("head", 0.06),
    ("limb_girth", 0.10),
    ("legs", 0.07),
    ("torso_girth", 0.08),
    ("arms", 0.07),
    ("torso", 0.06),
    ("belly", 0.35),
    ("shoulders", 0.06),
    ("hips", 0.07),
    ("neck", 0.25),
    ("head_length", 0.05),
    ("hands", 0.08),
    ("feet", 0.08),
)



# --- generic surface helpers ------------------------------------------------------------------


@lru_cache(maxsize=None)
def _closed_faces(n_rings: int, size: int) -> np.ndarray:
    """Triangles of a closed surface: a start pole (vertex 0), ``n_rings`` rings of ``size``
    vertices, an end pole (last vertex); all triangles share one orientation."""
    k = np.arange(size)
    k1 = (k + 1) % size
    a = 1 + np.arange(n_rings - 1)[:, None] * size
    end_ring, end_pole = 1 + (n_rings - 1) * size, 1 + n_rings * size
    start = np.stack([np.zeros(size, dtype=np.int64), 1 + k1, 1 + k], axis=1)
    lower = np.stack(np.broadcast_arrays(a + k, a + k1, a + size + k), axis=-1).reshape(-1, 3)
    upper = np.stack(np.broadcast_arrays(a + k1, a + size + k1, a + size + k), axis=-1).reshape(-1, 3)
    end = np.stack([end_ring + k, end_ring + k1, np.full(size, end_pole)], axis=1)
    return np.concatenate([start, lower, upper, end]).astype(np.int64)


def _superellipse(theta: np.ndarray, exponent: float) -> tuple[np.ndarray, np.ndarray]:
    """Unit superellipse |c|^p + |s|^p = 1 (p = 2 is a circle); flatter sides for p > 2."""
    c, s = np.cos(theta), np.sin(theta)
    e = 2.0 / exponent
    return np.sign(c) * np.abs(c) ** e, np.sign(s) * np.abs(s) ** e


@dataclass
class _Part:
    """One closed surface with its landmark vertices, named joint rings and skinning weights."""

    name: str
    vertices: np.ndarray  # start pole, rings of ring_size vertices, end pole
    ring_size: int
    weights: np.ndarray
    rings: dict[str, np.ndarray] = field(default_factory=dict)
    landmarks: dict[str, int] = field(default_factory=dict)

    @property
    def faces(self) -> np.ndarray:
        return _closed_faces((len(self.vertices) - 2) // self.ring_size, self.ring_size)


@dataclass
class _Tube:
    vertices: np.ndarray  # (n, 3)
    sigma: np.ndarray  # (n,) chain parameter of every vertex (caps take their end's value)
    rings: list[np.ndarray]  # local vertex indices of each body (non-cap) ring


def _tube(
    sigma: np.ndarray,
    centres: np.ndarray,
    up_ref: np.ndarray,
    ra: np.ndarray,
    rb: np.ndarray,
    ring_size: int,
    exponent: float | np.ndarray,
    caps: tuple[tuple[int, float], tuple[int, float]],
    axis: np.ndarray | None = None,
) -> _Tube:
    """A capped tube: rings around ``centres`` (R, 3) with half-axes ``ra`` along the local up
    direction and ``rb`` sideways; ``caps`` = ((rings, length), (rings, length)) of the
    hemispherical start and end caps, each closed by a pole vertex. ``exponent`` (scalar or
    per ring) shapes the cross-sections (2: ellipse, larger: boxier). Rings are perpendicular to
    the centre line, or to a fixed ``axis`` when given: a trunk whose centre line wanders
    forward and back over a short height would otherwise get tilted, folding rings."""
    exponents = np.broadcast_to(np.asarray(exponent, dtype=float), (len(centres),))
    tang = np.gradient(centres, axis=0) if axis is None else np.broadcast_to(axis, centres.shape).copy()
    tang /= np.linalg.norm(tang, axis=1, keepdims=True)
    up = up_ref[None] - (tang @ up_ref)[:, None] * tang
    up /= np.linalg.norm(up, axis=1, keepdims=True)
    side = np.cross(tang, up)

    def ring(i: int, offset: float, scale: float) -> np.ndarray:
        cu, sv = _superellipse(2.0 * np.pi * np.arange(ring_size) / ring_size, exponents[i])
        centre = centres[i] + offset * tang[i]
        return centre + scale * (ra[i] * cu[:, None] * up[i] + rb[i] * sv[:, None] * side[i])

    def cap(i: int, sign: float, n_rings: int, length: float) -> list[np.ndarray]:
        angles = np.arange(1, n_rings + 1) * (0.5 * np.pi / (n_rings + 1))
        return [ring(i, sign * length * np.sin(a), np.cos(a)) for a in angles]

    (n_start, l_start), (n_end, l_end) = caps
    rings = cap(0, -1.0, n_start, l_start)[::-1]
    rings += [ring(i, 0.0, 1.0) for i in range(len(centres))]
    rings += cap(-1, 1.0, n_end, l_end)
    poles = centres[0] - l_start * tang[0], centres[-1] + l_end * tang[-1]
    vertices = np.concatenate([poles[0][None], *rings, poles[1][None]])
    ring_sigma = np.concatenate([[sigma[0]] * n_start, sigma, [sigma[-1]] * n_end])
    vertex_sigma = np.concatenate([[sigma[0]], np.repeat(ring_sigma, ring_size), [sigma[-1]]])
    body_rings = [1 + (n_start + i) * ring_size + np.arange(ring_size) for i in range(len(centres))]
    return _Tube(vertices, vertex_sigma, body_rings)


@dataclass(frozen=True)
class _Stations:
    """Stations along a tube's axis, station k at chain parameter sigma = k.

    Each segment between stations holds a fixed number of evenly spaced rings, so the topology
    never depends on the proportions. Profiles are interpolated over the distance along the
    axis, not over sigma: segments of different lengths would otherwise put kinks at stations.
    """

    positions: list[float]
    per_segment: list[int]

    @property
    def sigma(self) -> np.ndarray:
        """Sigma of every ring; the station rings are exact."""
        rings = [np.arange(n) / n + k for k, n in enumerate(self.per_segment)]
        return np.concatenate(rings + [[len(self.per_segment)]])

    def at(self) -> np.ndarray:
        """Axis coordinate of every ring."""
        return np.interp(self.sigma, np.arange(len(self.positions)), self.positions)

    def profile(self, knots: list[float], values: list[float]) -> np.ndarray:
        """A radius or offset profile given at sigma ``knots``, smooth (PCHIP) along the axis."""
        stations = np.arange(len(self.positions))
        distance = np.concatenate([[0.0], np.cumsum(np.abs(np.diff(self.positions)))])
        knot_d = np.interp(np.asarray(knots, float), stations, distance)
        return PchipInterpolator(knot_d, np.asarray(values, float))(np.interp(self.sigma, stations, distance))

    def ring(self, station: int) -> int:
        """Index of the ring that lies exactly on ``station``."""
        return int(sum(self.per_segment[:station]))


def _chain_weights(s: np.ndarray, joints: list[int], breaks: list[float], widths: list[float]) -> np.ndarray:
    """Skinning weights along a chain: joint k owns the span between breaks k-1 and k.

    Each break cross-fades the two neighbouring joints with a smoothstep of half-width
    ``widths[k]`` (about a limb radius), which is what keeps bent elbows and knees smooth.
    """
    w = np.zeros((len(s), NUM_JOINTS))
    prev = np.ones(len(s))
    alphas = [smoothstep(b - h, b + h, s) for b, h in zip(breaks, widths)] + [np.zeros(len(s))]
    for joint, alpha in zip(joints, alphas):
        w[:, joint] += np.clip(prev - alpha, 0.0, None)
        prev = alpha
    return w / w.sum(1, keepdims=True)


# --- the infant ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    """Key heights and widths (metres, feet at y = 0, before the uniform stature scale)."""

    ankle_y: float
    knee_y: float
    hip_y: float
    shoulder_y: float
    chin_y: float
    head_h: float
    hip_x: float
    shoulder_x: float
    elbow_x: float
    wrist_x: float
    knuckle_x: float

    @property
    def crown_y(self) -> float:
        return self.chin_y + self.head_h

    @staticmethod
    def of(p: Proportions) -> _Layout:
        ankle_y = 0.035
        knee_y = ankle_y + 0.112 * p.legs
        hip_y = knee_y + 0.122 * p.legs
        shoulder_y = hip_y + 0.22 * p.torso
        chin_y = shoulder_y + 0.018 * p.neck
        shoulder_x = 0.075 * p.shoulders
        elbow_x = shoulder_x + 0.090 * p.arms
        wrist_x = elbow_x + 0.076 * p.arms
        return _Layout(
            ankle_y=ankle_y, knee_y=knee_y, hip_y=hip_y, shoulder_y=shoulder_y, chin_y=chin_y,
            head_h=0.17 * p.head, hip_x=0.052 * p.hips, shoulder_x=shoulder_x, elbow_x=elbow_x,
            wrist_x=wrist_x, knuckle_x=wrist_x + 0.038 * p.hands,
        )  # fmt: skip


_X, _Y, _Z = np.eye(3)
_TORSO_STATIONS: Final[tuple[str, ...]] = (
    "bottom", "hip", "pelvis", "spine1", "spine2", "spine3", "shoulder", "neck", "chin", "head", "top",
)  # fmt: skip
_TORSO_SEGMENTS: Final[list[int]] = [3, 3, 4, 4, 4, 4, 3, 3, 3, 2]
_TORSO_RING_SIZE: Final[int] = 40


def _torso(p: Proportions, lay: _Layout) -> _Part:
    """Trunk from the diaper up through the neck into the head: pear-shaped, big belly."""
    t, nl, hh = lay.shoulder_y - lay.hip_y, lay.chin_y - lay.shoulder_y, lay.head_h
    ys = [lay.hip_y - 0.03, lay.hip_y, *(lay.hip_y + f * t for f in (0.1, 0.33, 0.58, 0.8)), lay.shoulder_y,
          lay.shoulder_y + 0.35 * nl, lay.chin_y, lay.chin_y + 0.2 * hh, lay.chin_y + 0.35 * hh]  # fmt: skip
    st = _Stations(ys, _TORSO_SEGMENTS)
    sigma, y = st.sigma, st.at()
    knots = list(range(len(_TORSO_STATIONS)))
    # bottom hip pelvis spine1 spine2 spine3 shoulder neck chin head top
    trunk = st.profile(knots, [1, 1, 1, 1, 1, 1, 1, 0.4, 0, 0, 0])  # where torso_girth acts
    shoulder = st.profile(knots, [0, 0, 0, 0, 0.2, 0.6, 1, 0.3, 0, 0, 0])
    hip = st.profile(knots, [1, 1, 0.8, 0.3, 0, 0, 0, 0, 0, 0, 0])
    belly = 0.018 * p.belly * st.profile(knots, [0, 0, 0.5, 1, 0.7, 0.2, 0, 0, 0, 0, 0])
    girth = 1 + (p.torso_girth - 1) * trunk
    half_x = st.profile(knots, [0.068, 0.083, 0.087, 0.088, 0.085, 0.076, 0.066, 0.062, 0.056, 0.046, 0.036])
    half_x *= girth * (1 + (p.shoulders - 1) * shoulder) * (1 + (p.hips - 1) * hip)
    half_z = st.profile(knots, [0.052, 0.062, 0.064, 0.065, 0.063, 0.058, 0.050, 0.047, 0.044, 0.038, 0.032])
    half_z = half_z * girth + 0.5 * belly  # the belly pushes the front out, not the back
    zc = st.profile(knots, [-0.010, -0.014, -0.008, 0.0, 0.002, 0.0, -0.006, -0.010, -0.008, -0.004, 0.0])
    centres = np.stack([np.zeros_like(y), y, zc + 0.5 * belly], axis=1)
    exponent = st.profile(knots, [2.6] * 5 + [2.2, 2.0, 2.0, 2.0, 2.0, 2.0])  # boxy trunk, round neck
    tube = _tube(sigma, centres, _Z, half_z, half_x, _TORSO_RING_SIZE, exponent, ((4, 0.035), (3, 0.02)), _Y)

    s, ax, left = tube.sigma, np.abs(tube.vertices[:, 0]), tube.vertices[:, 0] > 0
    spine = [J[n] for n in ("pelvis", "spine1", "spine2", "spine3", "neck", "head")]
    weights = _chain_weights(s, spine, [3, 4, 5, 7, 9], [0.5, 0.5, 0.5, 0.4, 0.4])
    # The upper flanks follow the collars, the buttocks partly follow the thighs.
    collar = smoothstep(0.02, 0.06, ax) * smoothstep(4.6, 5.8, s) * (1 - smoothstep(6.4, 7.2, s))
    buttock = 0.6 * smoothstep(0.02, 0.065, ax) * (1 - smoothstep(1.0, 2.2, s))
    for frac, side_joint in ((collar, "collar"), (buttock, "hip")):
        weights *= (1 - frac)[:, None]
        weights[left, J["left_" + side_joint]] += frac[left]
        weights[~left, J["right_" + side_joint]] += frac[~left]
    joint_rings = ("pelvis", "spine1", "spine2", "spine3", "shoulder", "neck", "head")
    rings = {name: tube.rings[st.ring(_TORSO_STATIONS.index(name))] for name in joint_rings}
    return _Part("torso", tube.vertices, _TORSO_RING_SIZE, weights, rings)


_HEAD_RINGS: Final[int] = 27
_HEAD_RING_SIZE: Final[int] = 38
_NOSE_RING: Final[int] = 9  # latitude about -26 degrees: nose tip 28 % of head height above the chin


def _head_shape(p: Proportions, lay: _Layout) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """Point on the head (without nose) at latitude ``phi`` and longitude ``theta`` (0 = front).

    An ellipsoid, narrowed toward the chin, with full cheeks, a bulging back of the skull, a
    slightly flattened forehead, and its lower half pushed forward so the chin sits under the
    face rather than under the middle of the skull.
    """
    centre = np.array([0.0, lay.chin_y + 0.5 * lay.head_h, 0.008 * p.head])
    rx, ry, rz = 0.068 * p.head, 0.5 * lay.head_h, 0.071 * p.head * p.head_length

    def point(phi: np.ndarray, theta: np.ndarray) -> np.ndarray:
        phi, theta = np.broadcast_arrays(phi, theta)
        cp, sp, ct, st = np.cos(phi), np.sin(phi), np.cos(theta), np.sin(theta)
        below, front, back = np.clip(-sp, 0, None), np.clip(ct, 0, None), np.clip(-ct, 0, None)
        x = rx * cp * st * (1 - 0.5 * np.clip(-sp - 0.4, 0, None) ** 2)
        forehead = 0.08 * front * np.clip(sp + 0.3, 0, None)
        occiput = 0.010 * p.head * back**2 * np.exp(-(((phi - 0.2) / 0.8) ** 2))
        z = rz * cp * ct * (1 - 0.15 * front * below**2 - forehead) - occiput + 0.014 * p.head * below**1.5
        side = np.abs(np.arctan2(st, ct))
        cheek = 0.010 * p.head * np.exp(-(((phi + 0.45) / 0.3) ** 2) - ((side - 0.85) / 0.5) ** 2)
        radial = np.stack([st, np.zeros_like(st), ct], axis=-1) * cheek[..., None]
        return centre + np.stack([x, ry * sp, z], axis=-1) + radial

    return point


def _head(p: Proportions, lay: _Layout) -> _Part:
    """Big round cranium, small face with a button nose, chubby cheeks; eyes are surface vertices."""
    point = _head_shape(p, lay)
    phi = -0.5 * np.pi + np.pi * np.arange(1, _HEAD_RINGS + 1) / (_HEAD_RINGS + 1)
    theta = 2.0 * np.pi * np.arange(_HEAD_RING_SIZE) / _HEAD_RING_SIZE
    grid = point(phi[:, None], theta[None, :]).reshape(-1, 3)
    poles = point(np.array([-0.5 * np.pi, 0.5 * np.pi]), np.zeros(2))
    vertices = np.concatenate([poles[:1], grid, poles[1:]])
    nose = 1 + _NOSE_RING * _HEAD_RING_SIZE
    bump = np.exp(-((vertices - vertices[nose]) ** 2).sum(1) / (2 * (0.008 * p.head) ** 2))
    vertices = vertices + 0.011 * p.head * bump[:, None] * _Z

    left_eye = point(np.arcsin(np.array(-0.06)), np.array(0.55))
    leye = int(np.argmin(((vertices - left_eye) ** 2).sum(1)))
    reye = int(np.argmin(((vertices - vertices[leye] * np.array([-1.0, 1.0, 1.0])) ** 2).sum(1)))
    landmarks = {"nose": nose, "leye": leye, "reye": reye}
    weights = _chain_weights(vertices[:, 1], [J["neck"], J["head"]], [lay.chin_y], [0.012])
    return _Part("head", vertices, _HEAD_RING_SIZE, weights, landmarks=landmarks)


def _ear(p: Proportions, lay: _Layout) -> _Part:
    """Left ear: a flat oval on the side of the head, slightly behind its middle."""
    anchor = _head_shape(p, lay)(np.array(-0.2), np.array(0.5 * np.pi + 0.2))
    centre = anchor + np.array([0.001, 0.0, 0.0])
    st = _Stations([centre[1] - 0.005 * p.head, centre[1] + 0.005 * p.head], [2])
    sigma, y = st.sigma, st.at()
    centres = np.stack([np.full_like(y, centre[0]), y, np.full_like(y, centre[2])], axis=1)
    thick, width, cap = (np.full_like(y, size * p.head) for size in (0.005, 0.012, 0.009))
    tube = _tube(sigma, centres, _X, thick, width, 8, 2.0, ((3, cap[0]), (3, cap[0])), axis=_Y)
    weights = _chain_weights(tube.sigma, [J["head"]], [], [])
    return _Part("ear_l", tube.vertices, 8, weights, landmarks={"lear": int(tube.rings[1][0])})


_ARM_SEGMENTS: Final[list[int]] = [3, 8, 7, 2]


def _arm(p: Proportions, lay: _Layout) -> _Part:
    """Left arm, shoulder to wrist along +x (T-pose), chubby upper arm, creased wrist."""
    xs = [lay.shoulder_x - 0.035, lay.shoulder_x, lay.elbow_x, lay.wrist_x, lay.wrist_x + 0.008]
    st = _Stations(xs, _ARM_SEGMENTS)
    sigma, x = st.sigma, st.at()
    knots = [0, 1, 1.5, 2, 2.5, 3, 4]
    r = p.limb_girth * st.profile(knots, [0.021, 0.032, 0.033, 0.025, 0.026, 0.0175, 0.0175])
    y = lay.shoulder_y - st.profile([0, 1, 4], [0.008, 0.0, 0.0])
    centres = np.stack([x, y, np.zeros_like(x)], axis=1)
    tube = _tube(sigma, centres, _Y, 0.93 * r, r, 18, 2.0, ((3, 0.025), (2, 0.012)), axis=_X)
    chain = [J["left_collar"], J["left_shoulder"], J["left_elbow"], J["left_wrist"]]
    weights = _chain_weights(tube.sigma, chain, [0.6, 2.0, 3.0], [0.35, 0.22, 0.3])
    rings = {name: tube.rings[st.ring(k)] for k, name in enumerate(("shoulder", "elbow", "wrist"), start=1)}
    return _Part("arm_l", tube.vertices, 18, weights, rings)


_PALM_SEGMENTS: Final[list[int]] = [2, 5, 1]


def _palm(p: Proportions, lay: _Layout) -> _Part:
    """Left palm, palm down, from inside the wrist to just past the knuckles."""
    xs = [lay.wrist_x - 0.006, lay.wrist_x, lay.knuckle_x, lay.knuckle_x + 0.003 * p.hands]
    st = _Stations(xs, _PALM_SEGMENTS)
    sigma, x = st.sigma, st.at()
    knots = [0, 1, 2, 3]
    thick = p.hands * st.profile(knots, [0.011, 0.012, 0.011, 0.010])
    width = p.hands * st.profile(knots, [0.0145, 0.016, 0.0195, 0.019])
    centres = np.stack([x, np.full_like(x, lay.shoulder_y - 0.001), np.zeros_like(x)], axis=1)
    tube = _tube(sigma, centres, _Y, thick, width, 16, 2.5, ((2, 0.008), (3, 0.008 * p.hands)))
    chain = [J["left_elbow"], J["left_wrist"], J["left_hand"]]
    weights = _chain_weights(tube.sigma, chain, [1.0, 2.0], [0.5, 0.3])
    return _Part("palm_l", tube.vertices, 16, weights, {"knuckles": tube.rings[st.ring(2)]})


class _Finger(NamedTuple):
    landmark: str  # SMPL-H name of the tip vertex
    base: tuple[float, float]  # (x from the knuckles, z) of the root, inside the palm
    direction: tuple[float, float, float]
    length: float
    radius: float


# Palm down, so the thumb is on the front (+z) side of both hands.
_FINGERS: Final[tuple[_Finger, ...]] = (
    _Finger("lthumb", (-0.028, 0.011), (0.75, -0.3, 0.6), 0.022, 0.0062),
    _Finger("lindex", (-0.006, 0.0135), (1.0, 0.0, 0.08), 0.027, 0.0054),
    _Finger("lmiddle", (-0.006, 0.0045), (1.0, 0.0, 0.02), 0.029, 0.0055),
    _Finger("lring", (-0.006, -0.0045), (1.0, 0.0, -0.03), 0.027, 0.0053),
    _Finger("lpinky", (-0.006, -0.0135), (1.0, 0.0, -0.1), 0.022, 0.0048),
)


def _finger(p: Proportions, lay: _Layout, finger: _Finger) -> _Part:
    """One left finger, slightly curled down; its end pole is the finger tip landmark."""
    name, (dx, dz), direction, length, radius = finger
    d = np.asarray(direction) / np.linalg.norm(direction)
    base = np.array([lay.knuckle_x + dx * p.hands, lay.shoulder_y - 0.002, dz * p.hands])
    r = radius * p.hands * np.sqrt(p.limb_girth)
    st = _Stations([0.0, 1.0], [6])
    sigma, t = st.sigma, st.at()
    reach = length * p.hands - 0.9 * r
    centres = base + t[:, None] * reach * d - (0.004 * p.hands * t**2)[:, None] * _Y
    radii = r * (1 - 0.12 * t)
    tube = _tube(sigma, centres, _Y, 0.92 * radii, radii, 8, 2.0, ((2, 0.005), (3, 0.9 * radii[-1])))
    if name == "lthumb":  # rooted near the wrist, it moves with the wrist, not the knuckles
        weights = _chain_weights(tube.sigma, [J["left_wrist"]], [], [])
    else:
        weights = _chain_weights(tube.sigma, [J["left_wrist"], J["left_hand"]], [0.15], [0.15])
    return _Part(f"finger_{name[1:]}_l", tube.vertices, 8, weights, landmarks={name: len(tube.vertices) - 1})


_LEG_SEGMENTS: Final[list[int]] = [3, 9, 8, 1]


def _leg(p: Proportions, lay: _Layout) -> _Part:
    """Left leg, hip to ankle, fat thigh, slightly bowed like an infant's."""
    ys = [lay.hip_y + 0.028, lay.hip_y, lay.knee_y, lay.ankle_y, lay.ankle_y - 0.010]
    st = _Stations(ys, _LEG_SEGMENTS)
    sigma, y = st.sigma, st.at()
    knots = [0, 1, 1.5, 2, 2.4, 3, 4]
    r = p.limb_girth * st.profile(knots, [0.042, 0.048, 0.046, 0.035, 0.034, 0.021, 0.020])
    x = lay.hip_x + st.profile(knots, [0.0, 0.0, 0.003, 0.006, 0.006, 0.004, 0.004])
    centres = np.stack([x, y, np.zeros_like(y)], axis=1)
    tube = _tube(sigma, centres, _Z, 1.05 * r, r, 20, 2.0, ((3, 0.03), (2, 0.01)))
    chain = [J["pelvis"], J["left_hip"], J["left_knee"], J["left_ankle"]]
    weights = _chain_weights(tube.sigma, chain, [0.75, 2.0, 3.0], [0.3, 0.25, 0.25])
    rings = {name: tube.rings[st.ring(k)] for k, name in enumerate(("hip", "knee", "ankle"), start=1)}
    return _Part("leg_l", tube.vertices, 20, weights, rings)


_FOOT_SEGMENTS: Final[list[int]] = [3, 5, 2]


def _foot(p: Proportions, lay: _Layout) -> _Part:
    """Left foot, heel to toes along +z, flat sole on y = 0, wide padded toes."""
    f = p.feet
    st = _Stations([-0.020 * f, 0.0, 0.050 * f, 0.064 * f], _FOOT_SEGMENTS)
    sigma, z = st.sigma, st.at()
    knots = [0, 1, 2, 3]
    height = st.profile(knots, [0.018, 0.024, 0.016, 0.013])
    width = f * st.profile(knots, [0.018, 0.021, 0.026, 0.025])
    x = lay.hip_x + 0.004 + st.profile(knots, [0.0, 0.0, 0.002, 0.003])
    centres = np.stack([x, height, z], axis=1)
    tube = _tube(sigma, centres, _Y, height, width, 18, 2.6, ((3, 0.012 * f), (3, 0.011 * f)), axis=_Z)
    weights = _chain_weights(tube.sigma, [J["left_ankle"], J["left_foot"]], [2.0], [0.3])
    v = tube.vertices
    toe_z, heel_z = v[:, 2].max(), v[:, 2].min()
    targets = {
        "LBigToe": (x[-1] - 0.55 * width[-1], 0.6 * height[-1], toe_z - 0.004),
        "LSmallToe": (x[-1] + 0.75 * width[-1], 0.5 * height[-1], toe_z - 0.014),
        "LHeel": (x[0], 0.25 * height[0], heel_z),
    }
    landmarks = {k: int(np.argmin(((v - np.array(t)) ** 2).sum(1))) for k, t in targets.items()}
    return _Part("foot_l", v, 18, weights, {"ball": tube.rings[st.ring(2)]}, landmarks)


def _right(name: str) -> str:
    """Name of the right-side twin of a left-side part (``arm_l`` -> ``arm_r``)."""
    return name[:-2] + "_r" if name.endswith("_l") else name


def _mirror(part: _Part) -> _Part:
    """Right-side copy of a left-side part (x -> -x); face orientation is fixed later."""
    swap = {"l": "r", "L": "R"}
    return _Part(
        name=_right(part.name),
        vertices=part.vertices * np.array([-1.0, 1.0, 1.0]),
        ring_size=part.ring_size,
        weights=part.weights[:, MIRROR_PERM],
        rings=part.rings,
        landmarks={swap[k[0]] + k[1:]: i for k, i in part.landmarks.items()},
    )


# Joint -> (part, ring, weight) whose vertex centroids define it; right joints mirror left ones.
_JOINT_RINGS: Final[dict[str, tuple[tuple[str, str, float], ...]]] = {
    "pelvis": (("torso", "pelvis", 1.0),),
    "left_hip": (("leg_l", "hip", 1.0),),
    "spine1": (("torso", "spine1", 1.0),),
    "left_knee": (("leg_l", "knee", 1.0),),
    "spine2": (("torso", "spine2", 1.0),),
    "left_ankle": (("leg_l", "ankle", 1.0),),
    "spine3": (("torso", "spine3", 1.0),),
    "left_foot": (("foot_l", "ball", 1.0),),
    "neck": (("torso", "neck", 1.0),),
    "left_collar": (("torso", "shoulder", 0.5), ("arm_l", "shoulder", 0.5)),
    "head": (("torso", "head", 1.0),),
    "left_shoulder": (("arm_l", "shoulder", 1.0),),
    "left_elbow": (("arm_l", "elbow", 1.0),),
    "left_wrist": (("arm_l", "wrist", 1.0),),
    "left_hand": (("palm_l", "knuckles", 1.0),),
}


def _joint_rings(joint: str) -> tuple[tuple[str, str, float], ...]:
    if joint.startswith("right_"):
        return tuple((_right(part), ring, w) for part, ring, w in _JOINT_RINGS["left_" + joint[6:]])
    return _JOINT_RINGS[joint]


@dataclass(frozen=True)
class BodyMesh:
    """One build of the body in construction order (before the landmark permutation)."""

    vertices: np.ndarray  # (V, 3)
    faces: np.ndarray  # (F, 3)
    weights: np.ndarray  # (V, 24)
    J_regressor: np.ndarray  # (24, V)
    landmarks: dict[str, int]


def _parts(p: Proportions) -> list[_Part]:
    lay = _Layout.of(p)
    left = [_ear(p, lay), _arm(p, lay), _palm(p, lay), *(_finger(p, lay, f) for f in _FINGERS)]
    left += [_leg(p, lay), _foot(p, lay)]
    return [_torso(p, lay), _head(p, lay)] + [q for part in left for q in (part, _mirror(part))]


def build(p: Proportions = Proportions()) -> BodyMesh:
    """Build the body for one set of proportions, scaled to its stature, pelvis at the origin."""
    parts = _parts(p)
    offsets = np.cumsum([0] + [len(q.vertices) for q in parts])
    index = {q.name: (q, int(o)) for q, o in zip(parts, offsets)}
    scale = p.stature / _Layout.of(Proportions()).crown_y
    vertices = np.concatenate([q.vertices for q in parts]) * scale
    if len(vertices) != NUM_VERTICES:  # the part resolutions are chosen to add up to 6890
        raise RuntimeError(f"procedural body has {len(vertices)} vertices, not {NUM_VERTICES}")
    regressor = np.zeros((NUM_JOINTS, NUM_VERTICES))
    for j, joint in enumerate(JOINT_NAMES):
        for part_name, ring, w in _joint_rings(joint):
            part, offset = index[part_name]
            idx = offset + part.rings[ring]
            regressor[j, idx] += w / len(idx)
    vertices = vertices - regressor[0] @ vertices
    faces = []
    for q, o in zip(parts, offsets):
        f = q.faces
        tri = vertices[o + f]
        volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum()
        faces.append(o + (f if volume > 0 else f[:, ::-1]))
    landmarks = {k: int(o) + i for q, o in zip(parts, offsets) for k, i in q.landmarks.items()}
    weights = np.concatenate([q.weights for q in parts])
    return BodyMesh(vertices, np.concatenate(faces), weights, regressor, landmarks)


def _permutation(landmarks: dict[str, int]) -> np.ndarray:
    """``order[new_id] = construction index``: landmarks go to their SMPL-H ids, the rest keep
    their relative order in the remaining ids."""
    order = np.full(NUM_VERTICES, -1, dtype=np.int64)
    for name, vid in LANDMARK_IDS.items():
        order[vid] = landmarks[name]
    rest = np.setdiff1d(np.arange(NUM_VERTICES), order[order >= 0])
    order[order < 0] = rest
    return order


def smpl_arrays() -> dict[str, np.ndarray]:
    """The body as the arrays of an SMPL pickle (what ``smplx.SMPL`` reads), in SMPL-H order.

    ``shapedirs[..., k]`` is the central difference of the build for the k-th entry of
    :data:`SHAPE_COMPONENTS` between +1 and -1 standard deviation, divided by two.
    """
    mean = Proportions()
    body = build(mean)
    order = _permutation(body.landmarks)
    inverse = np.argsort(order)
    dirs = []
    for name, sd in SHAPE_COMPONENTS:
        value = getattr(mean, name)
        plus = build(replace(mean, **{name: value + sd})).vertices
        minus = build(replace(mean, **{name: value - sd})).vertices
        dirs.append(0.5 * (plus - minus))
    kintree = np.array([PARENTS, range(NUM_JOINTS)], dtype=np.int64)
    return {
        "v_template": body.vertices[order],
        "shapedirs": np.stack(dirs, axis=-1)[order],
        "posedirs": np.zeros((NUM_VERTICES, 3, 9 * (NUM_JOINTS - 1)), dtype=np.float32),
        "J_regressor": body.J_regressor[:, order],
        "weights": body.weights[order],
        "kintree_table": kintree,
        "f": inverse[body.faces],
    }
