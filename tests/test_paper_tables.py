"""The paper's numbers and the tables that show ours beside them."""

from __future__ import annotations

import numpy as np

from aims_lib.paper_tables import PAPER_COMPARISONS, interval_rows, paper_difference
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


def test_paper_differences_come_from_the_paper_tables() -> None:
    assert paper_difference("LMMD vs source-only, coarse, synthetic") == 15.0  # 60.3 - 45.3
    assert paper_difference("full model vs pose branch, fine") == 8.8  # 76.8 - 68.0
    assert paper_difference("pose branch vs image branch (LMMD), coarse") == -2.0  # 83.3 - 85.3
    assert paper_difference("something else") is None
    assert len(PAPER_COMPARISONS) == 6
