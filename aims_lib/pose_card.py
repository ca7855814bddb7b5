"""The benchmark card's pose rows: does the pose branch meet a domain shift?

The image probes of :mod:`aims_lib.card` ask whether the domains differ in appearance. The pose
branch never sees appearance: it fits the standard body to 2D keypoints and classifies the 3D
keypoints. A benchmark that draws both domains' bodies and poses from the fitting model and one
sampler gives it no shift to meet (the inverse crime). These rows measure that shift with the
pose branch's own instruments, each with a 95 % percentile-bootstrap interval over its test images:

- classifier probes: the pose-branch classifier (HIPC without coarse input, its default
  recipe; :mod:`aims_lib.hipc`) on *ground-truth* 3D keypoints in the camera frame, fine labels:

  * ``S->S``: trained on 80 % of the synthetic images, tested on the other 20 %;
  * ``S->T``: the same model on the real test split (the pose distributions' gap);
  * ``T->T``: trained on real train, tested on real test (does the label live in the pose?),
    for as many optimiser steps as the synthetic model (:func:`equal_step_epochs`: the real
    train split is about half the synthetic set, and at the same epochs its model was
    under-trained, 85.4 % against 90.4 % with equal steps on the quick data, seed 0);

- 2D transfer (:func:`pose2d_transfer`, notebook 03, where the 2D estimator trains): PCK@0.05
  on the real test split of the 2D estimator trained on synthetic images only and of the one
  trained on both domains (the pipeline's), and their paired difference: what the target's
  keypoint labels add, i.e. how far the 2D estimator meets a shift;

- fit probes: PA-MPJPE (nose-to-pelvis units) of SMPLify with the standard body from
  *annotated* 2D keypoints, on up to ``n_fit`` synthetic images and on the real test split:
  whether the fit meets bodies its model cannot represent.

:data:`POSE_VALIDITY` states when the pose side is a valid test: the label lives in the 3D pose
(T->T >= 80 % fine), the pose distributions differ (T->T minus S->T >= 5 points fine) and the
fit faces model mismatch (real-proxy PA-MPJPE at least 1.5 x synthetic).

Sources: ``docs/references.md#statistics``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

import numpy as np

from aims_lib.card import LEVELS, ProbeResult, validity_rows
from aims_lib.data.format import AimsDataset, Sample
from aims_lib.statistics import bootstrap_interval, pooled_rate_interval

POSE_PROBES: Final = ("S->S", "S->T", "T->T")
POSE_VALIDITY: Final[dict[str, tuple[str, float]]] = {
    "pose T->T fine (ground-truth 3D)": (">=", 80.0),
    "pose T->T minus S->T, fine (ground-truth 3D)": (">=", 5.0),
    "SMPLify PA-MPJPE real / synthetic (annotated 2D)": (">=", 1.5),
}
#: Synthetic images held out for ``S->S`` (as the image card's).
HOLDOUT: Final[float] = 0.2


@dataclass(frozen=True)
class FitError:
    """SMPLify's PA-MPJPE from annotated 2D keypoints on one domain's images."""

    domain: str
    split: str
    pa_mpjpe: float  # mean over the fits that did not fail, nose-to-pelvis units
    ci_low: float
    ci_high: float
    n: int
    n_failed: int


@dataclass(frozen=True)
class PoseCard:
    classifier: tuple[ProbeResult, ...]
    fit: tuple[FitError, ...]

    def get(self, probe: str) -> ProbeResult:
        return next(r for r in self.classifier if r.probe == probe)

    def fit_error(self, domain: str) -> FitError:
        return next(f for f in self.fit if f.domain == domain)

    def validity(self) -> list[dict[str, Any]]:
        """The checks of :data:`POSE_VALIDITY`: name, value, threshold, passed."""
        tt, st = self.get("T->T").accuracy, self.get("S->T").accuracy
        ratio = self.fit_error("real").pa_mpjpe / self.fit_error("synthetic").pa_mpjpe
        values = dict(zip(POSE_VALIDITY, (tt, tt - st, ratio), strict=True))
        return validity_rows(values, POSE_VALIDITY, digits=2)

    def rows(self) -> list[dict[str, Any]]:
        """One row per probe, as a reader compares them."""
        rows: list[dict[str, Any]] = [
            {"probe": f"HIPC {r.probe} (ground-truth 3D)", "value": f"{r.accuracy:.1f} % fine",
             "95% CI": f"[{r.ci_low:.1f}, {r.ci_high:.1f}]", "train / test": f"{r.n_train} / {r.n_test}"}
            for r in self.classifier
        ]
        rows += [
            {"probe": f"SMPLify PA-MPJPE, {f.domain} {f.split} (annotated 2D)", "value": f"{f.pa_mpjpe:.3f}",
             "95% CI": f"[{f.ci_low:.3f}, {f.ci_high:.3f}]", "train / test": f"- / {f.n} ({f.n_failed} failed)"}
            for f in self.fit
        ]
        return rows

    def to_dict(self) -> dict[str, Any]:
        return {"probes": {f"{r.probe}/{r.level}": asdict(r) for r in self.classifier},
                "fit": {f.domain: asdict(f) for f in self.fit}, "validity": self.validity()}


@dataclass(frozen=True)
class Pose2DTransfer:
    """PCK@``threshold`` on the real test split of a 2D estimator trained on synthetic images
    only and of one trained on both domains, each with its interval, and ``both`` minus
    ``synthetic only`` in points, paired over the same images."""

    threshold: float
    synthetic_only: float  # PCK, fraction
    synthetic_only_ci: tuple[float, float]
    both: float
    both_ci: tuple[float, float]
    difference: float  # points
    difference_ci: tuple[float, float]
    n: int

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"probe": f"2D PCK@{self.threshold:g}, real test, trained on {name}", "value": f"{value:.3f}",
             "95% CI": f"[{ci[0]:.3f}, {ci[1]:.3f}]", "train / test": f"{domains} / {self.n}"}
            for name, domains, value, ci in (("synthetic only", "synthetic", self.synthetic_only, self.synthetic_only_ci),
                                             ("both domains", "synthetic + real", self.both, self.both_ci))
        ] + [{"probe": "2D PCK, both minus synthetic only (paired, points)", "value": f"{self.difference:+.1f}",
              "95% CI": f"[{self.difference_ci[0]:+.1f}, {self.difference_ci[1]:+.1f}]", "train / test": f"- / {self.n}"}]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pose2d_transfer(test: Sequence[Sample], synthetic_only: np.ndarray, both: np.ndarray, threshold: float = 0.05,
                    seed: int = 0) -> Pose2DTransfer:
    """:class:`Pose2DTransfer` from two estimators' keypoints (N, 17, 2) on the ``test`` images."""
    from aims_lib.pose_branch.metrics_2d import pck_counts
    from aims_lib.statistics import paired_rate_difference

    if not test or len(synthetic_only) != len(test) or len(both) != len(test):
        raise ValueError(f"pose2d_transfer: {len(test)} test images, {len(synthetic_only)} and {len(both)} keypoint rows")
    hits_s, counts = pck_counts(test, synthetic_only, threshold)
    hits_b, _ = pck_counts(test, both, threshold)
    if counts.sum() == 0:
        raise ValueError("pose2d_transfer: no labelled keypoint on the test images")
    difference, low, high = paired_rate_difference(hits_s, hits_b, counts, seed)
    return Pose2DTransfer(threshold, float(hits_s.sum() / counts.sum()), pooled_rate_interval(hits_s, counts, seed),
                          float(hits_b.sum() / counts.sum()), pooled_rate_interval(hits_b, counts, seed),
                          difference, (low, high), len(test))


