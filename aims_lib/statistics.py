"""Accuracies and how sure they are: top-1, per class and confusions; intervals, paired
comparisons and seed summaries.

The real test split of the paper (and of the embedded benchmark) has 198 images, so one accuracy
carries a 95 % interval of about +-7 points, and two models compared on the same images must be
compared *paired*: each image is right or wrong under both, and only the images where they
disagree say which is better.

* :func:`top1`, :func:`per_class_accuracy`, :func:`confusion_matrix` and
  :func:`classification_report` -- the point numbers: top-1 % (NaN for no images), recall per
  class, counts ``M[true, predicted]``, and all of them at both levels of the taxonomy.
* :func:`accuracy` -- top-1 and macro (per-class mean) accuracy in %, each with a percentile
  bootstrap interval over the test images (the same resamples for both; seeded);
  :func:`bootstrap_interval` the same interval from one 0/1 per image.
* :func:`paired_comparison` -- the difference ``B - A`` in points on the same images, its paired
  bootstrap interval (both models scored on each resample), and McNemar's exact test: with
  ``b`` images that only A gets right and ``c`` that only B gets right, under "no difference"
  each disagreement is a fair coin, so ``p = min(1, 2 * P(Binomial(b + c, 1/2) <= min(b, c)))``.
* :func:`pooled_rate_interval` -- the same for a rate pooled over images (PCK: correct over
  labelled keypoints), resampling whole images.
* :func:`seed_summary` and :func:`summarise_seeds` (a :class:`SeedSummary`) -- mean and sample
  standard deviation over seeds (training noise), which the intervals (test-sample noise) do not
  contain.

Sources: ``docs/references.md#statistics``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final, TypedDict

import numpy as np

from aims_lib import taxonomy

N_BOOT: Final[int] = 2000
LEVEL: Final[float] = 0.95


def _labels(pred: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred, labels = np.asarray(pred), np.asarray(labels)
    if pred.ndim == 2:
        pred = pred.argmax(1)
    if pred.shape != labels.shape or labels.ndim != 1:
        raise ValueError(f"predictions {pred.shape} and labels {labels.shape} must be equal 1-D shapes (one per test image)")
    if labels.size == 0:
        raise ValueError("no test images to score")
    return pred, labels


def _resamples(n: int, seed: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) image indices drawn with replacement: the same for every statistic of a seed."""
    return np.random.default_rng(seed).integers(0, n, size=(n_boot, n))


def _percentiles(boot: np.ndarray, level: float) -> tuple[float, float]:
    """The central ``level`` percentile interval of bootstrap values."""
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1 - alpha])
    return float(lo), float(hi)


