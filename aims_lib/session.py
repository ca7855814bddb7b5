r"""A per-infant session report: which AIMS postures one infant showed in a folder of photos or a video.

People who screen an infant's motor development hold photos or a short video of ONE infant,
without boxes. This runs the full model (:class:`aims_lib.predict.AIMSPosePredictor`, which
finds the infant itself) on every photo, or on the video sampled at ``--fps`` frames per second
by the frames' timestamps, and writes one self-contained HTML report (thumbnails embedded as
base64 JPEG/PNG, CSS inline, no external URL) with a CSV and a JSON of the same per-frame data
beside it. As in InfAct and home-video AIMS screening, every frame gets a posture with its
confidence, the session is summarised over its frames, and frames where the model abstains
(no infant, failed 3D fit, uncertain) are flagged "needs review" with the reason.

The summary is computed by small pure functions from the per-frame records
(:func:`summarise`, :func:`coarse_answer`, :func:`fine_answer`, :func:`plain_summary`), which take
the posture and fine pose each answer commits to from the predictor's structured answer
(``Predictions.answer_coarse`` / ``answer_fine``), never from its text; the HTML is rendered
from that summary with Jinja2's autoescaping, so a file name or label is never markup. The report says what the model cannot tell: it is a screening aid, not a diagnosis; it
was trained on rendered images unless the run's ``predictor.json`` (``extra.data``) names other
data; it judges single frames, so it says nothing about movement quality; an age given is shown
with a neutral note, never compared with AIMS norms.

Command line::

    python -m aims_lib.session INPUT --run RUN --out report.html [--fps 2] [--age-months N] [--device cpu] [--batch-size 16]

INPUT is a folder of photos (``.png .jpg .jpeg .bmp``, sorted by name; EXIF orientation is
honoured by :func:`aims_lib.image_io.read_image`) or a video (``.mp4 .mov .avi .mkv .webm``,
decoded with PyAV, its display rotation applied). ``--out`` must end in ``.html``; ``<stem>.csv``
and ``<stem>.json`` are written beside it, each atomically, and none of the three may be an input.
An unreadable photo (or a video that stops decoding part-way) is reported in the report, its
CSV row and on stderr, and the other frames are still predicted.

Exit status: 0 when at least one frame was predicted and the report was written; 1 when the
predictor cannot be loaded, no frame could be predicted (the report is still written, listing
the unreadable files) or an output cannot be written; 2 for bad arguments, checked before the
model loads: a missing input, a folder without photos, a file that is neither a folder nor a
video, a video without a decodable frame, an output that is no ``.html`` file or would overwrite
an input, a ``--device`` this machine lacks.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar

import numpy as np

from aims_lib import taxonomy
from aims_lib.data.format import atomic_write_bytes
from aims_lib.image_io import ImageReadError, read_image
from aims_lib.predict import IMAGE_SUFFIXES, MANIFEST

T = TypeVar("T")

VIDEO_SUFFIXES: Final[tuple[str, ...]] = (".mp4", ".mov", ".avi", ".mkv", ".webm")
REPORT_SUFFIXES: Final[tuple[str, ...]] = (".html", ".htm")
REPORT_FORMAT: Final[str] = "aims-session-report/1"
#: Frames read and predicted together: memory stays bounded for long videos and big folders.
CHUNK: Final[int] = 64
#: Longer side in pixels of the thumbnails in the frame table, and of the example and review ones.
SMALL_THUMB: Final[int] = 96
LARGE_THUMB: Final[int] = 240
JPEG_QUALITY: Final[int] = 85
#: Timestamps within this many seconds of the next sampling time count as on it.
TIME_TOL: Final[float] = 1e-6
#: One colour per fine pose (FINE order) on the timeline: tab10 without its grey (frames whose fine
#: pose is uncertain) and red (frames that need review), and four darker ones.
FINE_COLOURS: Final[tuple[str, ...]] = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2",
    "#bcbd22", "#17becf", "#393b79", "#8c6d31", "#637939", "#7b4173",
)
UNCALIBRATED_NOTE: Final[str] = "uncalibrated: confidences are raw softmax"
CALIBRATED_NOTE: Final[str] = "calibrated: a confidence of 80 % is right about 80 % of the time on the calibration data"
CSV_COLUMNS: Final[tuple[str, ...]] = (
    "index", "source", "time_s", "coarse", "coarse_prob", "fine", "fine_prob", "answer", "answer_coarse",
    "answer_fine", "needs_review", "no_infant", "smplify_failed", "review_reason", "error",
)


class SessionInputError(ValueError):
    """An INPUT that holds no session: missing, a folder without photos, no video (names the path)."""


class Predictor(Protocol):
    """What the report needs of a predictor (:class:`aims_lib.predict.AIMSPosePredictor`)."""

    def predict(self, images: Sequence[np.ndarray], bboxes: Any = None, batch_size: int = 32) -> Any: ...


# ----------------------------------------------------------------------------- reading the input


@dataclass(frozen=True)
class SessionInput:
    """A checked INPUT: a folder's photos (sorted by name) or a video file."""

    path: Path
    kind: Literal["photos", "video"]
    photos: tuple[Path, ...] = ()


