"""The explorer (aims_lib.explore): selection, figures, loading a finished run, the widget app.

Everything runs on the 12-image fixture ``aims_tiny`` (image k has fine class k) with outputs
made by hand, so that every selection is known in advance; nothing is trained.
:func:`write_fake_run` lays out a finished run's files as notebooks 02-04 and 06 do (the
browser test serves the explorer on one).
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.colors import to_hex
from PIL import Image
from scipy.special import log_softmax

from aims_lib import taxonomy
from aims_lib.calibration import Calibration
from aims_lib.data.format import AimsDataset, load_dataset
from aims_lib.explore import (
    ALL, Explorer, ExplorerRun, Filters, MissingRunError, confusion, figure_png, load_run, plot_domain_pair,
    plot_image_view, plot_probabilities, plot_skeleton, save_montage, select, view_figures,
)
from aims_lib.explore.figures import TRUE_COLOUR, WRONG_COLOUR
from aims_lib.explore.run import IMAGE_RUN
from aims_lib.pose_branch.lifting import ground_truth_3d_camera

#: Hand-made answers for aims_tiny's rows 0-11 (true fine class = row): the full model errs on
#: rows 1 (within Prone), 6 (Rolling as Sitting w/ Support: across coarse) and 10 (within
#: Standing); the pose branch on row 4; the image branch (coarse) on row 6. Row 3's fit failed.
FULL_FINE = [0, 0, 2, 3, 4, 5, 7, 7, 8, 9, 11, 11]
POSE_FINE = [0, 1, 2, 3, 7, 5, 6, 7, 8, 9, 10, 11]
IMAGE_COARSE = [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3]
FAILED_ROW = 3


def one_hot_log(ids: list[int], k: int, margin: float = 4.0) -> np.ndarray:
    """Log-probabilities whose argmax is ``ids``."""
    return log_softmax(margin * np.eye(k)[ids], axis=1)


def tiny_run(ds: AimsDataset, calibration: Calibration | None = None) -> ExplorerRun:
    """The hand-made run of the module docstring."""
    n = len(ds.samples)
    keypoints_3d = ground_truth_3d_camera(ds.samples)
    keypoints_3d[FAILED_ROW] = np.nan
    failed = np.zeros(n, bool)
    failed[FAILED_ROW] = True
    keypoints_2d = np.stack([s.keypoints_2d for s in ds.samples]) + 1.0
    scores = np.full((n, 17), 0.9)
    scores[:, :5] = 0.1  # the head's keypoints below the overlay threshold
    return ExplorerRun(ds, 3.0 * np.eye(4)[IMAGE_COARSE], keypoints_2d, scores, keypoints_3d, failed,
                       keypoints_2d - 2.0, one_hot_log(POSE_FINE, 12), one_hot_log(FULL_FINE, 12), calibration)


@pytest.fixture
def ds(aims_tiny: Path) -> AimsDataset:
    return load_dataset(aims_tiny)


@pytest.fixture
def run(ds: AimsDataset) -> ExplorerRun:
    return tiny_run(ds)


def ids(run: ExplorerRun, rows: np.ndarray) -> list[int]:
    return [run.samples[r].image_id for r in rows]


# ----------------------------------------------------------------------------- selection


def test_filters_select_the_right_images(run: ExplorerRun) -> None:
    everything = Filters(split=ALL, domain=ALL)
    assert ids(run, select(run, everything)) == list(range(1, 13))
    assert ids(run, select(run, Filters(split="test", domain="real"))) == [7, 11]
    assert ids(run, select(run, Filters(split="train", domain="synthetic"))) == [3, 6, 9, 12]
    assert ids(run, select(run, Filters(split=ALL, domain=ALL, only_errors=True))) == [2, 7, 11]  # the full model's
    assert ids(run, select(run, Filters(split=ALL, domain=ALL, model="pose branch", only_errors=True))) == [5]
    assert ids(run, select(run, Filters(split=ALL, domain=ALL, level="coarse", only_errors=True))) == [7]
    assert ids(run, select(run, Filters(split=ALL, domain=ALL, model="image branch", level="coarse", only_errors=True))) == [7]
    assert ids(run, select(run, Filters(split=ALL, domain=ALL, true_class="Rolling"))) == [7]
    assert ids(run, select(run, Filters(split=ALL, domain=ALL, predicted_class="Sitting w/ Support"))) == [7, 8]
    assert ids(run, select(run, Filters(split=ALL, domain=ALL, level="coarse", true_class="Prone"))) == [1, 2, 3, 4]
    assert ids(run, select(run, Filters(split=ALL, domain="real", level="coarse", predicted_class="Sitting"))) == [7, 8, 10]
    assert ids(run, select(run, Filters(split=ALL, domain="synthetic", true_class="Rolling"))) == []


def test_a_confusion_cell_gives_exactly_its_images(run: ExplorerRun) -> None:
    for filters in (Filters(split=ALL, domain=ALL), Filters(split=ALL, domain="real", level="coarse", model="pose branch"),
                    Filters(split="train", domain=ALL, model="pose branch")):
        counts = confusion(run, filters)
        truth = run.truth(filters.level)
        predicted = run.predicted(filters.model, filters.level)
        base = select(run, filters)
        assert counts.sum() == len(base)
        union = []
        for i in range(len(counts)):
            for j in range(len(counts)):
                rows = select(run, filters.cell(i, j))
                assert len(rows) == counts[i, j]
                assert all(truth[r] == i and predicted[r] == j for r in rows)
                union += rows.tolist()
        assert sorted(union) == base.tolist()
    assert confusion(run, Filters(split=ALL, domain=ALL))[6, 7] == 1  # Rolling read as Sitting w/ Support
    # a cell ignores "only errors": the diagonal is selectable too
    assert ids(run, select(run, Filters(split=ALL, domain=ALL, only_errors=True).cell(0, 0))) == [1]


def test_each_model_answers_at_its_levels(run: ExplorerRun) -> None:
    assert run.predicted("pose branch", "coarse").tolist() == [taxonomy.FINE_TO_COARSE_ID[f] for f in POSE_FINE]
    assert run.predicted("image branch", "coarse").tolist() == IMAGE_COARSE
    assert run.answer(6, "full model", "fine")[0] == "Sitting w/ Support"
    label, prob = run.answer(6, "full model", "coarse")
    assert label == "Sitting" and prob == pytest.approx(run.probabilities()["full model/coarse"][6, 2])
    with pytest.raises(ValueError, match="'image branch' gives no fine label"):
        Filters(model="image branch", level="fine")
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        Filters(split="dev")
    with pytest.raises(ValueError, match="true_class 'Supine Lying' is no coarse label"):
        Filters(level="coarse", true_class="Supine Lying")
    with pytest.raises(ValueError, match="ExplorerRun.pose_log must be"):
        ExplorerRun(run.dataset, run.image_logits, run.keypoints_2d, run.keypoint_scores, run.keypoints_3d,
                    run.fit_failed, run.keypoints_2d_fit, run.pose_log[:3], run.full_log)


def test_calibrated_answers_follow_the_calibration(ds: AimsDataset) -> None:
    with pytest.raises(ValueError, match="run notebook 06_deployment.ipynb"):
        tiny_run(ds).probabilities(calibrated=True)
    # pose weight 0: the pooled full model is the image branch's prior alone, the first child of its coarse answer
    calibration = Calibration(coarse_temperature=2.0, pose_temperature=3.0, image_weight=1.0, pose_weight=0.0, level=0.9,
                              coarse_threshold=math.inf, fine_threshold=math.inf)
    run = tiny_run(ds, calibration)
    first_child = [taxonomy.FINE_TO_COARSE_ID.index(c) for c in IMAGE_COARSE]
    assert run.predicted("full model", "fine", calibrated=True).tolist() == first_child
    assert run.predicted("full model", "fine").tolist() == FULL_FINE
    raw, calibrated = run.probabilities()["image branch/coarse"], run.probabilities(True)["image branch/coarse"]
    assert (calibrated.max(1) < raw.max(1)).all() and (calibrated.argmax(1) == raw.argmax(1)).all()  # T = 2 softens
    errors = Filters(split=ALL, domain=ALL, only_errors=True, calibrated=True)
    assert ids(run, select(run, errors)) == [i + 1 for i in range(12) if first_child[i] != i]


# ----------------------------------------------------------------------------- figures


def test_image_view_shows_the_keypoints_and_the_fit(run: ExplorerRun) -> None:
    fig = plot_image_view(run, 0)
    ax = fig.axes[0]
    assert len(ax.images) == 1 and ax.images[0].get_array().shape[:2] == (40, 48)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == ["annotated", "estimated 2D (score ≥ 0.2)", "SMPLify fit"]
    points = [c.get_offsets() for c in ax.collections]
    assert len(points[0]) == int((run.samples[0].visibility > 0).sum())  # the labelled keypoints
    assert len(points[1]) == 12  # the 17 estimated minus the head's 5 below the threshold
    np.testing.assert_allclose(points[2], run.keypoints_2d_fit[0])
    assert "id 1: true Prone Lying" in ax.get_title()
    failed = plot_image_view(run, FAILED_ROW)
    assert "SMPLify fit (failed)" in [t.get_text() for t in failed.legends[0].get_texts()]


def test_skeleton_turns_with_the_view(run: ExplorerRun) -> None:
    fig = plot_skeleton(run, 0, elevation=30, azimuth=-120)
    (ax,) = fig.axes
    assert (ax.elev, ax.azim) == (30, -120) and ax.name == "3d"
    assert len(ax.lines) == 2 * len(taxonomy.SKELETON)  # the ground truth and the fit
    assert "elevation 30°, azimuth -120°" in ax.get_title()
    failed = plot_skeleton(run, FAILED_ROW)
    assert len(failed.axes[0].lines) == len(taxonomy.SKELETON) and "SMPLify fit failed" in failed.axes[0].get_title()


def test_probability_bars_show_each_answer(run: ExplorerRun) -> None:
    fig = plot_probabilities(run, 6)  # Rolling: image branch and full model wrong, pose branch right
    image_ax, pose_ax, full_ax = fig.axes
    probs = run.probabilities()
    for ax, key in ((image_ax, "image branch/coarse"), (pose_ax, "pose branch/fine"), (full_ax, "full model/fine")):
        np.testing.assert_allclose([p.get_width() for p in ax.patches], probs[key][6])
    assert image_ax.get_title().startswith("image branch: Sitting (")
    assert pose_ax.get_title().startswith("pose branch: Rolling (")
    assert full_ax.get_title().startswith("full model: Sitting w/ Support (") and "\ncoarse: Sitting (" in full_ax.get_title()
    colour = {ax: [to_hex(p.get_facecolor()) for p in ax.patches] for ax in fig.axes}
    green, red = TRUE_COLOUR, WRONG_COLOUR
    assert colour[full_ax][6] == green and colour[full_ax][7] == red and colour[pose_ax][6] == green
    assert colour[pose_ax].count(red) == 0 and colour[image_ax][1] == green and colour[image_ax][2] == red


def test_domain_pair_puts_the_class_in_both_domains(ds: AimsDataset, run: ExplorerRun) -> None:
    one = plot_domain_pair(run, 11)  # aims_tiny has Standing only in the synthetic domain
    assert len([ax for ax in one.axes if ax.images]) == 1 and "no real proxy image of this class" in one.axes[0].get_title()
    standing = ds.samples[11]
    real_standing = dataclasses.replace(standing, image_id=99, domain="real", split="test")
    wider = AimsDataset(ds.path, ds.info, (*ds.samples, real_standing), ds.raw)
    n = len(wider.samples)
    blank = ExplorerRun(wider, np.zeros((n, 4)), np.zeros((n, 17, 2)), np.ones((n, 17)), np.zeros((n, 17, 3)),
                        np.zeros(n, bool), np.zeros((n, 17, 2)), np.zeros((n, 12)), np.zeros((n, 12)))
    fig = plot_domain_pair(blank, 12)  # the real one: its synthetic partner goes left
    assert [ax.get_title() for ax in fig.axes if ax.images] == ["synthetic: Standing\nid 12 (train)",
                                                                "real proxy: Standing\nid 99 (test)"]
    imported = dataclasses.replace(blank, dataset=dataclasses.replace(wider, info={"source": "import"}))
    assert imported.real_name == "real" and "real: Standing" in plot_domain_pair(imported, 12).axes[1].get_title()


def test_montage_stacks_the_view(run: ExplorerRun, tmp_path: Path) -> None:
    figures = view_figures(run, 0, view=(10, 20))
    assert set(figures) == {"image", "skeleton", "probabilities", "domains"}
    sizes = {k: Image.open(io.BytesIO(figure_png(f))).size for k, f in view_figures(run, 0, view=(10, 20)).items()}
    path = save_montage([[figures["image"], figures["skeleton"], figures["domains"]], [figures["probabilities"]]],
                        tmp_path / "view.png")
    width, height = Image.open(path).size
    top = sizes["image"][0] + sizes["skeleton"][0] + sizes["domains"][0]
    assert width == max(top, sizes["probabilities"][0])
    assert height == max(sizes[k][1] for k in ("image", "skeleton", "domains")) + sizes["probabilities"][1]


# ----------------------------------------------------------------------------- a finished run on disk


def write_fake_run(reports: Path, ds: AimsDataset, calibration: bool = True) -> None:
    """The files notebooks 02-04 (and 06 with ``calibration``) leave in ``reports`` for ``ds``:
    the hand-made image-branch logits, 2D keypoints and fits of :func:`tiny_run`, and untrained
    HIPC checkpoints (seeded: their outputs are fixed)."""
    import torch

    from aims_lib.hipc import HIPC, HIPCTrainConfig, HIPCTrainResult, save_hipc
    from aims_lib.pose_branch.estimator import save_predictions
    from aims_lib.pose_branch.lifting import Pose3DSet

    run = tiny_run(ds)
    image_ids = [s.image_id for s in ds.samples]
    runs = reports / "runs"
    (runs / "image_coarse_fake").mkdir(parents=True)
    (reports / "02_image_branch.json").write_text(json.dumps({"runs_by_setting": {IMAGE_RUN: "image_coarse_fake"}}))
    order = np.arange(len(image_ids))[::-1]  # files need not follow the dataset's order
    np.savez(runs / "image_coarse_fake" / "outputs.npz", image_id=np.array(image_ids)[order], logits=run.image_logits[order])
    save_predictions(runs / "pose2d" / "keypoints2d.npz", image_ids, run.keypoints_2d, run.keypoint_scores)
    Pose3DSet(image_ids, run.keypoints_3d, run.fit_failed, np.where(run.fit_failed, np.nan, 1.5), "estimated", 0.1,
              keypoints_2d_fit=run.keypoints_2d_fit).save(runs / "pose3d_estimated.npz")
    torch.manual_seed(0)
    for name, hierarchical in (("hipc_pose.pt", False), ("hipc_full.pt", True)):
        model = HIPC(hierarchical=hierarchical).eval()
        save_hipc(runs / "full_model" / name, HIPCTrainResult(model, HIPCTrainConfig(hierarchical=hierarchical), [], 1,
                                                               math.nan, len(image_ids), 0, 0.0))
    if calibration:
        Calibration(1.5, 2.0, 1.0, 1.0, 0.9, math.inf, math.inf).save(runs / "full_model" / "calibration.json")


def test_load_run_reads_what_the_notebooks_saved(ds: AimsDataset, tmp_path: Path) -> None:
    from aims_lib.hipc import load_hipc, predict_hipc

    write_fake_run(tmp_path, ds)
    loaded, made = load_run(tmp_path, ds), tiny_run(ds)
    np.testing.assert_allclose(loaded.image_logits, made.image_logits)  # back in the dataset's order
    np.testing.assert_allclose(loaded.keypoints_2d, made.keypoints_2d)
    np.testing.assert_allclose(loaded.keypoints_2d_fit, made.keypoints_2d_fit)
    assert loaded.fit_failed.tolist() == made.fit_failed.tolist() and np.isnan(loaded.keypoints_3d[FAILED_ROW]).all()
    coarse = np.exp(log_softmax(made.image_logits, axis=1))
    full = predict_hipc(load_hipc(tmp_path / "runs" / "full_model" / "hipc_full.pt"), made.keypoints_3d, coarse)
    np.testing.assert_allclose(loaded.full_log, full, atol=1e-6)
    np.testing.assert_allclose(np.exp(loaded.pose_log[FAILED_ROW]), 1 / 12, atol=1e-6)  # a failed fit: uniform
    assert loaded.calibration == Calibration(1.5, 2.0, 1.0, 1.0, 0.9, math.inf, math.inf)
    assert loaded.probabilities(calibrated=True)["full model/fine"].shape == (12, 12)


@pytest.mark.parametrize("missing, notebook", [
    ("02_image_branch.json", "02_image_branch_lmmd.ipynb"),
    ("runs/image_coarse_fake/outputs.npz", "02_image_branch_lmmd.ipynb"),
    ("runs/pose2d/keypoints2d.npz", "03_pose_branch.ipynb"),
    ("runs/pose3d_estimated.npz", "03_pose_branch.ipynb"),
    ("runs/full_model/hipc_pose.pt", "04_hipc_full_model.ipynb"),
    ("runs/full_model/hipc_full.pt", "04_hipc_full_model.ipynb"),
])
def test_a_missing_piece_names_its_file_and_notebook(ds: AimsDataset, tmp_path: Path, missing: str, notebook: str) -> None:
    write_fake_run(tmp_path, ds)
    (tmp_path / missing).unlink()
    message = f"{tmp_path / missing} not found: run notebook {notebook} first"
    with pytest.raises(MissingRunError, match=re.escape(message)) as error:
        load_run(tmp_path, ds)
    assert isinstance(error.value, FileNotFoundError) and str(error.value).count("\n") == 0


def test_a_run_without_calibration_loads_raw(ds: AimsDataset, tmp_path: Path) -> None:
    write_fake_run(tmp_path, ds, calibration=False)
    (tmp_path / "02_image_branch.json").write_text(json.dumps({"runs_by_setting": {}}))
    with pytest.raises(MissingRunError, match=re.escape(f"names no '{IMAGE_RUN}' run: run notebook 02_image_branch_lmmd.ipynb")):
        load_run(tmp_path, ds)
    (tmp_path / "02_image_branch.json").write_text(json.dumps({"runs_by_setting": {IMAGE_RUN: "image_coarse_fake"}}))
    assert load_run(tmp_path, ds).calibration is None


# ----------------------------------------------------------------------------- the widget app


def test_the_app_follows_its_controls(ds: AimsDataset) -> None:
    calibration = Calibration(2.0, 3.0, 1.0, 0.0, 0.9, math.inf, math.inf)
    app = Explorer(tiny_run(ds, calibration), Filters(split=ALL, domain=ALL), start=2)
    assert app.index.max == 11 and app.row == 2 and "id 3 " in app.labels.value
    app.previous.click()
    app.previous.click()
    assert app.row == 0 and "id 1 " in app.labels.value
    app.previous.click()  # clamped at the first image
    assert app.row == 0
    first_image, first_labels = app.image.value, app.labels.value
    app.next.click()
    assert app.row == 1 and app.image.value != first_image and "id 2 " in app.labels.value
    app.true_class.value = "Rolling"
    assert app.rows.tolist() == [6] and app.index.max == 0 and "true: Rolling" in app.labels.value
    assert app.labels.value != first_labels and app.count.value == "1 of 1 images"
    app.true_class.value = "any"
    app.cells["fine"][6][7].click()  # the cell of Rolling read as Sitting w/ Support
    assert (app.true_class.value, app.predicted_class.value) == ("Rolling", "Sitting w/ Support") and app.rows.tolist() == [6]
    assert app.cells["fine"][6][7].button_style == "info" and app.cells["fine"][0][0].description == "1"
    app.level.value = "coarse"
    assert app.model.options == ("image branch", "pose branch", "full model") and app.true_class.value == "any"
    assert app.matrix.children[1] is not None and app.cells["coarse"][2][2].description == "3"
    app.model.value = "image branch"
    app.level.value = "fine"
    assert app.model.value == "full model"  # the image branch run read here gives no fine label
    app.only_errors.value = True
    assert app.rows.tolist() == [1, 6, 10]
    app.calibrated.value = True  # pose weight 0: the image branch's prior decides
    assert app.rows.tolist() == [i for i in range(12) if taxonomy.FINE_TO_COARSE_ID.index(IMAGE_COARSE[i]) != i]
    before = app.skeleton.value
    app.azimuth.value = 30
    assert app.skeleton.value != before
    app.split.value = "val"
    app.domain.value = "synthetic"
    assert app.rows.tolist() == [] and "No image matches" in app.labels.value and app.image.layout.display == "none"
