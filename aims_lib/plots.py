"""Figures shared by the notebooks: galleries, keypoint overlays, 3D skeletons, histograms.

Every function returns a matplotlib Figure and draws nothing else; :func:`save_figure` writes it
atomically into a run's reports folder.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg", force=False)
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from aims_lib import taxonomy  # noqa: E402
from aims_lib.card import LEVELS as CARD_LEVELS  # noqa: E402
from aims_lib.card import PROBES, BenchmarkCard  # noqa: E402
from aims_lib.data.format import DOMAINS, SPLITS, AimsDataset, Sample  # noqa: E402
from aims_lib.files import atomic_write_bytes  # noqa: E402

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


def _image_cells(
    images: Sequence[np.ndarray], titles: Sequence[str] | None, ncols: int, cell_inches: float, aspect: float
) -> tuple[Figure, list[Axes]]:
    """A grid of frameless axes, ``ncols`` wide, each showing one image (and its title); the axes
    of the images in their order (cells beyond the last image stay blank)."""
    nrows = max(1, -(-len(images) // ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell_inches * ncols, cell_inches * nrows * aspect), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    cells = list(axes.flat[: len(images)])
    for i, (ax, image) in enumerate(zip(cells, images)):
        ax.imshow(image)
        if titles is not None:
            ax.set_title(titles[i], fontsize=7)
    return fig, cells


def plot_image_grid(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int = 6,
    keypoints: Sequence[tuple[np.ndarray, np.ndarray]] | None = None,
    cell_inches: float = 1.9,
    boxes: Sequence[Sequence[tuple[Sequence[float], str]]] | None = None,
) -> Figure:
    """Images in a grid, optionally with a keypoint overlay (``(xy, visibility)``) and boxes
    (``(x, y, w, h)``, colour) each."""
    fig, cells = _image_cells(images, titles, ncols, cell_inches, aspect=1.08)
    for i, ax in enumerate(cells):
        if keypoints is not None:
            draw_keypoints(ax, *keypoints[i])
        for (x, y, w, h), colour in boxes[i] if boxes is not None else ():
            ax.add_patch(plt.Rectangle((x, y), w, h, fill=False, edgecolor=colour, linewidth=1.4))
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


def plot_class_gallery(
    dataset: AimsDataset, domain: str, keypoints: bool = False, ncols: int = 6, crops: bool = False
) -> Figure:
    """One image per fine class of a domain, optionally with its 2D keypoints; with ``crops``
    the square crop around the infant that the classifiers see instead of the whole image."""
    from aims_lib.data.torch_datasets import crop_to_box, read_image

    samples = first_of_each_class(dataset, domain)
    if crops:  # all at one size, as the classifiers see them
        images = [np.asarray(crop_to_box(read_image(s), s.bbox).resize((160, 160))) for s in samples]
    else:
        images = [np.asarray(read_image(s)) for s in samples]
    kps = [(s.keypoints_2d, s.visibility) for s in samples] if keypoints and not crops else None
    return plot_image_grid(images, [f"{s.fine}\n({domain})" for s in samples], ncols=ncols, keypoints=kps)


def plot_label_histograms(dataset: AimsDataset) -> Figure:
    """Fine-class counts per domain and split (left) and coarse counts per domain (right)."""
    df = dataset.to_frame()
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [3, 1]})
    groups = [(d, s) for d in DOMAINS for s in SPLITS
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
    for k, d in enumerate(DOMAINS):
        counts = df[df.domain == d].coarse.value_counts().reindex(taxonomy.COARSE, fill_value=0)
        ax2.bar(xc + k * 0.4, counts.values, 0.4, label=d)
    ax2.set_xticks(xc + 0.2, taxonomy.COARSE, rotation=30, fontsize=8)
    ax2.set(title="coarse classes by domain")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_training_curves(runs: dict[str, dict]) -> Figure:
    """Per-epoch source cross-entropy, adaptation loss and real-val accuracy of several runs, side
    by side; ``runs`` maps a label to a run's metrics (``config`` and ``history``). Each run's
    adaptation loss is the history entry named after its method (none for source-only)."""
    fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
    for k, (name, metrics) in enumerate(runs.items()):
        hist, method = metrics["history"], metrics["config"]["method"]
        epochs = [h["epoch"] for h in hist]
        for ax, key in zip(axes, ("ce", method, "val_acc")):
            if all(key in h for h in hist):  # one colour per run in every panel
                ax.plot(epochs, [h[key] for h in hist], marker="o", ms=3, color=f"C{k % 10}", label=name)
    for ax, title in zip(axes, ("source cross-entropy", "adaptation loss (each method's own)", "real-val top-1 (%)")):
        ax.set(title=title, xlabel="epoch")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


def _tsne(features: np.ndarray, seed: int, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of feature rows (PCA-initialised, seeded, so the same input gives the same map)."""
    from sklearn.manifold import TSNE

    n = len(features)
    if n < 5:
        raise ValueError(f"t-SNE needs at least 5 points, got {n}")
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (n - 1) / 3), init="pca", random_state=seed)
    return tsne.fit_transform(np.asarray(features, dtype=np.float32))