@dataclass(frozen=True)
class InputFrame:
    """One photo or sampled video frame: its pixels (uint8 RGB, upright) or why they could not be read."""

    source: str  # the photo's file name, or the video's
    time_s: float | None  # seconds after the video's first frame; None for photos
    image: np.ndarray | None
    error: str = ""


def _first_video_frame(path: Path) -> None:
    """Decode up to the first frame of ``path``; :class:`SessionInputError` when there is none."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise SessionInputError(f"{path}: holds no video stream")
            for _ in container.decode(container.streams.video[0]):
                return
    except av.error.FFmpegError as exc:
        raise SessionInputError(f"{path}: not a readable video ({exc})") from None
    raise SessionInputError(f"{path}: the video has no frames")


def open_input(path: str | os.PathLike[str]) -> SessionInput:
    """Check INPUT before any model loads: a folder with at least one photo, or a video file
    whose first frame decodes; :class:`SessionInputError` names the path otherwise."""
    path = Path(path)
    if path.is_dir():
        photos = tuple(sorted((f for f in path.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES),
                              key=lambda f: f.name))
        if not photos:
            raise SessionInputError(f"{path}: the folder holds no photos ({' '.join(IMAGE_SUFFIXES)})")
        return SessionInput(path, "photos", photos)
    if not path.exists():
        raise SessionInputError(f"{path}: no such file or folder")
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise SessionInputError(f"{path}: neither a folder of photos nor a video ({' '.join(VIDEO_SUFFIXES)})")
    _first_video_frame(path)
    return SessionInput(path, "video")


def sample_at_rate(items: Iterable[tuple[float, T]], fps: float) -> Iterator[tuple[float, T]]:
    """The ``(time, item)`` pairs to keep, in decoding order, to sample ``fps`` frames per second:
    the first, then the first at or after each further multiple of ``1 / fps`` after it (so a
    variable frame rate or dropped frames keep the times right)."""
    step = 1.0 / fps
    due: float | None = None
    for t, item in items:
        if due is None:
            due = t
        if t >= due - TIME_TOL:
            yield t, item
            due += step * (math.floor((t - due + TIME_TOL) / step) + 1)


def _upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """A decoded frame turned by its display matrix's counter-clockwise ``rotation`` (degrees)."""
    return np.ascontiguousarray(np.rot90(image, k=round(rotation / 90) % 4)) if rotation else image


def _video_frames(path: Path, fps: float) -> Iterator[InputFrame]:
    """The video's frames sampled at ``fps`` (:func:`sample_at_rate`), upright, timed from its
    first frame; a decoding error part-way ends the video with an :class:`InputFrame` carrying it."""
    import av

    failure: list[str] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25)

        def decoded() -> Iterator[tuple[float, Any]]:
            start, index, frames = None, 0, container.decode(stream)
            while True:
                try:
                    frame = next(frames)
                except StopIteration:
                    return
                except av.error.FFmpegError as exc:
                    failure.append(str(exc))
                    return
                t = frame.time if frame.time is not None else index / rate
                start = t if start is None else start
                index += 1
                yield t - start, frame

        last = 0.0
        for last, frame in sample_at_rate(decoded(), fps):
            yield InputFrame(path.name, round(last, 6), _upright(frame.to_ndarray(format="rgb24"), frame.rotation))
    if failure:
        yield InputFrame(path.name, None, None, f"{path}: decoding stopped after {last:.2f} s ({failure[0]})")


