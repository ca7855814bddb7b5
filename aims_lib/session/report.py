"""Rendering a session's report: the posture timeline (PNG), the HTML (Jinja2) and its CSV and JSON.

:func:`write_report` writes the three outputs (:func:`output_paths`: ``<stem>.html``,
``<stem>.csv``, ``<stem>.json``) from a :class:`SessionResult` and its summary
(:func:`aims_lib.session.summary.summarise`), each atomically. The HTML is self-contained
(thumbnails embedded as base64 JPEG, the timeline as a base64 PNG, CSS inline, no external URL)
and rendered from :data:`TEMPLATE` with Jinja2's autoescaping, so a file name or label is never
markup. :func:`check_outputs` refuses, before any model loads, an output that would overwrite an
input.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np

from aims_lib import taxonomy
from aims_lib.files import atomic_write_bytes, json_bytes
from aims_lib.outputs import check_parent, naming, same_path
from aims_lib.session.frames import SessionInput
from aims_lib.session.summary import FrameRecord, coarse_answer, fine_answer, plain_summary

REPORT_SUFFIXES: Final[tuple[str, ...]] = (".html", ".htm")
REPORT_FORMAT: Final[str] = "aims-session-report/1"
#: Longer side in pixels of the thumbnails in the frame table, and of the example and review ones.
SMALL_THUMB: Final[int] = 96
LARGE_THUMB: Final[int] = 240
JPEG_QUALITY: Final[int] = 85
#: One colour per fine pose (FINE order) on the timeline: tab10 without its grey (frames whose fine
#: pose is uncertain) and red (frames that need review), and four darker ones.
FINE_COLOURS: Final[tuple[str, ...]] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
    "#bcbd22", "#17becf", "#393b79", "#8c6d31", "#637939", "#7b4173",
)
CSV_COLUMNS: Final[tuple[str, ...]] = (
    "index", "source", "time_s", "coarse", "coarse_prob", "fine", "fine_prob", "answer", "answer_coarse",
    "answer_fine", "needs_review", "no_infant", "smplify_failed", "review_reason", "error",
)


@dataclass(frozen=True)
class Thumbnails:
    """A frame's thumbnails as data URIs: small for the frame table, large for examples and review."""

    small: str
    large: str


def thumbnail_uri(image: np.ndarray, size: int) -> str:
    """``image`` shrunk to ``size`` pixels on its longer side, as a base64 JPEG data URI."""
    from PIL import Image

    im = Image.fromarray(image)
    im.thumbnail((size, size))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=JPEG_QUALITY)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class SessionResult:
    """Every frame's record in input order, the thumbnails of the predicted ones (by index), and
    whether the predictor's confidences were calibrated."""

    records: list[FrameRecord]
    thumbnails: dict[int, Thumbnails]
    calibrated: bool



@dataclass(frozen=True)
class TimelinePoint:
    """A predicted frame on the timeline: ``x`` its time in a video (else its index), ``row`` its
    committed posture's index in :data:`~aims_lib.taxonomy.COARSE` (-1: "no answer"), ``fine`` its
    committed fine pose (None: grey), ``review`` whether it needs review."""

    x: float
    row: int
    fine: str | None
    review: bool


def timeline_points(records: Sequence[FrameRecord], kind: Literal["photos", "video"]) -> list[TimelinePoint]:
    """The timeline's points, one per predicted frame in order, from
    :func:`~aims_lib.session.summary.coarse_answer` and :func:`~aims_lib.session.summary.fine_answer`."""
    video = kind == "video"
    return [TimelinePoint(r.time_s if video and r.time_s is not None else r.index,
                          taxonomy.COARSE.index(c) if (c := coarse_answer(r)) else -1, fine_answer(r), r.needs_review)
            for r in records if not r.error]


