"""Evaluation: top-1 accuracies, the paper's reported numbers, and comparison tables.

The paper's numbers (Tables 2 and 3, top-1 % on its 198 real test images) are kept here, once,
so that every table puts them in their own column beside ours; ours are computed on whatever
dataset the run used, which for the embedded benchmark is not the paper's data.

Sources: ``docs/references.md#paper``.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

#: Table 2 of the paper: top-1 % on the real test set.
PAPER_TABLE2: Final[dict[str, dict[str, float]]] = {
    "coarse": {"image": 75.5, "image_lmmd": 85.3, "pose": 83.3},
    "fine": {"image": 40.4, "image_lmmd": 50.5, "pose": 68.0, "full": 76.8},
}
#: Table 3 of the paper: coarse top-1 % by source domain, without and with LMMD.
PAPER_TABLE3: Final[dict[str, dict[str, float]]] = {
    "synthetic": {"image": 45.3, "image_lmmd": 60.3},
    "synthetic+real": {"image": 75.5, "image_lmmd": 85.3},
}
#: The paper's comparisons, by the names our records give them: (table, group, A, B); the
#: paper's difference is B - A of that table.
PAPER_COMPARISONS: Final[dict[str, tuple[str, str, str, str]]] = {
    "LMMD vs source-only, coarse, synthetic": ("table3", "synthetic", "image", "image_lmmd"),
    "LMMD vs source-only, coarse, synthetic+real": ("table3", "synthetic+real", "image", "image_lmmd"),
    "LMMD vs source-only, fine, synthetic+real": ("table2", "fine", "image", "image_lmmd"),
    "full model vs pose branch, fine": ("table2", "fine", "pose", "full"),
    "pose branch vs image branch (LMMD), coarse": ("table2", "coarse", "image_lmmd", "pose"),
    "pose branch vs image branch (LMMD), fine": ("table2", "fine", "image_lmmd", "pose"),
}


def paper_difference(name: str) -> float | None:
    """The paper's B - A (points) of a comparison named in :data:`PAPER_COMPARISONS`, else None."""
    if name not in PAPER_COMPARISONS:
        return None
    table, group, a, b = PAPER_COMPARISONS[name]
    paper = PAPER_TABLE2 if table == "table2" else PAPER_TABLE3
    return round(paper[group][b] - paper[group][a], 1)


ROW_NAMES: Final[dict[str, str]] = {
    "image": "Image branch",
    "image_lmmd": "Image branch (w/ LMMD)",
    "pose": "Pose branch",
    "full": "Ours (full model)",
}


