"""The benchmark card's pose rows: validity arithmetic by hand, the probes on the fixture."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from aims_lib.card import PROBES, BenchmarkCard, ProbeResult
from aims_lib.data import load_dataset
from aims_lib.hipc import HIPCTrainConfig
from aims_lib.pose_card import POSE_VALIDITY, FitError, PoseCard, pose2d_transfer, pose_card

FAST = HIPCTrainConfig(epochs=3, batch_size=8)


def _card(tt: float, st: float, real_fit: float, synthetic_fit: float) -> PoseCard:
    probes = tuple(ProbeResult(p, "fine", a, 0.0, 100.0, 8.3, 10, 10) for p, a in (("S->S", 90.0), ("S->T", st), ("T->T", tt)))
    fits = (FitError("synthetic", "train", synthetic_fit, 0.0, 1.0, 10, 0), FitError("real", "test", real_fit, 0.0, 1.0, 10, 1))
    return PoseCard(probes, fits)


def test_pose_validity_on_hand_made_rows() -> None:
    rows = {r["check"]: r for r in _card(tt=86.0, st=72.5, real_fit=0.09, synthetic_fit=0.04).validity()}
    assert list(rows) == list(POSE_VALIDITY)
    label, gap, ratio = POSE_VALIDITY
    assert rows[label]["value"] == 86.0 and rows[label]["passed"]
    assert rows[gap]["value"] == 13.5 and rows[gap]["passed"]
    assert rows[ratio]["value"] == 2.25 and rows[ratio]["passed"]
    failing = {r["check"]: r["passed"] for r in _card(tt=79.9, st=76.0, real_fit=0.05, synthetic_fit=0.04).validity()}
    assert failing == {label: False, gap: False, ratio: False}


def test_the_card_carries_its_pose_rows_and_checks() -> None:
    image = tuple(ProbeResult(p, lv, 50.0, 40.0, 60.0, 25.0, 10, 10)
                  for p in PROBES for lv in ("coarse", "fine"))
    card = BenchmarkCard(image, 224, "efficientnet_lite0")
    assert card.to_dict()["pose"] is None and len(card.validity()) == 7
    with_pose = dataclasses.replace(card, pose=_card(85.0, 70.0, 0.08, 0.04))
    data = with_pose.to_dict()
    assert set(data["pose"]["probes"]) == {"S->S/fine", "S->T/fine", "T->T/fine"}
    assert data["pose"]["fit"]["real"]["pa_mpjpe"] == 0.08
    assert [r["check"] for r in with_pose.validity()[7:]] == list(POSE_VALIDITY)


def test_pose_probes_on_the_fixture_are_deterministic(aims_tiny: Path) -> None:
    ds = load_dataset(aims_tiny)
    first = pose_card(ds, seed=0, n_fit=3, hipc_cfg=FAST)
    assert first == pose_card(ds, seed=0, n_fit=3, hipc_cfg=FAST)
    assert [r.probe for r in first.classifier] == ["S->S", "S->T", "T->T"]
    assert [(r.n_train, r.n_test) for r in first.classifier] == [(3, 1), (3, 2), (4, 2)]
    for r in first.classifier:
        assert r.ci_low <= r.accuracy <= r.ci_high and r.level == "fine"
    synthetic, real = first.fit
    assert (synthetic.domain, synthetic.n, real.domain, real.split, real.n) == ("synthetic", 3, "real", "test", 2)
    for f in first.fit:  # nose-to-pelvis units: a fit, not a perfect one, and not a diverged one
        assert 0.0 < f.pa_mpjpe < 1.0 and f.ci_low <= f.pa_mpjpe <= f.ci_high and np.isfinite(f.pa_mpjpe)
    assert len(first.rows()) == 5


def test_pose_probes_refuse_a_dataset_without_real_test(aims_tiny: Path, tmp_path: Path) -> None:
    ds = load_dataset(aims_tiny)
    no_test = dataclasses.replace(ds, samples=tuple(s for s in ds.samples if s.split != "test"))
    with pytest.raises(ValueError, match="need 3D keypoints of at least 2 synthetic images, real train and real test"):
        pose_card(no_test, hipc_cfg=FAST)


def test_equal_step_epochs_by_hand() -> None:
    from aims_lib.pose_card import equal_step_epochs

    # quick data: 960 synthetic (8 batches of 128), 477 real train (4 batches): twice the epochs
    assert equal_step_epochs(60, 960, 477, 128) == 120
    assert equal_step_epochs(60, 960, 960, 128) == 60
    assert equal_step_epochs(10, 100, 120, 128) == 10  # one batch each
    assert equal_step_epochs(10, 100, 300, 128) == 3  # 1 / 3 batches: 3.3 epochs
    assert equal_step_epochs(3, 10, 100, 8) == 1  # 2 / 13 batches of epochs: at least one
    with pytest.raises(ValueError, match="n=0"):
        equal_step_epochs(60, 960, 0, 128)


def test_pose2d_transfer_pairs_two_estimators_on_the_same_images(aims_tiny: Path) -> None:
    test = load_dataset(aims_tiny).select("test", "real")
    gt = np.stack([s.keypoints_2d for s in test]).astype(np.float64)
    size = np.array([max(s.bbox[2], s.bbox[3]) for s in test])
    off = gt + 0.2 * size[:, None, None]  # every keypoint beyond PCK@0.05
    half = gt.copy()
    half[0] = off[0]  # the first test image wrong, the others right
    labelled = np.array([(s.visibility > 0).sum() for s in test])
    t = pose2d_transfer(test, off, half, seed=0)
    expected = labelled[1:].sum() / labelled.sum()
    assert t.synthetic_only == 0.0 and t.synthetic_only_ci == (0.0, 0.0)
    assert t.both == pytest.approx(expected) and t.difference == pytest.approx(100 * expected)
    assert t.both_ci[0] <= t.both <= t.both_ci[1] and t.difference_ci[0] <= t.difference <= t.difference_ci[1]
    assert t.n == len(test) and len(t.rows()) == 3 and t.rows()[2]["value"] == f"{100 * expected:+.1f}"
    assert pose2d_transfer(test, gt, gt).difference == 0.0
    with pytest.raises(ValueError, match="2 test images, 1 and 2 keypoint rows"):
        pose2d_transfer(test, gt[:1], gt)
