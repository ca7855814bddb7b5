r"""Calibration: temperature scaling, expected calibration error and the pooling of the full model.

A classifier is calibrated when, among the images it gives confidence 0.8, 80 % are right. Deep
networks are over-confident; Guo et al. 2017 ("On calibration of modern neural networks", ICML)
showed that one scalar fitted on validation data fixes most of it without changing a single
decision (their ImageNet ResNet-152: ECE 5.48 % before, 1.86 % after temperature scaling).

* **Temperature scaling** (:func:`fit_temperature`, :func:`apply_temperature`):
  :math:`p_T = \operatorname{softmax}(z / T)` with :math:`T > 0` minimising the validation
  negative log-likelihood. ``z`` may be logits or log-probabilities (they differ by a per-row
  constant, which the softmax ignores). :math:`T > 1` softens an over-confident model; the
  argmax never changes.
* **Expected calibration error** (:func:`expected_calibration_error`, torchmetrics'
  ``MulticlassCalibrationError(norm="l1")``): the top-label confidences
  :math:`c_i = \max_k p_{ik}` fall into ``bins`` equal-width bins,
  :math:`\mathrm{ECE} = \sum_b \frac{n_b}{N} \lvert \mathrm{acc}_b - \mathrm{conf}_b \rvert`.
  torchmetrics' bins: bin :math:`b` holds :math:`b/B \le c < (b+1)/B` (confidences in float32),
  and a confidence of exactly 1 falls into an extra bin of its own (:func:`reliability` returns
  all ``B + 1``).
* **Negative log-likelihood** (:func:`negative_log_likelihood`):
  :math:`-\frac{1}{N}\sum_i \log \max(p_{i y_i}, 10^{-12})`.
* **Log-linear pooling of the full model's two experts** (:func:`pool_experts`,
  :func:`fit_pooling`). The full model (``aims_lib.hipc.hierarchical_log_probs``) is the product
  :math:`\log p(f) = \operatorname{log\,softmax}_f(\log q(f) + z_f)` with
  :math:`q(f) = p(c(f)) / n(c(f))` the image branch's coarse probability spread over the
  children and :math:`z_f` HIPC's fine logits. Pooling weighs the two experts,
  :math:`\operatorname{log\,softmax}_f(a \log q(f) + b z_f)`, :math:`a, b \ge 0` fitted by
  validation NLL; :math:`(a, b) = (1, 1)` is the paper's product, :math:`a` acts as an inverse
  temperature of the image branch and :math:`b` of the pose branch. The logits are recovered
  from the full model's output: :math:`z_f \equiv \log p_\text{full}(f) - \log q(f)` up to a
  per-row constant.
* :class:`Calibration`: what a predictor needs at run time (temperatures, pooling weights,
  conformal thresholds of :mod:`aims_lib.conformal`), saved as JSON.

Intervals (:func:`calibration_metrics`) are percentile bootstraps over the images with the
resamples of :mod:`aims_lib.statistics`.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from scipy.optimize import minimize, minimize_scalar
from scipy.special import log_softmax, softmax
from torchmetrics.classification import MulticlassCalibrationError

from aims_lib import hipc, taxonomy
from aims_lib.files import write_json
from aims_lib.statistics import LEVEL, N_BOOT, _resamples

#: Range of the fitted temperature.
T_BOUNDS: Final[tuple[float, float]] = (1e-2, 1e2)
#: Upper bound of the pooling weights (lower bound 0).
WEIGHT_MAX: Final[float] = 100.0
#: Probabilities are clamped here before a log (as in ``hipc.hierarchical_log_probs``).
PROB_FLOOR: Final[float] = 1e-12
CALIBRATION_FORMAT: Final[str] = "aims-calibration/1"


# ----------------------------------------------------------------------------- validation


def _scores(x: Any, name: str) -> np.ndarray:
    """A non-empty, finite (N, K) float64 array (logits, log-probabilities or probabilities)."""
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] < 2:
        raise ValueError(f"{name} must be a non-empty (N, K) array with K >= 2 classes, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} has {int((~np.isfinite(a)).sum())} non-finite values")
    return a


def _probs(x: Any, name: str = "probs") -> np.ndarray:
    """(N, K) probabilities: in [0, 1], each row summing to 1 within 1e-3 (float32 softmax)."""
    p = _scores(x, name)
    if p.min() < 0.0 or p.max() > 1.0 + 1e-6:
        raise ValueError(f"{name} must lie in [0, 1], got values in [{p.min():.4g}, {p.max():.4g}]")
    worst = float(np.abs(p.sum(1) - 1.0).max())
    if worst > 1e-3:
        raise ValueError(f"{name} rows must sum to 1, one is off by {worst:.4g}")
    return p


def _labels(labels: Any, n: int, num_classes: int) -> np.ndarray:
    """(N,) integer class ids in [0, num_classes)."""
    y = np.asarray(labels)
    if y.shape != (n,):
        raise ValueError(f"labels must be one id per row, shape ({n},), got {y.shape}")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"labels must be integer class ids, got dtype {y.dtype}")
    if y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes}), got values in [{y.min()}, {y.max()}]")
    return y.astype(np.int64)


def _number(value: Any, name: str, low: float, strict: bool, allow_inf: bool = False) -> float:
    """``value`` as a float: a real number (not a bool) above ``low`` (``> low`` when ``strict``),
    finite unless ``allow_inf``; else a ``ValueError`` naming ``name`` and the value."""
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)
    ok = ok and (value > low if strict else value >= low) and (allow_inf or math.isfinite(value))
    if not ok:
        bound = f"{'>' if strict else '>='} {low:g}" + (" (inf allowed)" if allow_inf else "")
        raise ValueError(f"{name} must be a {'' if allow_inf else 'finite '}number {bound}, got {value!r}")
    return float(value)


# ----------------------------------------------------------------------------- temperature


def _nll_of_logits(logits: np.ndarray, labels: np.ndarray) -> float:
    return float(-log_softmax(logits, axis=1)[np.arange(len(labels)), labels].mean())


def fit_temperature(log_probs_or_logits: Any, labels: Any) -> float:
    """The temperature ``T`` minimising the NLL of ``softmax(z / T)`` on validation data.

    Brent's bounded search over ``log T`` in :data:`T_BOUNDS`, in float64 (deterministic); the
    NLL is convex in ``1 / T``, so the minimum is unique. Without one (every validation image
    right: the NLL falls towards 0 as ``T -> 0``) or with the optimum on a bound, the result is
    returned with a warning.
    """
    z = _scores(log_probs_or_logits, "log_probs_or_logits")
    y = _labels(labels, len(z), z.shape[1])
    lo, hi = math.log(T_BOUNDS[0]), math.log(T_BOUNDS[1])
    res = minimize_scalar(lambda u: _nll_of_logits(z * math.exp(-u), y), bounds=(lo, hi), method="bounded",
                          options={"xatol": 1e-9})
    t = math.exp(float(res.x))
    if bool((z.argmax(1) == y).all()) or min(res.x - lo, hi - res.x) < 1e-4:
        warnings.warn(f"fitted temperature {t:.4g} is not pinned down by the validation data (every image right, "
                      f"so the NLL falls as T -> 0, or the optimum on the search bound {T_BOUNDS})",
                      RuntimeWarning, stacklevel=2)
    return t


def apply_temperature(log_probs_or_logits: Any, temperature: float) -> np.ndarray:
    """``softmax(z / T)`` (N, K) float64: the temperature-scaled probabilities."""
    z = _scores(log_probs_or_logits, "log_probs_or_logits")
    return softmax(z / _number(temperature, "temperature", 0.0, strict=True), axis=1)


# ----------------------------------------------------------------------------- metrics


def expected_calibration_error(probs: Any, labels: Any, bins: int = 15) -> float:
    """Top-label ECE (l1) with ``bins`` equal-width bins: torchmetrics'
    ``MulticlassCalibrationError`` (module docstring); 0 is perfectly calibrated."""
    p = _probs(probs)
    y = _labels(labels, len(p), p.shape[1])
    metric = MulticlassCalibrationError(num_classes=p.shape[1], n_bins=bins, norm="l1")
    return float(metric(torch.from_numpy(p), torch.from_numpy(y)))


def negative_log_likelihood(probs: Any, labels: Any) -> float:
    """Mean ``-log p_true`` with ``p_true`` clamped at 1e-12 (a wrong certainty costs 27.6)."""
    p = _probs(probs)
    y = _labels(labels, len(p), p.shape[1])
    return float(-np.log(np.maximum(p[np.arange(len(y)), y], PROB_FLOOR)).mean())


def _binned(p: np.ndarray, y: np.ndarray, bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per image: its bin (0 .. ``bins``, the last for confidence exactly 1), its confidence and
    whether its argmax is right, as torchmetrics computes them (float32 confidences)."""
    if not (isinstance(bins, int) and bins >= 1):
        raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
    conf, pred = torch.from_numpy(p).max(dim=1)
    conf = conf.float()
    index = torch.bucketize(conf, torch.linspace(0, 1, bins + 1, dtype=conf.dtype), right=True) - 1
    return index.numpy(), conf.double().numpy(), (pred.numpy() == y).astype(np.float64)


