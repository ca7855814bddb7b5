"""Real-proxy bodies that the fitting model cannot represent: shape beyond the fitted components,
region directions outside the body's shape space, and clothing thickness on the rendered mesh.

Why: SMPLify fits the standard body with its first :data:`~aims_lib.body.DEFAULT_BETAS` shape
components. If the real proxy's bodies come from that very space, the fit meets no model
mismatch (the "inverse crime"); real infants differ in proportions, soft tissue and clothing.
:class:`BodyShift` holds a domain's body settings as data: :data:`SYNTHETIC` is today's draw,
:data:`REAL` the real proxy's. Nothing here is visible to the pose branch: SMPLify keeps the
standard body, and only the generator builds the shifted one.

Shape. An SMPL-format body is ``v = T + S beta`` before skinning, joints ``J = R v`` (the
regressor applied to the shaped template). The shifted body (:func:`shifted_body_model`) appends
region directions ``D`` to the model's own components ``S`` (all of them: 14 on the procedural
infant, 20 on SMIL), ``v = T + S beta + D gamma``, so the model's own blend skinning and joint
regression keep working and the joints, hence the COCO keypoints, move with the shape: they stay
the body's joints. Each direction is a (V, 3) vertex field per unit coefficient, computed from
the template ``T``, skinning weights ``W``, kinematic tree and regressor (any SMPL-format body);
a coefficient is a fraction (0.1 = 10 %):

* ``head``: ``W_head (v - J_head)``, the head scaled about the head joint by ``1 + gamma``;
* ``<limb>_length_<side>`` (upper arm, forearm, thigh, shin; bone ``a -> b``, per side, so left
  and right differ): ``w_v (J_b - J_a)`` with ``w_v = sum_{j in subtree(b)} W_vj + W_va clip(t_v,
  0, 1)`` and ``t_v = (v - J_a).(J_b - J_a) / |J_b - J_a|^2``: the distal body moves along the
  bone and the segment stretches, so the bone lengthens by ``gamma |J_b - J_a|``;
* ``<limb>_girth`` (both sides): ``W_va (v - J_a)_perp``, the distance from the bone axis
  scaled by ``1 + gamma`` (soft tissue);
* ``belly``: ``(W_spine1 + W_spine2) max(0, (v - J_pelvis).f) f``, with ``f`` the torso's front:
  the belly pushed forward by ``gamma`` times its depth.

None of them is a linear combination of the model's components: of each direction's norm, the
part outside the span of the procedural body's 14 components is 17 % for the head (its own
``head`` component scales it too, about another centre), 71-73 % for the lengths, 78-97 % for
the girths and 92 % for the belly (``tests/test_body_shift.py`` checks > 15 %). Coefficients
are clipped standard normals ``z`` mixed by :meth:`BodyShift.mixing`: a limb's length is a
shared draw for both sides plus one per side (``length_sd``, ``asymmetry_sd``).

Clothing. A diaper (:func:`~aims_lib.synth.appearance.diaper_mask`) and the garment
(:func:`~aims_lib.synth.appearance.garment_parts`), the regions the textures colour, are
thickened on the rendered mesh only (keypoints are computed before): vertices move along their
area-weighted normals by ``thickness * weight``, the weight rising from 0 at the region border to
1 over :data:`CLOTHING_TAPER_M` of geodesic distance (:func:`clothing_weights`,
:func:`displace_clothing`).

Measurements (``benchmarks/body_shift.py``, procedural infant, 2000 bodies per domain, seeds 0
and 1; bones are 126 / 116 / 93 / 79 mm hip-knee / knee-ankle / shoulder-elbow / elbow-wrist at
the mean shape):

* model mismatch, the rest-pose shaped template against its least-squares fit by the standard
  body's first 10 components plus a translation: SYNTHETIC 0.00 mm mean per vertex (in the
  span), REAL 3.3 mm (95th percentile 4.8, max 6.4-7.1; keypoints 3.4 mm);
* bone-length spread (sd, % of the mean body): SYNTHETIC 9.4-9.8 % (stature, legs and arms
  components; range +-28 %), REAL 12.2-12.8 % (range -47..+44 %); the region directions
  alone change a bone by at most 24 % (``clip_sd * (length_sd + asymmetry_sd)``);
* left/right asymmetry |L - R| / mean: SYNTHETIC 0 (the shape space is symmetric), REAL 5.6 %
  on average, 95th percentile 13.6-13.9 %, for each of the four bones;
* faces flipped against the mean body in the rest pose: at most 0.16 % SYNTHETIC, 0.22-0.48 %
  REAL, all at the collars, all from the model's own components at +-2 sd (the neck component,
  beyond the fitted ten, at -2 with narrow shoulders); the region directions alone flip none.
  Clothing at its thickest (20 mm diaper, 8 mm garment) flips 0.6-0.7 % of the faces of posed
  bodies (at most 1.2 %), in the folds of groin, chest, collars and shoulders; none in the rest
  pose;
* SMPLify with the standard body from exact 2D keypoints (200 posed bodies, random cameras):
  PA-MPJPE 0.0368 / 0.0358 SYNTHETIC, 0.0470 / 0.0455 REAL (seeds 0 / 1): 1.27-1.28 x. The
  body shift alone stays below the card's 1.5 x: even limbs changed by up to 44 % by the
  regions (length_sd 0.12, asymmetry_sd 0.10) reached only 1.41 / 1.50 x, so the rest must
  come from the real proxy's poses, occlusion and framing;
* the pose sampler's first-round acceptance per class stays of the same order (e.g. Sitting
  w/ Arm Support 0.56-0.65 REAL against 0.73-0.77 SYNTHETIC, Prone Lying 0.69-0.71 against 0.90).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import scipy.sparse
from scipy.sparse.csgraph import dijkstra

from aims_lib.body.model import DEFAULT_BETAS, BodyModel
from aims_lib.body.skeleton import JOINT_INDEX, NUM_JOINTS, PARENTS, mirror_name
from aims_lib.body.smoothstep import smoothstep
from aims_lib.synth.appearance import Garment, diaper_mask, garment_parts

#: Limb segments (left side; the right is the mirror) as (proximal joint, distal joint).
LIMBS: Final[dict[str, tuple[str, str]]] = {
    "upper_arm": ("left_shoulder", "left_elbow"),
    "forearm": ("left_elbow", "left_wrist"),
    "thigh": ("left_hip", "left_knee"),
    "shin": ("left_knee", "left_ankle"),
}
SIDES: Final[tuple[str, ...]] = ("l", "r")
#: Region directions in the order they follow the model's own components in ``shapedirs``.
REGIONS: Final[tuple[str, ...]] = (
    "head",
    *(f"{limb}_length_{side}" for limb in LIMBS for side in SIDES),
    *(f"{limb}_girth" for limb in LIMBS),
    "belly",
)
#: Geodesic distance (metres, template) over which clothing thickness rises from its border.
CLOTHING_TAPER_M: Final[float] = 0.02


@dataclass(frozen=True)
class BodyShift:
    """A domain's body settings: which shape components are drawn, how far the region
    directions spread (standard deviations of fractions, 0.1 = 10 %), how thick clothes are."""

    own_components: int | None  # the model's own components drawn; None: every one it has
    clip_sd: float  # every standard normal draw is clipped to +-clip_sd
    head_sd: float  # head scale
    length_sd: float  # limb segment length, one draw shared by both sides
    asymmetry_sd: float  # limb segment length, one more draw per side
    girth_sd: float  # limb segment girth (both sides)
    belly_sd: float
    diaper_mm: tuple[float, float]  # uniform range of the diaper's thickness
    clothing_mm: tuple[float, float]  # uniform range of the garment's thickness

    def __post_init__(self) -> None:
        if self.own_components is not None and self.own_components < 1:
            raise ValueError(f"BodyShift.own_components must be None or >= 1, got {self.own_components}")
        if not (np.isfinite(self.clip_sd) and self.clip_sd > 0):
            raise ValueError(f"BodyShift.clip_sd must be a finite number > 0, got {self.clip_sd}")
        for name in ("head_sd", "length_sd", "asymmetry_sd", "girth_sd", "belly_sd"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"BodyShift.{name} must be a finite number >= 0, got {value}")
        # A fraction of -1 shrinks a head, bone or girth to nothing: the mesh would invert.
        for name, extreme in (
            ("head_sd", self.head_sd),
            ("length_sd + asymmetry_sd", self.length_sd + self.asymmetry_sd),
            ("girth_sd", self.girth_sd),
            ("belly_sd", self.belly_sd),
        ):
            if self.clip_sd * extreme >= 0.5:
                raise ValueError(
                    f"BodyShift.{name} = {extreme} reaches a fraction of {self.clip_sd * extreme:.2f} at "
                    f"clip_sd = {self.clip_sd}; it must stay below 0.5 (a region would halve or invert)"
                )
        for name in ("diaper_mm", "clothing_mm"):
            lo, hi = getattr(self, name)
            if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi <= 50):
                raise ValueError(f"BodyShift.{name} must be a range 0 <= low <= high <= 50 mm, got {(lo, hi)}")

    def mixing(self) -> np.ndarray:
        """Region coefficients from latent draws: ``gamma = z @ M``, ``M`` (G, len(REGIONS)).
        Latent rows: head; one length per limb (both sides); one length per limb and side;
        one girth per limb; belly."""
        rows: list[dict[str, float]] = [{"head": self.head_sd}]
        rows += [{f"{limb}_length_{side}": self.length_sd for side in SIDES} for limb in LIMBS]
        rows += [{f"{limb}_length_{side}": self.asymmetry_sd} for limb in LIMBS for side in SIDES]
        rows += [{f"{limb}_girth": self.girth_sd} for limb in LIMBS]
        rows += [{"belly": self.belly_sd}]
        m = np.zeros((len(rows), len(REGIONS)))
        for i, row in enumerate(rows):
            for name, sd in row.items():
                m[i, REGIONS.index(name)] = sd
        return m

    @property
    def shifts_regions(self) -> bool:
        """Whether the shift draws region coefficients (the model needs the region directions)."""
        return bool(self.mixing().any())


#: Today's draw: the first DEFAULT_BETAS components as standard normals clipped at +-2, no regions.
SYNTHETIC: Final[BodyShift] = BodyShift(
    own_components=DEFAULT_BETAS,
    clip_sd=2.0,
    head_sd=0.0,
    length_sd=0.0,
    asymmetry_sd=0.0,
    girth_sd=0.0,
    belly_sd=0.0,
    diaper_mm=(0.0, 0.0),
    clothing_mm=(0.0, 0.0),
)
#: The real proxy. Every component of the body (those beyond the fitted ten are the mismatch
#: SMPLify cannot fit); head +-10 % (head circumference varies about 3 % sd in WHO's standards,
#: the body's own head component already adds 6 %); limb segments +-24 % at most, a shared 7 %
#: sd that changes segment ratios and 5 % per side, an average |L - R| of 5.6 % (near a bound of
#: about 25 % that keeps bodies infant-like; larger spreads raise the fit's error only slowly,
#: see the module docstring); girth +-20 % (lean to chubby limbs); belly +-30 % of its depth; a diaper 5-20 mm
#: (thin disposable to bulky cloth) and a garment 2-8 mm (a cotton bodysuit to a fleece).
REAL: Final[BodyShift] = BodyShift(
    own_components=None,
    clip_sd=2.0,
    head_sd=0.05,
    length_sd=0.07,
    asymmetry_sd=0.05,
    girth_sd=0.10,
    belly_sd=0.15,
    diaper_mm=(5.0, 20.0),
    clothing_mm=(2.0, 8.0),
)


# --- shape -------------------------------------------------------------------------------------


class ShiftedBodyModel(BodyModel):
    """A body whose ``shapedirs`` are its own components followed by region directions:
    ``betas[:, :own_components]`` are the model's, the next ``len(regions)`` the regions'."""

    def __init__(
        self, arrays: dict[str, np.ndarray], own_components: int, regions: tuple[str, ...], **smplx_kwargs: Any
    ) -> None:
        super().__init__(arrays, num_betas=None, **smplx_kwargs)
        self.own_components = own_components
        self.regions = regions


def _smpl_arrays(model: Any) -> dict[str, np.ndarray]:
    """The arrays of an SMPL pickle (float64) that a smplx SMPL module was built from."""
    parents = model.parents.detach().cpu().numpy()
    if parents.shape != (NUM_JOINTS,) or tuple(int(p) for p in parents[1:]) != PARENTS[1:]:
        raise ValueError("body shift needs an SMPL-layout model (24 joints, SMPL kinematic tree)")
    v = model.v_template.detach().cpu().double().numpy()
    posedirs = model.posedirs.detach().cpu().double().numpy()  # smplx keeps (P, V * 3)
    return {
        "v_template": v,
        "shapedirs": model.shapedirs.detach().cpu().double().numpy(),
        "posedirs": posedirs.T.reshape(len(v), 3, -1),
        "J_regressor": model.J_regressor.detach().cpu().double().numpy(),
        "weights": model.lbs_weights.detach().cpu().double().numpy(),
        "kintree_table": np.stack([parents.astype(np.int64), np.arange(NUM_JOINTS)]),
        "f": np.asarray(model.faces, dtype=np.int64),
    }


def _subtree(joint: int, parents: np.ndarray) -> list[int]:
    """``joint`` and every joint below it (parents come before children)."""
    inside = np.zeros(len(parents), dtype=bool)
    inside[joint] = True
    for j in range(joint + 1, len(parents)):
        inside[j] |= parents[j] >= 0 and inside[parents[j]]
    return list(np.flatnonzero(inside))


def region_directions(model: Any) -> np.ndarray:
    """The region directions (V, 3, len(REGIONS)) of an SMPL-format model at its mean shape
    (formulas in the module docstring)."""
    return _directions(_smpl_arrays(model))


def _directions(arrays: dict[str, np.ndarray]) -> np.ndarray:
    v, w = arrays["v_template"], arrays["weights"]
    parents = arrays["kintree_table"][0]
    j = arrays["J_regressor"] @ v
    dirs: dict[str, np.ndarray] = {"head": w[:, [JOINT_INDEX["head"]]] * (v - j[JOINT_INDEX["head"]])}
    for limb, (proximal, distal) in LIMBS.items():
        girth = np.zeros_like(v)
        for side in SIDES:
            names = (proximal, distal) if side == "l" else (mirror_name(proximal), mirror_name(distal))
            a, b = (JOINT_INDEX[n] for n in names)
            bone = j[b] - j[a]
            t = np.clip((v - j[a]) @ bone / (bone @ bone), 0.0, 1.0)
            carried = w[:, _subtree(b, parents)].sum(1) + w[:, a] * t
            dirs[f"{limb}_length_{side}"] = carried[:, None] * bone
            axis = bone / np.linalg.norm(bone)
            radial = (v - j[a]) - ((v - j[a]) @ axis)[:, None] * axis
            girth += w[:, [a]] * radial
        dirs[f"{limb}_girth"] = girth
    up = j[JOINT_INDEX["neck"]] - j[JOINT_INDEX["pelvis"]]
    left = (j[JOINT_INDEX["left_shoulder"]] - j[JOINT_INDEX["right_shoulder"]]) + (
        j[JOINT_INDEX["left_hip"]] - j[JOINT_INDEX["right_hip"]]
    )
    front = np.cross(left, up)
    front /= np.linalg.norm(front)
    belly = w[:, JOINT_INDEX["spine1"]] + w[:, JOINT_INDEX["spine2"]]
    depth = np.maximum((v - j[JOINT_INDEX["pelvis"]]) @ front, 0.0)
    dirs["belly"] = (belly * depth)[:, None] * front
    return np.stack([dirs[name] for name in REGIONS], axis=-1)


def shifted_body_model(model: Any, shift: BodyShift) -> ShiftedBodyModel:
    """``model`` with the region directions appended to its own shape components when ``shift``
    draws regions (same topology, faces, skinning and regressor); the model's own components are
    all those it keeps (load it with ``num_betas=None`` for the ones beyond DEFAULT_BETAS)."""
    arrays = _smpl_arrays(model)
    own = arrays["shapedirs"].shape[-1]
    regions = REGIONS if shift.shifts_regions else ()
    if regions:
        arrays["shapedirs"] = np.concatenate([arrays["shapedirs"], _directions(arrays)], axis=-1)
    return ShiftedBodyModel(arrays, own, regions, dtype=model.dtype, batch_size=model.batch_size)


def sample_shapes(rng: np.random.Generator, n: int, shift: BodyShift, model: Any) -> np.ndarray:
    """Shape coefficients (n, components) of ``n`` bodies for ``model`` (a
    :func:`shifted_body_model`; a plain body model serves a shift without regions).

    The model's own components first: ``own_components`` (or all) standard normals clipped at
    ``clip_sd``, the rest zero; for :data:`SYNTHETIC` exactly today's draw
    ``np.clip(rng.normal(0, 1, (n, DEFAULT_BETAS)), -2, 2)`` and nothing else. Then the region
    coefficients ``clip(z, -clip_sd, clip_sd) @ shift.mixing()``.
    """
    own = model.own_components if isinstance(model, ShiftedBodyModel) else int(model.num_betas)
    regions = model.regions if isinstance(model, ShiftedBodyModel) else ()
    drawn = own if shift.own_components is None else shift.own_components
    if drawn > own:
        raise ValueError(f"BodyShift.own_components = {drawn}, but the body model has {own} shape components")
    if shift.shifts_regions and regions != REGIONS:
        raise ValueError("this BodyShift draws region coefficients: build the model with shifted_body_model(model, shift)")
    own_betas = np.clip(rng.normal(0.0, 1.0, size=(n, drawn)), -shift.clip_sd, shift.clip_sd)
    if not shift.shifts_regions:
        return own_betas
    mixing = shift.mixing()
    latent = np.clip(rng.normal(0.0, 1.0, size=(n, mixing.shape[0])), -shift.clip_sd, shift.clip_sd)
    betas = np.zeros((n, own + len(regions)))
    betas[:, :drawn] = own_betas
    betas[:, own:] = latent @ mixing
    return betas


# --- clothing ----------------------------------------------------------------------------------


def _uniform(rng: np.random.Generator, low_high: tuple[float, float]) -> float:
    """A uniform draw, or the value itself without a draw when the range is one value (so the
    synthetic domain's random stream is what it was)."""
    low, high = low_high
    return float(low) if low == high else float(rng.uniform(low, high))


def sample_clothing(rng: np.random.Generator, shift: BodyShift) -> tuple[float, float]:
    """Diaper and garment thickness (metres) of one body; no draw for fixed thicknesses."""
    return 1e-3 * _uniform(rng, shift.diaper_mm), 1e-3 * _uniform(rng, shift.clothing_mm)


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Unit vertex normals (V, 3): the sum of the adjacent faces' normals weighted by their area
    (the unnormalised cross products), normalised."""
    v = np.asarray(vertices, dtype=np.float64)
    tri = v[faces]
    face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normals = np.zeros_like(v)
    for k in range(3):
        np.add.at(normals, faces[:, k], face_normals)
    return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def tapered_weight(
    mask: np.ndarray, template: np.ndarray, faces: np.ndarray, taper_m: float = CLOTHING_TAPER_M
) -> np.ndarray:
    """Per-vertex weight (V,) in [0, 1]: 0 outside ``mask``, rising smoothly with the geodesic
    distance (along mesh edges, template space) from the nearest unmasked vertex to 1 at
    ``taper_m``; masked vertices no unmasked vertex reaches (a fully covered part) get 1."""
    mask = np.asarray(mask, dtype=bool)
    if not mask.any():
        return np.zeros(len(mask))
    if mask.all():
        return np.ones(len(mask))
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    length = np.linalg.norm(template[edges[:, 0]] - template[edges[:, 1]], axis=1)
    graph = scipy.sparse.coo_matrix((length, (edges[:, 0], edges[:, 1])), shape=(len(mask), len(mask))).tocsr()
    distance = dijkstra(graph, directed=False, indices=np.flatnonzero(~mask), min_only=True)
    return np.where(mask, smoothstep(0.0, taper_m, np.minimum(distance, taper_m)), 0.0)


def clothing_weights(
    garment: Garment, template: np.ndarray, parts: np.ndarray, faces: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Tapered weights (V,) of the diaper and of the garment over it, on the regions the
    textures colour (:func:`~aims_lib.synth.appearance.diaper_mask`, ``garment_parts``)."""
    template = np.asarray(template, dtype=np.float64)
    faces = np.asarray(faces, dtype=np.int64)
    diaper = tapered_weight(diaper_mask(template, parts), template, faces)
    return diaper, tapered_weight(np.isin(parts, garment_parts(garment)), template, faces)


def displace_clothing(vertices: np.ndarray, faces: np.ndarray, weight: np.ndarray, offset_m: float) -> np.ndarray:
    """Vertices (V, 3) moved outwards along their area-weighted normals by ``offset_m * weight``
    (a layer of cloth ``offset_m`` thick where ``weight`` is 1); same dtype as ``vertices``."""
    vertices = np.asarray(vertices)
    weight = np.asarray(weight, dtype=np.float64)
    if weight.shape != (len(vertices),):
        raise ValueError(f"displace_clothing: weight must have shape ({len(vertices)},), got {weight.shape}")
    if not (np.isfinite(offset_m) and offset_m >= 0):
        raise ValueError(f"displace_clothing: offset_m must be a finite number >= 0, got {offset_m}")
    faces = np.asarray(faces, dtype=np.int64)
    moved = vertices + (offset_m * weight)[:, None] * vertex_normals(vertices, faces)
    return moved.astype(vertices.dtype)
