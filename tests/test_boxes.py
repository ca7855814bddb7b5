"""The one box rule: x, y, w, h, finite, positive width and height; NaN rows only where allowed."""

from __future__ import annotations

import numpy as np
import pytest

from aims_lib.boxes import check_boxes, invalid_boxes

NAN = float("nan")


def test_invalid_rows_by_hand() -> None:
    boxes = np.array([
        [0, 0, 1, 1],  # a box
        [-5, -5, 0.5, 2],  # a box: x, y may be negative (a box reaching past the image's edge)
        [0, 0, 0, 1],  # no width
        [0, 0, 1, -1],  # negative height
        [np.inf, 0, 1, 1],  # not finite
        [NAN, NAN, NAN, NAN],  # no box
    ], dtype=np.float64)
    np.testing.assert_array_equal(invalid_boxes(boxes), [False, False, True, True, True, True])


def test_boxes_come_back_as_a_new_float_array() -> None:
    given = np.array([[1, 2, 3, 4], [0, 0, 10, 5]], dtype=np.int64)
    boxes = check_boxes(given, 2)
    assert boxes.dtype == np.float64 and boxes.shape == (2, 4)
    np.testing.assert_array_equal(boxes, [[1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 10.0, 5.0]])
    floats = boxes.copy()
    assert check_boxes(floats, 2) is not floats  # the predictor fills missing rows in its copy
    np.testing.assert_array_equal(check_boxes([[1, 2, 3, 4]], 1), [[1.0, 2.0, 3.0, 4.0]])


@pytest.mark.parametrize(("bboxes", "n", "message"), [
    ([1, 2, 3, 4], 1, r"shape \(N, 4\) as x, y, w, h; got \(4,\)"),
    ([[1, 2, 3]], 1, r"got \(1, 3\)"),
    ([[0, 0, 1, 1]], 2, "got 2 images but 1 bboxes"),
    ([[0, 0, 1, 1], [3, 4, 0, 6]], 2, r"bboxes \[1\] are not finite or have no area.*positive width.*\[\[3.0, 4.0, 0.0, 6.0\]\]"),
    ([[0, 0, np.inf, 1], [0, 0, 1, 1], [0, 0, 1, -2]], 3, r"bboxes \[0, 2\]"),
    ([[NAN] * 4], 1, r"bboxes \[0\]"),  # a row of NaN is a missing box only where allowed
])
def test_bad_boxes_are_named(bboxes: list, n: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_boxes(bboxes, n)


def test_rows_of_nan_pass_where_missing_boxes_are_allowed() -> None:
    boxes = check_boxes([[NAN] * 4, [1, 2, 3, 4]], 2, allow_missing=True)
    assert np.isnan(boxes[0]).all()
    np.testing.assert_array_equal(boxes[1], [1, 2, 3, 4])
    with pytest.raises(ValueError, match=r"bboxes \[0\].*a row of NaN: find the infant.*\[\[nan, 2.0, 3.0, 4.0\]\]"):
        check_boxes([[NAN, 2, 3, 4], [1, 2, 3, 4]], 2, allow_missing=True)  # partly NaN: a bad box, not a missing one
    with pytest.raises(ValueError, match=r"bboxes \[1\]"):
        check_boxes([[NAN] * 4, [1, 2, -3, 4]], 2, allow_missing=True)