def top1(pred: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in % of ``pred`` (ids (N,) or logits (N, C)); NaN without labels (an empty split)."""
    if np.asarray(labels).size == 0:
        return float("nan")
    pred, labels = _labels(pred, labels)
    return float((pred == labels).mean() * 100.0)


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Recall per class in % (NaN for a class absent from ``labels``)."""
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        sel = labels == c
        if sel.any():
            out[c] = float((pred[sel] == c).mean() * 100.0)
    return out


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``M[true, predicted]``."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(labels), np.asarray(pred)), 1)
    return m


def confusion_pairs(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (predicted, true) label pairs that a confusion matrix ``M[true, predicted]`` counts, so
    that accuracies with intervals can be computed from a stored matrix."""
    m = np.asarray(matrix)
    true, pred = np.nonzero(m)
    counts = m[true, pred]
    return np.repeat(pred, counts), np.repeat(true, counts)


def classification_report(
    coarse_pred: np.ndarray, fine_pred: np.ndarray, coarse_true: np.ndarray, fine_true: np.ndarray
) -> dict:
    """Top-1 (%), macro accuracy (the mean of the classes' recalls, %), per-class accuracy (%,
    None for an absent class) and confusion matrices ``M[true, predicted]`` at both levels,
    JSON-ready (class names as keys)."""
    out: dict = {}
    for level, pred, true, names in (
        ("coarse", coarse_pred, coarse_true, taxonomy.COARSE),
        ("fine", fine_pred, fine_true, taxonomy.FINE),
    ):
        pred, true = np.asarray(pred), np.asarray(true)
        per_class = per_class_accuracy(pred, true, len(names))
        out[level] = {
            "top1": top1(pred, true),
            "macro": float(np.nanmean(per_class)),
            "per_class": {n: (None if np.isnan(a) else round(float(a), 2)) for n, a in zip(names, per_class)},
            "confusion": confusion_matrix(pred, true, len(names)).tolist(),
        }
    return out


def bootstrap_interval(correct: np.ndarray, seed: int = 0, n_boot: int = N_BOOT, level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval (in %) of an accuracy, resampling the test images.

    ``correct`` holds one 0/1 per test image; the resamples are :func:`accuracy`'s of ``seed``.
    """
    correct = np.asarray(correct, dtype=np.float64)
    if correct.ndim != 1 or correct.size == 0:
        raise ValueError(f"need a non-empty 1-D array of 0/1 per test image, got shape {correct.shape}")
    return _percentiles(correct[_resamples(correct.size, seed, n_boot)].mean(axis=1) * 100.0, level)


def _macro(correct: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class mean of ``correct`` over the last axis, classes absent from a row left out."""
    onehot = labels[..., None] == np.arange(num_classes)  # (..., n, C)
    counts = onehot.sum(-2)
    hits = (correct[..., None] * onehot).sum(-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nanmean(np.where(counts > 0, hits / np.maximum(counts, 1), np.nan), axis=-1) * 100.0


@dataclass(frozen=True)
class Accuracy:
    """Top-1 and macro accuracy (%) on ``n`` test images, each with its interval."""

    top1: float
    top1_low: float
    top1_high: float
    macro: float
    macro_low: float
    macro_high: float
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}

    def __str__(self) -> str:
        return f"{self.top1:.1f} [{self.top1_low:.1f}, {self.top1_high:.1f}]"


def accuracy(pred: np.ndarray, labels: np.ndarray, num_classes: int, seed: int = 0, n_boot: int = N_BOOT,
             level: float = LEVEL) -> Accuracy:
    """Top-1 and macro accuracy of ``pred`` (ids (N,) or logits (N, C)) with percentile bootstrap
    intervals over the test images. Macro accuracy averages the recall of the classes present
    (in a resample: those drawn)."""
    pred, labels = _labels(pred, labels)
    correct = (pred == labels).astype(np.float64)
    idx = _resamples(len(labels), seed, n_boot)
    lo, hi = _percentiles(correct[idx].mean(1) * 100.0, level)
    mlo, mhi = _percentiles(_macro(correct[idx], labels[idx], num_classes), level)
    return Accuracy(float(correct.mean() * 100.0), lo, hi, float(_macro(correct, labels, num_classes)), mlo, mhi,
                    int(len(labels)))


def pooled_rate_interval(hits: np.ndarray, counts: np.ndarray, seed: int = 0, n_boot: int = N_BOOT,
                         level: float = LEVEL) -> tuple[float, float]:
    """Percentile bootstrap interval of ``sum(hits) / sum(counts)`` over images (e.g. PCK: correct
    and labelled keypoints per image), resampling whole images."""
    hits, counts = np.asarray(hits, np.float64), np.asarray(counts, np.float64)
    if hits.shape != counts.shape or hits.ndim != 1 or hits.size == 0 or counts.sum() <= 0:
        raise ValueError(f"need equal 1-D per-image hits and counts with some counts, got {hits.shape} and {counts.shape}")
    idx = _resamples(len(hits), seed, n_boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = hits[idx].sum(1) / counts[idx].sum(1)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.nanquantile(rates, [alpha, 1 - alpha])
    return float(lo), float(hi)


def paired_rate_difference(hits_a: np.ndarray, hits_b: np.ndarray, counts: np.ndarray, seed: int = 0,
                           n_boot: int = N_BOOT, level: float = LEVEL) -> tuple[float, float, float]:
    """``b`` minus ``a`` of two pooled rates on the same images, in points, with a percentile
    bootstrap interval that resamples whole images for both at once (paired):
    ``100 * (sum(hits_b) - sum(hits_a)) / sum(counts)``. E.g. PCK of two keypoint estimators,
    ``hits`` their correct and ``counts`` the labelled keypoints per image."""
    a, b, c = (np.asarray(x, np.float64) for x in (hits_a, hits_b, counts))
    if not a.shape == b.shape == c.shape or a.ndim != 1 or a.size == 0 or c.sum() <= 0:
        raise ValueError(f"need equal 1-D per-image hits and counts with some counts, got {a.shape}, {b.shape} and {c.shape}")
    idx = _resamples(len(c), seed, n_boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        boot = (b[idx].sum(1) - a[idx].sum(1)) / c[idx].sum(1) * 100.0
    alpha = (1.0 - level) / 2.0
    lo, hi = np.nanquantile(boot, [alpha, 1 - alpha])
    return float((b.sum() - a.sum()) / c.sum() * 100.0), float(lo), float(hi)


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (see the module docstring)."""
    if a_only < 0 or b_only < 0:
        raise ValueError(f"discordant counts must be >= 0, got {a_only}, {b_only}")
    n = a_only + b_only
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(a_only, b_only) + 1)) / 2.0**n
    return min(1.0, 2.0 * tail)


@dataclass(frozen=True)
class Comparison:
    """``b`` against ``a`` on the same test images: ``difference`` = acc(b) - acc(a) in points."""

    name: str
    a: str
    b: str
    difference: float
    low: float
    high: float
    p: float  # McNemar's exact test
    a_only: int  # images only ``a`` gets right
    b_only: int
    n: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 4) if k == "p" else round(v, 2)) if isinstance(v, float) else v
                for k, v in asdict(self).items()}


