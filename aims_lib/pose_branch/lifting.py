"""Dataset-level lifting: 2D keypoints of a set of images -> one batched SMPLify -> normalised
camera-frame 3D keypoints (paper Sec. 4.2, the input of HIPC).

* :func:`lift_dataset` fits every given sample in one batch (:class:`~.smplify.SMPLify`), with
  each sample's calibrated intrinsics ``camera.K`` when the dataset has them and
  :func:`~.smplify.default_intrinsics` of the image size otherwise, and returns a
  :class:`Pose3DSet`: per image the COCO-17 3D keypoints in the camera frame, pelvis-centred and
  divided by the nose-to-pelvis distance (NaN where the fit failed), the failure flag, the
  reprojection error and the fit's diagnostics. A set is saved as one ``.npz`` (notebook 03
  writes ``runs/pose3d_gt.npz`` and ``runs/pose3d_estimated.npz``; notebook 04 and the predictor
  read them) and looked up by image id.
* :func:`ground_truth_2d` (annotated keypoints, weight 1 where labelled) and
  :func:`aims_lib.pose_branch.estimator.load_predictions` (a 2D estimator's predictions of a
  dataset) give the 2D inputs in the samples' order.
* :func:`ground_truth_3d_camera` and :func:`evaluate_lifting`: the dataset's 3D keypoints live
  in the world frame (``data/README.md``); normalisation commutes with rotation, so
  ``R @ X_world_norm`` (the annotation's R) is the ground truth in SMPLify's camera frame.
  MPJPE needs that frame; PA-MPJPE (Procrustes with scale) does not, so it is also computed for
  samples with 3D keypoints but no camera (e.g. imported real data).

A fit is failed (flagged, its keypoints NaN, left out of the error means and counted in the
failure rate) when SMPLify flags it (too few confident keypoints, a non-finite fit, keypoints
behind the camera) or when it diverged: its mean reprojection error exceeds
``max_reprojection`` times the person's size (the longer side of the box), i.e. the body does
not explain the 2D keypoints at all.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

import numpy as np

from aims_lib import taxonomy
from aims_lib.data.format import AimsDataset, Sample
from aims_lib.files import write_npz
from aims_lib.pose_branch.metrics import mpjpe, pa_mpjpe, world_to_camera_frame
from aims_lib.pose_branch.smplify import SMPLify, SMPLifyConfig, default_intrinsics, project_camera

SOURCES: Final[tuple[str, ...]] = ("gt", "estimated")
#: A fit whose mean reprojection error exceeds this fraction of the person's box size diverged.
MAX_REPROJECTION: Final[float] = 0.25


@dataclass
class Pose3DSet:
    """3D keypoints of a set of images, one row per image (see the module docstring).

    ``keypoints_3d`` (N, 17, 3) float32, normalised camera frame, NaN where ``failed``;
    ``reprojection_error`` (N,) mean pixel distance between the fitted body's projection and the
    confident 2D keypoints (NaN where failed); ``seconds``: wall time of the batched fit. The
    optional diagnostics are SMPLify's: the fitted body's keypoints projected into the image
    (N, 17, 2; kept for diverged fits, whose failure they show, NaN where SMPLify itself failed),
    the final energy, whether it converged and whether the side-view flip won.
    """

    image_id: np.ndarray
    keypoints_3d: np.ndarray
    failed: np.ndarray
    reprojection_error: np.ndarray
    source: str
    seconds: float
    keypoints_2d_fit: np.ndarray | None = None
    loss: np.ndarray | None = None
    converged: np.ndarray | None = None
    flipped: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.image_id = np.asarray(self.image_id, dtype=np.int64)
        self.keypoints_3d = np.asarray(self.keypoints_3d, dtype=np.float32)
        self.failed = np.asarray(self.failed, dtype=bool)
        self.reprojection_error = np.asarray(self.reprojection_error, dtype=np.float32)
        n = len(self.image_id)
        if self.keypoints_3d.shape != (n, taxonomy.NUM_KEYPOINTS, 3):
            raise ValueError(f"keypoints_3d must be ({n}, 17, 3); got {self.keypoints_3d.shape}")
        for name in ("failed", "reprojection_error", "loss", "converged", "flipped"):
            value = getattr(self, name)
            if value is not None and np.shape(value) != (n,):
                raise ValueError(f"{name} must have shape ({n},); got {np.shape(value)}")
        if len(np.unique(self.image_id)) != n:
            raise ValueError("image ids of a Pose3DSet must be unique")
        self._row = {int(i): r for r, i in enumerate(self.image_id)}

    def __len__(self) -> int:
        return len(self.image_id)

    @property
    def fits_per_second(self) -> float:
        return len(self) / self.seconds if self.seconds > 0 else float("nan")

    def index(self, image_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Rows (M,) of ``image_ids`` in the given order; KeyError naming the ids not in the set."""
        ids = [int(i) for i in np.asarray(image_ids).reshape(-1)]
        missing = [i for i in ids if i not in self._row]
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            raise KeyError(f"{len(missing)} image id(s) not in this Pose3DSet ({self.source}, {len(self)} images): {shown}")
        return np.array([self._row[i] for i in ids], dtype=np.int64)

    def by_id(self, image_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """3D keypoints (M, 17, 3) of ``image_ids`` in the given order (NaN rows for failed fits)."""
        return self.keypoints_3d[self.index(image_ids)]

    def save(self, path: str | Path) -> Path:
        """Write the set as one compressed ``.npz``, atomically."""
        arrays: dict[str, Any] = {"source": np.array(self.source), "seconds": np.array(self.seconds)}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name not in arrays and value is not None:
                arrays[f.name] = value
        return write_npz(path, **arrays)

    @classmethod
    def load(cls, path: str | Path) -> Pose3DSet:
        """Read a set written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"3D keypoint set not found: {path} (notebook 03 writes runs/pose3d_*.npz)")
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
        kwargs: dict[str, Any] = {f.name: data.get(f.name) for f in fields(cls)}
        kwargs["source"], kwargs["seconds"] = str(data["source"]), float(data["seconds"])
        return cls(**kwargs)


# ----------------------------------------------------------------------------- inputs


def ground_truth_2d(samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """Annotated keypoints (N, 17, 2) and their weights (N, 17): 1 where labelled (visible or
    occluded: the position is known either way), 0 where unlabelled."""
    keypoints = np.stack([s.keypoints_2d for s in samples]).astype(np.float64)
    weight = np.stack([s.visibility > 0 for s in samples]).astype(np.float64)
    return keypoints, weight


def intrinsics(samples: Sequence[Sample]) -> np.ndarray:
    """(N, 3, 3): each sample's camera K, else :func:`default_intrinsics` of its image size."""
    return np.stack([
        np.asarray(s.camera["K"], dtype=np.float64) if s.camera is not None and "K" in s.camera
        else default_intrinsics(s.width, s.height)
        for s in samples
    ])


# ----------------------------------------------------------------------------- lifting


def fit_failures(fit: dict[str, np.ndarray], box_sizes: np.ndarray, max_reprojection: float = MAX_REPROJECTION) -> np.ndarray:
    """Failed fits (N,) of an SMPLify result (:meth:`SMPLifyResult.numpy`): SMPLify's own
    failures plus the diverged ones, whose mean reprojection error exceeds ``max_reprojection``
    x the person's box size (its longer side, pixels)."""
    with np.errstate(invalid="ignore"):
        diverged = fit["reprojection_error"] > max_reprojection * np.asarray(box_sizes, dtype=np.float64)
    return fit["failed"] | diverged


def lift_dataset(
    ds: AimsDataset | None,
    samples: Sequence[Sample],
    keypoints_2d: np.ndarray,
    confidence: np.ndarray,
    *,
    device: str = "cpu",
    config: SMPLifyConfig = SMPLifyConfig(),
    source: str = "estimated",
    model: Any | None = None,
    smplify: SMPLify | None = None,
    max_reprojection: float = MAX_REPROJECTION,
) -> Pose3DSet:
    """Fit SMPLify to all ``samples`` in one batch and return their normalised 3D keypoints.

    ``keypoints_2d`` (N, 17, 2) pixels and ``confidence`` (N, 17) in the samples' order (the estimator's
    scores, or :func:`ground_truth_2d`'s weights); ``model``: a body model (SMIL), default the
    procedural infant; ``smplify``: a ready fitter (its model, prior, config and device win).
    ``ds`` is only checked to hold the samples (None skips the check). Fits with a mean
    reprojection error above ``max_reprojection`` x the box's longer side are flagged failed.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    n = len(samples)
    keypoints_2d, confidence = np.asarray(keypoints_2d, np.float64), np.asarray(confidence, np.float64)
    if keypoints_2d.shape != (n, taxonomy.NUM_KEYPOINTS, 2) or confidence.shape != (n, taxonomy.NUM_KEYPOINTS):
        raise ValueError(f"{n} samples need keypoints_2d ({n}, 17, 2) and confidence ({n}, 17); "
                         f"got {keypoints_2d.shape} and {confidence.shape}")
    if ds is not None:
        known = {s.image_id for s in ds.samples}
        foreign = [s.image_id for s in samples if s.image_id not in known]
        if foreign:
            raise ValueError(f"{len(foreign)} samples are not in {ds.path}: {foreign[:10]}")
    ids = np.array([s.image_id for s in samples], dtype=np.int64)
    if n == 0:
        empty = np.zeros(0)
        return Pose3DSet(ids, np.zeros((0, taxonomy.NUM_KEYPOINTS, 3)), empty.astype(bool), empty, source, 0.0)
    fitter = smplify if smplify is not None else SMPLify(model, None, config, device)
    K = intrinsics(samples)
    start = time.perf_counter()
    result = fitter.fit(keypoints_2d, confidence, K)
    out = result.numpy()  # waits for the device
    seconds = time.perf_counter() - start

    failed = fit_failures(out, np.array([max(float(s.bbox[2]), float(s.bbox[3])) for s in samples]), max_reprojection)
    keypoints_3d = np.where(failed[:, None, None], np.nan, out["keypoints_3d"])
    import torch

    with torch.no_grad():
        reprojected = project_camera(result.keypoints_cam, result.K).cpu().numpy()
    return Pose3DSet(
        image_id=ids,
        keypoints_3d=keypoints_3d,
        failed=failed,
        reprojection_error=np.where(failed, np.nan, out["reprojection_error"]),
        source=source,
        seconds=seconds,
        keypoints_2d_fit=np.where(out["failed"][:, None, None], np.nan, reprojected).astype(np.float32),
        loss=out["loss"].astype(np.float32),
        converged=out["converged"] & ~failed,
        flipped=out["flipped"],
    )


# ----------------------------------------------------------------------------- evaluation


def ground_truth_3d_camera(samples: Sequence[Sample]) -> np.ndarray:
    """The samples' normalised 3D keypoints rotated into their camera frame (N, 17, 3),
    ``R @ X`` per skeleton; NaN rows for samples without 3D keypoints or without a camera."""
    out = np.full((len(samples), taxonomy.NUM_KEYPOINTS, 3), np.nan)
    for i, s in enumerate(samples):
        if s.keypoints_3d is not None and s.camera is not None and "R" in s.camera:
            out[i] = world_to_camera_frame(s.keypoints_3d[None], np.asarray(s.camera["R"])[None])[0]
    return out


def per_image_errors(pose3d: Pose3DSet, samples: Sequence[Sample]) -> dict[str, np.ndarray]:
    """MPJPE and PA-MPJPE (M,) of ``samples`` (nose-to-pelvis units); NaN where the fit failed
    or the ground truth is missing (no 3D keypoints; for MPJPE also no camera)."""
    pred = pose3d.by_id([s.image_id for s in samples]).astype(np.float64)
    gt_cam = ground_truth_3d_camera(samples)
    gt_any = np.stack([
        s.keypoints_3d if s.keypoints_3d is not None else np.full((taxonomy.NUM_KEYPOINTS, 3), np.nan) for s in samples
    ]) if samples else np.zeros((0, taxonomy.NUM_KEYPOINTS, 3))
    ok = np.isfinite(pred).all((1, 2)) & np.isfinite(gt_any).all((1, 2))
    pa = np.full(len(samples), np.nan)
    if ok.any():
        pa[ok] = pa_mpjpe(pred[ok], gt_any[ok])  # Procrustes: the frame does not matter
    with np.errstate(invalid="ignore"):
        return {"mpjpe": mpjpe(pred, gt_cam), "pa_mpjpe": pa}


def evaluate_lifting(pose3d: Pose3DSet, samples: Sequence[Sample]) -> dict[str, float]:
    """Means over the non-failed fits of ``samples`` with ground truth: ``mpjpe``, ``pa_mpjpe``
    (nose-to-pelvis units; also their medians), ``failed_rate`` (share of ``samples`` whose fit
    failed), ``reprojection_error`` (pixels), ``fits_per_second`` (of the whole batched fit of
    the set), ``n``, ``n_failed``, ``n_with_gt``."""
    rows = pose3d.index([s.image_id for s in samples])
    failed = pose3d.failed[rows]
    errors = per_image_errors(pose3d, samples)

    def mean(x: np.ndarray) -> float:
        x = x[np.isfinite(x)]
        return float(x.mean()) if x.size else float("nan")

    def median(x: np.ndarray) -> float:
        x = x[np.isfinite(x)]
        return float(np.median(x)) if x.size else float("nan")

    return {
        "mpjpe": mean(errors["mpjpe"]),
        "pa_mpjpe": mean(errors["pa_mpjpe"]),
        "mpjpe_median": median(errors["mpjpe"]),
        "pa_mpjpe_median": median(errors["pa_mpjpe"]),
        "failed_rate": float(failed.mean()) if len(rows) else float("nan"),
        "reprojection_error": mean(pose3d.reprojection_error[rows].astype(np.float64)),
        "fits_per_second": pose3d.fits_per_second,
        "n": len(rows),
        "n_failed": int(failed.sum()),
        "n_with_gt": int(np.isfinite(errors["pa_mpjpe"]).sum()),
    }


def constant_skeleton_baseline(
    train: Sequence[Sample], samples: Sequence[Sample], candidates: int = 200, seed: int = 0
) -> dict[str, float]:
    """PA-MPJPE of predicting one fixed skeleton for every image, whatever the image: the
    training skeleton (of ``candidates`` drawn at random) with the lowest mean PA-MPJPE to the
    training set, scored on ``samples``. A lifted set whose PA-MPJPE is not clearly below this
    carries little pose information (e.g. from weak 2D keypoints)."""
    pool = [s.keypoints_3d for s in train if s.keypoints_3d is not None]
    target = [s.keypoints_3d for s in samples if s.keypoints_3d is not None]
    if not pool or not target:  # e.g. real images without 3D ground truth
        return {"pa_mpjpe": float("nan"), "n": 0}
    pool, target = np.stack(pool), np.stack(target)
    rng = np.random.default_rng(seed)
    picks = pool[rng.choice(len(pool), min(candidates, len(pool)), replace=False)]
    fit = [float(pa_mpjpe(np.broadcast_to(c, pool.shape), pool).mean()) for c in picks]
    best = picks[int(np.argmin(fit))]
    return {"pa_mpjpe": float(pa_mpjpe(np.broadcast_to(best, target.shape), target).mean()), "n": len(target)}
