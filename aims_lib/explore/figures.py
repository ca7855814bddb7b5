"""The explorer's figures of one image: what each stage saw and what each model answered.

Each function returns a matplotlib Figure (drawn with :mod:`aims_lib.plots`' helpers where one
exists): the image with its annotated and estimated 2D keypoints and the SMPLify fit projected
back (:func:`plot_image_view`), the fit in 3D from any angle (:func:`plot_skeleton`), every
model's probabilities with the label it gives (:func:`plot_probabilities`), the same class in
the other domain (:func:`plot_domain_pair`). :func:`view_figures` draws them all and
:func:`save_montage` writes them as one PNG: the static view a saved notebook keeps.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from PIL import Image

from aims_lib.explore.run import LABELS, ExplorerRun
from aims_lib.files import atomic_write_bytes
from aims_lib.image_io import read_image
from aims_lib.plots import SKELETON_VIEWS, plot_image_grid, plot_keypoint_sets, plot_skeleton_views
from aims_lib.pose_branch.lifting import ground_truth_3d_camera
from aims_lib.predict import OVERLAY_SCORE

#: (elevation, azimuth) of the 3D view before it is turned: plots.SKELETON_VIEWS' oblique view.
DEFAULT_VIEW: Final[tuple[float, float]] = SKELETON_VIEWS[-1][:2]
#: Bar colours: the true class, a wrong predicted class, the others.
TRUE_COLOUR, WRONG_COLOUR, OTHER_COLOUR = "#2ca02c", "#d62728", "#b0b0b0"
#: The bar panels of :func:`plot_probabilities`: (model, level).
PANELS: Final[tuple[tuple[str, str], ...]] = (("image branch", "coarse"), ("pose branch", "fine"), ("full model", "fine"))


def figure_png(fig: Figure, dpi: int = 80) -> bytes:
    """A figure as PNG bytes; the figure is closed (a widget redraws many)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def describe(run: ExplorerRun, row: int) -> str:
    """One line naming image ``row``: id, domain, split, file and true labels."""
    s = run.samples[row]
    domain = run.real_name if s.domain == "real" else s.domain
    return f"id {s.image_id} · {domain} · {s.split} · {s.file_name} · true: {s.fine} ({s.coarse})"


def plot_image_view(run: ExplorerRun, row: int) -> Figure:
    """Image ``row`` with its annotated 2D keypoints, the estimated ones (score at least the
    predictor's :data:`~aims_lib.predict.OVERLAY_SCORE`) and the SMPLify fit projected into it."""
    s = run.samples[row]
    confident = run.keypoint_scores[row] >= OVERLAY_SCORE
    sets = {"annotated": np.where(s.visibility[:, None] > 0, s.keypoints_2d, np.nan),
            f"estimated 2D (score ≥ {OVERLAY_SCORE})": np.where(confident[:, None], run.keypoints_2d[row], np.nan),
            "SMPLify fit" + (" (failed)" if run.fit_failed[row] else ""): run.keypoints_2d_fit[row]}
    title = f"id {s.image_id}: true {s.fine}"
    return plot_keypoint_sets([read_image(s.path)], {k: [v] for k, v in sets.items()}, [title], ncols=1, cell_inches=3.6)


def plot_skeleton(run: ExplorerRun, row: int, elevation: float = DEFAULT_VIEW[0], azimuth: float = DEFAULT_VIEW[1]) -> Figure:
    """The SMPLify fit of image ``row`` in 3D (and its ground truth where the dataset has one),
    seen from ``elevation`` and ``azimuth`` (degrees, :func:`aims_lib.plots.plot_skeleton_views`)."""
    sets = {"SMPLify fit": run.keypoints_3d[row][None]}
    truth = ground_truth_3d_camera([run.samples[row]])
    if np.isfinite(truth).all():
        sets = {"ground truth": truth, **sets}
    name = "SMPLify fit failed" if run.fit_failed[row] else "3D keypoints"
    view = (elevation, azimuth, f"elevation {elevation:.0f}°, azimuth {azimuth:.0f}°")
    return plot_skeleton_views(sets, [name], views=(view,), cell_inches=3.4)