def plot_feature_maps(
    features: dict[str, np.ndarray], domains: np.ndarray, labels: np.ndarray, class_names: Sequence[str], seed: int = 0
) -> Figure:
    """2-D t-SNE maps (seeded) of several models' features of the same images, coloured by domain
    (top) and class (bottom)."""
    n = len(features)
    fig, axes = plt.subplots(2, n, figsize=(5 * n, 9), squeeze=False)
    cmap = plt.get_cmap("tab20" if len(class_names) > 10 else "tab10")
    for col, (name, emb) in enumerate((name, _tsne(f, seed)) for name, f in features.items()):
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



def _coarse_blocks(labels: Sequence[str]) -> list[tuple[int, int]]:
    """``(start, length)`` of each run of consecutive fine labels that share a coarse parent."""
    parents = [taxonomy.coarse_of(name) for name in labels]
    blocks: list[tuple[int, int]] = []
    start = 0
    for i in range(1, len(parents) + 1):
        if i == len(parents) or parents[i] != parents[start]:
            blocks.append((start, i - start))
            start = i
    return blocks


def plot_confusion(
    cm: np.ndarray,
    labels: Sequence[str],
    coarse_groups: bool = True,
    ax: Axes | None = None,
    title: str | None = None,
    normalise: bool = True,
) -> Figure:
    """A confusion matrix (rows true, columns predicted), as the paper's Fig. 5.

    ``normalise`` shows each row as the share of its true class (%, the counts in small print);
    ``coarse_groups`` draws grey boxes around the diagonal blocks of fine labels that share a
    coarse label (``labels`` must then be fine labels, grouped by parent as in
    :data:`taxonomy.FINE`): off-block cells are errors that cross coarse labels.
    """
    from matplotlib.patches import Rectangle

    cm = np.asarray(cm)
    n = len(labels)
    if cm.shape != (n, n):
        raise ValueError(f"confusion matrix {cm.shape} does not match {n} labels")
    blocks = _coarse_blocks(labels) if coarse_groups else []
    if coarse_groups and len({taxonomy.coarse_of(labels[s]) for s, _ in blocks}) != len(blocks):
        raise ValueError("coarse_groups needs the fine labels ordered by coarse parent (taxonomy.FINE order)")
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.55 * n + 2.5, 0.55 * n + 1.8))
    else:
        fig = ax.figure
    totals = cm.sum(1, keepdims=True)
    shown = np.divide(100.0 * cm, totals, out=np.zeros(cm.shape), where=totals > 0) if normalise else cm
    ax.imshow(shown, cmap="Blues", vmin=0, vmax=100 if normalise else max(1, cm.max()))
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                colour = "white" if shown[i, j] > (60 if normalise else 0.6 * cm.max()) else "black"
                text = f"{shown[i, j]:.0f}" if normalise else f"{cm[i, j]}"
                ax.text(j, i, text, ha="center", va="center", fontsize=7, color=colour)
    for start, length in blocks:
        ax.add_patch(Rectangle(
            (start - 0.5, start - 0.5), length, length, fill=False, edgecolor="#7f7f7f", linewidth=2.2, zorder=4))
    ax.set_xticks(range(n), labels, rotation=50, ha="right", fontsize=7)
    ax.set_yticks(range(n), labels, fontsize=7)
    ax.set(xlabel="predicted", ylabel="true")
    if title is not None:
        ax.set_title(title, fontsize=9)
    return fig


def plot_prediction_overlay(image: np.ndarray, keypoints_2d: np.ndarray, confident: np.ndarray, title: str) -> Figure:
    """One image with its predicted skeleton (confident keypoints filled, the others hollow)
    and a title (the predicted labels)."""
    h, w = image.shape[:2]
    fig, ax = plt.subplots(figsize=(4.0, 4.0 * h / w + 0.6))
    ax.imshow(image)
    draw_keypoints(ax, np.asarray(keypoints_2d), np.where(np.asarray(confident), 2, 1))
    ax.set(xlim=(-0.5, w - 0.5), ylim=(h - 0.5, -0.5))
    ax.axis("off")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