def expected_frames(session: SessionInput, fps: float) -> int | None:
    """How many frames the session will give (photos), or about how many (a video of known
    duration); None when a video does not say its duration. For the progress bar."""
    if session.kind == "photos":
        return len(session.photos)
    import av

    with av.open(str(session.path)) as container:
        stream = container.streams.video[0]
        if stream.duration is not None and stream.time_base is not None:
            seconds = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            seconds = container.duration / av.time_base
        else:
            return None
    return max(1, math.ceil(seconds * fps - TIME_TOL))


def iter_frames(session: SessionInput, fps: float) -> Iterator[InputFrame]:
    """Every frame of the session in order: each photo (read as :func:`read_image` reads it,
    EXIF orientation included; an unreadable one carries its error) or the sampled video frames."""
    if session.kind == "video":
        yield from _video_frames(session.path, fps)
        return
    for photo in session.photos:
        try:
            yield InputFrame(photo.name, None, read_image(photo))
        except ImageReadError as exc:
            yield InputFrame(photo.name, None, None, str(exc))


# ----------------------------------------------------------------------------- per-frame records


@dataclass(frozen=True)
class FrameRecord:
    """One frame's outcome as plain data (a CSV row, a JSON object): the model's plain-language
    answer and the posture and fine pose it commits to (``answer_coarse`` / ``answer_fine``,
    empty when it commits to none), the coarse and fine labels with their calibrated (or raw)
    probabilities (the committed ones, else the model's most likely ones), and whether and why
    the frame needs review. A frame that could not be read or predicted has ``error`` and no labels."""

    index: int
    source: str
    time_s: float | None
    coarse: str = ""
    coarse_prob: float | None = None
    fine: str = ""
    fine_prob: float | None = None
    answer: str = ""
    answer_coarse: str = ""
    answer_fine: str = ""
    needs_review: bool = True
    no_infant: bool = False
    smplify_failed: bool = False
    review_reason: str = ""
    error: str = ""


def coarse_answer(record: FrameRecord) -> str | None:
    """The coarse posture the frame's answer commits to (``answer_coarse``), or None: no
    commitment ("uncertain: Prone or Supine"), no infant found, or the frame not predicted."""
    if record.error or record.no_infant:
        return None
    return record.answer_coarse or None


def fine_answer(record: FrameRecord) -> str | None:
    """The fine AIMS pose the frame's answer commits to (``answer_fine``), or None: only a
    posture ("Sitting, fine pose uncertain"), no commitment, no infant found, or not predicted."""
    if record.error or record.no_infant:
        return None
    return record.answer_fine or None


def error_record(index: int, frame: InputFrame, error: str) -> FrameRecord:
    """The record of a frame that could not be read or predicted."""
    return FrameRecord(index, frame.source, frame.time_s, answer="not predicted", needs_review=True,
                       review_reason=f"not predicted: {error}", error=error)


def records_from_predictions(items: Sequence[tuple[int, InputFrame]], pred: Any) -> list[FrameRecord]:
    """The records of ``(index, frame)`` pairs from one :class:`~aims_lib.predict.Predictions` of
    their images, read by its per-image field names. The labels are those the answer commits to
    (``answer_coarse`` / ``answer_fine``; a calibrated hierarchical answer may commit to a fine pose
    other than the most likely one), else the most likely ones (``coarse`` / ``fine``); each
    probability is that label's, from ``coarse_probs`` / ``fine_probs``."""
    out = []
    for j, (index, frame) in enumerate(items):
        answer, review = str(pred.answer[j]), bool(pred.needs_review[j])
        no_infant = bool(pred.no_infant[j])
        answer_coarse = "" if no_infant else str(pred.answer_coarse[j] or "")
        answer_fine = "" if no_infant else str(pred.answer_fine[j] or "")
        coarse, fine = answer_coarse or str(pred.coarse[j]), answer_fine or str(pred.fine[j])
        out.append(FrameRecord(
            index=index, source=frame.source, time_s=frame.time_s,
            coarse=coarse, coarse_prob=round(float(pred.coarse_probs[j][taxonomy.coarse_id(coarse)]), 4),
            fine=fine, fine_prob=round(float(pred.fine_probs[j][taxonomy.fine_id(fine)]), 4),
            answer=answer, answer_coarse=answer_coarse, answer_fine=answer_fine,
            needs_review=review, no_infant=no_infant, smplify_failed=bool(pred.smplify_failed[j]),
            review_reason=str(pred.review_reason[j]) or (answer if review else ""),
        ))
    return out


