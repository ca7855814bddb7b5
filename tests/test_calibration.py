"""Temperature scaling, ECE, NLL, pooling of the full model and the saved calibration, against
hand-computed cases and data generated with known parameters."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import log_softmax, softmax

from aims_lib import hipc, taxonomy
from aims_lib.calibration import (
    CALIBRATION_FORMAT,
    Calibration,
    apply_temperature,
    calibration_metrics,
    expected_calibration_error,
    fit_pooling,
    fit_temperature,
    negative_log_likelihood,
    pool_experts,
    reliability,
)

# Two classes; confidences 0.9 (right), 0.9 (wrong), 0.65 (right), 0.75 (wrong).
HAND_PROBS = np.array([[0.9, 0.1], [0.9, 0.1], [0.35, 0.65], [0.75, 0.25]])
HAND_LABELS = np.array([0, 1, 1, 1])


def _sample(probs: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One label per row drawn from its probabilities."""
    return (rng.random(len(probs))[:, None] > np.cumsum(probs, 1)).sum(1).clip(max=probs.shape[1] - 1)


def _full_model_data(n: int, a: float, b: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Image coarse probs, HIPC logits, the full model's log-probs and labels drawn from the
    pooling with weights (a, b)."""
    rng = np.random.default_rng(seed)
    coarse = rng.dirichlet(np.ones(taxonomy.NUM_COARSE), size=n)
    logits = 2.0 * rng.normal(size=(n, taxonomy.NUM_FINE))
    full = hipc.hierarchical_log_probs(torch.from_numpy(logits), torch.from_numpy(coarse),
                                       torch.tensor(taxonomy.FINE_TO_COARSE_ID)).numpy()
    labels = _sample(np.exp(pool_experts(coarse, full, a, b)), rng)
    return coarse, logits, full, labels


def test_ece_and_nll_by_hand() -> None:
    # 5 bins: [0.8, 1) holds the two 0.9s (acc 0.5, conf 0.9), [0.6, 0.8) the 0.65 and 0.75
    # (acc 0.5, conf 0.7): ECE = 2/4 * 0.4 + 2/4 * 0.2 = 0.3
    assert expected_calibration_error(HAND_PROBS, HAND_LABELS, bins=5) == pytest.approx(0.3, abs=1e-6)
    nll = -(math.log(0.9) + math.log(0.1) + math.log(0.65) + math.log(0.25)) / 4
    assert negative_log_likelihood(HAND_PROBS, HAND_LABELS) == pytest.approx(nll, rel=1e-12)
    # a certain wrong answer costs -log(1e-12), not infinity
    assert negative_log_likelihood(np.array([[1.0, 0.0]]), np.array([1])) == pytest.approx(-math.log(1e-12))


def test_reliability_bins_sum_to_the_ece_including_confidence_one() -> None:
    rng = np.random.default_rng(1)
    probs = softmax(3.0 * rng.normal(size=(500, 5)), axis=1)
    probs[:20] = np.eye(5)[rng.integers(0, 5, 20)]  # confidence exactly 1: torchmetrics' extra bin
    labels = rng.integers(0, 5, 500)
    r = reliability(probs, labels, bins=15)
    assert len(r["count"]) == 16 and r["count"].sum() == 500 and r["count"][-1] == 20
    assert r["lower"][-1] == r["upper"][-1] == 1.0 and r["upper"][0] == pytest.approx(1 / 15)
    full = r["count"] > 0
    assert np.isnan(r["accuracy"][~full]).all()
    gaps = (r["count"][full] / 500 * np.abs(r["accuracy"][full] - r["confidence"][full])).sum()
    assert gaps == pytest.approx(expected_calibration_error(probs, labels, bins=15), abs=1e-6)
    hand = reliability(HAND_PROBS, HAND_LABELS, bins=5)
    np.testing.assert_array_equal(hand["count"], [0, 0, 0, 2, 2, 0])
    np.testing.assert_allclose(hand["accuracy"][3:5], [0.5, 0.5])
    np.testing.assert_allclose(hand["confidence"][3:5], [0.7, 0.9], atol=1e-6)


def test_temperature_is_recovered_and_is_one_on_calibrated_data() -> None:
    rng = np.random.default_rng(0)
    logits = 2.0 * rng.normal(size=(20000, 6))
    hot = _sample(softmax(logits / 2.5, axis=1), rng)
    assert fit_temperature(logits, hot) == pytest.approx(2.5, rel=0.05)
    calibrated = _sample(softmax(logits, axis=1), rng)
    assert fit_temperature(log_softmax(logits, axis=1), calibrated) == pytest.approx(1.0, rel=0.05)  # log-probs work too
    assert fit_temperature(logits, hot) == fit_temperature(logits, hot)  # deterministic


def test_temperature_keeps_the_argmax_and_lowers_the_ece_of_an_over_confident_model() -> None:
    rng = np.random.default_rng(2)
    logits = 2.0 * rng.normal(size=(4000, 4))
    labels = _sample(softmax(logits, axis=1), rng)
    over = 3.0 * logits  # over-confident: T should come out near 3
    t = fit_temperature(over, labels)
    assert 2.5 < t < 3.5
    before, after = softmax(over, axis=1), apply_temperature(over, t)
    np.testing.assert_array_equal(before.argmax(1), after.argmax(1))
    assert expected_calibration_error(after, labels) < 0.5 * expected_calibration_error(before, labels)
    m = calibration_metrics(before, after, labels, n_boot=300)
    assert m["n"] == 4000 and m["bins"] == 15
    for metric in ("ece", "nll"):
        for part in ("before", "after", "difference"):
            cell = m[metric][part]
            assert cell["low"] <= cell["value"] <= cell["high"], (metric, part, cell)
        assert m[metric]["difference"]["high"] < 0  # the improvement is beyond resampling noise
    assert m["ece"]["before"]["value"] == pytest.approx(expected_calibration_error(before, labels), abs=1e-5)
    assert m["nll"]["after"]["value"] == pytest.approx(negative_log_likelihood(after, labels), abs=1e-5)
    assert json.loads(json.dumps(m)) == m
    assert calibration_metrics(before, after, labels, n_boot=300) == m  # seeded


def test_bad_inputs_raise_clear_errors() -> None:
    good = np.zeros((3, 4))
    with pytest.raises(ValueError, match="non-empty"):
        fit_temperature(np.zeros((0, 4)), np.zeros(0, int))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        fit_temperature(good, np.zeros(2, int))
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        fit_temperature(good, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match="integer class ids"):
        fit_temperature(good, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="1 non-finite"):
        fit_temperature(np.array([[0.0, np.nan], [0.0, 1.0]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="temperature must be a finite number > 0, got 0"):
        apply_temperature(good, 0)
    with pytest.raises(ValueError, match="rows must sum to 1"):
        expected_calibration_error(np.full((2, 2), 0.6), np.array([0, 1]))
    with pytest.raises(ValueError, match="bins must be an integer"):
        reliability(HAND_PROBS, HAND_LABELS, bins=0)
    with pytest.raises(ValueError, match="pose_weight must be a finite number >= 0, got -1"):
        pool_experts(np.full((1, 4), 0.25), np.zeros((1, 12)), 1.0, -1)
    with pytest.raises(ValueError, match=r"\(N, 4\) and full_log_probs \(N, 12\)"):
        pool_experts(np.full((1, 4), 0.25), np.zeros((1, 11)), 1.0, 1.0)


def test_temperature_warns_when_the_data_do_not_pin_it_down() -> None:
    logits = np.array([[5.0, 0.0], [0.0, 5.0], [4.0, 0.0]])
    with pytest.warns(RuntimeWarning, match="every image right"):
        assert fit_temperature(logits, np.array([0, 1, 0])) < 1.0  # separable: T -> 0
    with pytest.warns(RuntimeWarning, match="search bound"):  # labels against the logits: T -> infinity
        assert fit_temperature(logits, np.array([1, 0, 1])) == pytest.approx(100.0, rel=1e-3)


def test_pooling_with_unit_weights_is_the_full_model_and_weights_act_on_the_logits() -> None:
    coarse, logits, full, _ = _full_model_data(200, 1.0, 1.0, seed=3)
    coarse[:5, 0] = 0.0  # a zero coarse probability: clamped at 1e-12 as in hipc
    coarse[:5] /= coarse[:5].sum(1, keepdims=True)
    full = hipc.hierarchical_log_probs(torch.from_numpy(logits), torch.from_numpy(coarse),
                                       torch.tensor(taxonomy.FINE_TO_COARSE_ID)).numpy()
    np.testing.assert_allclose(pool_experts(coarse, full, 1.0, 1.0), full, atol=1e-6)
    # (a, b) = (0, 2): the pose branch alone at temperature 1/2
    np.testing.assert_allclose(pool_experts(coarse, full, 0.0, 2.0), log_softmax(2.0 * logits, axis=1), atol=1e-6)
    # (a, b) = (1, 0): the image branch spread over the children
    spread = np.exp(pool_experts(coarse, full, 1.0, 0.0))
    np.testing.assert_allclose(hipc.coarse_marginal(np.log(spread)), coarse, atol=1e-6)
    np.testing.assert_allclose(spread[:, :4], np.repeat(coarse[:, :1] / 4, 4, axis=1), atol=1e-9)  # Prone: 4 children


def test_fit_pooling_recovers_known_weights() -> None:
    coarse, _, full, labels = _full_model_data(20000, 0.5, 1.5, seed=4)
    a, b = fit_pooling(coarse, full, labels)
    assert a == pytest.approx(0.5, abs=0.08) and b == pytest.approx(1.5, rel=0.08)
    assert fit_pooling(coarse, full, labels) == (a, b)  # deterministic
    coarse, _, full, labels = _full_model_data(20000, 1.0, 1.0, seed=5)
    a, b = fit_pooling(coarse, full, labels)
    assert a == pytest.approx(1.0, abs=0.1) and b == pytest.approx(1.0, rel=0.08)


def _calibration(**changes: float) -> Calibration:
    values = {"coarse_temperature": 1.5, "pose_temperature": 0.8, "image_weight": 0.7, "pose_weight": 1.2,
              "level": 0.9, "coarse_threshold": 0.4, "fine_threshold": math.inf}
    return Calibration(**{**values, **changes})


def test_calibration_round_trips_as_strict_json(tmp_path: Path) -> None:
    cal = _calibration()
    path = cal.save(tmp_path / "run" / "calibration.json")
    data = json.loads(path.read_text())
    assert data["format"] == CALIBRATION_FORMAT == "aims-calibration/1" and data["fine_threshold"] == "inf"
    assert "Infinity" not in path.read_text()
    assert Calibration.load(path) == cal and Calibration.from_dict(cal.to_dict()) == cal
    assert [p.name for p in path.parent.iterdir()] == ["calibration.json"]  # atomic: no temporary left


def test_calibration_errors_name_the_field_and_value(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="coarse_temperature must be a finite number > 0, got -1"):
        _calibration(coarse_temperature=-1)
    with pytest.raises(ValueError, match=r"level must be a number in \(0, 1\), got 1.5"):
        _calibration(level=1.5)
    with pytest.raises(ValueError, match="image_weight must be a finite number >= 0, got True"):
        _calibration(image_weight=True)
    with pytest.raises(ValueError, match="fine_threshold must be a number >= 0 \\(inf allowed\\), got nan"):
        _calibration(fine_threshold=math.nan)
    data = _calibration().to_dict()
    with pytest.raises(ValueError, match="'format' must be 'aims-calibration/1', got 'aims-calibration/0'"):
        Calibration.from_dict({**data, "format": "aims-calibration/0"})
    with pytest.raises(ValueError, match=r"missing \['level'\], unknown \['lvl'\]"):
        Calibration.from_dict({**{k: v for k, v in data.items() if k != "level"}, "lvl": 0.9})
    with pytest.raises(ValueError, match="pose_weight must be a finite number >= 0, got '1.2'"):
        Calibration.from_dict({**data, "pose_weight": "1.2"})
    with pytest.raises(ValueError, match="coarse_temperature must be a finite number > 0, got 'inf'"):
        Calibration.from_dict({**data, "coarse_temperature": "inf"})
    (tmp_path / "bad.json").write_bytes(b"\x80\x03pickle")
    with pytest.raises(ValueError, match="not a JSON calibration file"):
        Calibration.load(tmp_path / "bad.json")


def test_calibrated_gives_the_pooled_fine_probs_and_their_coarse_marginal() -> None:
    coarse, _, full, _ = _full_model_data(50, 1.0, 1.0, seed=6)
    cal = _calibration()
    coarse_out, fine_out = cal.calibrated(coarse, full)
    np.testing.assert_allclose(fine_out, np.exp(pool_experts(coarse, full, 0.7, 1.2)), rtol=1e-12)
    groups = np.array(taxonomy.FINE_TO_COARSE_ID)
    np.testing.assert_allclose(coarse_out, np.stack([fine_out[:, groups == c].sum(1) for c in range(4)], 1), atol=1e-12)
    np.testing.assert_allclose(coarse_out.sum(1), 1.0, atol=1e-12)
    same = _calibration(image_weight=1.0, pose_weight=1.0).calibrated(coarse, full)
    np.testing.assert_allclose(same[1], np.exp(full), atol=1e-9)  # unit weights: the full model unchanged


def test_ece_if_calibrated_separates_calibrated_from_overconfident() -> None:
    """Consistency resampling: labels drawn from the model's own confidences give a large p; an
    over-confident model on many images a p near 0; the mean ECE of perfect calibration falls
    with the number of images (ECE's upward bias on few images)."""
    from aims_lib.calibration import ece_if_calibrated

    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(4), 2000)
    labels = np.array([rng.choice(4, p=p) for p in probs])
    calibrated = ece_if_calibrated(probs, labels, seed=0)
    assert calibrated["p"] > 0.05 and calibrated["mean"] <= calibrated["q95"]
    sharp = np.exp(3 * np.log(probs))
    sharp /= sharp.sum(1, keepdims=True)
    assert ece_if_calibrated(sharp, labels, seed=0)["p"] < 0.01
    small = ece_if_calibrated(probs[:100], labels[:100], seed=0)
    assert small["mean"] > 2 * calibrated["mean"]
    assert ece_if_calibrated(probs, labels, seed=0) == calibrated  # seeded