def plot_probabilities(run: ExplorerRun, row: int, calibrated: bool = False) -> Figure:
    """Bars of the image branch's coarse probabilities and the pose branch's and the full
    model's fine ones for image ``row``, the true class green, a wrong answer red; each panel's
    title gives the model's label and probability (the full model's coarse one too)."""
    probs = run.probabilities(calibrated)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(12.5, 3.4), width_ratios=[1, 1.35, 1.35])
    for ax, (model, level) in zip(axes, PANELS):
        p = probs[f"{model}/{level}"][row]
        true = int(run.truth(level)[row])
        label, prob = run.answer(row, model, level, calibrated)
        answer = LABELS[level].index(label)
        colours = [TRUE_COLOUR if k == true else WRONG_COLOUR if k == answer else OTHER_COLOUR for k in range(len(p))]
        ax.barh(range(len(p)), p, color=colours)
        ax.set_yticks(range(len(p)), LABELS[level], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.tick_params(axis="x", labelsize=7)
        title = f"{model}: {label} ({prob:.2f})"
        if model == "full model":
            title += "\ncoarse: {} ({:.2f})".format(*run.answer(row, model, "coarse", calibrated))
        ax.set_title(title, fontsize=8, color=TRUE_COLOUR if answer == true else WRONG_COLOUR)
    fig.suptitle(f"{'calibrated' if calibrated else 'raw'} probabilities; true: {run.samples[row].fine} "
                 f"({run.samples[row].coarse})", fontsize=9)
    fig.tight_layout()
    return fig


def plot_domain_pair(run: ExplorerRun, row: int) -> Figure:
    """Image ``row`` beside the first image of the other domain with the same fine class (the
    synthetic one left, the real or real-proxy one right), each with its annotated keypoints."""
    s = run.samples[row]
    other = "real" if s.domain == "synthetic" else "synthetic"
    partner = next((t for t in run.samples if t.domain == other and t.fine == s.fine), None)
    pair = [s] if partner is None else sorted([s, partner], key=lambda t: t.domain != "synthetic")
    titles = [f"{run.real_name if t.domain == 'real' else t.domain}: {t.fine}\nid {t.image_id} ({t.split})" for t in pair]
    if partner is None:
        titles[0] += f"\n(no {run.real_name if other == 'real' else other} image of this class)"
    return plot_image_grid([read_image(t.path) for t in pair], titles, ncols=2,
                           keypoints=[(t.keypoints_2d, t.visibility) for t in pair], cell_inches=2.8)


def view_figures(run: ExplorerRun, row: int, calibrated: bool = False,
                 view: tuple[float, float] = DEFAULT_VIEW) -> dict[str, Figure]:
    """Every figure of image ``row``, by name: ``image``, ``skeleton``, ``probabilities``, ``domains``."""
    return {"image": plot_image_view(run, row), "skeleton": plot_skeleton(run, row, *view),
            "probabilities": plot_probabilities(run, row, calibrated), "domains": plot_domain_pair(run, row)}


def save_montage(rows: Sequence[Sequence[Figure]], path: str | Path, dpi: int = 80) -> Path:
    """Write figures as one PNG, atomically: each inner sequence a row, left to right, on white
    (the figures are closed)."""
    images = [[Image.open(io.BytesIO(figure_png(fig, dpi))).convert("RGB") for fig in row] for row in rows]
    strips = []
    for row in images:
        strip = Image.new("RGB", (sum(i.width for i in row), max(i.height for i in row)), "white")
        x = 0
        for image in row:
            strip.paste(image, (x, 0))
            x += image.width
        strips.append(strip)
    sheet = Image.new("RGB", (max(s.width for s in strips), sum(s.height for s in strips)), "white")
    y = 0
    for strip in strips:
        sheet.paste(strip, (0, y))
        y += strip.height
    buf = io.BytesIO()
    sheet.save(buf, format="PNG")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)
