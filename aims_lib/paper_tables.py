"""The paper's numbers and the tables that show ours beside them.

The paper's numbers (Tables 2 and 3, top-1 % on its 198 real test images, and the differences
its comparisons rest on) are kept here, once, so that every table puts them in their own column
beside ours; ours are computed (:mod:`aims_lib.statistics`) on whatever dataset the run used,
which for the embedded benchmark is not the paper's data.

Sources: ``docs/references.md#paper``.
"""

from __future__ import annotations

from typing import Final

from aims_lib.statistics import SeedSummary

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


#: Display names of the rows of Tables 2 and 3, by the keys records give them.
ROW_NAMES: Final[dict[str, str]] = {
    "image": "Image branch",
    "image_lmmd": "Image branch (w/ LMMD)",
    "pose": "Pose branch",
    "full": "Ours (full model)",
}


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


def interval_rows(detail: dict[str, dict[str, SeedSummary]], paper: dict[str, dict[str, float]]) -> list[dict]:
    """Display rows of a table whose numbers carry intervals: ``detail[group][method]`` is a
    :class:`aims_lib.statistics.SeedSummary`. Top-1 and macro accuracy with their 95 %
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