def reliability(probs: Any, labels: Any, bins: int = 15) -> dict[str, np.ndarray]:
    """The reliability diagram's numbers, per bin (``bins + 1`` of them, torchmetrics' bins:
    ``[b/B, (b+1)/B)`` and a last one for confidence exactly 1): ``lower`` and ``upper`` edges,
    ``count``, mean ``confidence`` and ``accuracy`` (NaN for an empty bin). The ECE is
    ``sum(count / N * |accuracy - confidence|)`` over the non-empty bins."""
    p = _probs(probs)
    y = _labels(labels, len(p), p.shape[1])
    index, conf, correct = _binned(p, y, bins)
    count = np.bincount(index, minlength=bins + 1).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(index, weights=conf, minlength=bins + 1) / count
        accuracy = np.bincount(index, weights=correct, minlength=bins + 1) / count
    edges = np.linspace(0.0, 1.0, bins + 1)
    return {"lower": edges, "upper": np.append(edges[1:], 1.0), "count": count, "confidence": mean_conf,
            "accuracy": accuracy}


def _boot_ece(p: np.ndarray, y: np.ndarray, idx: np.ndarray, bins: int) -> np.ndarray:
    """ECE of each resample (rows of ``idx``): ``sum_b |sum_{i in b} (correct_i - conf_i)| / N``,
    the same bins as :func:`expected_calibration_error`, vectorised over the resamples."""
    index, conf, correct = _binned(p, y, bins)
    gap = correct - conf
    n_boot, n = idx.shape
    slot = np.arange(n_boot)[:, None] * (bins + 1) + index[idx]
    sums = np.bincount(slot.ravel(), weights=gap[idx].ravel(), minlength=n_boot * (bins + 1))
    return np.abs(sums.reshape(n_boot, bins + 1)).sum(1) / n


