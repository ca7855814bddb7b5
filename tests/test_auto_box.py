"""Automatic boxes: the box around confident keypoints, and "no infant found"."""

from __future__ import annotations

import numpy as np
import pytest

from aims_lib.auto_box import find_infants, keypoint_boxes, whole_image_boxes


def test_keypoint_box_by_hand() -> None:
    keypoints = np.zeros((1, 17, 2))
    keypoints[0, 0], keypoints[0, 1], keypoints[0, 2] = (10, 20), (30, 60), (500, 500)
    scores = np.zeros((1, 17))
    scores[0, :2] = 0.9  # the third keypoint (far away) is not confident
    box = keypoint_boxes(keypoints, scores, np.array([[100, 100]]), margin=0.1)
    # L = max(20, 40) = 40, pad 4: x 6..34, y 16..64
    np.testing.assert_allclose(box, [[6, 16, 28, 48]])


def test_keypoint_box_clipped_and_empty() -> None:
    keypoints = np.zeros((2, 17, 2))
    keypoints[0, 0], keypoints[0, 1] = (1, 2), (50, 98)
    scores = np.zeros((2, 17))
    scores[0, :2] = 0.5
    boxes = keypoint_boxes(keypoints, scores, np.array([[60, 100], [40, 30]]), margin=0.2)
    # L = 96, pad 19.2: clipped to the image, 0..60 and 0..100
    np.testing.assert_allclose(boxes[0], [0, 0, 60, 100])
    np.testing.assert_allclose(boxes[1], [0, 0, 40, 30])  # no confident keypoint: the whole image
    np.testing.assert_allclose(whole_image_boxes(np.array([[40, 30]])), [[0, 0, 40, 30]])


def test_keypoint_box_bad_shapes() -> None:
    with pytest.raises(ValueError, match="do not fit"):
        keypoint_boxes(np.zeros((2, 17, 2)), np.zeros((2, 17)), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="margin"):
        keypoint_boxes(np.zeros((1, 17, 2)), np.zeros((1, 17)), np.zeros((1, 2)), margin=-0.1)


class FakeEstimator:
    """Sees an infant (joints spread over x 40..80, y 50..70) in images that are not blank, with
    scores that rise when the box is tight around it (as a top-down model's do)."""

    def __init__(self) -> None:
        self.calls: list[np.ndarray] = []

    def predict(self, images, bboxes, batch_size=8):  # noqa: ANN001, ANN201 - the protocol's signature
        bboxes = np.asarray(bboxes, dtype=float)
        self.calls.append(bboxes.copy())
        n = len(images)
        keypoints = np.tile(np.stack([np.linspace(40, 80, 17), np.linspace(50, 70, 17)], axis=1), (n, 1, 1))
        tight = np.where(bboxes[:, 2] < 100, 0.9, 0.4)
        scores = np.array([[t] * 17 if img.std() > 0 else [0.05] * 17 for img, t in zip(images, tight)])
        return keypoints, scores


def test_find_infants() -> None:
    rng = np.random.default_rng(0)
    infant = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    blank = np.zeros((120, 160, 3), np.uint8)
    thumb = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
    estimator = FakeEstimator()
    found = find_infants(estimator, [infant, blank, thumb], passes=2, margin=0.1)
    np.testing.assert_array_equal(found.found, [True, False, False])
    np.testing.assert_allclose(found.boxes[0], [36, 46, 48, 28])  # L = 40, pad 4
    np.testing.assert_allclose(found.boxes[1], [0, 0, 160, 120])
    np.testing.assert_allclose(found.boxes[2], [0, 0, 8, 8])
    assert found.reason[0] == "" and "no infant found" in found.reason[1] and "too small" in found.reason[2]
    assert found.confident.tolist() == [17, 0, 0]
    assert len(estimator.calls) == 2  # one round per pass; the thumbnail never reaches the estimator
    assert len(estimator.calls[0]) == 2  # the blank image is read, the thumbnail (< MIN_SIDE) is not
    np.testing.assert_allclose(estimator.calls[1][0], found.boxes[0])  # the second pass reads the first's box
    with pytest.raises(ValueError, match="passes"):
        find_infants(estimator, [infant], passes=0)
