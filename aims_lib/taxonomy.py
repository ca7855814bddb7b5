"""AIMS pose labels and the COCO-17 keypoint layout.

The labels follow Table 1 of the paper (4 coarse postures, 12 fine AIMS poses). Integer ids are
the positions in ``COARSE`` and ``FINE``; they are stable and never reordered, because logits,
checkpoints and confusion matrices are indexed by them.

The 3D keypoint convention of the whole project is defined here as well
(:func:`normalise_keypoints_3d`): it only depends on the COCO-17 layout, so the dataset
validator, the body model and SMPLify all share one definition.

Sources: ``docs/references.md#paper``.
"""

from __future__ import annotations

import re
from typing import Final

import numpy as np

COARSE: Final[tuple[str, ...]] = ("Prone", "Supine", "Sitting", "Standing")

FINE: Final[tuple[str, ...]] = (
    "Prone Lying",
    "Forearm Support",
    "Reciprocal Crawling",
    "Four-Point Kneeling",
    "Supine Lying",
    "Hands to Knee/Feet",
    "Rolling",
    "Sitting w/ Support",
    "Sitting w/ Arm Support",
    "Sitting w/o Support",
    "Four-Point Standing",
    "Standing",
)

FINE_TO_COARSE: Final[dict[str, str]] = {
    "Prone Lying": "Prone",
    "Forearm Support": "Prone",
    "Reciprocal Crawling": "Prone",
    "Four-Point Kneeling": "Prone",
    "Supine Lying": "Supine",
    "Hands to Knee/Feet": "Supine",
    "Rolling": "Supine",
    "Sitting w/ Support": "Sitting",
    "Sitting w/ Arm Support": "Sitting",
    "Sitting w/o Support": "Sitting",
    "Four-Point Standing": "Standing",
    "Standing": "Standing",
}

NUM_COARSE: Final[int] = len(COARSE)
NUM_FINE: Final[int] = len(FINE)

#: ``FINE_TO_COARSE_ID[f]`` is the coarse id of fine id ``f``.
FINE_TO_COARSE_ID: Final[tuple[int, ...]] = tuple(COARSE.index(FINE_TO_COARSE[f]) for f in FINE)


class LabelError(ValueError):
    """An AIMS label name or id that is not part of the taxonomy."""


def _normalise_name(name: str) -> str:
    """Fold spelling variants: case, ``w/``/``w/o``, underscores, hyphens, slashes."""
    s = name.strip().lower()
    s = s.replace("w/o", " without ").replace("w/", " with ")
    s = re.sub(r"[^a-z0-9]+", " ", s)
    return " ".join(s.split())


# Spelling variants seen in the wild that normalisation alone does not fold.
_ALIASES: Final[dict[str, str]] = {
    "four point kneeing": "Four-Point Kneeling",  # the paper's Table 1 spelling
    "hands to knee": "Hands to Knee/Feet",
    "hands to feet": "Hands to Knee/Feet",
    "hands to knees feet": "Hands to Knee/Feet",
    "hands to knees": "Hands to Knee/Feet",
}

_FINE_LOOKUP: Final[dict[str, str]] = {
    **{_normalise_name(f): f for f in FINE},
    **_ALIASES,
}
_COARSE_LOOKUP: Final[dict[str, str]] = {_normalise_name(c): c for c in COARSE}


def _parse(name: str, lookup: dict[str, str], valid: tuple[str, ...], kind: str) -> str:
    if not isinstance(name, str):
        raise LabelError(f"{kind} label must be a string, got {name!r}; valid: {', '.join(valid)}")
    canonical = lookup.get(_normalise_name(name))
    if canonical is None:
        raise LabelError(f"unknown {kind} label {name!r}; valid: {', '.join(valid)}")
    return canonical


def parse_fine(name: str) -> str:
    """Return the canonical fine label for a leniently spelled name.

    ``"Sitting w/ Support"``, ``"sitting_with_support"`` and ``"SITTING WITH SUPPORT"`` are one
    label. An unknown name raises :class:`LabelError` listing the valid labels.
    """
    return _parse(name, _FINE_LOOKUP, FINE, "fine")


