"""Notebook 06's study functions: box comparison, orientation check, calibration fitted on val."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from aims_lib import taxonomy
from aims_lib.deployment import (
    BOX_MODES, RawScores, box_iou, box_study, calibration_study, fit_calibration, images_without_an_infant,
    model_probabilities, orientation_check, raw_scores, split_predictions,
)
from aims_lib.predict import Predictions


def test_box_iou_by_hand() -> None:
    a = np.array([[0, 0, 2, 2], [0, 0, 1, 1], [0, 0, 4, 4]], float)
    b = np.array([[1, 1, 2, 2], [5, 5, 1, 1], [1, 1, 2, 2]], float)
    np.testing.assert_allclose(box_iou(a, b), [1 / 7, 0.0, 4 / 16])


class BoxEchoPredictor:
    """Answers with the boxes it is given (a found box 1, 2, 3, 4 where a row is NaN) and the
    fine class (image width) mod 12; records each call's number of images."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, images, bboxes=None, batch_size=32):  # noqa: ANN001, ANN201
        n = len(images)
        self.calls.append(n)
        boxes = np.where(np.isnan(bboxes), np.array([[1.0, 2.0, 3.0, 4.0]]), bboxes)
        fine_id = np.array([im.shape[1] % 12 for im in images])
        coarse_id = np.array(taxonomy.FINE_TO_COARSE_ID)[fine_id]
        probs = np.full((n, 12), 1 / 12)
        return Predictions(
            coarse=[taxonomy.COARSE[i] for i in coarse_id], coarse_id=coarse_id, coarse_prob=np.full(n, 0.25),
            coarse_probs=np.full((n, 4), 0.25), image_coarse_probs=np.full((n, 4), 0.25),
            fine=[taxonomy.FINE[i] for i in fine_id],
            fine_id=fine_id, fine_prob=probs[:, 0], fine_probs=probs, keypoints_2d=np.zeros((n, 17, 2)),
            keypoint_scores=np.ones((n, 17)), keypoints_3d=np.zeros((n, 17, 3)), smplify_failed=np.zeros(n, bool),
            reprojection_error=np.zeros(n), boxes=boxes,
            box_source=["automatic" if np.isnan(b).all() else "given" for b in bboxes],
            no_infant=np.zeros(n, bool), calibrated=False, coarse_set=[[] for _ in range(n)], fine_set=[[] for _ in range(n)],
            answer=[taxonomy.FINE[i] for i in fine_id], answer_coarse=[None] * n, answer_fine=[None] * n,
            needs_review=np.zeros(n, bool), review_reason=[""] * n,
        )


def test_split_predictions_runs_every_box_mode_in_one_call(tmp_path: Path) -> None:
    samples = []
    for i, width in enumerate((13, 16, 20)):
        Image.fromarray(np.zeros((10, width, 3), np.uint8)).save(tmp_path / f"{i}.png")
        samples.append(SimpleNamespace(path=tmp_path / f"{i}.png", bbox=[i, 0.0, 5.0, 6.0]))
    predictor = BoxEchoPredictor()
    by_mode = split_predictions(predictor, samples, BOX_MODES)
    assert predictor.calls == [9] and list(by_mode) == list(BOX_MODES)
    for mode, p in by_mode.items():
        assert len(p) == 3 and p.fine == [taxonomy.FINE[1], taxonomy.FINE[4], taxonomy.FINE[8]], mode  # in the samples' order
    np.testing.assert_array_equal(by_mode["annotated"].boxes, [s.bbox for s in samples])
    np.testing.assert_array_equal(by_mode["automatic"].boxes, [[1, 2, 3, 4]] * 3)
    np.testing.assert_array_equal(by_mode["whole image"].boxes, [[0, 0, w, 10] for w in (13, 16, 20)])
    assert by_mode["automatic"].box_source == ["automatic"] * 3 and by_mode["annotated"].box_source == ["given"] * 3
    assert list(split_predictions(predictor, samples, ["automatic"])) == ["automatic"] and predictor.calls[-1] == 3
    for bad in (["sideways"], [], ["automatic", "automatic"]):
        with pytest.raises(ValueError, match="box modes"):
            split_predictions(predictor, samples, bad)