def _keypoints(samples: Sequence[Sample]) -> np.ndarray:
    from aims_lib.pose_branch.lifting import ground_truth_3d_camera

    return ground_truth_3d_camera(samples).astype(np.float32)


def measurable(dataset: AimsDataset) -> bool:
    """Whether the pose rows can be measured: 3D keypoints on at least 2 synthetic images and on
    real train and test images (an import of real photographs has none)."""
    def n(domain: str, split: str | None = None) -> int:
        return sum(s.keypoints_3d is not None for s in dataset.select(split, domain))

    return n("synthetic") >= 2 and n("real", "train") > 0 and n("real", "test") > 0


def equal_step_epochs(epochs: int, n_reference: int, n: int, batch_size: int) -> int:
    """Epochs on ``n`` samples that take as many optimiser steps as ``epochs`` on
    ``n_reference``: ``round(epochs * ceil(n_reference / b) / ceil(n / b))``, at least 1."""
    if min(epochs, n_reference, n, batch_size) < 1:
        raise ValueError(f"equal_step_epochs needs positive counts, got epochs={epochs}, n_reference={n_reference}, "
                         f"n={n}, batch_size={batch_size}")
    return max(1, round(epochs * math.ceil(n_reference / batch_size) / math.ceil(n / batch_size)))


