"""Notebook 06's study: the predictor as a clinician would use it, from a photo to an answer.

Three questions, each answered on real data the model was not selected on:

* **Boxes** (:func:`box_study`): fine and coarse top-1 on real test with the annotated boxes,
  with the boxes :mod:`aims_lib.auto_box` finds, and with the whole image, the last two as
  paired differences to the first on the same images, and the automatic boxes' overlap (IoU)
  with the annotated ones.
* **Orientation** (:func:`orientation_check`): copies of test images stored sideways with an EXIF
  orientation tag; the predictor must give the labels of the upright originals.
* **Calibration and abstention** (:func:`fit_calibration`, :func:`calibration_study`): the image
  branch (coarse), the pose branch and the full model (fine) are calibrated on real val
  (temperature scaling; the full model's two experts pooled with fitted weights,
  :mod:`aims_lib.calibration`), then scored on real test: ECE and NLL before and after with
  intervals, risk-coverage curves and AURC, and split-conformal prediction sets with their
  empirical coverage and size (:mod:`aims_lib.conformal`).

The predictor runs as deployed (default intrinsics, batched SMPLify), with automatic boxes for
the calibration, since that is how a user's photo reaches it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from aims_lib import taxonomy
from aims_lib.auto_box import whole_image_boxes
from aims_lib.calibration import (
    Calibration, apply_temperature, calibration_metrics, ece_if_calibrated, fit_pooling, fit_temperature,
)
from aims_lib.conformal import (
    aurc, conformal_threshold, coverage_range, hierarchical_answers, prediction_sets, risk_coverage, set_metrics,
)
from aims_lib.data.format import Sample
from aims_lib.hipc import HIPC, coarse_marginal, predict_hipc
from aims_lib.image_io import read_image
from aims_lib.predict import AIMSPosePredictor, Predictions
from aims_lib.statistics import accuracy, paired_comparison

#: How the predictor gets each image's box: the dataset's annotation, found by the predictor, the whole image.
BOX_MODES: Final[tuple[str, ...]] = ("annotated", "automatic", "whole image")
#: The calibrated models, by record key: (display name, level).
CALIBRATED_MODELS: Final[dict[str, tuple[str, str]]] = {
    "image_branch": ("image branch", "coarse"),
    "pose_branch": ("pose branch", "fine"),
    "full_model": ("full model", "fine"),
    "full_model_coarse": ("full model, coarse marginal", "coarse"),
}


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union (N,) of ``x, y, w, h`` boxes (N, 4) row by row."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    low = np.maximum(a[:, :2], b[:, :2])
    high = np.minimum(a[:, :2] + a[:, 2:], b[:, :2] + b[:, 2:])
    inter = np.clip(high - low, 0.0, None).prod(axis=1)
    return inter / (a[:, 2:].prod(axis=1) + b[:, 2:].prod(axis=1) - inter)


def split_predictions(
    predictor: AIMSPosePredictor, samples: Sequence[Sample], modes: Sequence[str] = BOX_MODES, batch_size: int = 32,
) -> dict[str, Predictions]:
    """The predictor on ``samples`` with the boxes of each mode of ``modes`` (:data:`BOX_MODES`),
    by mode, in one call: a call has a fixed cost besides its per-image one (SMPLify runs its
    iterations whatever the batch size), which counts where batches are small (the dry and smoke
    runs; beside the quick profile's 594 predictions it was not measurable). Each image is fitted
    on its own, so batching changes only the rounding (docs/decisions.md, 2026-12-07)."""
    if unknown := [m for m in modes if m not in BOX_MODES]:
        raise ValueError(f"box modes must be among {BOX_MODES}, got {unknown}")
    if not modes or len(set(modes)) != len(modes):
        raise ValueError(f"box modes must be distinct and at least one, got {list(modes)}")
    images = [read_image(s.path) for s in samples]
    boxes = {"annotated": np.array([s.bbox for s in samples], dtype=np.float64).reshape(-1, 4),
             "automatic": np.full((len(samples), 4), np.nan),  # a row of NaN: the predictor finds the box
             "whole image": whole_image_boxes(np.array([[a.shape[1], a.shape[0]] for a in images]).reshape(-1, 2))}
    every = predictor.predict(images * len(modes), np.concatenate([boxes[m] for m in modes]), batch_size=batch_size)
    n = len(samples)
    return {mode: every.take(range(k * n, (k + 1) * n)) for k, mode in enumerate(modes)}


def box_study(predictions: Mapping[str, Predictions], samples: Sequence[Sample], seed: int = 0) -> dict[str, Any]:
    """Top-1 (coarse, fine) per box mode with intervals, each mode against the annotated boxes as
    a paired comparison, the automatic boxes' IoU with the annotated ones and the images where no
    infant was found. JSON-ready."""
    if "annotated" not in predictions:
        raise ValueError("box_study needs the predictions with the annotated boxes to compare against")
    truth = {"coarse": np.array([s.coarse_id for s in samples]), "fine": np.array([s.fine_id for s in samples])}
    classes = {"coarse": taxonomy.NUM_COARSE, "fine": taxonomy.NUM_FINE}
    ids = {mode: {"coarse": p.coarse_id, "fine": p.fine_id} for mode, p in predictions.items()}
    record: dict[str, Any] = {
        "n": len(samples),
        "accuracy": {mode: {level: accuracy(ids[mode][level], truth[level], classes[level], seed=seed).to_dict()
                            for level in ("coarse", "fine")} for mode in predictions},
        "top1": {mode: {level: round(float((ids[mode][level] == truth[level]).mean() * 100), 2) for level in ("coarse", "fine")}
                 for mode in predictions},
        "comparisons": [
            paired_comparison(f"{mode} vs annotated boxes ({level})", "annotated", ids["annotated"][level] == truth[level],
                              mode, ids[mode][level] == truth[level], seed=seed).to_dict()
            for mode in predictions if mode != "annotated" for level in ("fine", "coarse")
        ],
        "no_infant": {mode: int(p.no_infant.sum()) for mode, p in predictions.items()},
    }
    if "automatic" in predictions:
        iou = box_iou(predictions["automatic"].boxes, np.array([s.bbox for s in samples]))
        record["automatic_iou"] = {"mean": round(float(iou.mean()), 3), "median": round(float(np.median(iou)), 3),
                                   "below_0.5": round(float((iou < 0.5).mean()), 3)}
    return record


def orientation_check(
    predictor: AIMSPosePredictor, samples: Sequence[Sample], folder: Path, orientations: Sequence[int] = (3, 6, 8),
) -> dict[str, Any]:
    """Fine labels of copies of ``samples`` stored turned, with the EXIF ``Orientation`` tag that
    turns them back (3: 180 degrees, 6 and 8: a quarter turn, as phones write them), against the
    labels of the upright images; read as the predictor reads files, and as their stored pixels
    (what a reader that ignores EXIF sees). PNG copies, so the pixels are exact. JSON-ready."""
    from PIL import Image

    stored_turn = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
    if unknown := set(orientations) - set(stored_turn):
        raise ValueError(f"orientations must be among {sorted(stored_turn)}, got {sorted(unknown)}")
    folder.mkdir(parents=True, exist_ok=True)
    read: list[Path] = []  # the turned copies, as files carrying the tag
    ignored: list[np.ndarray] = []  # the same copies' stored pixels
    for tag in orientations:
        for s in samples:
            turned = Image.fromarray(read_image(s.path)).transpose(stored_turn[tag])
            exif = Image.Exif()
            exif[0x0112] = tag
            path = folder / f"{Path(s.file_name).stem}_exif{tag}.png"
            turned.save(path, exif=exif)
            read.append(path)
            ignored.append(np.asarray(turned))
    n, k = len(samples), len(orientations)
    # One call for all 2k + 1 versions: a predictor call has a fixed cost (SMPLify's iterations
    # run over the whole batch), which seven calls paid seven times.
    fine = predictor.predict([*(s.path for s in samples), *read, *ignored]).fine
    upright = fine[:n]
    out: dict[str, Any] = {"n": n, "orientations": {}}
    for j, tag in enumerate(orientations):
        as_read = fine[n + j * n : n + (j + 1) * n]
        as_stored = fine[n + (k + j) * n : n + (k + j + 1) * n]
        out["orientations"][str(tag)] = {
            "agree_with_upright": int(sum(a == b for a, b in zip(as_read, upright))),
            "agree_if_exif_ignored": int(sum(a == b for a, b in zip(as_stored, upright))),
        }
    return out


def images_without_an_infant(seed: int = 0, size: int = 224) -> dict[str, np.ndarray]:
    """Images that must be answered "no infant found": black, white and grey, uniform noise,
    smooth (blurred) noise as a stand-in for an empty room, and an 8 x 8 thumbnail."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    noise = rng.integers(0, 256, (size, size, 3)).astype(np.float64)
    return {
        "black": np.zeros((size, size, 3), np.uint8),
        "white": np.full((size, size, 3), 255, np.uint8),
        "grey": np.full((size, size, 3), 128, np.uint8),
        "noise": noise.astype(np.uint8),
        "smooth noise": np.clip(gaussian_filter(noise, sigma=(8, 8, 0)) * 4 - 384, 0, 255).astype(np.uint8),
        "8 x 8 thumbnail": rng.integers(0, 256, (8, 8, 3)).astype(np.uint8),
    }


@dataclass(frozen=True)
class RawScores:
    """One split's uncalibrated outputs: the image branch's coarse probabilities (N, 4), the pose
    branch's and the full model's fine log-probabilities (N, 12), and the true labels."""

    image_coarse: np.ndarray
    pose_log: np.ndarray
    full_log: np.ndarray
    coarse: np.ndarray
    fine: np.ndarray


def raw_scores(predictions: Predictions, pose_branch: HIPC, samples: Sequence[Sample]) -> RawScores:
    """The three models' uncalibrated outputs on ``samples`` from an uncalibrated predictor's
    ``predictions``; the pose branch (HIPC without the coarse input) reads the same 3D keypoints."""
    if predictions.calibrated:
        raise ValueError("raw_scores needs the predictor's uncalibrated outputs: load it with calibrated=False")
    return RawScores(
        image_coarse=predictions.image_coarse_probs,
        pose_log=predict_hipc(pose_branch, predictions.keypoints_3d).astype(np.float64),
        full_log=np.log(np.maximum(predictions.fine_probs, 1e-300)),
        coarse=np.array([s.coarse_id for s in samples]),
        fine=np.array([s.fine_id for s in samples]),
    )


def fit_calibration(val: RawScores, level: float = 0.9) -> Calibration:
    """Temperatures of the image and pose branches, pooling weights of the full model and the
    conformal thresholds of its calibrated coarse and fine probabilities, all on ``val``."""
    provisional = Calibration(
        coarse_temperature=fit_temperature(np.log(np.maximum(val.image_coarse, 1e-300)), val.coarse),
        pose_temperature=fit_temperature(val.pose_log, val.fine),
        image_weight=(weights := fit_pooling(val.image_coarse, val.full_log, val.fine))[0],
        pose_weight=weights[1],
        level=level, coarse_threshold=math.inf, fine_threshold=math.inf,
    )
    coarse, fine = provisional.calibrated(val.image_coarse, val.full_log)
    return dataclasses.replace(provisional, coarse_threshold=conformal_threshold(coarse, val.coarse, level),
                               fine_threshold=conformal_threshold(fine, val.fine, level))


def model_probabilities(scores: RawScores, calibration: Calibration | None) -> dict[str, np.ndarray]:
    """Per :data:`CALIBRATED_MODELS` key, the probabilities before (``calibration`` None) or after."""
    image_log = np.log(np.maximum(scores.image_coarse, 1e-300))
    if calibration is None:
        return {"image_branch": scores.image_coarse, "pose_branch": np.exp(scores.pose_log),
                "full_model": np.exp(scores.full_log), "full_model_coarse": coarse_marginal(scores.full_log)}
    coarse, fine = calibration.calibrated(scores.image_coarse, scores.full_log)
    return {"image_branch": apply_temperature(image_log, calibration.coarse_temperature),
            "pose_branch": apply_temperature(scores.pose_log, calibration.pose_temperature),
            "full_model": fine, "full_model_coarse": coarse}


def calibration_study(test: RawScores, calibration: Calibration, n_calibration: int, seed: int = 0) -> dict[str, Any]:
    """On real test: per model, ECE and NLL before and after calibration (intervals, paired
    differences), the ECE a perfectly calibrated model would show on as many images
    (:func:`~aims_lib.calibration.ece_if_calibrated`), AURC before and after; the pooled full
    model against the paper's product as a paired comparison of fine top-1; conformal sets of the
    full model (coarse and fine) with their coverage, mean size and the coverage range that
    ``n_calibration`` val images allow (:func:`~aims_lib.conformal.coverage_range`); the shares of
    the hierarchical answers and their accuracy. JSON-ready; ``curves`` holds the risk-coverage
    curves for plotting (not for the record)."""
    before, after = model_probabilities(test, None), model_probabilities(test, calibration)
    labels = {"coarse": test.coarse, "fine": test.fine}
    models: dict[str, Any] = {}
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key, (name, level) in CALIBRATED_MODELS.items():
        y = labels[level]
        models[key] = {"name": name, "level": level, **calibration_metrics(before[key], after[key], y, seed=seed),
                       "ece_if_calibrated": {"before": ece_if_calibrated(before[key], y, seed=seed),
                                             "after": ece_if_calibrated(after[key], y, seed=seed)},
                       "aurc": {"before": round(aurc(before[key], y), 4), "after": round(aurc(after[key], y), 4)}}
        curves[f"{name}"] = risk_coverage(after[key], y)
    product, pooled = before["full_model"].argmax(1) == test.fine, after["full_model"].argmax(1) == test.fine
    coarse_sets = prediction_sets(after["full_model_coarse"], calibration.coarse_threshold)
    fine_sets = prediction_sets(after["full_model"], calibration.fine_threshold)
    answers = hierarchical_answers(coarse_sets, fine_sets, after["full_model_coarse"], after["full_model"])
    kinds: dict[str, Any] = {}
    for kind in ("fine", "coarse_only", "uncertain"):
        rows = [i for i, a in enumerate(answers) if a.kind == kind]
        right = [(a.fine == taxonomy.FINE[test.fine[i]]) if kind == "fine" else
                 (a.coarse == taxonomy.COARSE[test.coarse[i]]) if kind == "coarse_only" else None
                 for i, a in ((i, answers[i]) for i in rows)]
        kinds[kind] = {"share": round(len(rows) / len(answers), 4),
                       "correct": None if kind == "uncertain" or not rows else round(float(np.mean(right)), 4)}
    return {
        "temperatures": {"image_branch": round(calibration.coarse_temperature, 4), "pose_branch": round(calibration.pose_temperature, 4)},
        "pooling": {"image_weight": round(calibration.image_weight, 4), "pose_weight": round(calibration.pose_weight, 4)},
        "models": models,
        "pooled_vs_product": paired_comparison("pooled vs product (full model, fine)", "product", product, "pooled", pooled,
                                               seed=seed).to_dict(),
        "conformal": {"level": calibration.level, "calibration_images": n_calibration,
                      "coverage_range": [round(v, 4) for v in coverage_range(n_calibration, calibration.level)],
                      "coarse": {k: round(v, 4) for k, v in set_metrics(coarse_sets, test.coarse).items()},
                      "fine": {k: round(v, 4) for k, v in set_metrics(fine_sets, test.fine).items()},
                      # None: too few calibration images for the level, every set full
                      "thresholds": {level: None if math.isinf(t) else round(t, 6) for level, t in
                                     (("coarse", calibration.coarse_threshold), ("fine", calibration.fine_threshold))}},
        "answers": kinds,
        "curves": curves,
    }
