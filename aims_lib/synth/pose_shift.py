"""The pose distribution of a domain: how the real proxy's poses differ from the synthetic
sampler's while keeping its labels (``docs/pose_distributions.md`` states both).

Real infants do what a class table does not draw: limbs and head beyond its ranges, one side
unlike the other, postures part of the way to the next class, a hand at the mouth or on the
body. A :class:`PoseShift` says how much of that the sampler adds, around step 1 of
:mod:`~aims_lib.synth.poses`:

* **wider ranges**: every joint range ``(lo, hi)`` of the class's table (spine, neck, head,
  limbs) becomes ``(lo - w, hi + w)`` with ``w = widen_fraction * (hi - lo) + widen_deg``, plus
  ``head_deg`` for the neck and the head; within :data:`LIMITS`, and a range never narrows;
* **asymmetry**: in ``asymmetric_share`` of the candidates one side (left or right, 1/2 each)
  has its shoulder (flexion, abduction, rotation), elbow, hip and knee angles offset by
  ``U(-asymmetric_deg, asymmetric_deg)`` each, the other side unchanged (each side already
  picks its limb alternative and draws its angles on its own);
* **boundary blends**: in ``blend_share`` of the candidates each body part (:data:`PARTS`)
  becomes ``(1 - t) a + t b``, ``a`` the class's angles, ``b`` a draw of a neighbouring class
  (:data:`NEIGHBOURS`, widened alike) and ``t ~ U(blend_weight)`` drawn per part: poses part
  of the way to the next class. The class's own contacts and solves still apply;
* **hand contacts**: in ``contact_share`` of the candidates whose hands are free (no plant,
  reach or hand contact in the class's table) one hand is put on a spot of the body
  (:data:`~aims_lib.synth.pose_solvers.HAND_SPOTS`, one of ``contacts``) by arm IK.

Labels stay rule-defined: every candidate still has to meet its class's predicates, the
self-intersection test and the joint limits, or it is re-drawn. :data:`SYNTHETIC` changes
nothing and draws nothing (the synthetic domain's random stream and samples are those of the
sampler before shifts existed); :data:`REAL` is the real proxy's
(:data:`aims_lib.synth.domains.DOMAIN_SETTINGS` holds each domain's).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache
from typing import Any, Final

import numpy as np

from aims_lib.synth.pose_angles import SIDES, Angles, draw_angles
from aims_lib.synth.pose_solvers import HAND_SPOTS
from aims_lib.synth.pose_specs import POSE_SPECS, Arm, Leg, PoseSpec, Range

#: Ranges (degrees) that widened or offset angles stay inside (our choice, not measured): hinge
#: flexion as far as the sampler's solves accept it (elbows 150, knees 160; no hyperextension),
#: and the neck's and head's Euler angles (x > 0 flexes, y turns, z bends sideways). The head
#: may turn as far as the prone table already turns it (80), the neck 20 more; the two together
#: extend by up to 90 (a prone infant lifting its head) and flex by up to 70.
LIMITS: Final[dict[str, Any]] = {
    "elbow": (0.0, 150.0),
    "knee": (0.0, 160.0),
    "fingers": (0.0, 90.0),
    "neck": ((-50.0, 40.0), (-20.0, 20.0), (-20.0, 20.0)),
    "head": ((-40.0, 30.0), (-80.0, 80.0), (-20.0, 20.0)),
}

#: The classes a pose of each class can be half-way to, for boundary blends: the AIMS
#: transitions whose base orientation interpolates sensibly (lifting onto the forearms, a
#: crawling step from kneeling, reaching for the legs or rolling from lying on the back,
#: leaning on the hands or back while sitting, lowering from standing to hands and feet).
NEIGHBOURS: Final[dict[str, tuple[str, ...]]] = {
    "Prone Lying": ("Forearm Support",),
    "Forearm Support": ("Prone Lying",),
    "Reciprocal Crawling": ("Four-Point Kneeling",),
    "Four-Point Kneeling": ("Reciprocal Crawling",),
    "Supine Lying": ("Hands to Knee/Feet", "Rolling"),
    "Hands to Knee/Feet": ("Supine Lying",),
    "Rolling": ("Supine Lying",),
    "Sitting w/ Support": ("Sitting w/o Support",),
    "Sitting w/ Arm Support": ("Sitting w/o Support",),
    "Sitting w/o Support": ("Sitting w/ Arm Support", "Sitting w/ Support"),
    "Four-Point Standing": ("Four-Point Kneeling",),
    "Standing": ("Four-Point Standing",),
}

#: The body parts a boundary blend weighs on their own: the trunk (base orientation, spine,
#: neck, head) and each limb, so that a blend may take, say, one arm or the legs further towards
#: the other class than the rest.
PARTS: Final[dict[str, tuple[str, ...]]] = {
    "trunk": ("pitch", "roll", "spine1", "spine2", "spine3", "neck", "head"),
    **{f"{side}_arm": tuple(f"{side}_{j}" for j in ("collar", "shoulder", "elbow", "wrist", "fingers")) for side in SIDES},
    **{f"{side}_leg": tuple(f"{side}_{j}" for j in ("hip", "knee", "ankle")) for side in SIDES},
}

#: The angles an asymmetric candidate offsets on one side (shoulder and hip: flexion,
#: abduction, external rotation).
_ASYMMETRIC: Final[tuple[str, ...]] = ("shoulder", "elbow", "hip", "knee")


@dataclass(frozen=True)
class PoseShift:
    """How a domain's poses depart from the class tables (module docstring): widening of every
    joint range (a fraction of its width plus degrees, more degrees for the neck and head), the
    share and size of one-sided limb offsets, the share and per-part weight range of blends
    towards a neighbouring class, the share of hand-to-body contacts and their spots."""

    widen_fraction: float = 0.0
    widen_deg: float = 0.0
    head_deg: float = 0.0
    asymmetric_share: float = 0.0
    asymmetric_deg: float = 0.0
    blend_share: float = 0.0
    blend_weight: Range = (0.0, 0.0)
    contact_share: float = 0.0
    contacts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # Sequences given as lists (JSON) are stored as tuples: the shift is hashable.
        object.__setattr__(self, "blend_weight", tuple(self.blend_weight))
        object.__setattr__(self, "contacts", tuple(self.contacts))
        if len(self.blend_weight) != 2:
            raise ValueError(f"PoseShift.blend_weight must be (lo, hi), got {self.blend_weight!r}")
        for name in ("asymmetric_share", "blend_share", "contact_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"PoseShift.{name} must be in [0, 1], got {value!r}")
        for name in ("widen_fraction", "widen_deg", "head_deg", "asymmetric_deg"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0.0):
                raise ValueError(f"PoseShift.{name} must be finite and >= 0, got {value!r}")
        lo, hi = self.blend_weight
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"PoseShift.blend_weight must be (lo, hi) with 0 <= lo <= hi <= 1, got {self.blend_weight!r}")
        unknown = [c for c in self.contacts if c not in HAND_SPOTS]
        if unknown:
            raise ValueError(f"PoseShift.contacts has unknown spots {unknown}; known: {sorted(HAND_SPOTS)}")
        if self.contact_share > 0.0 and not self.contacts:
            raise ValueError(f"PoseShift.contacts is empty but contact_share is {self.contact_share!r}")


#: The synthetic domain: the class tables as they are.
SYNTHETIC: Final[PoseShift] = PoseShift()

#: The real proxy (chosen by measurement, ``docs/pose_distributions.md``): ranges widened by
#: 15 % of their width plus 3 degrees on each side, the neck and head by 40 degrees more (infants
#: look around: the largest shift at no cost in acceptance); 70 % of the candidates one-sided by
#: up to 25 degrees a joint; 15 % blended up to 40 % of the way to a neighbouring class (blends
#: are as hard for a classifier trained on the real proxy as for one trained on synthetic
#: poses, so few); half of the free-handed ones with a hand at the mouth, on the belly or on the
#: thigh.
REAL: Final[PoseShift] = PoseShift(
    widen_fraction=0.15,
    widen_deg=3.0,
    head_deg=40.0,
    asymmetric_share=0.7,
    asymmetric_deg=25.0,
    blend_share=0.15,
    blend_weight=(0.0, 0.4),
    contact_share=0.5,
    contacts=("mouth", "belly", "thigh"),
)


def _widen_range(r: Range, w_fraction: float, w_deg: float, limit: Range | None) -> Range:
    """``(lo - w, hi + w)``, ``w = w_fraction * (hi - lo) + w_deg``, kept inside ``limit``
    without ever narrowing ``r``."""
    lo, hi = r
    w = w_fraction * (hi - lo) + w_deg
    if limit is None:
        return (lo - w, hi + w)
    return (min(lo, max(lo - w, limit[0])), max(hi, min(hi + w, limit[1])))


def _widen_value(value: Any, w_fraction: float, w_deg: float, limit: Any) -> Any:
    """A widened range, or a triple of them (Euler angles, with a triple of limits)."""
    if isinstance(value[0], tuple):
        limits = limit if limit is not None else (None,) * len(value)
        return tuple(_widen_range(r, w_fraction, w_deg, lim) for r, lim in zip(value, limits))
    return _widen_range(value, w_fraction, w_deg, limit)


def _widen_limbs(options: Arm | Leg | tuple[Any, ...] | None, shift: PoseShift) -> Any:
    """Limb alternatives with every range widened (hinges within :data:`LIMITS`)."""
    if options is None:
        return None
    if isinstance(options, tuple):
        return tuple(_widen_limbs(o, shift) for o in options)
    f, d = shift.widen_fraction, shift.widen_deg
    return replace(options, **{x.name: _widen_value(getattr(options, x.name), f, d, LIMITS.get(x.name)) for x in fields(options)})


@lru_cache(maxsize=None)
def widened(spec: PoseSpec, shift: PoseShift) -> PoseSpec:
    """``spec`` with every joint range (spine, neck, head, limbs) widened by ``shift``; equal
    to ``spec`` when the shift widens nothing. Orientation ranges and plants stay as they are."""
    f, d = shift.widen_fraction, shift.widen_deg
    trunk = {
        "spine": _widen_value(spec.spine, f, d, None),
        "neck": _widen_value(spec.neck, f, d + shift.head_deg, LIMITS["neck"]),
        "head": _widen_value(spec.head, f, d + shift.head_deg, LIMITS["head"]),
    }
    limbs = {k: _widen_limbs(getattr(spec, k), shift) for k in ("arm", "leg", "right_arm", "right_leg")}
    return replace(spec, **trunk, **limbs)


def _share(rng: np.random.Generator, share: float, n: int) -> np.ndarray:
    """Which of ``n`` candidates get a variation of probability ``share``; draws nothing when
    ``share`` is 0, so a domain without it keeps its random stream."""
    return rng.random(n) < share if share > 0.0 else np.zeros(n, dtype=bool)


def shift_angles(label: str, a: Angles, shift: PoseShift, rng: np.random.Generator) -> list[list[str]]:
    """Blend a share of the drawn angles of class ``label`` towards a neighbouring class and
    offset one side of a share of them (module docstring), in place; returns each sample's tags
    (``"blend:<class>"``, ``"asymmetric"``)."""
    n = len(a["pitch"])
    tags: list[list[str]] = [[] for _ in range(n)]
    blend = np.flatnonzero(_share(rng, shift.blend_share, n))
    if len(blend):
        options = [(nb, k) for nb in NEIGHBOURS[label] for k in range(len(POSE_SPECS[nb]))]
        pick = rng.integers(len(options), size=len(blend))
        t = rng.uniform(*shift.blend_weight, (len(blend), len(PARTS)))
        for o, (nb, k) in enumerate(options):
            rows = pick == o
            if not rows.any():
                continue
            other, _ = draw_angles(widened(POSE_SPECS[nb][k], shift), rng, int(rows.sum()))
            for part, keys in enumerate(PARTS.values()):
                for key in keys:
                    w = t[rows, part].reshape((-1,) + (1,) * (other[key].ndim - 1))
                    a[key][blend[rows]] = (1.0 - w) * a[key][blend[rows]] + w * other[key]
            for i in blend[rows]:
                tags[i].append(f"blend:{nb}")
    asym = np.flatnonzero(_share(rng, shift.asymmetric_share, n))
    if len(asym):
        side = rng.integers(2, size=len(asym))
        for s, name in enumerate(SIDES):
            rows = asym[side == s]
            for joint in _ASYMMETRIC:
                key = f"{name}_{joint}"
                a[key][rows] += rng.uniform(-shift.asymmetric_deg, shift.asymmetric_deg, a[key][rows].shape)
                if joint in LIMITS:
                    a[key][rows] = np.clip(a[key][rows], *LIMITS[joint])
        for i in asym:
            tags[i].append("asymmetric")
    return tags


def free_hands(spec: PoseSpec) -> bool:
    """The class's table leaves both hands free: nothing plants them, reaches with them or
    needs them (or the forearms) on the floor."""
    return spec.plant is None and spec.reach is None and not any(c.startswith(("hand", "forearm")) for c in spec.contacts)


def draw_contacts(spec: PoseSpec, shift: PoseShift, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Which hand of each candidate goes to the body, (n, 2) bool (left, right; at most one per
    row), and the spot's index in ``shift.contacts`` (n,); none for a class without free hands."""
    hands = np.zeros((n, 2), dtype=bool)
    spots = np.zeros(n, dtype=np.int64)
    rows = np.flatnonzero(_share(rng, shift.contact_share if free_hands(spec) else 0.0, n))
    if len(rows):
        hands[rows, rng.integers(2, size=len(rows))] = True
        spots[rows] = rng.integers(len(shift.contacts), size=len(rows))
    return hands, spots
