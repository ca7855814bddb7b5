"""Figures: written as PNG files, axes labelled, the paper's Fig. 5 boxes where the coarse groups are."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from aims_lib import taxonomy  # noqa: E402
from aims_lib.plots import (  # noqa: E402
    plot_confusion,
    plot_grouped_bars,
    plot_lambda_sweep,
    plot_training_curves,
    save_figure,
)


def test_save_figure_writes_a_png_atomically(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    path = save_figure(fig, tmp_path / "figures" / "line.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    assert [p.name for p in path.parent.iterdir()] == ["line.png"]  # no temporary file left
    plt.close(fig)


def test_confusion_has_grey_boxes_exactly_around_the_coarse_groups() -> None:
    cm = np.arange(144).reshape(12, 12)
    fig = plot_confusion(cm, taxonomy.FINE, title="fine")
    ax = fig.axes[0]
    boxes = [(p.get_x() + 0.5, p.get_width()) for p in ax.patches if isinstance(p, Rectangle) and not p.get_fill()]
    # Prone 4 (0-3), Supine 3 (4-6), Sitting 3 (7-9), Standing 2 (10-11): Table 1
    assert boxes == [(0.0, 4), (4.0, 3), (7.0, 3), (10.0, 2)]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("predicted", "true", "fine")
    assert [t.get_text() for t in ax.get_yticklabels()] == list(taxonomy.FINE)
    shown = ax.images[0].get_array()
    np.testing.assert_allclose(shown.sum(1), 100.0)  # rows as % of each true class
    plt.close(fig)


def test_confusion_refuses_labels_out_of_parent_order_and_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="ordered by coarse parent"):
        plot_confusion(np.eye(12), list(reversed(taxonomy.FINE[:4])) + list(taxonomy.FINE[4:8]) + list(taxonomy.FINE[:4]))
    with pytest.raises(ValueError, match="does not match 12 labels"):
        plot_confusion(np.eye(4), taxonomy.FINE)
    fig = plot_confusion(np.eye(4), taxonomy.COARSE, coarse_groups=False)
    assert not [p for p in fig.axes[0].patches if isinstance(p, Rectangle) and not p.get_fill()]
    plt.close(fig)


def test_grouped_bars_leave_missing_values_out_and_draw_intervals() -> None:
    groups = {"synthetic": {"ours": 60.0, "paper": 45.3}, "synthetic+real": {"ours": 74.0, "paper": None}}
    fig = plot_grouped_bars(groups, "Table 3", intervals={"synthetic": {"ours": (55.0, 66.0)}})
    ax = fig.axes[0]
    heights = sorted(round(p.get_height(), 1) for p in ax.patches)
    assert heights == [45.3, 60.0, 74.0]  # the missing paper value has no bar
    assert ax.get_ylabel() == "top-1 (%)" and ax.get_title() == "Table 3"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["synthetic", "synthetic+real"]
    assert ax.get_legend() is not None
    plt.close(fig)


def test_training_curves_plot_each_runs_own_adaptation_loss() -> None:
    runs = {
        "source-only": {"config": {"method": "source_only"},
                        "history": [{"epoch": 1, "ce": 1.0, "val_acc": 40.0}, {"epoch": 2, "ce": 0.8, "val_acc": 45.0}]},
        "LMMD": {"config": {"method": "lmmd"},
                 "history": [{"epoch": 1, "ce": 1.1, "lmmd": 0.3, "val_acc": 42.0},
                             {"epoch": 2, "ce": 0.9, "lmmd": 0.2, "val_acc": 50.0}]},
    }
    fig = plot_training_curves(runs)
    ce, adaptation, val = fig.axes
    assert len(ce.lines) == 2 and len(adaptation.lines) == 1 and len(val.lines) == 2
    assert list(adaptation.lines[0].get_ydata()) == [0.3, 0.2]
    assert adaptation.lines[0].get_color() == val.lines[1].get_color()  # one colour per run in every panel
    assert all(ax.get_xlabel() == "epoch" for ax in fig.axes)
    plt.close(fig)


def test_lambda_sweep_axes() -> None:
    fig = plot_lambda_sweep([0.0, 0.5, 1.0], {"real val": [50.0, 55.0, 52.0]}, "sweep")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "LMMD weight lambda" and ax.get_ylabel() == "coarse top-1 (%)"
    assert list(ax.lines[0].get_xdata()) == [0.0, 0.5, 1.0]
    plt.close(fig)


def test_image_grid_shows_each_image_once_with_its_title_and_blank_cells_after() -> None:
    from aims_lib.plots import plot_image_grid, plot_keypoint_sets

    images = [np.full((8, 10, 3), k * 40, np.uint8) for k in range(5)]
    fig = plot_image_grid(images, [f"image {k}" for k in range(5)], ncols=3)
    shown = [ax for ax in fig.axes if ax.images]
    assert len(fig.axes) == 6 and [ax.get_title() for ax in shown] == [f"image {k}" for k in range(5)]
    assert [int(ax.images[0].get_array()[0, 0, 0]) for ax in shown] == [0, 40, 80, 120, 160]
    plt.close(fig)
    fig = plot_image_grid(images[:2], boxes=[[((1, 2, 3, 4), "green"), ((0, 0, 5, 5), "orange")], []])
    rects = [p for p in fig.axes[0].patches]
    assert [(r.get_xy(), r.get_width(), r.get_height()) for r in rects] == [((1, 2), 3, 4), ((0, 0), 5, 5)]
    assert not fig.axes[1].patches
    plt.close(fig)
    sets = {"annotation": [np.zeros((17, 2))] * 5, "estimate": [np.ones((17, 2))] * 5}
    fig = plot_keypoint_sets(images, sets, ncols=3)
    assert len([ax for ax in fig.axes if ax.images]) == 5
    assert fig.axes[0].get_xlim() == (-0.5, 9.5) and fig.axes[0].get_ylim() == (7.5, -0.5)
    plt.close(fig)


def test_reliability_has_one_panel_per_model_with_its_ece_and_the_diagonal() -> None:
    from aims_lib.calibration import expected_calibration_error, reliability
    from aims_lib.plots import plot_reliability

    rng = np.random.default_rng(0)
    logits = 3.0 * rng.normal(size=(300, 4))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    probs[:5] = np.eye(4)[:1]  # confidence exactly 1: drawn as a point at x = 1
    labels = rng.integers(0, 4, 300)
    soft = (probs + 1.0) / 5.0
    fig = plot_reliability({"before": (probs, labels), "after": (soft, labels)}, bins=10, title="image branch")
    assert len(fig.axes) == 2 and fig.get_suptitle() == "image branch"
    before, after = fig.axes
    assert before.get_title() == f"before: ECE {100 * expected_calibration_error(probs, labels, 10):.2f} %"
    assert after.get_title().startswith("after: ECE ")
    assert [tuple(line.get_xdata()) for line in before.lines] == [(0, 1)]  # the diagonal
    assert len(before.patches) == int((reliability(probs, labels, 10)["count"][:-1] > 0).sum())  # non-empty bins
    assert [len(c.get_offsets()) for c in before.collections][-1] == 1 and len(after.collections) == 1
    assert all(p.get_width() == pytest.approx(0.1) for p in before.patches)
    plt.close(fig)
    fig = plot_reliability({f"m{k}": (probs, labels) for k in range(3)}, ncols=2)  # a grid, the spare cell blank
    assert len(fig.axes) == 4 and [ax.get_title().split(":")[0] for ax in fig.axes[:3]] == ["m0", "m1", "m2"]
    assert not fig.axes[3].axison and fig.axes[2].get_subplotspec().rowspan.start == 1
    plt.close(fig)


def test_risk_coverage_puts_the_aurc_in_the_legend() -> None:
    from aims_lib.plots import plot_risk_coverage

    curves = {"full model": (np.array([0.5, 1.0]), np.array([0.0, 0.5])), "image": (np.array([0.5, 1.0]), np.array([0.5, 0.5]))}
    fig = plot_risk_coverage(curves, "fine")
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and ax.get_title() == "fine" and ax.get_xlabel() == "coverage"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["full model (AURC 0.250)", "image (AURC 0.500)"]
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [0.0, 0.5])
    plt.close(fig)
