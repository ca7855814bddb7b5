"""Figures shared by the notebooks: galleries, keypoint overlays, 3D skeletons, histograms.

Every function returns a matplotlib Figure and draws nothing else; :func:`save_figure` writes it
atomically into a run's reports folder.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from aims_lib import taxonomy  # noqa: E402
from aims_lib.data.format import AimsDataset, Sample, atomic_write_bytes  # noqa: E402

#: Left limbs blue, right limbs orange, the midline grey: the usual keypoint colour code.
_LEFT, _RIGHT, _MID = "#1f77b4", "#ff7f0e", "#7f7f7f"


def _edge_colour(a: int, b: int) -> str:
    names = taxonomy.KEYPOINTS[a] + taxonomy.KEYPOINTS[b]
    if "left" in names and "right" not in names:
        return _LEFT
    if "right" in names and "left" not in names:
        return _RIGHT
    return _MID


def save_figure(fig: Figure, path: str | Path, dpi: int = 110) -> Path:
    """Write a figure as PNG atomically (the reports folder never holds half a file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())
    return Path(path)


def draw_keypoints(
    ax: Axes, keypoints_2d: np.ndarray, visibility: np.ndarray | None = None, size: float = 12.0
) -> None:
    """Overlay a COCO-17 skeleton; occluded keypoints are hollow, unlabelled ones are skipped."""
    vis = np.full(len(keypoints_2d), 2) if visibility is None else np.asarray(visibility)
    for a, b in taxonomy.SKELETON:
        if vis[a] > 0 and vis[b] > 0:
            ax.plot(*keypoints_2d[[a, b]].T, color=_edge_colour(a, b), lw=1.5, alpha=0.9)
    for flag, face in ((2, "white"), (1, "none")):
        sel = vis == flag
        ax.scatter(*keypoints_2d[sel].T, s=size, facecolors=face, edgecolors="black", linewidths=0.8, zorder=3)