# ----------------------------------------------------------------------------- summary


def training_data(run_dir: str | os.PathLike[str]) -> str | None:
    """The run's ``predictor.json`` ``extra.data`` string (what the model was trained on), or
    None when the manifest or the entry is missing or unreadable."""
    try:
        manifest = json.loads((Path(run_dir) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    extra = manifest.get("extra") if isinstance(manifest, dict) else None
    data = extra.get("data") if isinstance(extra, dict) else None
    return data if isinstance(data, str) and data.strip() else None


def trained_on_rendered(data: str | None) -> bool:
    """Whether the model was trained on rendered images: yes unless the run names other data
    (the embedded benchmark's label contains "embedded")."""
    return data is None or any(w in data.lower() for w in ("embedded", "render", "synthetic"))


def limitations(calibrated: bool, data: str | None) -> list[str]:
    """What the model cannot tell, in plain words, for every report."""
    if data is None:
        trained = ("The model was trained on rendered (computer-generated) infant images; the run does not name its "
                   "data. Real photos and videos can look different, and the model can be wrong on them.")
    elif trained_on_rendered(data):
        trained = (f"The model was trained on rendered (computer-generated) infant images (the run's data: {data}), "
                   "not on photos of real infants; on real photos and videos it can be wrong.")
    else:
        trained = f"The run says the model was trained on: {data}."
    return [
        "This report is a screening aid, not a diagnosis: it does not assess development and a clinician "
        "should interpret it.",
        trained,
        "Each frame is judged on its own: the model sees single still frames, so it says nothing about movement "
        "quality, transitions between postures or how long a posture was held unaided.",
        "Confidences are calibrated on the run's calibration data." if calibrated else
        f"Confidences are not calibrated ({UNCALIBRATED_NOTE}): a high value does not mean the label is likely right.",
    ]


def age_note(age_months: float | None) -> str | None:
    """The neutral sentence shown with an infant's age (None without one): no norm is applied."""
    if age_months is None:
        return None
    return (f"Age given: {age_months:g} months. Which postures are expected depends on age (AIMS norms are "
            "age-specific); this report does not compare the postures with those norms and computes no percentile.")


def _where(record: FrameRecord) -> dict[str, Any]:
    return {"index": record.index, "source": record.source, "time_s": record.time_s}


def summarise(
    records: Sequence[FrameRecord],
    *,
    calibrated: bool,
    age_months: float | None = None,
    data: str | None = None,
) -> dict[str, Any]:
    """The session summary (JSON-ready) from its frame records: counts; the share of each coarse
    posture among the frames with a coarse answer (:func:`coarse_answer`; sampled at a fixed rate,
    a video's shares of frames are its shares of time) and the most frequent one (ties: the first
    in :data:`~aims_lib.taxonomy.COARSE`); each fine AIMS
    pose observed (:func:`fine_answer`) with its frame count and best example (highest fine
    probability, the earliest on ties); the frames that need review with the reason; the
    unreadable inputs; the confidence note, the age note and the limitations."""
    coarse = [coarse_answer(r) for r in records]
    answered = [c for c in coarse if c is not None]
    counts = Counter(answered)
    shares = [{"coarse": c, "frames": counts[c], "share": round(counts[c] / len(answered), 4) if answered else None}
              for c in taxonomy.COARSE]
    observed = []
    for fine in taxonomy.FINE:
        frames = [r for r in records if fine_answer(r) == fine]
        if frames:
            best = max(frames, key=lambda r: (r.fine_prob or 0.0, -r.index))
            observed.append({"fine": fine, "coarse": taxonomy.FINE_TO_COARSE[fine], "frames": len(frames),
                             "best": {**_where(best), "fine_prob": best.fine_prob}})
    return {
        "frames": len(records),
        "predicted": sum(not r.error for r in records),
        "unreadable": [{**_where(r), "error": r.error} for r in records if r.error],
        "answered": len(answered),
        "needs_review": sum(r.needs_review for r in records),
        "no_infant": sum(r.no_infant for r in records),
        "coarse_shares": shares,
        "majority": max(taxonomy.COARSE, key=lambda c: counts[c]) if answered else None,
        "fine_observed": observed,
        "review": [{**_where(r), "reason": r.review_reason} for r in records if r.needs_review],
        "calibrated": calibrated,
        "confidence_note": CALIBRATED_NOTE if calibrated else UNCALIBRATED_NOTE,
        "age_months": age_months,
        "age_note": age_note(age_months),
        "training_data": data,
        "limitations": limitations(calibrated, data),
    }


def plain_summary(summary: dict[str, Any], kind: Literal["photos", "video"]) -> list[str]:
    """The report's opening sentences, in plain language, from :func:`summarise`'s dict."""
    unit = "photos" if kind == "photos" else "video frames"
    lines = [f"{summary['frames']} {unit} were looked at; the model named a posture in {summary['answered']} of them."]
    if summary["majority"] is not None:
        shares = ", ".join(f"{s['coarse'].lower()} {s['share']:.0%}" for s in summary["coarse_shares"] if s["frames"])
        lines.append(f"Most often the infant was {summary['majority'].lower()} ({shares}).")
    if summary["fine_observed"]:
        poses = ", ".join(f"{o['fine']} ({o['frames']})" for o in summary["fine_observed"])
        lines.append(f"AIMS poses the model named without abstaining (number of {unit}): {poses}.")
    else:
        lines.append("The model named no AIMS pose without abstaining.")
    if summary["needs_review"]:
        lines.append(f"{summary['needs_review']} {unit} need review by a person (reasons below).")
    if summary["unreadable"]:
        lines.append(f"{len(summary['unreadable'])} could not be read or predicted.")
    return lines


# ----------------------------------------------------------------------------- predicting a session


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


def predict_session(
    session: SessionInput, predictor: Predictor, fps: float = 2.0, batch_size: int = 16, chunk: int = CHUNK
) -> SessionResult:
    """Predict every frame of ``session``, ``chunk`` frames at a time (only their thumbnails are
    kept), the predictor finding the infant itself (no boxes). An unreadable frame, or one whose
    prediction fails (a chunk that fails is retried frame by frame), gets an error record and a
    line on stderr; the others are still predicted."""
    from tqdm.auto import tqdm

    records: list[FrameRecord] = []
    thumbnails: dict[int, Thumbnails] = {}
    calibrated: list[bool] = []
    frames = iter_frames(session, fps)

    def predict(items: list[tuple[int, InputFrame]]) -> Any:
        return predictor.predict([f.image for _, f in items], bboxes=None, batch_size=batch_size)

    with tqdm(total=expected_frames(session, fps), unit="frame", desc="predicting", file=sys.stderr) as bar:
        while part := list(islice(frames, chunk)):
            start = len(records)
            done: dict[int, FrameRecord] = {}
            readable = []
            for k, frame in enumerate(part):
                if frame.image is None:
                    done[start + k] = error_record(start + k, frame, frame.error)
                else:
                    readable.append((start + k, frame))
            try:
                groups = [(readable, predict(readable))] if readable else []
            except Exception:  # noqa: BLE001 - isolate the frame that broke the chunk
                groups = []
                for item in readable:
                    try:
                        groups.append(([item], predict([item])))
                    except Exception as exc:  # noqa: BLE001 - one frame's failure is reported, not fatal
                        done[item[0]] = error_record(*item, f"{item[1].source}: prediction failed ({type(exc).__name__}: {exc})")
            for items, pred in groups:
                calibrated.append(bool(pred.calibrated))
                for record in records_from_predictions(items, pred):
                    done[record.index] = record
                for index, frame in items:
                    thumbnails[index] = Thumbnails(thumbnail_uri(frame.image, SMALL_THUMB),
                                                   thumbnail_uri(frame.image, LARGE_THUMB))
            for index in sorted(done):
                if done[index].error:
                    bar.write(f"error: {done[index].error}", file=sys.stderr)
                records.append(done[index])
            bar.update(len(part))
    return SessionResult(records, thumbnails, bool(calibrated) and all(calibrated))


# ----------------------------------------------------------------------------- the report


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
    """The timeline's points, one per predicted frame in order, from :func:`coarse_answer` and
    :func:`fine_answer`."""
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


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))


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
            if _same_file(path, f):
                raise ValueError(f"output {path} is the input {f}: choose another --out (outputs never overwrite inputs)")
    ancestor = out.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise ValueError(f"output {out}: {ancestor} is not a writable folder")


