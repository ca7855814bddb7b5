"""Tables with intervals and the classification report."""

from __future__ import annotations

import numpy as np

from aims_lib import taxonomy
from aims_lib.evaluate import classification_report, interval_rows
from aims_lib.statistics import accuracy, summarise_seeds


def test_interval_rows_show_intervals_seeds_and_the_paper() -> None:
    labels = np.array([0, 1, 1, 1])
    one = summarise_seeds({0: accuracy(np.array([0, 1, 1, 0]), labels, 2)}, headline=0)
    two = summarise_seeds({0: accuracy(np.array([0, 1, 1, 0]), labels, 2), 1: accuracy(np.array([1, 1, 1, 1]), labels, 2)}, 0)
    rows = interval_rows({"synthetic": {"image": one}, "real": {"image": two}}, {"synthetic": {"image": 45.3}})
    assert rows[0]["method"] == "Image branch" and rows[0]["top-1 %"] == 75.0 and rows[0]["paper"] == 45.3
    assert rows[0]["95% CI"] == f"[{one['top1_low']:.1f}, {one['top1_high']:.1f}]" and rows[0]["seeds: mean ± sd"] == "–"
    assert rows[0]["macro %"] == round((100 + 200 / 3) / 2, 1)  # recall 1/1 and 2/3
    assert rows[1]["seeds: mean ± sd"] == "75.0 ± 0.0 (2)" and np.isnan(rows[1]["paper"])


def test_classification_report_macro_is_the_mean_of_present_classes() -> None:
    fine_true = np.array([0, 0, 1, 5])
    fine_pred = np.array([0, 1, 1, 4])
    coarse = np.array(taxonomy.FINE_TO_COARSE_ID)
    report = classification_report(coarse[fine_pred], fine_pred, coarse[fine_true], fine_true)
    assert report["fine"]["top1"] == 50.0
    assert report["fine"]["macro"] == (50.0 + 100.0 + 0.0) / 3  # classes 0, 1 and 5; absent ones do not count
    assert report["fine"]["per_class"][taxonomy.FINE[2]] is None


def test_confusion_pairs_rebuild_the_matrix() -> None:
    from aims_lib.evaluate import confusion_matrix, confusion_pairs

    true = np.array([0, 0, 1, 2, 2, 2])
    pred = np.array([0, 1, 1, 2, 0, 2])
    m = confusion_matrix(pred, true, 3)
    p2, t2 = confusion_pairs(m)
    np.testing.assert_array_equal(confusion_matrix(p2, t2, 3), m)
    assert (p2 == t2).mean() == (pred == true).mean()


def test_paper_differences_come_from_the_paper_tables() -> None:
    from aims_lib.evaluate import PAPER_COMPARISONS, paper_difference

    assert paper_difference("LMMD vs source-only, coarse, synthetic") == 15.0  # 60.3 - 45.3
    assert paper_difference("full model vs pose branch, fine") == 8.8  # 76.8 - 68.0
    assert paper_difference("pose branch vs image branch (LMMD), coarse") == -2.0  # 83.3 - 85.3
    assert paper_difference("something else") is None
    assert len(PAPER_COMPARISONS) == 6
