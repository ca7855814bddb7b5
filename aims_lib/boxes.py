"""The one rule for what counts as a box: ``x, y, w, h`` in pixels, finite, ``w > 0`` and ``h > 0``.

Boxes reach the library from callers (the 2D estimator, the predictor) and from users' files
(:mod:`aims_lib.box_files`); all check them by this rule, so a box one accepts the others accept
too. ``x, y`` is the top-left corner. The predictor also takes a row of NaN as "no box: find the
infant" (:mod:`aims_lib.auto_box`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def invalid_boxes(boxes: np.ndarray) -> np.ndarray:
    """(N,) True where a row of the (N, 4) ``boxes`` is no box: not finite, or ``w`` or ``h`` not positive."""
    return ~np.isfinite(boxes).all(1) | (boxes[:, 2] <= 0) | (boxes[:, 3] <= 0)


def check_boxes(bboxes: np.ndarray | Sequence[Sequence[float]], n: int, allow_missing: bool = False) -> np.ndarray:
    """``bboxes`` as a new (n, 4) float64 array, one box per image, or ValueError naming the bad
    rows; ``allow_missing`` lets rows of NaN through (the predictor finds those infants)."""
    boxes = np.array(bboxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"bboxes must have shape (N, 4) as x, y, w, h; got {boxes.shape}")
    if len(boxes) != n:
        raise ValueError(f"got {n} images but {len(boxes)} bboxes: one box per image is needed")
    bad = invalid_boxes(boxes)
    if allow_missing:
        bad &= ~np.isnan(boxes).all(1)
    if bad.any():
        missing = " (a row of NaN: find the infant)" if allow_missing else ""
        raise ValueError(f"bboxes {np.flatnonzero(bad)[:5].tolist()} are not finite or have no area (a box needs a "
                         f"positive width and height){missing}: {boxes[bad][:2].tolist()}")
    return boxes