def parse_coarse(name: str) -> str:
    """Return the canonical coarse label for a leniently spelled name (see :func:`parse_fine`)."""
    return _parse(name, _COARSE_LOOKUP, COARSE, "coarse")


def fine_id(name: str) -> int:
    """Stable integer id of a fine label (lenient spelling)."""
    return FINE.index(parse_fine(name))


def coarse_id(name: str) -> int:
    """Stable integer id of a coarse label (lenient spelling)."""
    return COARSE.index(parse_coarse(name))


def coarse_of(fine: str) -> str:
    """Coarse label that contains a fine label."""
    return FINE_TO_COARSE[parse_fine(fine)]


# SyRIP's optional per-image ``posture`` field. "All Fours" is both AIMS prone (crawling,
# kneeling) and AIMS standing (four-point standing), so it admits two coarse labels.
SYRIP_POSTURE_TO_COARSE: Final[dict[str, frozenset[str]]] = {
    "supine": frozenset({"Supine"}),
    "prone": frozenset({"Prone"}),
    "sitting": frozenset({"Sitting"}),
    "standing": frozenset({"Standing"}),
    "all fours": frozenset({"Prone", "Standing"}),
    "unknown": frozenset(),
}


def coarse_from_syrip_posture(posture: str) -> frozenset[str]:
    """Coarse labels compatible with a SyRIP ``posture`` value (empty for ``Unknown``)."""
    key = _normalise_name(posture)
    if key not in SYRIP_POSTURE_TO_COARSE:
        valid = "Supine, Prone, Sitting, Standing, All Fours, Unknown"
        raise LabelError(f"unknown SyRIP posture {posture!r}; valid: {valid}")
    return SYRIP_POSTURE_TO_COARSE[key]


# --- COCO-17 keypoints -----------------------------------------------------------------------

KEYPOINTS: Final[tuple[str, ...]] = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)
NUM_KEYPOINTS: Final[int] = len(KEYPOINTS)

#: Limb edges as 0-based keypoint index pairs (COCO's skeleton, which is 1-based in the JSON).
SKELETON: Final[tuple[tuple[int, int], ...]] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12),
    (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9), (8, 10),
    (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip

#: Left/right keypoint pairs swapped by a horizontal flip.
FLIP_PAIRS: Final[tuple[tuple[int, int], ...]] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)  # fmt: skip

NOSE: Final[int] = KEYPOINTS.index("nose")
LEFT_HIP: Final[int] = KEYPOINTS.index("left_hip")
RIGHT_HIP: Final[int] = KEYPOINTS.index("right_hip")


def flip_permutation() -> list[int]:
    """Index permutation that swaps left and right keypoints."""
    perm = list(range(NUM_KEYPOINTS))
    for a, b in FLIP_PAIRS:
        perm[a], perm[b] = b, a
    return perm


def pelvis(keypoints_3d: np.ndarray) -> np.ndarray:
    """Pelvis of COCO-17 keypoints (..., 17, 3): the midpoint of the two hips.

    COCO has no pelvis keypoint; the hip midpoint is defined for every source (renders, SMIL
    fits, real annotations), which is why it is the root of the convention.
    """
    return 0.5 * (keypoints_3d[..., LEFT_HIP, :] + keypoints_3d[..., RIGHT_HIP, :])


def normalise_keypoints_3d(keypoints_3d: np.ndarray) -> np.ndarray:
    """The project's 3D keypoint convention (paper Sec. 3.2).

    ``X_norm = (X - pelvis) / ||nose - pelvis||`` per skeleton, with ``pelvis`` the hip
    midpoint. The result is root-centred at the pelvis and has a nose-to-pelvis distance of
    exactly 1, so skeletons of any size and position compare directly. Works on (17, 3) and on
    batches (..., 17, 3) of NumPy arrays or torch tensors. A degenerate skeleton (nose on the
    pelvis) raises ``ValueError``.
    """
    root = pelvis(keypoints_3d)[..., None, :]
    centred = keypoints_3d - root
    nose_vec = centred[..., NOSE, :]
    scale = (nose_vec**2).sum(-1) ** 0.5
    if bool((scale <= 1e-12).any()):
        raise ValueError("degenerate skeleton: the nose coincides with the pelvis")
    return centred / scale[..., None, None]