def top1(logits_or_pred: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 accuracy in %; accepts logits (N, C) or predicted ids (N,)."""
    labels = np.asarray(labels)
    pred = np.asarray(logits_or_pred)
    if pred.ndim == 2:
        pred = pred.argmax(1)
    if pred.shape != labels.shape:
        raise ValueError(f"predictions {pred.shape} and labels {labels.shape} differ in shape")
    if labels.size == 0:
        raise ValueError("no labels to score")
    return float((pred == labels).mean() * 100.0)


def bootstrap_interval(correct: np.ndarray, seed: int = 0, n_boot: int = 2000, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap interval (in %) of an accuracy, resampling the test images.

    ``correct`` holds one 0/1 per test image; the resamples are drawn from ``seed``.
    """
    correct = np.asarray(correct, dtype=np.float64)
    if correct.ndim != 1 or correct.size == 0:
        raise ValueError(f"need a non-empty 1-D array of 0/1 per test image, got shape {correct.shape}")
    rng = np.random.default_rng(seed)
    means = correct[rng.integers(0, correct.size, size=(n_boot, correct.size))].mean(axis=1) * 100.0
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Recall per class in % (NaN for a class absent from ``labels``)."""
    out = np.full(num_classes, np.nan)
    for c in range(num_classes):
        sel = labels == c
        if sel.any():
            out[c] = float((pred[sel] == c).mean() * 100.0)
    return out


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``M[true, predicted]``."""
    m = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(m, (np.asarray(labels), np.asarray(pred)), 1)
    return m


def confusion_pairs(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The (predicted, true) label pairs that a confusion matrix ``M[true, predicted]`` counts, so
    that accuracies with intervals can be computed from a stored matrix."""
    m = np.asarray(matrix)
    true, pred = np.nonzero(m)
    counts = m[true, pred]
    return np.repeat(pred, counts), np.repeat(true, counts)


def comparison_rows(ours: dict[str, dict[str, float]], paper: dict[str, dict[str, float]], data_label: str) -> list[dict]:
    """Rows ``{task, method, ours (<data_label>), paper}`` for a markdown/pandas table."""
    rows = []
    for task, methods in ours.items():
        for method, value in methods.items():
            rows.append(
                {
                    "task": task,
                    "method": ROW_NAMES.get(method, method),
                    f"ours ({data_label})": round(value, 1),
                    "paper (SyRIP/AIMS real test)": paper.get(task, {}).get(method, float("nan")),
                }
            )
    return rows


def interval_rows(detail: dict[str, dict[str, dict[str, Any]]], paper: dict[str, dict[str, float]]) -> list[dict]:
    """Display rows of a table whose numbers carry intervals: ``detail[group][method]`` is a
    :func:`aims_lib.statistics.summarise_seeds` record. Top-1 and macro accuracy with their 95 %
    intervals, the mean +- sd over training seeds when there are several, and the paper's number."""
    rows = []
    for group, methods in detail.items():
        for method, d in methods.items():
            over = d.get("over_seeds") or {}
            rows.append({
                "task": group,
                "method": ROW_NAMES.get(method, method),
                "top-1 %": round(d["top1"], 1),
                "95% CI": f"[{d['top1_low']:.1f}, {d['top1_high']:.1f}]",
                "macro %": round(d["macro"], 1),
                "macro 95% CI": f"[{d['macro_low']:.1f}, {d['macro_high']:.1f}]",
                "seeds: mean ± sd": (f"{over['mean']:.1f} ± {over['sd']:.1f} ({over['n_seeds']})"
                                     if over.get("sd") is not None else "–"),
                "paper": paper.get(group, {}).get(method, float("nan")),
            })
    return rows


def tsne_embedding(features: np.ndarray, seed: int = 0, perplexity: float = 30.0) -> np.ndarray:
    """2-D t-SNE of feature rows (PCA-initialised, seeded, so the same input gives the same map)."""
    from sklearn.manifold import TSNE

    n = len(features)
    if n < 5:
        raise ValueError(f"t-SNE needs at least 5 points, got {n}")
    tsne = TSNE(n_components=2, perplexity=min(perplexity, (n - 1) / 3), init="pca", random_state=seed)
    return tsne.fit_transform(np.asarray(features, dtype=np.float32))


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.1f}"  # NaN: no number
    return str(value)


def markdown_table(rows: list[dict]) -> str:
    """A GitHub-markdown table of dict rows (the keys of the first row are the columns)."""
    if not rows:
        return ""
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(_cell(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(lines)


def table2(ours: dict[str, dict[str, float]], data_label: str) -> tuple[str, dict]:
    """Table 2 (top-1 % on the real test split) as markdown and a JSON-ready dict.

    ``ours``: ``{"coarse": {"image", "image_lmmd", "pose"}, "fine": {..., "full"}}`` (a missing
    entry shows as "–"). Rows follow the paper's order; the paper's numbers have their own
    column. The dict holds ``data``, ``ours``, ``paper`` and ``rows`` (missing numbers as None).
    """
    ordered: dict[str, dict[str, float]] = {}
    for task, methods in PAPER_TABLE2.items():
        ordered[task] = {m: float(ours.get(task, {}).get(m, float("nan"))) for m in methods}
        ordered[task].update({m: float(v) for m, v in ours.get(task, {}).items() if m not in methods})
    rows = comparison_rows(ordered, PAPER_TABLE2, data_label)
    json_rows = [{k: (None if isinstance(v, float) and v != v else v) for k, v in r.items()} for r in rows]
    record = {
        "data": data_label,
        "ours": {t: {m: (None if v != v else round(v, 2)) for m, v in ms.items()} for t, ms in ordered.items()},
        "paper": PAPER_TABLE2,
        "rows": json_rows,
    }
    return markdown_table(rows), record


def classification_report(
    coarse_pred: np.ndarray, fine_pred: np.ndarray, coarse_true: np.ndarray, fine_true: np.ndarray
) -> dict:
    """Top-1 (%), macro accuracy (the mean of the classes' recalls, %), per-class accuracy (%,
    None for an absent class) and confusion matrices ``M[true, predicted]`` at both levels,
    JSON-ready (class names as keys)."""
    from aims_lib import taxonomy

    out: dict = {}
    for level, pred, true, names in (
        ("coarse", coarse_pred, coarse_true, taxonomy.COARSE),
        ("fine", fine_pred, fine_true, taxonomy.FINE),
    ):
        pred, true = np.asarray(pred), np.asarray(true)
        per_class = per_class_accuracy(pred, true, len(names))
        out[level] = {
            "top1": top1(pred, true),
            "macro": float(np.nanmean(per_class)),
            "per_class": {n: (None if np.isnan(a) else round(float(a), 2)) for n, a in zip(names, per_class)},
            "confusion": confusion_matrix(pred, true, len(names)).tolist(),
        }
    return out