def timeline_png(records: Sequence[FrameRecord], kind: Literal["photos", "video"]) -> bytes:
    """The posture timeline as PNG bytes (:func:`timeline_points`): the committed coarse posture of
    each predicted frame over time (a video) or photo order, coloured by its committed fine AIMS
    pose (grey: none), frames without a posture on a "no answer" row, frames that need review
    ringed in red."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    colour = dict(zip(taxonomy.FINE, FINE_COLOURS))
    points = timeline_points(records, kind)
    fig = Figure(figsize=(10, 3.4), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    posture = [p for p in points if p.row >= 0]
    ax.plot([p.x for p in posture], [p.row for p in posture], color="0.85", lw=1.5, zorder=1)
    ax.scatter([p.x for p in points], [p.row for p in points], s=60, zorder=2, edgecolors="white", linewidths=0.5,
               c=[colour[p.fine] if p.fine else "0.6" for p in points])
    review = [(p.x, p.row) for p in points if p.review]
    if review:
        ax.scatter(*zip(*review), s=170, facecolors="none", edgecolors="#c0392b", linewidths=1.6, zorder=3)
    ax.set_yticks(range(-1, taxonomy.NUM_COARSE), ["no answer", *taxonomy.COARSE])
    ax.set_ylim(-1.6, taxonomy.NUM_COARSE - 0.4)
    ax.set_xlabel("time in the video (s)" if kind == "video" else "photo (in file-name order)")
    ax.grid(axis="x", alpha=0.3)
    seen = [f for f in taxonomy.FINE if any(p.fine == f for p in points)]
    handles = [Line2D([], [], ls="", marker="o", color=colour[f], label=f) for f in seen]
    handles.append(Line2D([], [], ls="", marker="o", color="0.6", label="fine pose uncertain"))
    if review:
        handles.append(Line2D([], [], ls="", marker="o", mfc="none", mec="#c0392b", ms=11, label="needs review"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


TEMPLATE: Final[str] = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Infant posture session report: {{ input_name }}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto; max-width: 1100px; padding: 1.5em; color: #222; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; border-bottom: 2px solid #ddd; padding-bottom: 0.2em; margin-top: 1.8em; }
.meta { color: #666; font-size: 0.9em; }
.note { padding: 0.6em 0.9em; border-radius: 6px; }
.warn { background: #fff4e0; border-left: 5px solid #e69500; }
.ok { background: #eaf6ea; border-left: 5px solid #3c9a3c; }
.limits { background: #f4f6fa; border-left: 5px solid #5b7bb2; padding: 0.4em 0.9em 0.4em 2em; }
img.timeline { max-width: 100%; border: 1px solid #eee; }
table { border-collapse: collapse; width: 100%; font-size: 0.9em; }
th, td { border-bottom: 1px solid #e4e4e4; padding: 0.35em 0.5em; text-align: left; vertical-align: middle; }
th { background: #f7f7f7; }
.bar { background: #5b7bb2; height: 0.9em; border-radius: 3px; }
.cards { display: flex; flex-wrap: wrap; gap: 1em; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 0.6em; width: 250px; font-size: 0.9em; }
.card img { display: block; max-width: 240px; max-height: 240px; margin-bottom: 0.4em; }
.card.review { border-color: #e0a9a3; background: #fdf3f2; }
.review-row { background: #fdf3f2; }
.reason { color: #a93226; }
.muted { color: #999; }
td img { display: block; max-width: 96px; max-height: 96px; }
code { background: #f2f2f2; padding: 0 0.25em; border-radius: 3px; }
</style>
</head>
<body>
<h1>Infant posture session report</h1>
<p class="meta">Input: <code>{{ input_name }}</code> ({{ unit_plural }}{% if fps %}, sampled at {{ fps }} frames per second{% endif %}) &middot; model run: <code>{{ run_name }}</code> &middot; made {{ made }}</p>
<p class="note {{ 'ok' if summary.calibrated else 'warn' }}"><strong>Confidence:</strong> {{ summary.confidence_note }}</p>

<h2>Summary</h2>
<ul>{% for line in lines %}<li>{{ line }}</li>{% endfor %}</ul>
{% if summary.age_note %}<p class="note ok">{{ summary.age_note }}</p>{% endif %}
<h3>What the model cannot tell</h3>
<ul class="limits">{% for line in summary.limitations %}<li>{{ line }}</li>{% endfor %}</ul>

<h2>Posture over the session</h2>
<img class="timeline" src="{{ timeline }}" alt="Timeline of the coarse posture per frame, coloured by fine AIMS pose">

<h2>Share of {{ 'time' if video else 'photos' }} per posture</h2>
<p>Of the {{ summary.answered }} {{ unit_plural }} with a posture answer{% if video %} (frames sampled at a fixed rate: shares of frames are shares of time){% endif %}.</p>
<table>
<tr><th>Posture</th><th>{{ unit_plural|capitalize }}</th><th>Share</th><th style="width:45%"></th></tr>
{% for s in summary.coarse_shares %}<tr><td>{{ s.coarse }}</td><td>{{ s.frames }}</td><td>{{ s.share|pct }}</td><td><div class="bar" style="width: {{ ((s.share or 0) * 100)|round(1) }}%"></div></td></tr>
{% endfor %}</table>

<h2>AIMS poses observed</h2>
{% if summary.fine_observed %}<div class="cards">
{% for o in summary.fine_observed %}<div class="card"><img src="{{ thumbs[o.best.index].large }}" alt="best example of {{ o.fine }}">
<strong>{{ o.fine }}</strong> ({{ o.coarse }})<br>{{ o.frames }} {{ unit_plural if o.frames != 1 else unit }}; best example: {{ where(o.best) }}, confidence {{ o.best.fine_prob|pct }}</div>
{% endfor %}</div>{% else %}<p>The model named no AIMS pose without abstaining.</p>{% endif %}

<h2>Frames that need review ({{ summary.needs_review }})</h2>
{% if summary.review %}<div class="cards">
{% for r in summary.review %}<div class="card review">{% if r.index in thumbs %}<img src="{{ thumbs[r.index].large }}" alt="frame {{ r.index }}">{% endif %}
<strong>{{ where(r) }}</strong><br><span class="reason">{{ r.reason }}</span></div>
{% endfor %}</div>{% else %}<p>None: the model answered every frame.</p>{% endif %}

{% if summary.unreadable %}<h2>Unreadable files ({{ summary.unreadable|length }})</h2>
<ul>{% for u in summary.unreadable %}<li><code>{{ u.source }}</code>: {{ u.error }}</li>{% endfor %}</ul>{% endif %}

<h2>All frames</h2>
<p>Coarse and fine: the labels the answer commits to, with their confidence; where it commits to none at that level, the model's most likely label, greyed.</p>
<table>
<tr><th>#</th><th></th><th>{{ 'Time' if video else 'File' }}</th><th>Answer</th><th>Coarse</th><th>Fine</th><th>Review</th></tr>
{% for r in records %}<tr{% if r.needs_review %} class="review-row"{% endif %}><td>{{ r.index }}</td><td>{% if r.index in thumbs %}<img src="{{ thumbs[r.index].small }}" alt="frame {{ r.index }}">{% endif %}</td>
<td>{{ where(r) }}</td><td>{{ r.answer }}</td><td{% if not coarse_answer(r) %} class="muted"{% endif %}>{{ r.coarse }} {{ r.coarse_prob|pct }}</td><td{% if not fine_answer(r) %} class="muted"{% endif %}>{{ r.fine }} {{ r.fine_prob|pct }}</td><td class="reason">{{ r.review_reason }}</td></tr>
{% endfor %}</table>
</body>
</html>
"""


