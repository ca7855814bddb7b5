"""Accuracy intervals, paired comparisons and seed summaries against hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from aims_lib import taxonomy
from aims_lib.statistics import (
    Accuracy,
    SeedSummary,
    accuracy,
    bootstrap_interval,
    classification_report,
    confusion_matrix,
    confusion_pairs,
    gap_closed,
    mcnemar_exact,
    paired_comparison,
    seed_summary,
    summarise_seeds,
    top1,
)


def test_mcnemar_exact_by_hand() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # 2 * P(X <= 0), X ~ Bin(5, 1/2)
    assert mcnemar_exact(1, 9) == pytest.approx(2 * (1 + 10) / 1024)
    assert mcnemar_exact(9, 1) == mcnemar_exact(1, 9)
    assert mcnemar_exact(5, 5) == 1.0  # capped
    with pytest.raises(ValueError, match=">= 0"):
        mcnemar_exact(-1, 2)


def test_accuracy_top1_and_macro() -> None:
    labels = np.array([0, 0, 0, 1])
    acc = accuracy(np.zeros(4, int), labels, num_classes=2)
    assert (acc.top1, acc.macro, acc.n) == (75.0, 50.0, 4)  # macro: (100 + 0) / 2
    assert acc.top1_low <= 75.0 <= acc.top1_high and acc.macro_low <= 50.0 <= acc.macro_high
    perfect = accuracy(np.eye(3)[[0, 1, 2, 2]], np.array([0, 1, 2, 2]), num_classes=3)  # logits work too
    assert (perfect.top1, perfect.top1_low, perfect.top1_high, perfect.macro_low) == (100.0, 100.0, 100.0, 100.0)
    assert str(acc).startswith("75.0 [")


def test_accuracy_interval_is_seeded_and_about_seven_points_on_198_images() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 198)
    pred = np.where(rng.random(198) < 0.75, labels, (labels + 1) % 4)
    a, b = accuracy(pred, labels, 4, seed=3), accuracy(pred, labels, 4, seed=3)
    assert a == b
    half_width = (a.top1_high - a.top1_low) / 2
    assert 5.0 < half_width < 7.5  # sqrt(.75 * .25 / 198) * 1.96 = 6.0 points
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        accuracy(pred[:5], labels, 4)
    with pytest.raises(ValueError, match="no test images"):
        accuracy(np.array([], int), np.array([], int), 4)


def test_paired_comparison_counts_disagreements() -> None:
    a = np.ones(10, bool)
    b = a.copy()
    b[[2, 7]] = False
    c = paired_comparison("b vs a", "a", a, "b", b)
    assert c.difference == pytest.approx(-20.0) and (c.a_only, c.b_only, c.n) == (2, 0, 10)
    assert c.p == pytest.approx(0.5)  # 2 * P(Bin(2, 1/2) <= 0)
    assert c.low <= -20.0 <= c.high <= 0.0
    same = paired_comparison("same", "a", a, "a again", a)
    assert (same.difference, same.low, same.high, same.p) == (0.0, 0.0, 0.0, 1.0)
    assert c.to_dict()["name"] == "b vs a" and c.to_dict()["p"] == 0.5
    with pytest.raises(ValueError, match="b vs a: need two equal"):
        paired_comparison("b vs a", "a", a, "b", b[:5])


def test_paired_interval_is_narrower_than_unpaired_when_models_agree() -> None:
    """Two models that agree on most images: the paired interval of their difference is much
    narrower than the two separate accuracy intervals suggest."""
    rng = np.random.default_rng(1)
    a = rng.random(198) < 0.7
    b = a.copy()
    flip = rng.choice(198, 12, replace=False)
    b[flip] = ~b[flip]
    c = paired_comparison("x", "a", a, "b", b, seed=0)
    labels = np.zeros(198, int)
    acc_a = accuracy(np.where(a, 0, 1), labels, 2, seed=0)
    assert (c.high - c.low) < 0.6 * (acc_a.top1_high - acc_a.top1_low)


def test_seed_summary() -> None:
    assert seed_summary([70.0, 72.0, 74.0]) == {"mean": 72.0, "sd": 2.0, "n_seeds": 3}
    assert seed_summary([70.0]) == {"mean": 70.0, "sd": None, "n_seeds": 1}
    with pytest.raises(ValueError, match="no values"):
        seed_summary([])


def test_summarise_seeds_keeps_the_headline_and_lists_every_seed() -> None:
    labels = np.array([0, 1, 1, 1])
    per_seed = {0: accuracy(np.array([0, 1, 1, 1]), labels, 2), 1: accuracy(np.array([1, 1, 1, 1]), labels, 2)}
    s = summarise_seeds(per_seed, headline=1)
    assert s["top1"] == 75.0 and s["seeds"] == [1, 0]
    assert s["per_seed"] == {"top1": [75.0, 100.0], "macro": [50.0, 100.0]}
    assert s["over_seeds"] == {"mean": 87.5, "sd": 17.68, "n_seeds": 2}
    # the typed layout records declare: the headline's Accuracy fields first, then the seeds'
    assert list(s) == list(SeedSummary.__annotations__)
    assert list(s)[: len(Accuracy.__dataclass_fields__)] == list(Accuracy.__dataclass_fields__)
    with pytest.raises(ValueError, match="headline seed 5"):
        summarise_seeds(per_seed, headline=5)


def test_gap_closed() -> None:
    assert gap_closed(50.0, 60.0, 70.0) == 0.5
    assert gap_closed(50.0, 45.0, 70.0) == -0.25
    assert gap_closed(70.0, 75.0, 70.0) is None


def test_pooled_rate_interval_resamples_whole_images() -> None:
    from aims_lib.statistics import pooled_rate_interval

    hits, counts = np.array([17, 0, 17, 17]), np.array([17, 17, 17, 17])
    low, high = pooled_rate_interval(hits, counts, seed=0)
    assert 0.0 <= low <= 0.75 <= high <= 1.0 and high == 1.0  # a resample without image 2 is all correct
    assert pooled_rate_interval(counts, counts) == (1.0, 1.0)
    with pytest.raises(ValueError, match="equal 1-D"):
        pooled_rate_interval(hits, counts[:2])


def test_paired_rate_difference_by_hand() -> None:
    from aims_lib.statistics import paired_rate_difference

    # 3 images of 10, 10 and 5 labelled keypoints; a gets 5 + 5 + 0, b gets 10 + 5 + 5 right
    a, b, counts = np.array([5, 5, 0]), np.array([10, 5, 5]), np.array([10, 10, 5])
    diff, low, high = paired_rate_difference(a, b, counts, seed=0)
    assert diff == pytest.approx(100 * (20 - 10) / 25)  # 40 points
    # every image has b >= a, so every resample's difference is >= 0; one of image 2 only is 0
    assert 0.0 <= low <= diff <= high <= 100.0
    same = paired_rate_difference(a, a, counts)
    assert same == (0.0, 0.0, 0.0)  # paired: no spread where the two agree on every image
    with pytest.raises(ValueError, match="equal 1-D"):
        paired_rate_difference(a, b[:2], counts)
    with pytest.raises(ValueError, match="some counts"):
        paired_rate_difference(a * 0, b * 0, counts * 0)


def test_top1_takes_ids_or_logits_and_is_nan_without_images() -> None:
    labels = np.array([0, 1, 1, 2])
    assert top1(np.array([0, 1, 2, 2]), labels) == 75.0
    assert top1(np.eye(3)[[0, 1, 2, 2]], labels) == 75.0  # logits: their argmax
    assert top1(np.eye(3)[[0, 1, 2, 2]], labels) == accuracy(np.array([0, 1, 2, 2]), labels, 3).top1
    assert np.isnan(top1(np.zeros((0, 3)), np.array([], dtype=int)))  # an empty split has no accuracy
    with pytest.raises(ValueError, match="equal 1-D shapes"):
        top1(np.array([0, 1]), labels)


def test_bootstrap_interval_brackets_the_mean_and_narrows_with_n() -> None:
    small = np.array([1] * 7 + [0] * 3)
    lo, hi = bootstrap_interval(small, seed=1)
    assert lo < 70 < hi and 35 < lo and hi <= 100
    lo_big, hi_big = bootstrap_interval(np.tile(small, 100), seed=1)
    assert lo_big < 70 < hi_big and (hi_big - lo_big) < (hi - lo) / 5
    assert bootstrap_interval(np.ones(5)) == (100.0, 100.0)
    assert bootstrap_interval(small, seed=3) == bootstrap_interval(small, seed=3)
    pred = np.where(small == 1, 0, 1)  # the same resamples as accuracy's top-1 interval
    acc = accuracy(pred, np.zeros(10, int), 2, seed=3)
    assert bootstrap_interval(small, seed=3) == (acc.top1_low, acc.top1_high)
    with pytest.raises(ValueError, match="non-empty 1-D"):
        bootstrap_interval(np.array([]))


def test_classification_report_macro_is_the_mean_of_present_classes() -> None:
    fine_true = np.array([0, 0, 1, 5])
    fine_pred = np.array([0, 1, 1, 4])
    coarse = np.array(taxonomy.FINE_TO_COARSE_ID)
    report = classification_report(coarse[fine_pred], fine_pred, coarse[fine_true], fine_true)
    assert report["fine"]["top1"] == 50.0
    assert report["fine"]["macro"] == (50.0 + 100.0 + 0.0) / 3  # classes 0, 1 and 5; absent ones do not count
    assert report["fine"]["per_class"][taxonomy.FINE[2]] is None


def test_confusion_pairs_rebuild_the_matrix() -> None:
    true = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 0, 2])
    m = confusion_matrix(pred, true, 3)
    p2, t2 = confusion_pairs(m)
    np.testing.assert_array_equal(confusion_matrix(p2, t2, 3), m)
    assert (p2 == t2).mean() == (pred == true).mean()