# --- pose branch (notebook 03) ----------------------------------------------------------------

#: Colours of compared keypoint sets: the first (annotation / 2D input), the second (a
#: prediction / a fit's reprojection), a third.
_SET_COLOURS: tuple[str, ...] = ("#2ca02c", "#d62728", "#1f77b4", "#9467bd")


def _draw_set(ax: Axes, keypoints_2d: np.ndarray, colour: str, label: str | None, width: float = 1.2) -> None:
    """One skeleton in one colour; NaN keypoints (and their bones) are skipped."""
    kp = np.asarray(keypoints_2d, dtype=float)
    ok = np.isfinite(kp).all(-1)
    for a, b in taxonomy.SKELETON:
        if ok[a] and ok[b]:
            ax.plot(*kp[[a, b]].T, color=colour, lw=width, alpha=0.85)
    ax.scatter(*kp[ok].T, s=8 * width**2, color=colour, edgecolors="black", linewidths=0.4, zorder=3, label=label)


def plot_keypoint_sets(
    images: Sequence[np.ndarray],
    keypoint_sets: dict[str, Sequence[np.ndarray]],
    titles: Sequence[str] | None = None,
    ncols: int = 6,
    cell_inches: float = 2.1,
) -> Figure:
    """Images with several 2D keypoint sets each, one colour per set (legend from the dict's
    keys), e.g. annotation vs HRNet, or SMPLify's 2D input vs the fit's reprojection."""
    fig, cells = _image_cells(images, titles, ncols, cell_inches, aspect=1.2)
    for i, ax in enumerate(cells):
        h, w = np.asarray(images[i]).shape[:2]
        for k, ((name, sets), colour) in enumerate(zip(keypoint_sets.items(), _SET_COLOURS)):
            # earlier sets wider, underneath: a set that matches the first leaves it visible
            _draw_set(ax, sets[i], colour, name if i == 0 else None, width=(2.6, 1.3, 1.0)[min(k, 2)])
        ax.set(xlim=(-0.5, w - 0.5), ylim=(h - 0.5, -0.5))
    fig.legend(loc="lower center", ncol=len(keypoint_sets), fontsize=8, frameon=False, bbox_to_anchor=(0.5, -0.02))
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


#: (elevation, azimuth, name) of the views of :func:`plot_skeleton_views`, in the display frame
#: (x right, y depth away from the camera, z up): as the camera sees it, from the body's side,
#: from above, oblique.
SKELETON_VIEWS: tuple[tuple[float, float, str], ...] = (
    (0.0, -90.0, "camera view"), (0.0, 0.0, "side"), (89.0, -90.0, "top"), (25.0, -55.0, "oblique"),
)


