"""2D metrics of any estimator: PCK (pooled, per image, per keypoint) and COCO AP on known shifts."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from aims_lib.data.format import load_dataset
from aims_lib.pose_branch.metrics_2d import (
    coco_ap,
    evaluate_keypoints_2d,
    learning_curve,
    pck,
    pck_counts,
    pck_per_keypoint,
)

K = 17


def test_evaluation_of_perfect_and_shifted_predictions(aims_tiny: Path) -> None:
    ds = load_dataset(aims_tiny)
    samples = list(ds.samples)
    gt = np.stack([s.keypoints_2d for s in samples])
    ones = np.ones(gt.shape[:2])
    perfect = evaluate_keypoints_2d(ds, samples, gt, ones)
    assert perfect["AP"] == pytest.approx(1.0) and perfect["PCK@0.05"] == 1.0 and perfect["n"] == len(samples)
    size = np.array([max(s.bbox[2], s.bbox[3]) for s in samples])
    shifted = gt + np.array([0.06, 0.0]) * size[:, None, None]  # just beyond the PCK radius
    assert pck(samples, shifted) == 0.0
    assert pck(samples, gt + np.array([0.04, 0.0]) * size[:, None, None]) == 1.0
    assert evaluate_keypoints_2d(ds, samples, shifted, ones)["AP"] < perfect["AP"]


def test_pck_counts_per_image(aims_tiny: Path) -> None:
    ds = load_dataset(aims_tiny)
    samples = list(ds.samples)
    gt = np.stack([s.keypoints_2d for s in samples]).astype(np.float64)
    size = np.array([max(s.bbox[2], s.bbox[3]) for s in samples])
    moved = gt.copy()
    moved[0] += 0.2 * size[0]  # every keypoint of the first image far off
    hits, counts = pck_counts(samples, moved)
    labelled = np.array([(s.visibility > 0).sum() for s in samples])
    np.testing.assert_array_equal(counts, labelled)
    np.testing.assert_array_equal(hits, np.r_[0, labelled[1:]])
    assert pck(samples, moved) == pytest.approx(hits.sum() / counts.sum())


def test_pck_per_keypoint_finds_the_wrong_joint(aims_tiny: Path) -> None:
    samples = load_dataset(aims_tiny).samples
    gt = np.stack([s.keypoints_2d for s in samples]).astype(np.float64)
    size = np.array([max(s.bbox[2], s.bbox[3]) for s in samples])
    moved = gt.copy()
    moved[:, 9] += np.array([0.0, 0.2]) * size[:, None]  # the left wrist, far off in every image
    moved[0, 3] += 0.2 * size[0]  # the left ear, off in the first image only
    per = pck_per_keypoint(samples, moved)
    labelled = np.stack([s.visibility > 0 for s in samples])
    expected = np.ones(K)
    expected[9] = 0.0
    expected[3] = (labelled[1:, 3].sum()) / labelled[:, 3].sum() if labelled[0, 3] else 1.0
    np.testing.assert_allclose(per, expected)
    assert pck(samples, moved) == pytest.approx((labelled.sum() - labelled[:, 9].sum() - labelled[0, 3]) / labelled.sum())


def test_hidden_keypoints_are_evaluated_as_coco_does(aims_tiny: Path) -> None:
    """COCO: a keypoint flagged v=1 (labelled, hidden by an occluder) counts in PCK and OKS
    exactly as a visible one (v=2); one flagged v=0 (unlabelled, e.g. outside the image) does not."""
    ds = load_dataset(aims_tiny)
    samples = list(ds.samples)
    gt = np.stack([s.keypoints_2d for s in samples]).astype(np.float64)
    size = np.array([max(s.bbox[2], s.bbox[3]) for s in samples])
    ankle = 15
    wrong = gt.copy()
    wrong[:, ankle] += np.array([0.3, 0.0]) * size[:, None]  # the left ankle far off in every image
    ones = np.ones(gt.shape[:2])

    def flagged(v: int) -> list:
        out = []
        for s in samples:
            vis, kps = s.visibility.copy(), s.keypoints_2d.copy()
            vis[ankle] = v
            kps[ankle] = kps[ankle] if v else 0.0
            out.append(dataclasses.replace(s, visibility=vis, keypoints_2d=kps))
        return out

    hidden, shown, unlabelled = flagged(1), flagged(2), flagged(0)
    labelled = sum(int((s.visibility > 0).sum()) for s in hidden)
    assert pck(hidden, wrong) == pytest.approx((labelled - len(samples)) / labelled)
    assert pck_per_keypoint(hidden, wrong)[ankle] == 0.0
    assert pck(unlabelled, wrong) == 1.0 and np.isnan(pck_per_keypoint(unlabelled, wrong)[ankle])
    ap_hidden, ap_shown = coco_ap(ds, hidden, wrong, ones), coco_ap(ds, shown, wrong, ones)
    assert ap_hidden == ap_shown and ap_hidden["AP"] < 1.0
    assert coco_ap(ds, unlabelled, wrong, ones)["AP"] == pytest.approx(1.0)


def test_learning_curve_in_minutes_and_gains() -> None:
    history = [
        {"epoch": 1, "loss": 0.01, "seconds": 30.0, "coco/AP": 0.1, "PCK": 0.30},
        {"epoch": 2, "loss": 0.008, "seconds": 60.0, "coco/AP": 0.2, "PCK": 0.40},
        {"epoch": 3, "loss": 0.007, "seconds": 30.0},  # its validation record lost: its time still counts
        {"epoch": 4, "loss": 0.006, "seconds": 30.0, "coco/AP": 0.3, "PCK": 0.50},
    ]
    curve = learning_curve(history)
    assert [r["epoch"] for r in curve] == [1, 2, 4]
    assert [r["train minutes"] for r in curve] == [0.5, 1.5, 2.5]
    assert np.isnan(curve[0]["PCK points per minute"])
    assert [r["PCK points per minute"] for r in curve[1:]] == pytest.approx([10.0, 10.0])
    assert curve[1]["val AP"] == 0.2
