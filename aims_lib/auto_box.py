r"""The infant's box when none is given: 2D keypoints on the whole image, a box around the confident ones.

A photo from a phone comes without an annotated box, and the image branch and the 2D estimator
are top-down: they see the infant at the scale they were trained on only inside its box (the
whole image as the box loses about half the fine top-1: ``docs/decisions.md``, "Automatic
boxes"). No separate detector is trained: the 2D estimator already localises the joints. Per image, ``passes`` rounds of

1. the estimator's keypoints and heatmap scores in the current box (first: the whole image);
2. the box around the keypoints scoring at least ``min_score``, enlarged by ``margin`` times its
   longer side on every side (joints lie inside the body: the silhouette's box reaches past
   them by the head, hands and feet), clipped to the image.

An image with fewer than ``min_keypoints`` confident keypoints in the whole image, or smaller than
:data:`MIN_SIDE` pixels on a side, holds **no infant** that the model can read: its box stays the
whole image and the predictor flags it (a blank image, noise or a thumbnail would otherwise get a
confident label). The defaults were chosen on real val of the quick run by the box's overlap with
the annotated one (``docs/decisions.md``, "Automatic boxes"); notebook 06 reports fine and coarse
top-1 on real test with annotated, automatic and whole-image boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    from aims_lib.pose_branch.estimator import KeypointEstimator

#: Heatmap scores at or above this count as a found joint (mmpose's visualisation threshold).
MIN_SCORE: Final[float] = 0.2
#: Fewer confident joints in the whole image: no infant found.
MIN_KEYPOINTS: Final[int] = 2
#: Enlargement of the keypoints' box on every side, as a fraction of its longer side.
MARGIN: Final[float] = 0.15
#: Rounds of estimate-and-box (the second sees the infant at the estimator's scale).
PASSES: Final[int] = 2
#: Images with a shorter side (pixels) hold too little to read an infant from.
MIN_SIDE: Final[int] = 32


@dataclass(frozen=True)
class AutoBoxes:
    """Per image: ``boxes`` (N, 4) ``x, y, w, h`` in pixels; ``found`` (N,) whether an infant was
    found (else the box is the whole image); ``confident`` (N,) confident joints in the whole image;
    ``reason`` (N,) why none was found ("" when found)."""

    boxes: np.ndarray
    found: np.ndarray
    confident: np.ndarray
    reason: list[str]


def whole_image_boxes(sizes: np.ndarray) -> np.ndarray:
    """``x, y, w, h`` boxes covering whole images of ``sizes`` (N, 2) ``(width, height)``."""
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    return np.concatenate([np.zeros_like(sizes), sizes], axis=1)


def keypoint_boxes(
    keypoints: np.ndarray, scores: np.ndarray, sizes: np.ndarray, margin: float = MARGIN, min_score: float = MIN_SCORE,
) -> np.ndarray:
    """Boxes (N, 4) around each image's keypoints scoring ``>= min_score``, enlarged by ``margin``
    times the longer side on every side and clipped to the image ``sizes`` (N, 2) ``(w, h)``:
    ``x0 = max(0, min x - m L)``, ``x1 = min(W, max x + m L)``, ``L = max(max x - min x, max y - min y)``.
    An image with no confident keypoint gets the whole image."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    confident = np.asarray(scores) >= min_score
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    if keypoints.shape[:2] != confident.shape or len(sizes) != len(keypoints) or margin < 0:
        raise ValueError(f"keypoint_boxes: keypoints {keypoints.shape}, scores {confident.shape}, sizes {sizes.shape} "
                         f"and margin {margin} do not fit (N, 17, 2), (N, 17), (N, 2), margin >= 0")
    low = np.where(confident[..., None], keypoints, np.inf).min(axis=1)  # (N, 2)
    high = np.where(confident[..., None], keypoints, -np.inf).max(axis=1)
    pad = margin * (high - low).max(axis=1, keepdims=True)
    any_confident = confident.any(axis=1)
    low = np.where(any_confident[:, None], np.clip(low - pad, 0.0, sizes), 0.0)
    high = np.where(any_confident[:, None], np.clip(high + pad, 0.0, sizes), sizes)
    extent = np.maximum(high - low, 1.0)  # a single joint still gives a box of positive size
    return np.concatenate([np.minimum(low, sizes - extent), extent], axis=1)


def find_infants(
    estimator: KeypointEstimator,
    images: Sequence[np.ndarray],
    *,
    passes: int = PASSES,
    margin: float = MARGIN,
    min_score: float = MIN_SCORE,
    min_keypoints: int = MIN_KEYPOINTS,
    batch_size: int = 32,
) -> AutoBoxes:
    """Automatic boxes of uint8 RGB ``images`` (module docstring): ``passes`` rounds of the
    estimator's keypoints and the box around the confident ones."""
    if passes < 1 or min_keypoints < 1:
        raise ValueError(f"find_infants: passes ({passes}) and min_keypoints ({min_keypoints}) must be >= 1")
    sizes = np.array([[a.shape[1], a.shape[0]] for a in images], dtype=np.float64).reshape(-1, 2)
    whole = whole_image_boxes(sizes)
    large = sizes.min(axis=1) >= MIN_SIDE
    reason = ["" if ok else f"image too small ({int(w)} x {int(h)} px)" for ok, (w, h) in zip(large, sizes)]
    confident = np.zeros(len(images), dtype=np.int64)
    boxes = whole.copy()
    rows = np.flatnonzero(large)
    if rows.size:
        chosen = [images[i] for i in rows]
        keypoints, scores = estimator.predict(chosen, whole[rows], batch_size=batch_size)
        confident[rows] = (np.asarray(scores) >= min_score).sum(axis=1)
        for k in range(passes):
            boxes[rows] = keypoint_boxes(keypoints, scores, sizes[rows], margin, min_score)
            if k + 1 < passes:
                keypoints, scores = estimator.predict(chosen, boxes[rows], batch_size=batch_size)
    found = large & (confident >= min_keypoints)
    for i in np.flatnonzero(large & ~found):
        reason[i] = f"no infant found ({confident[i]} joints scored >= {min_score} in the whole image, {min_keypoints} needed)"
    boxes[~found] = whole[~found]
    return AutoBoxes(boxes=boxes, found=found, confident=confident, reason=reason)