def plot_skeleton_views(
    skeletons: dict[str, np.ndarray],
    row_titles: Sequence[str] | None = None,
    views: Sequence[tuple[float, float, str]] = SKELETON_VIEWS,
    cell_inches: float = 2.3,
) -> Figure:
    """Normalised camera-frame 3D skeletons (x right, y down, z forward) of several sets (dict of
    (M, 17, 3), e.g. ground truth and fits), overlaid one colour per set: one row per skeleton,
    one column per view. NaN skeletons (failed fits) are left out of their panel."""
    sets = {k: np.asarray(v, dtype=float) for k, v in skeletons.items()}
    m = len(next(iter(sets.values())))
    fig = plt.figure(figsize=(cell_inches * len(views), cell_inches * m))
    for r in range(m):
        for c, (elev, azim, name) in enumerate(views):
            ax = fig.add_subplot(m, len(views), r * len(views) + c + 1, projection="3d", proj_type="ortho")
            for (label, kp), colour in zip(sets.items(), _SET_COLOURS):
                p = kp[r][:, [0, 2, 1]] * np.array([1.0, 1.0, -1.0])  # camera -> display frame
                if not np.isfinite(p).all():
                    continue
                for a, b in taxonomy.SKELETON:
                    ax.plot(*p[[a, b]].T, color=colour, lw=1.4)
                ax.scatter(*p.T, s=3, color=colour, label=label if r == 0 and c == 0 else None)
            lim = 1.1
            ax.set(xlim=(-lim, lim), ylim=(-lim, lim), zlim=(-lim, lim))
            ax.set_box_aspect((1, 1, 1), zoom=1.3)
            ax.set_axis_off()
            ax.view_init(elev=elev, azim=azim)
            title = name if r == 0 else ""
            if c == 0 and row_titles is not None:
                title = f"{row_titles[r]}\n{title}".strip()
            ax.set_title(title, fontsize=7)
    fig.legend(loc="lower center", ncol=len(sets), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return fig


def plot_pose2d_history(history: Sequence[dict]) -> Figure:
    """The learning curve of a keypoints2d run (its ``metrics.json`` history: mmpose's
    ``coco/AP`` and ``PCK`` keys): training loss and validation COCO AP / PCK@0.05 against the
    cumulative training minutes, so the slope says what another minute buys."""
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
    epochs = [h for h in history if "seconds" in h]
    minutes = dict(zip([h["epoch"] for h in epochs], np.cumsum([h["seconds"] for h in epochs]) / 60, strict=True))
    train = [h for h in epochs if "loss" in h]
    ax1.plot([minutes[h["epoch"]] for h in train], [h["loss"] for h in train], marker="o", ms=3)
    ax1.set(title="training loss (heatmap MSE)", xlabel="training minutes")
    top = 0.0
    for key, label in (("coco/AP", "COCO AP"), ("PCK", "PCK@0.05")):
        val = [h for h in history if key in h and h["epoch"] in minutes]
        ax2.plot([minutes[h["epoch"]] for h in val], [h[key] for h in val], marker="o", ms=3, label=label)
        for h in val[-1:]:
            ax2.annotate(f"epoch {h['epoch']}", (minutes[h["epoch"]], h[key]), fontsize=7,
                         textcoords="offset points", xytext=(-30, 6))
        top = max([top] + [h[key] for h in val])
    ax2.set(title="real validation split", xlabel="training minutes", ylim=(0, min(1.0, max(0.25, 1.15 * top))))
    ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_grouped_bars(
    groups: dict[str, dict[str, float | None]], title: str, ylabel: str = "top-1 (%)", ax: Axes | None = None,
    intervals: dict[str, dict[str, tuple[float, float]]] | None = None,
) -> Figure:
    """Bars of several series per group (e.g. ours vs the paper per Table 3 row), values on top;
    a missing value (``None`` or NaN) leaves its bar out. ``intervals[group][series]`` (low,
    high) draws an error bar on that bar (e.g. a 95 % interval)."""
    names = list(groups)
    series = list(dict.fromkeys(k for g in groups.values() for k in g))
    if ax is None:
        fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(names) * max(1, len(series)) / 2, 3.6))
    else:
        fig = ax.figure
    width = 0.8 / max(1, len(series))
    for k, name in enumerate(series):
        xs, ys, err = [], [], []
        for i, g in enumerate(names):
            value = groups[g].get(name)
            if value is not None and np.isfinite(value):
                xs.append(i + (k - (len(series) - 1) / 2) * width)
                ys.append(value)
                low, high = (intervals or {}).get(g, {}).get(name, (value, value))
                err.append((value - low, high - value))
        bars = ax.bar(xs, ys, width, label=name, yerr=np.array(err).T if any(map(any, err)) else None,
                      error_kw={"elinewidth": 0.8, "capsize": 2})
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_xticks(range(len(names)), names, fontsize=8)
    ax.set(title=title, ylabel=ylabel)
    ax.legend(fontsize=7)
    return fig


def plot_method_comparison(record: Mapping[str, Any], title: str) -> Figure:
    """Top-1 with 95 % intervals per source (groups) and method (bars) of a method x source
    record (:meth:`aims_lib.image_branch.comparison.MethodComparison.record`), the oracle beside."""
    groups: dict[str, dict[str, float | None]] = {}
    intervals: dict[str, dict[str, tuple[float, float]]] = {}
    for method, by_source in record["cells"].items():
        for source, c in by_source.items():
            groups.setdefault(source, {})[record["titles"][method]] = c["top1"]
            intervals.setdefault(source, {})[record["titles"][method]] = (c["top1_low"], c["top1_high"])
    oracle, name = record["oracle"], record["titles"]["source_only"]
    groups["real (target oracle)"] = {name: oracle["top1"]}
    intervals["real (target oracle)"] = {name: (oracle["top1_low"], oracle["top1_high"])}
    return plot_grouped_bars(groups, title, intervals=intervals)


