"""Risk-coverage, split-conformal sets and hierarchical answers: hand-computed cases, agreement
with crepes, and the coverage guarantee on exchangeable synthetic data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from crepes import ConformalClassifier
from crepes.extras import hinge

from aims_lib import hipc, taxonomy
from aims_lib.calibration import Calibration, fit_pooling, pool_experts
from aims_lib.conformal import (
    Answer,
    aurc,
    conformal_threshold,
    hierarchical_answers,
    prediction_sets,
    risk_coverage,
    selective_accuracy,
    set_metrics,
)

# confidences 0.9 (right), 0.8 (wrong), 0.7 (right), 0.6 (wrong), given out of order
RC_PROBS = np.array([[0.3, 0.7], [0.9, 0.1], [0.4, 0.6], [0.2, 0.8]])
RC_LABELS = np.array([1, 0, 0, 0])


def _dirichlet_problem(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities and labels drawn from them: a perfectly calibrated model."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.full(k, 0.5), size=n)
    labels = (rng.random(n)[:, None] > np.cumsum(probs, 1)).sum(1).clip(max=k - 1)
    return probs, labels


def test_risk_coverage_and_aurc_by_hand() -> None:
    coverage, risk = risk_coverage(RC_PROBS, RC_LABELS)
    np.testing.assert_allclose(coverage, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0.0, 1 / 2, 1 / 3, 2 / 4])  # right, wrong, right, wrong
    assert aurc(RC_PROBS, RC_LABELS) == pytest.approx((0 + 1 / 2 + 1 / 3 + 1 / 2) / 4)
    assert selective_accuracy(RC_PROBS, RC_LABELS, 0.25) == 1.0
    assert selective_accuracy(RC_PROBS, RC_LABELS, 0.5) == 0.5
    assert selective_accuracy(RC_PROBS, RC_LABELS, 0.7) == pytest.approx(2 / 3)  # ceil(2.8) = 3 images
    assert selective_accuracy(RC_PROBS, RC_LABELS, 1.0) == 0.5


def test_aurc_of_a_perfect_and_of_the_worst_ranking() -> None:
    labels = np.array([0, 0, 0, 0])
    perfect = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.4, 0.6]])  # the only error least confident
    assert aurc(perfect, labels) == pytest.approx((0 + 0 + 0 + 1 / 4) / 4)
    worst = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3], [0.05, 0.95]])  # the error most confident
    assert aurc(worst, labels) == pytest.approx((1 + 1 / 2 + 1 / 3 + 1 / 4) / 4)


def test_equal_confidences_keep_their_input_order() -> None:
    probs = np.array([[0.7, 0.3], [0.7, 0.3]])
    assert risk_coverage(probs, np.array([1, 0]))[1][0] == 1.0  # the wrong one comes first
    assert risk_coverage(probs, np.array([0, 1]))[1][0] == 0.0


def test_conformal_threshold_by_hand_on_nine_scores() -> None:
    scores = np.array([0.5, 0.1, 0.9, 0.3, 0.7, 0.2, 0.8, 0.4, 0.6])
    probs = np.stack([1.0 - scores, scores], 1)  # true class 0: score 1 - p_0
    labels = np.zeros(9, int)
    assert conformal_threshold(probs, labels, 0.8) == pytest.approx(0.8)  # ceil(10 * 0.8) = 8th smallest
    assert conformal_threshold(probs, labels, 0.75) == pytest.approx(0.8)  # ceil(7.5) = 8
    assert conformal_threshold(probs, labels, 0.7) == pytest.approx(0.7)  # 10 * 0.7 = 7.000000000000001 in binary
    assert conformal_threshold(probs, labels, 0.9) == pytest.approx(0.9)
    assert np.quantile(scores, 8 / 9, method="inverted_cdf") == pytest.approx(0.8)  # the same rule in numpy
    assert np.quantile(scores, 8 / 9, method="higher") == pytest.approx(0.9)  # one score more conservative
    with pytest.warns(RuntimeWarning, match="need .* n >= 19; every prediction set is full"):
        assert conformal_threshold(probs, labels, 0.95) == math.inf
    assert prediction_sets(probs, math.inf).all()


def test_prediction_sets_and_their_metrics_by_hand() -> None:
    probs = np.array([[0.3, 0.7, 0.0], [0.05, 0.9, 0.05], [0.34, 0.33, 0.33]])
    sets = prediction_sets(probs, 0.6)  # classes with p >= 0.4
    np.testing.assert_array_equal(sets, [[False, True, False], [False, True, False], [False, False, False]])
    m = set_metrics(sets, np.array([0, 1, 2]))
    assert m == {"coverage": pytest.approx(1 / 3), "mean_size": pytest.approx(2 / 3), "empty_share": pytest.approx(1 / 3)}
    np.testing.assert_array_equal(prediction_sets(probs, 0.7).sum(1), [2, 1, 3])  # 1 - p <= 0.7: p >= 0.3


@pytest.mark.parametrize(("n_cal", "level"), [(99, 0.905), (250, 0.9), (40, 0.8)])
def test_sets_equal_crepes_where_the_conventions_coincide(n_cal: int, level: float) -> None:
    cal_probs, cal_labels = _dirichlet_problem(n_cal, 5, seed=n_cal)
    test_probs, _ = _dirichlet_problem(300, 5, seed=n_cal + 1)
    assert (n_cal + 1) * (1 - level) % 1 > 1e-6  # not an integer: the same sets
    crepes = ConformalClassifier().fit(hinge(cal_probs, np.arange(5), cal_labels))
    theirs = crepes.predict_set(hinge(test_probs), confidence=level, smoothing=False).astype(bool)
    ours = prediction_sets(test_probs, conformal_threshold(cal_probs, cal_labels, level))
    np.testing.assert_array_equal(ours, theirs)
    assert 0 < ours.sum(1).mean() < 5  # neither empty nor full: the comparison says something


def test_crepes_takes_one_score_more_when_n_plus_one_times_alpha_is_an_integer() -> None:
    cal_probs, cal_labels = _dirichlet_problem(99, 5, seed=7)
    test_probs, _ = _dirichlet_problem(300, 5, seed=8)
    crepes = ConformalClassifier().fit(hinge(cal_probs, np.arange(5), cal_labels))
    theirs = crepes.predict_set(hinge(test_probs), confidence=0.9, smoothing=False).astype(bool)
    ours = prediction_sets(test_probs, conformal_threshold(cal_probs, cal_labels, 0.9))  # the 90th smallest
    scores = np.sort(1.0 - cal_probs[np.arange(99), cal_labels])
    assert conformal_threshold(cal_probs, cal_labels, 0.9) == scores[89]
    np.testing.assert_array_equal(prediction_sets(test_probs, scores[90]), theirs)  # crepes: the 91st
    assert (ours <= theirs).all() and (ours != theirs).any()


def test_coverage_on_exchangeable_data_is_the_level() -> None:
    probs, labels = _dirichlet_problem(1000, 12, seed=0)
    rng = np.random.default_rng(1)
    level, coverages = 0.9, []
    for _ in range(300):
        order = rng.permutation(1000)
        cal, test = order[:500], order[500:]
        t = conformal_threshold(probs[cal], labels[cal], level)
        coverages.append(set_metrics(prediction_sets(probs[test], t), labels[test])["coverage"])
    mean = float(np.mean(coverages))
    assert abs(mean - level) < 0.01, mean  # in expectation k / (n + 1) = 451 / 501 = 0.9002
    assert mean >= level - 0.003 and np.quantile(coverages, 0.05) >= level - 0.05


def test_conformal_inputs_are_checked() -> None:
    probs, labels = _dirichlet_problem(20, 3, seed=2)
    with pytest.raises(ValueError, match=r"level must be in \(0, 1\), got 1.0"):
        conformal_threshold(probs, labels, 1.0)
    with pytest.raises(ValueError, match="threshold must be a number >= 0"):
        prediction_sets(probs, -0.1)
    with pytest.raises(ValueError, match="bool array"):
        set_metrics(probs, labels)
    with pytest.raises(ValueError, match=r"coverage must be in \(0, 1\], got 0"):
        selective_accuracy(probs, labels, 0)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        conformal_threshold(probs, labels + 1, 0.9)
    assert conformal_threshold(probs, labels, 0.8) == conformal_threshold(probs.copy(), labels.copy(), 0.8)


def _one(coarse: list[str], fine: list[str], coarse_probs: list[float] | None = None) -> Answer:
    """The answer of one image with the given sets (uniform probabilities unless given)."""
    cs = np.isin(taxonomy.COARSE, coarse)[None]
    fs = np.isin(taxonomy.FINE, fine)[None]
    cp = np.array([coarse_probs or [0.25] * 4])
    return hierarchical_answers(cs, fs, cp, np.full((1, 12), 1 / 12))[0]


def test_hierarchical_answers_cover_the_three_kinds() -> None:
    assert _one(["Sitting"], ["Sitting w/ Arm Support"]) == Answer(
        "fine", "Sitting", "Sitting w/ Arm Support", "Sitting w/ Arm Support (Sitting)")
    assert _one(["Sitting"], ["Sitting w/ Support", "Sitting w/o Support"]) == Answer(
        "coarse_only", "Sitting", None, "Sitting, fine pose uncertain")
    # fine classes of two parents, but the coarse set allows one: the joint set
    assert _one(["Prone", "Supine"], ["Prone Lying", "Forearm Support"]).text == "Prone, fine pose uncertain"
    assert _one(["Sitting"], ["Prone Lying", "Sitting w/ Support"]).kind == "fine"
    assert _one(["Prone", "Supine"], ["Prone Lying", "Supine Lying"], [0.3, 0.6, 0.05, 0.05]) == Answer(
        "uncertain", None, None, "uncertain: Supine or Prone")  # most probable first
    three = _one(["Prone", "Supine", "Sitting"], ["Prone Lying", "Rolling", "Sitting w/ Support"])
    assert three.text == "uncertain: Prone, Supine or Sitting"
    # the sets disagree: both sides named
    assert _one(["Standing"], ["Prone Lying"], [0.4, 0.1, 0.1, 0.4]).text == "uncertain: Prone or Standing"


def test_empty_sets_fall_back_to_the_argmax() -> None:
    cp = np.array([[0.1, 0.1, 0.7, 0.1]])
    fp = np.full((1, 12), 0.05)
    fp[0, taxonomy.FINE.index("Sitting w/o Support")] = 0.45
    answer = hierarchical_answers(np.zeros((1, 4), bool), np.zeros((1, 12), bool), cp, fp)[0]
    assert answer == Answer("fine", "Sitting", "Sitting w/o Support", "Sitting w/o Support (Sitting)")
    with pytest.raises(ValueError, match=r"fine_sets must be bool \(1, 12\)"):
        hierarchical_answers(np.zeros((1, 4), bool), np.zeros((1, 11), bool), cp, fp)


def test_calibrated_full_model_sets_keep_their_coverage_on_held_out_images() -> None:
    rng = np.random.default_rng(3)
    n = 4000
    coarse = rng.dirichlet(np.ones(4), size=n)
    logits = 1.5 * rng.normal(size=(n, 12))
    full = hipc.hierarchical_log_probs(torch.from_numpy(logits), torch.from_numpy(coarse),
                                       torch.tensor(taxonomy.FINE_TO_COARSE_ID)).numpy()
    truth = np.exp(pool_experts(coarse, full, 0.6, 1.4))  # the true pooling is not the paper's product
    labels = (rng.random(n)[:, None] > np.cumsum(truth, 1)).sum(1).clip(max=11)
    val, test = np.arange(n // 2), np.arange(n // 2, n)
    a, b = fit_pooling(coarse[val], full[val], labels[val])
    partial = Calibration(1.0, 1.0, a, b, 0.9, 1.0, 1.0)
    c_val, f_val = partial.calibrated(coarse[val], full[val])
    parents = np.asarray(taxonomy.FINE_TO_COARSE_ID)
    cal = Calibration(1.0, 1.0, a, b, 0.9, conformal_threshold(c_val, parents[labels[val]], 0.9),
                      conformal_threshold(f_val, labels[val], 0.9))
    c_test, f_test = cal.calibrated(coarse[test], full[test])
    fine = set_metrics(prediction_sets(f_test, cal.fine_threshold), labels[test])
    coarse_cov = set_metrics(prediction_sets(c_test, cal.coarse_threshold), parents[labels[test]])["coverage"]
    assert abs(fine["coverage"] - 0.9) < 0.03 and abs(coarse_cov - 0.9) < 0.03 and fine["mean_size"] < 12
    answers = hierarchical_answers(prediction_sets(c_test, cal.coarse_threshold),
                                   prediction_sets(f_test, cal.fine_threshold), c_test, f_test)
    assert {x.kind for x in answers} == {"fine", "coarse_only", "uncertain"}
    right = [x.fine == taxonomy.FINE[y] for x, y in zip(answers, labels[test]) if x.kind == "fine"]
    assert np.mean(right) > (f_test.argmax(1) == labels[test]).mean()  # committing only when sure pays


def test_coverage_range_is_the_beta_law_of_split_conformal() -> None:
    """Coverage given one calibration set ~ Beta(k, n + 1 - k), k = ceil((n + 1) level): by hand
    for n = 9, level 0.8 (k = 8: Beta(8, 2), mean 0.8); it narrows as n grows; full sets when
    the calibration set is too small."""
    from scipy.stats import beta

    from aims_lib.conformal import coverage_range

    low, high = coverage_range(9, 0.8, mass=0.5)
    assert (low, high) == pytest.approx(tuple(beta.ppf([0.25, 0.75], 8, 2)))
    wide, narrow = coverage_range(75, 0.9), coverage_range(2000, 0.9)
    assert wide[0] < narrow[0] < 0.9 < narrow[1] < wide[1]
    assert coverage_range(5, 0.9) == (1.0, 1.0)
    with pytest.raises(ValueError, match="n_calibration"):
        coverage_range(0, 0.9)