def ece_if_calibrated(probs: Any, labels: Any, bins: int = 15, n_sim: int = 2000, seed: int = 0) -> dict[str, float]:
    r"""What ECE a perfectly calibrated model with these confidences would show on this many images
    (consistency resampling, Bröcker & Smith 2007): each image's top label is drawn right with
    probability equal to its confidence, :math:`\hat{y}_i \sim \mathrm{Bernoulli}(c_i)`, ``n_sim``
    times, and the ECE of each draw is computed with the same bins. Returns the ``mean`` and
    ``q95`` of those ECEs and ``p``, the share at or above the observed ECE: a small ``p`` says
    the model is miscalibrated; a large one that its ECE is what sampling alone gives (ECE is
    biased upward on few images; its size on the real test split: docs/decisions.md, "Calibration")."""
    p = _probs(probs)
    y = _labels(labels, len(p), p.shape[1])
    index, conf, _ = _binned(p, y, bins)
    rng = np.random.default_rng(seed)
    gap = (rng.random((n_sim, len(y))) < conf).astype(np.float64) - conf  # (S, N)
    slot = np.arange(n_sim)[:, None] * (bins + 1) + index[None, :]
    sums = np.bincount(slot.ravel(), weights=gap.ravel(), minlength=n_sim * (bins + 1))
    sims = np.abs(sums.reshape(n_sim, bins + 1)).sum(1) / len(y)
    observed = expected_calibration_error(p, y, bins)
    return {"mean": round(float(sims.mean()), 5), "q95": round(float(np.quantile(sims, 0.95)), 5),
            "p": round(float((sims >= observed - 1e-12).mean()), 4)}


def _interval(value: float, boot: np.ndarray, level: float, digits: int) -> dict[str, float]:
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(boot, [alpha, 1.0 - alpha])
    return {"value": round(value, digits), "low": round(float(lo), digits), "high": round(float(hi), digits)}