def test_predictions_take_rows_of_every_field() -> None:
    p = BoxEchoPredictor().predict([np.zeros((4, w, 3), np.uint8) for w in (1, 2, 3)], np.full((3, 4), np.nan))
    q = p.take([2, 0])
    assert q.fine == [taxonomy.FINE[3], taxonomy.FINE[1]] and q.fine_id.tolist() == [3, 1] and q.calibrated is False
    assert q.keypoints_2d.shape == (2, 17, 2) and q.coarse_set == [[], []] and len(q) == 2
    with pytest.raises(IndexError, match="rows"):
        p.take([3])


def _pred(coarse: list[int], fine: list[int], boxes: np.ndarray | None = None) -> SimpleNamespace:
    n = len(fine)
    return SimpleNamespace(coarse_id=np.array(coarse), fine_id=np.array(fine), no_infant=np.zeros(n, bool),
                           boxes=np.zeros((n, 4)) + [0, 0, 10, 10] if boxes is None else boxes)


def test_box_study_counts_and_pairs() -> None:
    samples = [SimpleNamespace(coarse_id=0, fine_id=f, bbox=[0, 0, 10, 10]) for f in (0, 1, 2, 0)]
    preds = {"annotated": _pred([0, 0, 0, 0], [0, 1, 2, 0]),  # all fine right
             "automatic": _pred([0, 0, 0, 1], [0, 1, 2, 3], np.array([[0, 0, 10, 10], [0, 0, 5, 10], [0, 0, 10, 10], [5, 5, 10, 10]], float)),
             "whole image": _pred([1, 1, 0, 0], [5, 5, 2, 0])}
    record = box_study(preds, samples, seed=0)
    assert record["top1"]["annotated"] == {"coarse": 100.0, "fine": 100.0}
    assert record["top1"]["automatic"] == {"coarse": 75.0, "fine": 75.0}
    assert record["top1"]["whole image"] == {"coarse": 50.0, "fine": 50.0}
    diffs = {c["name"]: c for c in record["comparisons"]}
    assert diffs["automatic vs annotated boxes (fine)"]["difference"] == -25.0
    assert diffs["whole image vs annotated boxes (coarse)"]["a_only"] == 2
    assert record["automatic_iou"]["mean"] == pytest.approx((1 + 0.5 + 1 + 25 / 175) / 4, abs=1e-3)
    with pytest.raises(ValueError, match="annotated"):
        box_study({"automatic": preds["automatic"]}, samples)


def test_images_without_an_infant_are_fixed_by_the_seed() -> None:
    a, b = images_without_an_infant(0), images_without_an_infant(0)
    assert list(a) == ["black", "white", "grey", "noise", "smooth noise", "8 x 8 thumbnail"]
    assert all(np.array_equal(a[k], b[k]) and a[k].dtype == np.uint8 for k in a)
    assert a["8 x 8 thumbnail"].shape == (8, 8, 3) and a["noise"].shape == (224, 224, 3)


class PixelPredictor:
    """Calls an image "Standing" when its top-left pixel is red (the upright test image has it
    there), "Prone Lying" otherwise; reads files as the real predictor does."""

    def predict(self, images, bboxes=None, batch_size=32):  # noqa: ANN001, ANN201
        from aims_lib.image_io import read_image

        arrays = [read_image(im) for im in images]
        return SimpleNamespace(fine=["Standing" if a[0, 0, 0] > 200 and a[0, 0, 1] < 50 else "Prone Lying" for a in arrays])


