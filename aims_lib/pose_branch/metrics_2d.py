"""How well 2D keypoints match the annotations: PCK and COCO keypoint AP, for any estimator.

Every estimator of the registry (:mod:`aims_lib.pose_branch.estimator`) is scored by these
functions on its predicted keypoints (N, 17, 2) and scores (N, 17), so their numbers compare.

* PCK@t: the share of labelled keypoints (COCO visibility v > 0: a hidden keypoint, v = 1, counts
  as a visible one) within ``t * max(box w, box h)`` of the annotation (mmpose's ``bbox``
  normaliser); :func:`pck_per_keypoint` says which joints limit a model, :func:`pck_counts` gives
  the per-image counts that intervals and paired comparisons resample.
* COCO AP, AP50, AP75 and AR by OKS (xtcocotools, COCO's per-keypoint constants, one detection
  per image), an image's detection score being the mean of its keypoint scores above 0.2 (as
  mmpose's CocoMetric rescores).
* :func:`learning_curve`: a training run's validation PCK and AP against its training minutes.

Sources: ``docs/references.md#mmpose``.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any, Final

import numpy as np

from aims_lib.data.format import AimsDataset, Sample
from aims_lib.pose_branch.coco_files import coco_dict
from aims_lib.statistics import pooled_rate_interval

#: COCO's per-keypoint OKS constants (the COCO keypoint evaluation), in the COCO-17 order.
COCO_SIGMAS: Final[np.ndarray] = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
) / 10.0
PCK_THRESHOLD: Final[float] = 0.05
#: Keypoint scores below this do not count towards an image's detection score (mmpose's default).
SCORE_THRESHOLD: Final[float] = 0.2


def _hits(samples: Sequence[Sample], keypoints: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, 17) correct within ``threshold * max(box w, box h)``, and (N, 17) labelled."""
    gt = np.stack([s.keypoints_2d for s in samples])
    labelled = np.stack([s.visibility > 0 for s in samples])
    size = np.array([max(s.bbox[2], s.bbox[3]) for s in samples])
    return np.linalg.norm(keypoints - gt, axis=2) <= threshold * size[:, None], labelled


def pck(samples: Sequence[Sample], keypoints: np.ndarray, threshold: float = PCK_THRESHOLD) -> float:
    """Share of labelled keypoints within ``threshold * max(box w, box h)`` of the annotation."""
    hit, labelled = _hits(samples, keypoints, threshold)
    return float(hit[labelled].mean()) if labelled.any() else float("nan")


def pck_counts(samples: Sequence[Sample], keypoints: np.ndarray, threshold: float = PCK_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Per image: correct and labelled keypoints, (N,) each; PCK is ``sum(correct) / sum(labelled)``
    (the per-image counts that intervals and paired comparisons resample)."""
    hit, labelled = _hits(samples, keypoints, threshold)
    return (hit & labelled).sum(1), labelled.sum(1)


def pck_per_keypoint(samples: Sequence[Sample], keypoints: np.ndarray, threshold: float = PCK_THRESHOLD) -> np.ndarray:
    """PCK of each of the 17 keypoints (NaN where none is labelled): which joints limit a model."""
    hit, labelled = _hits(samples, keypoints, threshold)
    counts = labelled.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, (hit & labelled).sum(0) / counts, np.nan)


def coco_ap(ds: AimsDataset, samples: Sequence[Sample], keypoints: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """COCO keypoint AP, AP50, AP75 and AR by OKS (xtcocotools), one detection per image."""
    try:
        from xtcocotools.coco import COCO
        from xtcocotools.cocoeval import COCOeval
    except ImportError as exc:
        raise ImportError(f"xtcocotools is needed for COCO AP ({exc}): install the environment with `make venv`") from exc
    gt = COCO()
    gt.dataset = coco_dict(ds, samples)
    detections = []
    for s, k, sc in zip(samples, keypoints, scores, strict=True):
        confident = sc[sc > SCORE_THRESHOLD]
        detections.append({
            "image_id": s.image_id,
            "category_id": 1,
            "keypoints": np.column_stack([k, sc]).ravel().tolist(),
            "score": float(confident.mean()) if confident.size else 0.0,
        })
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(detections), "keypoints", COCO_SIGMAS, use_area=True)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"AP": float(ev.stats[0]), "AP50": float(ev.stats[1]), "AP75": float(ev.stats[2]), "AR": float(ev.stats[5])}


def evaluate_keypoints_2d(
    ds: AimsDataset, samples: Sequence[Sample], keypoints: np.ndarray, scores: np.ndarray
) -> dict[str, float]:
    """COCO OKS AP/AP50/AP75/AR and PCK@0.05, @0.1 (normaliser: the longer side of the box), each
    PCK with its 95 % bootstrap interval over the images (``PCK@0.05 low`` / ``high``)."""
    if len(samples) != len(keypoints) or len(samples) != len(scores):
        raise ValueError(f"{len(samples)} samples but {len(keypoints)} keypoint and {len(scores)} score rows")
    if not samples:
        return {}
    out = {**coco_ap(ds, samples, keypoints, scores), "n": len(samples)}
    for threshold in (0.05, 0.1):  # 0.1: still informative for weak (short-run) models
        hits, counts = pck_counts(samples, keypoints, threshold)
        out[f"PCK@{threshold:g}"] = pck(samples, keypoints, threshold)
        low, high = pooled_rate_interval(hits, counts) if counts.any() else (float("nan"),) * 2
        out[f"PCK@{threshold:g} low"], out[f"PCK@{threshold:g} high"] = low, high
    return out


def learning_curve(history: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """Per epoch of a run's history: cumulative training minutes, validation AP and PCK@0.05, and
    what the epoch's minute bought (PCK points per training minute): when to stop paying."""
    rows: list[dict[str, float]] = []
    minutes, previous = 0.0, None  # previous point: (minutes, PCK)
    for h in history:
        minutes += h.get("seconds", 0.0) / 60
        if "PCK" not in h:
            continue
        gain = float("nan") if previous is None else 100 * (h["PCK"] - previous[1]) / (minutes - previous[0])
        rows.append({"epoch": h["epoch"], "train minutes": minutes, "val AP": h.get("coco/AP", float("nan")),
                     "val PCK@0.05": h["PCK"], "PCK points per minute": gain})
        previous = (minutes, h["PCK"])
    return rows