def calibration_metrics(probs_before: Any, probs_after: Any, labels: Any, seed: int = 0, n_boot: int = N_BOOT,
                        bins: int = 15, level: float = LEVEL) -> dict[str, Any]:
    """ECE and NLL before and after calibration on the same images, each with a percentile
    bootstrap interval (``level``), and the paired difference ``after - before`` with its
    interval (both scored on each resample of :func:`aims_lib.statistics._resamples`). JSON-ready:
    ``{"n", "bins", "ece": {"before", "after", "difference"}, "nll": {...}}``, each
    ``{"value", "low", "high"}`` rounded to 5 decimals (ECE as a fraction, not %)."""
    before, after = _probs(probs_before, "probs_before"), _probs(probs_after, "probs_after")
    if before.shape != after.shape:
        raise ValueError(f"probs_before {before.shape} and probs_after {after.shape} must have one shape")
    y = _labels(labels, len(before), before.shape[1])
    idx = _resamples(len(y), seed, n_boot)
    out: dict[str, Any] = {"n": int(len(y)), "bins": bins}
    models = {"before": before, "after": after}
    ece = {k: (expected_calibration_error(p, y, bins), _boot_ece(p, y, idx, bins)) for k, p in models.items()}
    loss = {k: -np.log(np.maximum(p[np.arange(len(y)), y], PROB_FLOOR)) for k, p in models.items()}
    nll = {k: (float(v.mean()), v[idx].mean(1)) for k, v in loss.items()}
    for name, metric in (("ece", ece), ("nll", nll)):
        (vb, bb), (va, ba) = metric["before"], metric["after"]
        out[name] = {"before": _interval(vb, bb, level, 5), "after": _interval(va, ba, level, 5),
                     "difference": _interval(va - vb, ba - bb, level, 5)}
    return out


# ----------------------------------------------------------------------------- pooling


def _log_prior(image_coarse_probs: np.ndarray) -> np.ndarray:
    """``log q(f) = log p(c(f)) - log n(c(f))`` (N, 12), ``p`` clamped at 1e-12 as in
    ``hipc.hierarchical_log_probs``, so that ``full - log q`` gives back its logits exactly."""
    groups = np.asarray(taxonomy.FINE_TO_COARSE_ID)
    children = np.bincount(groups, minlength=taxonomy.NUM_COARSE)
    return np.log(np.maximum(image_coarse_probs, PROB_FLOOR))[:, groups] - np.log(children)[groups]


def _experts(image_coarse_probs: Any, full_log_probs: Any) -> tuple[np.ndarray, np.ndarray]:
    """The two experts' fine scores (N, 12) each: ``log q(f)`` and ``z_f = log p_full(f) - log q(f)``."""
    p = _probs(image_coarse_probs, "image_coarse_probs")
    full = _scores(full_log_probs, "full_log_probs")
    if p.shape[1] != taxonomy.NUM_COARSE or full.shape[1] != taxonomy.NUM_FINE or len(p) != len(full):
        raise ValueError(f"need image_coarse_probs (N, {taxonomy.NUM_COARSE}) and full_log_probs "
                         f"(N, {taxonomy.NUM_FINE}) of the same N, got {p.shape} and {full.shape}")
    log_q = _log_prior(p)
    return log_q, full - log_q


def pool_experts(image_coarse_probs: Any, full_log_probs: Any, image_weight: float, pose_weight: float) -> np.ndarray:
    """Log-linear pooling of the full model's experts: fine log-probs (N, 12)
    ``log_softmax_f(a log q(f) + b z_f)`` with ``z_f = log p_full(f) - log q(f)``; ``(1, 1)``
    gives back the full model (module docstring)."""
    a = _number(image_weight, "image_weight", 0.0, strict=False)
    b = _number(pose_weight, "pose_weight", 0.0, strict=False)
    log_q, z = _experts(image_coarse_probs, full_log_probs)
    return log_softmax(a * log_q + b * z, axis=1)