def test_orientation_check_reads_the_exif_tag(tmp_path: Path) -> None:
    image = np.zeros((30, 20, 3), np.uint8)
    image[:5, :5] = (255, 0, 0)  # a red corner marks "up"
    Image.fromarray(image).save(tmp_path / "upright.png")
    Image.fromarray(np.zeros((24, 24, 3), np.uint8)).save(tmp_path / "dark.png")  # "Prone Lying" in every turn
    samples = [SimpleNamespace(path=tmp_path / name, file_name=name) for name in ("upright.png", "dark.png")]
    calls = []

    class CountingPredictor(PixelPredictor):
        def predict(self, images, bboxes=None, batch_size=32):  # noqa: ANN001, ANN201
            calls.append(len(images))
            return super().predict(images, bboxes, batch_size)

    out = orientation_check(CountingPredictor(), samples, tmp_path / "copies")
    assert out["n"] == 2
    for tag in ("3", "6", "8"):  # the dark image agrees either way, the marked one only when the tag is read
        assert out["orientations"][tag] == {"agree_with_upright": 2, "agree_if_exif_ignored": 1}
    assert calls == [2 * (1 + 2 * 3)]  # one call: the upright images, the tagged files, their stored pixels
    with Image.open(tmp_path / "copies" / "upright_exif6.png") as im:
        assert im.size == (30, 20) and im.getexif()[0x0112] == 6  # stored turned, tagged
    with pytest.raises(ValueError, match="orientations"):
        orientation_check(PixelPredictor(), samples, tmp_path / "x", orientations=(2,))


def _scores(n: int, seed: int) -> RawScores:
    """Over-confident experts: labels drawn from softmax(z), the models report softmax(2.5 z)."""
    rng = np.random.default_rng(seed)
    groups = np.array(taxonomy.FINE_TO_COARSE_ID)
    z = rng.normal(0, 1.2, (n, taxonomy.NUM_FINE))
    true = np.exp(z) / np.exp(z).sum(1, keepdims=True)
    fine = np.array([rng.choice(taxonomy.NUM_FINE, p=p) for p in true])
    coarse = groups[fine]
    image = np.exp(2.5 * np.log(true @ np.eye(4)[groups] + 1e-9))
    image /= image.sum(1, keepdims=True)
    pose_log = 2.5 * z - np.log(np.exp(2.5 * z).sum(1, keepdims=True))
    q = image[:, groups] / np.bincount(groups, minlength=4)[groups]
    full = np.log(q) + 2.5 * z
    full -= np.log(np.exp(full).sum(1, keepdims=True))
    return RawScores(image, pose_log, full, coarse, fine)


def test_calibration_fitted_on_val_helps_on_test() -> None:
    val, test = _scores(600, 1), _scores(800, 2)
    calibration = fit_calibration(val, level=0.9)
    assert calibration.coarse_temperature > 1.5 and calibration.pose_temperature > 1.5  # over-confident: softened
    assert math.isfinite(calibration.coarse_threshold) and math.isfinite(calibration.fine_threshold)
    study = calibration_study(test, calibration, n_calibration=600, seed=0)
    for key in ("image_branch", "pose_branch", "full_model"):
        ece = study["models"][key]["ece"]
        assert ece["after"]["value"] < ece["before"]["value"], key
        assert study["models"][key]["ece_if_calibrated"]["after"]["p"] > 0.01, key  # consistent with calibration
    conformal = study["conformal"]
    low, high = conformal["coverage_range"]
    assert low < 0.9 < high and conformal["calibration_images"] == 600
    for level in ("coarse", "fine"):
        assert 0.85 <= conformal[level]["coverage"] <= 0.95, level
    assert sum(a["share"] for a in study["answers"].values()) == pytest.approx(1.0, abs=1e-3)
    after = model_probabilities(test, calibration)
    np.testing.assert_allclose(after["full_model"].sum(1), 1.0, rtol=1e-9)
    assert set(study["curves"]) == {"image branch", "pose branch", "full model", "full model, coarse marginal"}


def test_raw_scores_needs_uncalibrated_outputs() -> None:
    with pytest.raises(ValueError, match="uncalibrated"):
        raw_scores(SimpleNamespace(calibrated=True), None, [])  # type: ignore[arg-type]
