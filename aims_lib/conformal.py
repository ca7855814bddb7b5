r"""Abstention and conformal prediction sets: when the model should say less than one label.

* **Risk-coverage** (Geifman & El-Yaniv 2017, "Selective classification for deep neural
  networks", NeurIPS): rank the images by confidence :math:`\max_k p_{ik}`, most confident first
  (a stable sort: ties keep their input order); answering only the :math:`k` most confident
  gives coverage :math:`k/N` and risk :math:`r_k` = the error rate among them.
  :math:`\mathrm{AURC} = \frac{1}{N}\sum_{k=1}^{N} r_k` (the area under the curve, as in
  Geifman, Uziel & El-Yaniv 2019); lower is better, and a ranking with every error last gives the
  least possible for its error count.
* **Split conformal classification**, LAC (Sadinle, Lei & Wasserman 2019, "Least ambiguous
  set-valued classifiers with bounded error levels", JASA; Angelopoulos & Bates 2021, "A gentle
  introduction to conformal prediction"): the score of a class is :math:`s = 1 - p_k`. On
  :math:`n` calibration images with true-class scores :math:`s_1, \dots, s_n`, the threshold
  :math:`\hat t` is the :math:`k`-th smallest, :math:`k = \lceil (n + 1)\,\text{level} \rceil`,
  and the set of an image holds every class with :math:`1 - p_k \le \hat t`. If calibration and
  test images are exchangeable, the set holds the true class with probability at least
  ``level`` (exactly :math:`k / (n + 1)` on average without ties). If :math:`k > n` the
  threshold is :math:`+\infty` (every set full) and a warning says so.

  Conventions: :math:`\hat t` is numpy's ``quantile(s, k / n, method="inverted_cdf")``; numpy's
  ``method="higher"`` (the gentle introduction's code) picks the :math:`(k + 1)`-th smallest
  whenever :math:`k < n`, one score more conservative. ``crepes`` includes a class when its
  p-value :math:`(\#\{s_j \ge s\} + 1) / (n + 1) \ge 1 - \text{level}`: the same sets when
  :math:`(n + 1)(1 - \text{level})` is not an integer; when it is, crepes's sets are those of the
  :math:`(k + 1)`-th smallest score (its ``>=`` against the strict ``>`` of the conformal
  p-value rule). LAC sets may be empty (every class scores above :math:`\hat t`).
* **Hierarchical answers** (:func:`hierarchical_answers`): a coarse set and a fine set per image
  become one of three answers; the joint set (fine classes in the fine set whose parent is in
  the coarse set) covers the true pose with probability at least
  :math:`1 - (1 - \text{level}_c) - (1 - \text{level}_f)` (union bound).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np

from aims_lib import taxonomy
from aims_lib.calibration import _labels, _probs

#: Tolerance when rounding ``(n + 1) * level`` up: 0.7 * 10 is 7.000000000000001 in binary.
_ROUNDING: Final[float] = 1e-9


def _probs_and_labels(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    p = _probs(probs)
    return p, _labels(labels, len(p), p.shape[1])


# ----------------------------------------------------------------------------- abstention


def risk_coverage(probs: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(coverage, risk)`` (N,) each: answering the ``k`` most confident images (stable sort by
    max probability, descending), coverage ``k / N`` and the error rate among them."""
    p, y = _probs_and_labels(probs, labels)
    order = np.argsort(-p.max(1), kind="stable")
    errors = (p.argmax(1) != y)[order]
    k = np.arange(1, len(y) + 1)
    return k / len(y), np.cumsum(errors) / k


def aurc(probs: Any, labels: Any) -> float:
    """Area under the risk-coverage curve: the mean risk over ``k = 1 .. N`` (module docstring)."""
    return float(risk_coverage(probs, labels)[1].mean())


def selective_accuracy(probs: Any, labels: Any, coverage: float) -> float:
    """Accuracy on the ``ceil(coverage * N)`` most confident images (at least one), coverage in
    (0, 1]: what the model gets right when it may abstain on the rest."""
    if not (0.0 < coverage <= 1.0):
        raise ValueError(f"coverage must be in (0, 1], got {coverage!r}")
    cov, risk = risk_coverage(probs, labels)
    k = max(1, math.ceil(coverage * len(cov) - _ROUNDING))
    return float(1.0 - risk[k - 1])


# ----------------------------------------------------------------------------- conformal sets


