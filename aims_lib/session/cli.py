"""Predicting a session and the command line: :func:`predict_session`, :func:`make_report` and :func:`main`.

The command line (``python -m aims_lib.session``), its arguments and its exit statuses are
documented in the package's docstring (:mod:`aims_lib.session`), which ``--help`` prints.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Sequence
from itertools import islice
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from aims_lib.session.frames import InputFrame, SessionInput, expected_frames, iter_frames, open_input
from aims_lib.session.report import (
    LARGE_THUMB, SMALL_THUMB, SessionResult, Thumbnails, check_outputs, output_paths, thumbnail_uri, write_report,
)
from aims_lib.session.summary import FrameRecord, error_record, records_from_predictions, summarise, training_data

#: Frames read and predicted together: memory stays bounded for long videos and big folders.
CHUNK: Final[int] = 64


class Predictor(Protocol):
    """What the report needs of a predictor (:class:`aims_lib.predict.AIMSPosePredictor`)."""

    def predict(self, images: Sequence[np.ndarray], bboxes: Any = None, batch_size: int = 32) -> Any: ...


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
    """Predict the session and write its report, CSV and JSON
    (:func:`~aims_lib.session.report.write_report`); returns the summary. ``data``: what the model
    was trained on (:func:`~aims_lib.session.summary.training_data` of the run)."""
    out = Path(out)
    check_outputs(out, session)
    result = predict_session(session, predictor, fps, batch_size)
    summary = summarise(result.records, calibrated=result.calibrated, age_months=age_months, data=data)
    write_report(out, session, result, summary, run_name=run_name, fps=fps)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    import pickle

    from aims_lib.predict import AIMSPosePredictor
    from aims_lib.machine import DEVICES, resolve_device

    doc = sys.modules[__package__].__doc__  # aims_lib.session documents the command line
    parser = argparse.ArgumentParser(
        prog="python -m aims_lib.session", description=doc.split("\n\n")[0],
        epilog=doc[doc.index("Exit status"):].replace("``", ""),
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

