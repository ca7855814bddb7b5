"""The per-frame records and the session summary: small pure functions, no I/O but the run's manifest.

:func:`records_from_predictions` turns one :class:`~aims_lib.predict.Predictions` into
:class:`FrameRecord` rows; :func:`summarise`, :func:`coarse_answer`, :func:`fine_answer` and
:func:`plain_summary` summarise a session from those records. They take the posture and fine pose
each answer commits to from the predictor's structured answer (``Predictions.answer_coarse`` /
``answer_fine``), never from its text. The summary says what the model cannot tell
(:func:`limitations`): it is a screening aid, not a diagnosis; it was trained on rendered images
unless the run's ``predictor.json`` (``extra.data``, :func:`training_data`) names other data; it
judges single frames, so it says nothing about movement quality; an age given is shown with a
neutral note (:func:`age_note`), never compared with AIMS norms.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from aims_lib import taxonomy
from aims_lib.predict import MANIFEST
from aims_lib.session.frames import InputFrame

UNCALIBRATED_NOTE: Final[str] = "uncalibrated: confidences are raw softmax"
CALIBRATED_NOTE: Final[str] = "calibrated: a confidence of 80 % is right about 80 % of the time on the calibration data"


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