def _pct(p: float | None) -> str:
    return "" if p is None else f"{p:.0%}"


def _where_text(item: Any) -> str:
    """A frame as the report names it: its time in a video, its file name for a photo."""
    get = item.get if isinstance(item, dict) else lambda k: getattr(item, k)
    return f"{get('time_s'):.1f} s" if get("time_s") is not None else str(get("source"))


def render_html(
    summary: dict[str, Any],
    records: Sequence[FrameRecord],
    thumbnails: dict[int, Thumbnails],
    timeline: bytes,
    *,
    kind: Literal["photos", "video"],
    input_name: str,
    run_name: str,
    fps: float | None = None,
) -> str:
    """The self-contained report: :data:`TEMPLATE` with Jinja2 autoescaping (every file name and
    label is text, never markup), images as data URIs, no external URL."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["pct"] = _pct
    video = kind == "video"
    return env.from_string(TEMPLATE).render(
        summary=summary, records=records, thumbs=thumbnails, lines=plain_summary(summary, kind),
        timeline="data:image/png;base64," + base64.b64encode(timeline).decode("ascii"),
        video=video, unit="frame" if video else "photo", unit_plural="frames" if video else "photos",
        fps=f"{fps:g}" if video and fps else None, input_name=input_name, run_name=run_name, where=_where_text,
        coarse_answer=coarse_answer, fine_answer=fine_answer,
        made=datetime.now(timezone.utc).astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    )


def output_paths(out: Path) -> tuple[Path, Path, Path]:
    """The report and its CSV and JSON beside it: ``<stem>.html``, ``<stem>.csv``, ``<stem>.json``."""
    return out, out.with_suffix(".csv"), out.with_suffix(".json")


def check_outputs(out: Path, session: SessionInput) -> None:
    """Refuse, before any model loads, a report path that is no ``.html`` file, whose outputs
    (:func:`output_paths`) are folders or sit in no writable folder, or would overwrite an input
    (a photo of the folder or the video; judged on resolved paths and on file identity)."""
    if out.suffix.lower() not in REPORT_SUFFIXES:
        raise ValueError(f"--out {out}: the report must be an .html file (its .csv and .json are written beside it)")
    inputs = session.photos or (session.path,)
    for path in output_paths(out):
        if path.is_dir():
            raise ValueError(f"output {path} is a directory: name the report file to write")
        for f in inputs:
            if same_path(path, f):
                raise ValueError(f"output {path} is the input {f}: choose another --out (outputs never overwrite inputs)")
    check_parent(out, "output")


def _write(path: Path, payload: bytes) -> None:
    """Write atomically; an OSError names ``path``, not the temporary file beside it."""
    try:
        atomic_write_bytes(path, payload)
    except OSError as exc:
        raise naming(path, exc) from exc


def write_report(
    out: Path,
    session: SessionInput,
    result: SessionResult,
    summary: dict[str, Any],
    *,
    run_name: str,
    fps: float,
) -> tuple[Path, Path, Path]:
    """Write the CSV (one row per frame), the JSON (the frames and the summary) and the HTML
    report, each atomically; returns their paths."""
    html_path, csv_path, json_path = output_paths(out)
    rows = [asdict(r) for r in result.records]
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(CSV_COLUMNS), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    video_fps = fps if session.kind == "video" else None
    document = {"format": REPORT_FORMAT, "input": str(session.path), "kind": session.kind, "run": run_name,
                "fps": video_fps, "summary": summary, "frames": rows}
    html = render_html(summary, result.records, result.thumbnails, timeline_png(result.records, session.kind),
                       kind=session.kind, input_name=session.path.name, run_name=run_name, fps=video_fps)
    _write(csv_path, text.getvalue().encode("utf-8"))
    _write(json_path, json_bytes(document, indent=1))
    _write(html_path, html.encode("utf-8"))
    return html_path, csv_path, json_path