def paired_comparison(name: str, a: str, correct_a: np.ndarray, b: str, correct_b: np.ndarray, seed: int = 0,
                      n_boot: int = N_BOOT, level: float = LEVEL) -> Comparison:
    """Compare two models' per-image correctness (0/1, the same images in the same order)."""
    ca, cb = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    if ca.shape != cb.shape or ca.ndim != 1 or ca.size == 0:
        raise ValueError(f"{name}: need two equal, non-empty 1-D correctness arrays, got {ca.shape} and {cb.shape}")
    diff = (cb.astype(np.float64) - ca) * 100.0
    lo, hi = _percentiles(diff[_resamples(len(diff), seed, n_boot)].mean(1), level)
    a_only, b_only = int((ca & ~cb).sum()), int((cb & ~ca).sum())
    return Comparison(name, a, b, float(diff.mean()), lo, hi, mcnemar_exact(a_only, b_only), a_only, b_only, int(len(diff)))


def seed_summary(values: Sequence[float]) -> dict[str, float | int | None]:
    """Mean and sample standard deviation (None for one seed) of a number over seeds."""
    x = np.asarray([v for v in values if v is not None], dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values to summarise")
    return {"mean": round(float(x.mean()), 2), "sd": round(float(x.std(ddof=1)), 2) if x.size > 1 else None,
            "n_seeds": int(x.size)}


class SeedSummary(TypedDict):
    """One number of a table over its training seeds (:func:`summarise_seeds`), as records keep it:
    the headline seed's :class:`Accuracy` fields (the test keeps the two in step), then the seeds'."""

    top1: float
    top1_low: float
    top1_high: float
    macro: float
    macro_low: float
    macro_high: float
    n: int
    seeds: list[int]
    per_seed: dict[str, list[float]]
    over_seeds: dict[str, float | int | None]


def summarise_seeds(per_seed: dict[int, Accuracy], headline: int) -> SeedSummary:
    """One number of a table over its training seeds: the ``headline`` seed's accuracy and
    intervals (the point estimate everywhere), each seed's top-1 and macro, and their mean and sd."""
    if headline not in per_seed:
        raise ValueError(f"headline seed {headline} not among the seeds {sorted(per_seed)}")
    seeds = [headline, *sorted(k for k in per_seed if k != headline)]
    return SeedSummary(
        **per_seed[headline].to_dict(),
        seeds=seeds,
        per_seed={"top1": [round(per_seed[k].top1, 2) for k in seeds], "macro": [round(per_seed[k].macro, 2) for k in seeds]},
        over_seeds=seed_summary([per_seed[k].top1 for k in seeds]),
    )


def gap_closed(source_only: float, adapted: float, oracle: float) -> float | None:
    """Share of the source-only-to-oracle gap that adaptation closes (1: reaches the oracle; None
    when there is no gap to close)."""
    gap = oracle - source_only
    return None if gap <= 0 else round((adapted - source_only) / gap, 3)