def conformal_threshold(cal_probs: Any, cal_labels: Any, level: float = 0.9) -> float:
    """The split-conformal LAC threshold: the ``ceil((n + 1) * level)``-th smallest calibration
    score ``1 - p_true`` (module docstring); ``inf`` with a warning when that exceeds ``n``."""
    if not (0.0 < level < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    p, y = _probs_and_labels(cal_probs, cal_labels)
    scores = np.sort(1.0 - p[np.arange(len(y)), y])
    n = len(scores)
    k = math.ceil((n + 1) * level - _ROUNDING)
    if k > n:
        warnings.warn(f"{n} calibration images are too few for level {level}: need (n + 1) * level <= n, "
                      f"i.e. n >= {math.ceil(level / (1 - level) - _ROUNDING)}; every prediction set is full",
                      RuntimeWarning, stacklevel=2)
        return math.inf
    return float(scores[k - 1])


def coverage_range(n_calibration: int, level: float = 0.9, mass: float = 0.9) -> tuple[float, float]:
    """The central ``mass`` interval of split conformal's coverage given one calibration set of
    ``n_calibration`` images: Beta(k, n + 1 - k) with ``k = ceil((n + 1) level)`` (Vovk 2012;
    Angelopoulos & Bates 2021, Sec. 3.2). On few calibration images the coverage of the sets a
    given calibration set produces varies around ``level`` by this much (before the test split's
    own sampling); ``(1, 1)`` when the sets are full (too few images)."""
    from scipy.stats import beta

    if n_calibration < 1 or not (0.0 < level < 1.0) or not (0.0 < mass < 1.0):
        raise ValueError(f"coverage_range: n_calibration {n_calibration} >= 1, level {level} and mass {mass} in (0, 1)")
    k = math.ceil((n_calibration + 1) * level - _ROUNDING)
    if k > n_calibration:
        return 1.0, 1.0
    low, high = beta.ppf([(1 - mass) / 2, (1 + mass) / 2], k, n_calibration + 1 - k)
    return float(low), float(high)


def prediction_sets(probs: Any, threshold: float) -> np.ndarray:
    """(N, K) bool: the classes with score ``1 - p <= threshold`` (may be empty)."""
    if isinstance(threshold, bool) or not (isinstance(threshold, (int, float)) and threshold >= 0):
        raise ValueError(f"threshold must be a number >= 0 (inf allowed), got {threshold!r}")
    return 1.0 - _probs(probs) <= threshold


def set_metrics(sets: Any, labels: Any) -> dict[str, float]:
    """Empirical ``coverage`` (share of sets holding the true class), ``mean_size`` and
    ``empty_share`` of prediction sets (N, K) bool."""
    s = np.asarray(sets)
    if s.dtype != bool or s.ndim != 2 or s.shape[0] == 0:
        raise ValueError(f"sets must be a non-empty (N, K) bool array, got {s.dtype} {s.shape}")
    y = _labels(labels, len(s), s.shape[1])
    size = s.sum(1)
    return {"coverage": float(s[np.arange(len(y)), y].mean()), "mean_size": float(size.mean()),
            "empty_share": float((size == 0).mean())}


# ----------------------------------------------------------------------------- hierarchical answers


@dataclass(frozen=True)
class Answer:
    """What to tell the user about one image: a fine pose, only its coarse posture, or which
    coarse postures remain (``coarse`` and ``fine`` are taxonomy labels or None)."""

    kind: Literal["fine", "coarse_only", "uncertain"]
    coarse: str | None
    fine: str | None
    text: str


def _named(coarse_ids: set[int], coarse_probs: np.ndarray) -> list[str]:
    """Coarse labels of ``coarse_ids``, most probable first (ties in taxonomy order)."""
    return [taxonomy.COARSE[c] for c in sorted(coarse_ids, key=lambda c: (-coarse_probs[c], c))]


def _or(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def hierarchical_answers(coarse_sets: Any, fine_sets: Any, coarse_probs: Any, fine_probs: Any) -> list[Answer]:
    """One :class:`Answer` per image from its coarse (N, 4) and fine (N, 12) prediction sets.

    An empty set is replaced by the argmax class of its probabilities (the model's point
    prediction). Then ``K`` = the coarse classes in the coarse set that parent a class of the
    fine set, and the joint set = the fine classes whose parent is in ``K``:

    * one fine class in the joint set: ``"fine"``, e.g. "Sitting w/ Arm Support (Sitting)";
    * several, all of one parent: ``"coarse_only"``, e.g. "Sitting, fine pose uncertain";
    * several parents in ``K``: ``"uncertain"`` naming them, e.g. "uncertain: Prone or Supine";
    * ``K`` empty (the two sets disagree): ``"uncertain"`` naming the coarse set and the fine
      set's parents together.

    Coarse classes are named most probable first (by ``coarse_probs``).
    """
    cp, fp = _probs(coarse_probs, "coarse_probs"), _probs(fine_probs, "fine_probs")
    cs, fs = np.asarray(coarse_sets), np.asarray(fine_sets)
    n = len(cp)
    for name, a, shape in (("coarse_probs", cp, (n, taxonomy.NUM_COARSE)), ("fine_probs", fp, (n, taxonomy.NUM_FINE)),
                           ("coarse_sets", cs, (n, taxonomy.NUM_COARSE)), ("fine_sets", fs, (n, taxonomy.NUM_FINE))):
        if a.shape != shape or (name.endswith("sets") and a.dtype != bool):
            kind = "bool " if name.endswith("sets") else ""
            raise ValueError(f"{name} must be {kind}{shape}, got {a.dtype} {a.shape}")
    parent = taxonomy.FINE_TO_COARSE_ID
    answers = []
    for i in range(n):
        coarse = {int(c) for c in np.flatnonzero(cs[i])} or {int(cp[i].argmax())}
        fine = {int(f) for f in np.flatnonzero(fs[i])} or {int(fp[i].argmax())}
        parents = {parent[f] for f in fine}
        shared = coarse & parents
        joint = sorted(f for f in fine if parent[f] in shared)
        if len(joint) == 1:
            c, f = taxonomy.COARSE[parent[joint[0]]], taxonomy.FINE[joint[0]]
            answers.append(Answer("fine", c, f, f"{f} ({c})"))
        elif len(shared) == 1:
            (c,) = _named(shared, cp[i])
            answers.append(Answer("coarse_only", c, None, f"{c}, fine pose uncertain"))
        else:
            names = _named(shared or coarse | parents, cp[i])
            answers.append(Answer("uncertain", None, None, f"uncertain: {_or(names)}"))
    return answers