def plot_image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 6,
    keypoints: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    cell_inches: float = 1.9,
) -> Figure:
    """Images in a grid, optionally with a keypoint overlay (``(xy, visibility)``) each."""
    n = len(images)
    nrows = max(1, -(-n // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell_inches * ncols, cell_inches * nrows * 1.08), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        ax.imshow(images[i])
        if keypoints is not None:
            draw_keypoints(ax, *keypoints[i])
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def plot_skeletons_3d(
    skeletons: Sequence[np.ndarray], titles: Sequence[str] | None = None, ncols: int = 6, up_axis: int = 1
) -> Figure:
    """Normalised 3D skeletons (pelvis at the origin), drawn with the world's up axis up."""
    n = len(skeletons)
    nrows = max(1, -(-n // ncols))
    fig = plt.figure(figsize=(2.2 * ncols, 2.3 * nrows))
    order = [0, 2, 1] if up_axis == 1 else [0, 1, 2]  # matplotlib's z is up
    for i, kp in enumerate(skeletons):
        ax = fig.add_subplot(nrows, ncols, i + 1, projection="3d")
        p = np.asarray(kp)[:, order]
        for a, b in taxonomy.SKELETON:
            ax.plot(*p[[a, b]].T, color=_edge_colour(a, b), lw=1.5)
        ax.scatter(*p.T, s=4, color="black")
        lim = max(1.2, float(np.abs(p).max()))
        ax.set(xlim=(-lim, lim), ylim=(-lim, lim), zlim=(-lim, lim), xticks=[], yticks=[], zticks=[])
        ax.view_init(elev=15, azim=-60)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    fig.tight_layout()
    return fig


def first_of_each_class(dataset: AimsDataset, domain: str, split: str | None = None) -> list[Sample]:
    """The first sample of every fine class (in taxonomy order) of a domain, where there is one."""
    first: dict[str, Sample] = {}
    for s in dataset.select(split, domain):
        first.setdefault(s.fine, s)
    return [first[f] for f in taxonomy.FINE if f in first]


def plot_class_gallery(dataset: AimsDataset, domain: str, keypoints: bool = False, ncols: int = 6) -> Figure:
    """One image per fine class of a domain, optionally with its 2D keypoints."""
    from aims_lib.data.torch_datasets import read_image

    samples = first_of_each_class(dataset, domain)
    images = [np.asarray(read_image(s)) for s in samples]
    kps = [(s.keypoints_2d, s.visibility) for s in samples] if keypoints else None
    return plot_image_grid(images, [f"{s.fine}\n({domain})" for s in samples], ncols=ncols, keypoints=kps)


def plot_label_histograms(dataset: AimsDataset) -> Figure:
    """Fine-class counts per domain and split (left) and coarse counts per domain (right)."""
    df = dataset.to_frame()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [3, 1]})
    groups = [(d, s) for d in ("synthetic", "real") for s in ("train", "val", "test")
              if ((df.domain == d) & (df.split == s)).any()]
    width = 0.8 / max(1, len(groups))
    x = np.arange(taxonomy.NUM_FINE)
    for k, (d, s) in enumerate(groups):
        counts = df[(df.domain == d) & (df.split == s)].fine.value_counts().reindex(taxonomy.FINE, fill_value=0)
        ax1.bar(x + k * width, counts.values, width, label=f"{d} / {s}")
    ax1.set_xticks(x + 0.4 - width / 2, taxonomy.FINE, rotation=40, ha="right", fontsize=8)
    ax1.set(ylabel="images", title="fine classes by domain and split")
    ax1.legend(fontsize=8)
    xc = np.arange(taxonomy.NUM_COARSE)
    for k, d in enumerate(("synthetic", "real")):
        counts = df[df.domain == d].coarse.value_counts().reindex(taxonomy.COARSE, fill_value=0)
        ax2.bar(xc + k * 0.4, counts.values, 0.4, label=d)
    ax2.set_xticks(xc + 0.2, taxonomy.COARSE, rotation=30, fontsize=8)
    ax2.set(title="coarse classes by domain")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_training_curves(histories: dict[str, list[dict]]) -> Figure:
    """Per-epoch source cross-entropy, LMMD and real-val accuracy of several runs."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for name, hist in histories.items():
        epochs = [h["epoch"] for h in hist]
        for ax, key in zip(axes, ("ce", "lmmd", "val_acc")):
            if key == "lmmd" and not any(h[key] for h in hist):
                continue
            ax.plot(epochs, [h[key] for h in hist], marker="o", ms=3, label=name)
    for ax, title in zip(axes, ("source cross-entropy", "LMMD", "real-val top-1 (%)")):
        ax.set(title=title, xlabel="epoch")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_feature_maps(
    embeddings: dict[str, np.ndarray], domains: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> Figure:
    """2-D feature maps (e.g. t-SNE) of several models, coloured by domain (top) and class (bottom)."""
    n = len(embeddings)
    fig, axes = plt.subplots(2, n, figsize=(5 * n, 9), squeeze=False)
    cmap = plt.get_cmap("tab20" if len(class_names) > 10 else "tab10")
    for col, (name, emb) in enumerate(embeddings.items()):
        for d, colour in (("synthetic", "#999999"), ("real", "#d62728")):
            sel = domains == d
            axes[0, col].scatter(*emb[sel].T, s=5, c=colour, alpha=0.6, label=d)
        for c, cname in enumerate(class_names):
            sel = labels == c
            axes[1, col].scatter(*emb[sel].T, s=5, color=cmap(c), alpha=0.7, label=cname)
        axes[0, col].set_title(f"{name}: by domain")
        axes[1, col].set_title(f"{name}: by class")
        for ax in axes[:, col]:
            ax.set(xticks=[], yticks=[])
    axes[0, 0].legend(fontsize=8, markerscale=3)
    axes[1, -1].legend(fontsize=7, markerscale=3, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    return fig