def plot_lambda_sweep(lambdas: Sequence[float], curves: dict[str, Sequence[float]], title: str) -> Figure:
    """Accuracy against the LMMD weight lambda, one line per curve (e.g. real val and real test)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, values in curves.items():
        ax.plot(lambdas, values, marker="o", label=name)
    ax.set(title=title, xlabel="LMMD weight lambda", ylabel="coarse top-1 (%)", xticks=list(lambdas))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig



def plot_card(card: BenchmarkCard, title: str) -> Figure:
    """The benchmark card as bars: accuracy per probe with its 95 % interval, coarse and fine
    side by side, and each probe's majority-class rate as a tick (what guessing gives)."""
    fig, axes = plt.subplots(1, len(CARD_LEVELS), figsize=(11, 3.8), sharey=True)
    for ax, level in zip(axes, CARD_LEVELS):
        res = [card.get(p, level) for p in PROBES]
        x = np.arange(len(res))
        acc = np.array([r.accuracy for r in res])
        err = np.array([[r.accuracy - r.ci_low for r in res], [r.ci_high - r.accuracy for r in res]])
        ax.bar(x, acc, color="#4c72b0", yerr=err, capsize=4, label="top-1 (95 % CI)")
        ax.scatter(x, [r.majority for r in res], marker="_", s=600, color="#c44e52", zorder=3, label="majority class")
        ax.set_xticks(x, PROBES)
        ax.set_title(f"{level} labels")
        ax.set_ylim(0, 100)
        ax.grid(axis="y", alpha=0.3)
    axes[0].set_ylabel("top-1 accuracy (%)")
    axes[0].legend(loc="upper right", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# --- calibration and abstention (issue 28) ------------------------------------------------------


def plot_reliability(rows: Mapping[str, tuple[np.ndarray, np.ndarray]], bins: int = 15,
                     title: str = "reliability", ncols: int = 4) -> Figure:
    """Reliability diagrams, one panel per entry of ``rows`` (a name to ``(probs (N, K), labels
    (N,))``, e.g. a model before and after temperature scaling): the accuracy of each confidence
    bin as a bar from its lower edge (:func:`aims_lib.calibration.reliability`, torchmetrics'
    bins), the bin's mean confidence as a dot, the diagonal of perfect calibration, and the ECE
    in the panel's title; ``ncols`` panels a row. The bin of confidence exactly 1 shows as a
    diamond at x = 1."""
    from aims_lib.calibration import expected_calibration_error, reliability

    ncols = max(1, min(ncols, len(rows)))
    nrows = -(-len(rows) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.6 * nrows), squeeze=False)
    for ax in axes.flat[len(rows):]:
        ax.axis("off")
    for ax, (name, (probs, labels)) in zip(axes.flat, rows.items()):
        r = reliability(probs, labels, bins)
        full = r["count"] > 0
        full[-1] = False  # the point bin {1} has no width
        ax.bar(r["lower"][full], r["accuracy"][full], width=1.0 / bins, align="edge", color="#4c72b0",
               edgecolor="white", label="accuracy")
        ax.scatter(r["confidence"][full], r["accuracy"][full], s=10, color="#c44e52", zorder=3,
                   label="mean confidence")
        if r["count"][-1] > 0:
            ax.scatter([1.0], r["accuracy"][-1:], marker="D", s=25, color="#4c72b0", zorder=3,
                       label="confidence 1")
        ax.plot([0, 1], [0, 1], ls="--", color="#7f7f7f", lw=1)
        ax.set(xlim=(0, 1.02), ylim=(0, 1.02), xlabel="confidence", ylabel="accuracy")
        ax.set_title(f"{name}: ECE {100 * expected_calibration_error(probs, labels, bins):.2f} %", fontsize=9)
    axes[0, 0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_risk_coverage(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str = "risk-coverage",
                       ax: Axes | None = None) -> Figure:
    """Risk (error rate among the answered images) against coverage, one line per entry of
    ``curves`` (a name to :func:`aims_lib.conformal.risk_coverage`'s ``(coverage, risk)``), the
    AURC (the mean risk) in the legend."""
    if ax is None:
        fig, ax = plt.subplots(figsize=(5.0, 3.6))
    else:
        fig = ax.figure
    for name, (coverage, risk) in curves.items():
        ax.plot(coverage, risk, label=f"{name} (AURC {float(np.mean(risk)):.3f})")
    ax.set(title=title, xlabel="coverage", ylabel="risk (error rate)", xlim=(0, 1), ylim=(0, None))
    ax.legend(fontsize=8)
    return fig