def fit_pooling(image_coarse_probs: Any, full_log_probs: Any, labels: Any) -> tuple[float, float]:
    """The pooling weights ``(a, b)`` minimising the validation NLL of :func:`pool_experts`.

    The NLL is convex in ``(a, b)`` (a log-sum-exp of a linear function minus a linear one), so
    L-BFGS-B from ``(1, 1)`` within ``[0, WEIGHT_MAX]`` with the exact gradient finds the unique
    optimum, deterministically, in float64.
    """
    log_q, z = _experts(image_coarse_probs, full_log_probs)
    y = _labels(labels, len(z), taxonomy.NUM_FINE)
    rows = np.arange(len(y))

    def nll_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        log_p = log_softmax(w[0] * log_q + w[1] * z, axis=1)
        p = np.exp(log_p)
        grad = [((p * s).sum(1) - s[rows, y]).mean() for s in (log_q, z)]
        return float(-log_p[rows, y].mean()), np.array(grad)

    res = minimize(nll_and_grad, np.ones(2), jac=True, method="L-BFGS-B", bounds=[(0.0, WEIGHT_MAX)] * 2,
                   options={"ftol": 1e-15, "gtol": 1e-10})
    return float(res.x[0]), float(res.x[1])


# ----------------------------------------------------------------------------- run-time settings


@dataclass(frozen=True)
class Calibration:
    """What a predictor needs at run time, fitted on validation data.

    ``coarse_temperature`` scales the image branch alone (its coarse logits), ``pose_temperature``
    the pose branch alone (its fine log-probs); ``image_weight`` and ``pose_weight`` pool the full
    model (:func:`pool_experts`, on the raw image-branch probabilities and full-model log-probs);
    ``coarse_threshold`` and ``fine_threshold`` are the conformal score thresholds
    (:func:`aims_lib.conformal.conformal_threshold`) at ``level`` of :meth:`calibrated`'s coarse
    and fine probabilities (``inf``: every set full). Saved as JSON (:meth:`save`), never pickled.
    """

    coarse_temperature: float
    pose_temperature: float
    image_weight: float
    pose_weight: float
    level: float
    coarse_threshold: float
    fine_threshold: float

    def __post_init__(self) -> None:
        checks = {"coarse_temperature": (True, False), "pose_temperature": (True, False),  # (strict, allow_inf)
                  "image_weight": (False, False), "pose_weight": (False, False),
                  "coarse_threshold": (False, True), "fine_threshold": (False, True)}
        for name, (strict, allow_inf) in checks.items():
            object.__setattr__(self, name, _number(getattr(self, name), name, 0.0, strict, allow_inf))
        level = _number(self.level, "level", 0.0, strict=True)
        if level >= 1.0:
            raise ValueError(f"level must be a number in (0, 1), got {self.level!r}")
        object.__setattr__(self, "level", level)

    def calibrated(self, image_coarse_probs: Any, full_log_probs: Any) -> tuple[np.ndarray, np.ndarray]:
        """The full model's calibrated ``(coarse (N, 4), fine (N, 12))`` probabilities: the pooled
        fine probabilities and their marginal over each parent (``hipc.coarse_marginal``)."""
        fine_log = pool_experts(image_coarse_probs, full_log_probs, self.image_weight, self.pose_weight)
        return hipc.coarse_marginal(fine_log), np.exp(fine_log)

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON dict with ``format``; an infinite threshold is written as ``"inf"``."""
        values = {k: ("inf" if v == math.inf else v) for k, v in asdict(self).items()}
        return {"format": CALIBRATION_FORMAT, **values}

    @classmethod
    def from_dict(cls, data: Any) -> Calibration:
        """Read :meth:`to_dict`'s output; a wrong format, a missing or unknown field or a bad value
        raises ``ValueError`` naming it."""
        if not isinstance(data, dict):
            raise ValueError(f"a calibration must be a JSON object, got {type(data).__name__}")
        if data.get("format") != CALIBRATION_FORMAT:
            raise ValueError(f"calibration field 'format' must be {CALIBRATION_FORMAT!r}, got {data.get('format')!r}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in data]
        unknown = sorted(set(data) - set(names) - {"format"})
        if missing or unknown:
            raise ValueError(f"calibration fields: missing {missing}, unknown {unknown}")
        values = {n: (math.inf if n.endswith("_threshold") and data[n] == "inf" else data[n]) for n in names}
        return cls(**values)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the JSON atomically (readers see the old file or the new one)."""
        write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Calibration:
        """Read a file written by :meth:`save` (JSON only)."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a JSON calibration file ({e})") from None
        return cls.from_dict(data)