def _write(path: Path, payload: bytes) -> None:
    """Write atomically; an OSError names ``path``, not the temporary file beside it."""
    try:
        atomic_write_bytes(path, payload)
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(path)) from exc


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
    _write(json_path, json.dumps(document, indent=1, ensure_ascii=False).encode("utf-8"))
    _write(html_path, html.encode("utf-8"))
    return html_path, csv_path, json_path


def make_report(
    session: SessionInput,
    predictor: Predictor,
    out: str | os.PathLike[str],
    *,
    run_name: str = "",
    fps: float = 2.0,
    batch_size: int = 16,
    age_months: float | None = None,
    data: str | None = None,
) -> dict[str, Any]:
    """Predict the session and write its report, CSV and JSON (:func:`write_report`); returns the
    summary. ``data``: what the model was trained on (:func:`training_data` of the run)."""
    out = Path(out)
    check_outputs(out, session)
    result = predict_session(session, predictor, fps, batch_size)
    summary = summarise(result.records, calibrated=result.calibrated, age_months=age_months, data=data)
    write_report(out, session, result, summary, run_name=run_name, fps=fps)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    import pickle

    from aims_lib.predict import AIMSPosePredictor
    from aims_lib.workspace import DEVICES, resolve_device

    parser = argparse.ArgumentParser(
        prog="python -m aims_lib.session", description=__doc__.split("\n\n")[0],
        epilog=__doc__[__doc__.index("Exit status"):].replace("``", ""),
    )
    parser.add_argument("input", type=Path, help="a folder of photos or a video file of one infant")
    parser.add_argument("--run", required=True, type=Path, help="predictor directory (holds predictor.json)")
    parser.add_argument("--out", required=True, type=Path, help="report to write (.html; .csv and .json beside it)")
    parser.add_argument("--fps", type=float, default=2.0, help="video frames per second to sample (default 2)")
    parser.add_argument("--age-months", type=float, default=None, help="the infant's age, shown in the report")
    parser.add_argument("--device", default="cpu", help=f"{', '.join(DEVICES)} (checked before the predictor loads)")
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    if not (math.isfinite(args.fps) and args.fps > 0):
        parser.error(f"--fps must be > 0, got {args.fps}")
    if args.batch_size < 1:
        parser.error(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.age_months is not None and not (math.isfinite(args.age_months) and args.age_months >= 0):
        parser.error(f"--age-months must be a number >= 0, got {args.age_months}")
    try:
        device = resolve_device(args.device)
        session = open_input(args.input)
        check_outputs(args.out, session)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        predictor = AIMSPosePredictor.load(args.run, device=device)
    except (FileNotFoundError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        print(f"error: cannot load the predictor: {exc}", file=sys.stderr)
        return 1
    try:
        summary = make_report(session, predictor, args.out, run_name=str(args.run), fps=args.fps,
                              batch_size=args.batch_size, age_months=args.age_months, data=training_data(args.run))
    except OSError as exc:
        print(f"error: cannot write {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    html_path, csv_path, json_path = output_paths(args.out)
    print(f"{summary['predicted']} of {summary['frames']} frames predicted, {summary['needs_review']} need review; "
          f"wrote {html_path}, {csv_path} and {json_path}", file=sys.stderr)
    return 0 if summary["predicted"] else 1


if __name__ == "__main__":
    sys.exit(main())