def classifier_probes(dataset: AimsDataset, seed: int = 0, cfg: Any = None) -> tuple[ProbeResult, ...]:
    """``S->S``, ``S->T`` and ``T->T`` of the pose-branch classifier on ground-truth 3D keypoints."""
    from aims_lib.hipc import HIPCTrainConfig, predict_hipc, train_hipc

    cfg = replace(cfg or HIPCTrainConfig(), hierarchical=False, seed=seed)
    synthetic = [s for s in dataset.select(domain="synthetic") if s.keypoints_3d is not None]
    real_train = [s for s in dataset.select("train", "real") if s.keypoints_3d is not None]
    real_test = [s for s in dataset.select("test", "real") if s.keypoints_3d is not None]
    if len(synthetic) < 2 or not real_train or not real_test:
        raise ValueError(f"{dataset.path}: the pose probes need 3D keypoints of at least 2 synthetic images, real train "
                         f"and real test images; got {len(synthetic)}, {len(real_train)} and {len(real_test)}")
    order = np.random.default_rng(seed).permutation(len(synthetic))
    n_hold = max(1, int(round(HOLDOUT * len(synthetic))))
    held, kept = [synthetic[i] for i in order[:n_hold]], [synthetic[i] for i in order[n_hold:]]

    def labels(samples: Sequence[Sample]) -> np.ndarray:
        return np.array([s.fine_id for s in samples], dtype=np.int64)

    def scored(probe: str, model: Any, test: Sequence[Sample], n_train: int) -> ProbeResult:
        pred = predict_hipc(model, _keypoints(test), device=cfg.device).argmax(1)
        truth = labels(test)
        correct = pred == truth
        lo, hi = bootstrap_interval(correct, seed=seed)
        majority = float(np.bincount(truth).max() / len(truth) * 100)
        return ProbeResult(probe, LEVELS[1], float(correct.mean() * 100), lo, hi, majority, n_train, len(truth))

    on_synthetic = train_hipc(_keypoints(kept), labels(kept), cfg).model
    real_cfg = replace(cfg, epochs=equal_step_epochs(cfg.epochs, len(kept), len(real_train), cfg.batch_size))
    on_real = train_hipc(_keypoints(real_train), labels(real_train), real_cfg).model
    return (scored("S->S", on_synthetic, held, len(kept)), scored("S->T", on_synthetic, real_test, len(kept)),
            scored("T->T", on_real, real_test, len(real_train)))


def fit_probes(dataset: AimsDataset, seed: int = 0, n_fit: int = 200, smplify: Any = None,
               device: str = "cpu") -> tuple[FitError, ...]:
    """SMPLify (the standard body on ``device``; a ready ``smplify`` overrides both) from annotated
    2D keypoints on up to ``n_fit`` synthetic images (a seeded draw) and on the real test split."""
    from aims_lib.pose_branch.lifting import ground_truth_2d, lift_dataset, per_image_errors

    synthetic = [s for s in dataset.select(domain="synthetic") if s.keypoints_3d is not None]
    synthetic = [synthetic[i] for i in np.sort(np.random.default_rng(seed).permutation(len(synthetic))[:n_fit])]
    out = []
    for domain, split, samples in (("synthetic", "train", synthetic),
                                   ("real", "test", [s for s in dataset.select("test", "real") if s.keypoints_3d is not None])):
        if not samples:
            raise ValueError(f"{dataset.path}: no {domain} {split} images with 3D keypoints for the fit probes")
        fits = lift_dataset(dataset, samples, *ground_truth_2d(samples), source="gt", smplify=smplify, device=device)
        errors = per_image_errors(fits, samples)["pa_mpjpe"]
        ok = errors[np.isfinite(errors)]
        if not ok.size:
            raise ValueError(f"{dataset.path}: every SMPLify fit of the {domain} {split} images failed")
        lo, hi = pooled_rate_interval(ok, np.ones_like(ok), seed=seed)
        out.append(FitError(domain, split, float(ok.mean()), lo, hi, len(samples), int(len(samples) - ok.size)))
    return tuple(out)


def pose_card(dataset: AimsDataset, seed: int = 0, n_fit: int = 200, smplify: Any = None, device: str = "cpu",
              hipc_cfg: Any = None) -> PoseCard:
    """All pose rows of the card (module docstring)."""
    return PoseCard(classifier_probes(dataset, seed, hipc_cfg), fit_probes(dataset, seed, n_fit, smplify, device))
