"""The benchmark card: its pieces on hand-made cases, the whole card on the tiny fixture."""

import numpy as np
import pytest
from PIL import Image

from aims_lib.card import CONTEXT_GREY, PROBES, benchmark_card, grey_out_box, linear_probe
from aims_lib.data import load_dataset


def test_grey_out_box_fills_the_square_around_the_box():
    image = Image.new("RGB", (12, 10), (255, 0, 0))
    out = np.asarray(grey_out_box(image, np.array([2.0, 4.0, 4.0, 2.0])))  # a 4 x 2 box -> a 4 x 4 square
    assert (out[3:8, 2:7] == CONTEXT_GREY).all()  # rows 3-7: the square's side follows the longer side
    assert (out[2, 4] == (255, 0, 0)).all() and (out[8, 4] == (255, 0, 0)).all() and (out[5, 1] == (255, 0, 0)).all()
    assert (out[5, 7] == (255, 0, 0)).all()
    assert (np.asarray(image)[4, 4] == (255, 0, 0)).all()  # the input is untouched


def test_linear_probe_separates_separable_classes_and_handles_one_class():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(-3, 1, (30, 5)), rng.normal(3, 1, (30, 5))])
    y = np.repeat([0, 1], 30)
    assert (linear_probe(x, y, np.array([[-3.0] * 5, [3.0] * 5])) == [0, 1]).all()
    assert (linear_probe(x[:30], y[:30], x[:4]) == 0).all()
    rare = np.concatenate([y[:29], [1]])  # one member of class 1: no 3-fold selection, still fits
    assert linear_probe(x[:30], rare, x[:2]).shape == (2,)


def test_card_refuses_too_little_data(aims_tiny):
    """The whole card runs in the smoke notebook test (tests/test_notebooks.py)."""
    ds = load_dataset(aims_tiny)
    with pytest.raises(ValueError, match="at least 10 synthetic images"):
        benchmark_card(ds, image_size=32)


def test_validity_checks_on_a_hand_made_card():
    from aims_lib.card import BenchmarkCard, ProbeResult

    acc = {"S->S": (85, 70), "T->T": (76, 55), "S->T": (50, 30), "S->T all": (55, 31), "S+T->T": (80, 60),
           "context": (40, 20)}
    results = tuple(ProbeResult(p, lv, float(acc[p][i]), 0.0, 100.0, 33.0 if lv == "coarse" else 8.0, 10, 10)
                    for p in PROBES for i, lv in enumerate(("coarse", "fine")))
    rows = {r["check"]: r for r in BenchmarkCard(results, 224, "efficientnet_lite0").validity()}
    # the gap pairs T->T with S->T on the same (all real) images; target labels help over S->T on test
    assert rows["T->T minus S->T all, coarse"]["value"] == 21.0 and rows["T->T minus S->T all, coarse"]["passed"]
    assert rows["S+T->T minus S->T, coarse"]["value"] == 30.0
    assert rows["context above majority, coarse"]["value"] == 7.0 and rows["context above majority, coarse"]["passed"]
    assert rows["context above majority, fine"]["value"] == 12.0 and not rows["context above majority, fine"]["passed"]
    assert all(r["passed"] for k, r in rows.items() if k != "context above majority, fine")


def test_photo_subsets_read_the_generators_photo_record():
    from types import SimpleNamespace

    from aims_lib.card import photo_subsets

    raw = {"annotations": [{"image_id": 1, "photo": {"shot": "close", "occluder": "blanket"}},
                           {"image_id": 2, "photo": {"shot": "standard", "occluder": None}},
                           {"image_id": 3}]}
    ds = SimpleNamespace(raw=raw)
    one, two, three = (SimpleNamespace(image_id=i) for i in (1, 2, 3))
    assert photo_subsets(ds, [two, one]) == ["standard, clear", "close, occluded"]
    assert photo_subsets(ds, [one, three]) is None  # a real photograph has no record: no breakdown


def test_subset_rows_pair_each_subsets_levels():
    from aims_lib.card import BenchmarkCard, SubsetResult

    subsets = (SubsetResult("close, clear", "coarse", 10, 70.0, (40.0, 90.0), 50.0, (20.0, 80.0)),
               SubsetResult("close, clear", "fine", 10, 40.0, (10.0, 70.0), 20.0, (0.0, 50.0)))
    rows = BenchmarkCard((), 224, "efficientnet_lite0", subsets=subsets).subset_rows()
    assert rows == [{"photo subset": "close, clear", "real images": 10,
                     "T->T coarse %": "70.0 [40.0, 90.0]", "S->T coarse %": "50.0 [20.0, 80.0]",
                     "T->T fine %": "40.0 [10.0, 70.0]", "S->T fine %": "20.0 [0.0, 50.0]"}]


def test_ceiling_learning_curve_counts_and_bad_fractions():
    from aims_lib.card import ceiling_learning_curve

    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 40)
    features = rng.normal(scale=0.1, size=(80, 5)) + labels[:, None] * 4.0  # separable: every share learns it
    curve = ceiling_learning_curve(features, labels, fractions=(0.5, 1.0), folds=4)
    assert [n for n, _ in curve] == [30, 60]  # 60 training images per fold, half of them
    assert all(acc == 100.0 for _, acc in curve)
    with pytest.raises(ValueError, match="fractions"):
        ceiling_learning_curve(features, labels, fractions=(0.0,))
