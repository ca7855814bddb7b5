r"""The predictor's command line: images in, one CSV row per image (and overlays) out.

Command line (one row per input file)::

    python -m aims_lib.predict IMAGES... --run DIR --out predictions.csv [--boxes boxes.csv|coco.json] [--overlays DIR] [--device cpu]

Exit status: 0 when at least one image was predicted and every output was written; 1 when no
image was predicted, the predictor could not be loaded or an output could not be written; 2 for
bad arguments, among them an output that would overwrite an input and a ``--device`` this
machine lacks (:func:`aims_lib.machine.resolve_device`, checked before the predictor loads).

A directory among IMAGES stands for its ``.png``/``.jpg``/``.jpeg``/``.bmp`` files. A missing,
empty or unreadable file (or one over Pillow's decompression-bomb limit,
``PIL.Image.MAX_IMAGE_PIXELS``) gets a row with ``status=error`` and the reason, and a line on
stderr; the other files are still predicted. The output paths are checked before the predictor
loads: no output overwrites an input (:func:`check_outputs`: the CSV is no input, the overlays
folder is no input's folder), and every input gets its own overlay name. Finished work survives
a failing output: an overlay that cannot be written (a full disk) keeps its row's predictions,
with the reason in ``overlay_error`` and on stderr, and the CSV is still written; the CSV is
written atomically at the end, so ``--out`` holds the whole table or its previous content, never
part of it, and when it cannot be written the command says so in one line
(``error: cannot write PATH: REASON``).
"""

from __future__ import annotations

import argparse
import csv
import io
import logging
import os
import pickle
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import numpy as np

from aims_lib.box_files import read_boxes
from aims_lib.files import atomic_write_bytes
from aims_lib.image_io import ImageReadError, read_image
from aims_lib.outputs import check_parent, naming, same_path
from aims_lib.predict.predictor import IMAGE_SUFFIXES, OVERLAY_SCORE, TRUSTABLE, AIMSPosePredictor, Predictions
from aims_lib.machine import DEVICES, resolve_device

log = logging.getLogger(__name__)

CSV_COLUMNS: Final[tuple[str, ...]] = (
    "file", "status", "error", "overlay_error", "answer", "needs_review", "review_reason", "coarse", "coarse_prob", "fine",
    "fine_prob", "calibrated", "coarse_set", "fine_set", "box", "box_source", "smplify_failed", "reprojection_error",
    "coarse_probs", "image_coarse_probs", "fine_probs", "keypoints_2d", "keypoint_scores", "keypoints_3d",
)


def expand_inputs(inputs: Sequence[str | os.PathLike[str]]) -> list[Path]:
    """Files as given; a directory stands for its image files (sorted)."""
    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            out.extend(sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES))
        else:
            out.append(p)
    return out


def _overlay_names(files: Sequence[Path]) -> list[str]:
    """One PNG name per input, distinct even on case-insensitive file systems, so that no overlay
    overwrites another: the file's stem; a repeated stem gets the input's index appended (and a
    counter while that name is another input's stem or already given)."""
    stems = [f.stem for f in files]
    counts = Counter(s.casefold() for s in stems)
    taken = {s.casefold() for s in stems if counts[s.casefold()] == 1}
    names = []
    for i, stem in enumerate(stems):
        if counts[stem.casefold()] == 1:
            names.append(f"{stem}.png")
            continue
        name, k = f"{stem}_{i}", 0
        while name.casefold() in taken:
            k += 1
            name = f"{stem}_{i}_{k}"
        taken.add(name.casefold())
        names.append(f"{name}.png")
    return names


def check_outputs(out: Path, overlays: Path | None = None, inputs: Sequence[Path] = ()) -> None:
    """Refuse a CSV path or overlays folder that cannot be written or would overwrite an input,
    before any model loads or image is read: a long batch must not fail at its last step, and no
    command writes over what it reads. Judged on resolved paths (:func:`~aims_lib.outputs.same_path`):

    * the CSV must not be one of ``inputs``;
    * the overlays folder must not be the folder of any input: an overlay is named after its
      input's stem (``X.png`` for ``X.jpg``), so there it could replace that input or a file
      beside it. This rule rather than comparing names, since it does not depend on which files
      happen to be there; a folder above or below the inputs' folders is fine (overlays are
      written flat into it)."""
    if out.is_dir():
        raise ValueError(f"output CSV {out} is a directory: name the file to write")
    check_parent(out, "output CSV")
    for f in inputs:
        if same_path(out, f):
            raise ValueError(f"output CSV {out} is the input {f}: choose another --out (outputs never overwrite inputs)")
    if overlays is None:
        return
    if overlays.exists() and not overlays.is_dir():
        raise ValueError(f"overlays directory {overlays} is an existing file")
    if overlays.is_dir():
        if not os.access(overlays, os.W_OK | os.X_OK):
            raise ValueError(f"overlays directory {overlays} is not writable")
    else:
        check_parent(overlays, "overlays directory")
    for folder, f in {f.parent: f for f in reversed(inputs)}.items():  # each folder with its first input
        if same_path(overlays, folder):
            raise ValueError(f"overlays directory {overlays} is the folder of the input {f}: an overlay could replace "
                             "an input or a file beside it; choose another --overlays (outputs never overwrite inputs)")


def write_overlay(path: Path, image: np.ndarray, pred: Predictions, i: int) -> None:
    """The image with its 2D keypoints and labels, as a PNG."""
    import matplotlib.pyplot as plt

    from aims_lib.plots import plot_prediction_overlay, save_figure

    title = f"{pred.coarse[i]} ({pred.coarse_prob[i]:.2f})\n{pred.fine[i]} ({pred.fine_prob[i]:.2f})"
    if pred.smplify_failed[i]:
        title += "\n3D fit failed: image branch only"
    fig = plot_prediction_overlay(image, pred.keypoints_2d[i], pred.keypoint_scores[i] >= OVERLAY_SCORE, title)
    save_figure(fig, path)
    plt.close(fig)


class RunSummary(NamedTuple):
    """What :func:`run_cli` did: images predicted (among them ``no_infant`` where none was found),
    images with an error row, overlays not written."""

    predicted: int
    failed: int
    overlays_unwritten: int
    no_infant: int = 0


def run_cli(
    files: Sequence[Path],
    predictor: AIMSPosePredictor,
    out: Path,
    overlays: Path | None = None,
    chunk: int = 64,
    batch_size: int = 32,
    boxes: np.ndarray | None = None,
) -> RunSummary:
    """Predict ``files`` in chunks, write the overlays as they are made and the CSV (atomically)
    at the end. Errors are per file: a chunk that fails as a whole is retried image by image so
    that only the offending file gets an error row. An overlay that cannot be written (OSError:
    a full disk) loses no prediction: its row keeps them, with the reason in ``overlay_error``,
    and a line goes to stderr. Unwritable or input-overwriting outputs are a ValueError before
    any image is read (:func:`check_outputs`); an OSError creating the overlays folder or writing
    the CSV names that path, and leaves no partial CSV at ``out``. ``boxes`` (N, 4): one box per
    file (:func:`aims_lib.box_files.read_boxes`), NaN rows (or None) to find the infant; an image
    without one gets ``status=no_infant``."""
    from tqdm.auto import tqdm

    check_outputs(out, overlays, files)

    rows: list[dict[str, Any]] = [{"file": str(f), "status": "error", "error": ""} for f in files]
    names = _overlay_names(files)
    if overlays is not None:
        try:
            overlays.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise naming(overlays, exc) from exc
    unwritten = 0
    bar = tqdm(total=len(files), unit="img", desc="predicting", disable=len(files) < 2, file=sys.stderr)
    for start in range(0, len(files), chunk):  # images are read chunk by chunk: memory stays bounded
        part: list[tuple[int, np.ndarray]] = []
        for i in range(start, min(start + chunk, len(files))):
            try:
                part.append((i, read_image(files[i])))
            except ImageReadError as exc:
                rows[i]["error"] = str(exc)
                bar.write(f"error: {exc}", file=sys.stderr)
        bar.update(min(start + chunk, len(files)) - start - len(part))
        if not part:
            continue
        def box_rows(items: list[tuple[int, np.ndarray]]) -> np.ndarray | None:
            return None if boxes is None else boxes[[i for i, _ in items]]

        try:
            groups = [(part, predictor.predict([a for _, a in part], box_rows(part), batch_size=batch_size))]
        except Exception as exc:  # isolate the image that broke the chunk
            log.debug("chunk failed (%s): retrying image by image", exc)
            groups = []
            for item in part:
                try:
                    groups.append(([item], predictor.predict([item[1]], box_rows([item]), batch_size=batch_size)))
                except Exception as exc1:
                    rows[item[0]]["error"] = f"{files[item[0]]}: prediction failed ({type(exc1).__name__}: {exc1})"
                    bar.write(f"error: {rows[item[0]]['error']}", file=sys.stderr)
        for items, pred in groups:
            for j, (i, image) in enumerate(items):
                rows[i].update(status="no_infant" if pred.no_infant[j] else "ok", **pred.row(j))
                if overlays is not None:
                    try:
                        write_overlay(overlays / names[i], image, pred, j)
                    except OSError as exc:
                        unwritten += 1
                        rows[i]["overlay_error"] = f"cannot write {overlays / names[i]}: {exc.strerror or exc}"
                        bar.write(f"error: {rows[i]['overlay_error']}", file=sys.stderr)
        bar.update(len(part))
    bar.close()
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(CSV_COLUMNS), restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    try:
        atomic_write_bytes(out, buf.getvalue().encode())
    except OSError as exc:
        raise naming(out, exc) from exc
    predicted = sum(r["status"] != "error" for r in rows)
    return RunSummary(predicted, len(rows) - predicted, unwritten, sum(r["status"] == "no_infant" for r in rows))


EXIT_STATUS: Final[str] = (
    "Exit status: 0 when at least one image was predicted and every output was written; 1 when no "
    "image was predicted, the predictor could not be loaded or an output could not be written (the "
    "CSV: one line 'error: cannot write PATH: REASON'; an overlay: the CSV is still written, the reason "
    "in its overlay_error column and on stderr); 2 for bad arguments, among them an output that "
    "would overwrite an input and a --device this machine lacks. Unreadable or empty files get an error row."
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aims_lib.predict",
        description="Coarse and fine AIMS poses, 2D and 3D keypoints of infant images (the full model).",
        epilog=EXIT_STATUS,
    )
    parser.add_argument("images", nargs="+", help="image files, or directories of images")
    parser.add_argument("--run", required=True, type=Path, help="predictor directory (holds predictor.json)")
    parser.add_argument("--out", required=True, type=Path, help="CSV to write (one row per input file; not an input)")
    parser.add_argument("--overlays", type=Path, default=None,
                        help="directory for PNGs with keypoints and labels (not the folder of an input)")
    parser.add_argument("--boxes", type=Path, default=None,
                        help="the infants' boxes: a CSV with columns file,x,y,w,h or a COCO .json (aims_lib.box_files); "
                             "images without one, and all images without this option, get an automatic box")
    parser.add_argument("--device", default="cpu", help=f"{', '.join(DEVICES)} (checked before the predictor loads)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunk", type=int, default=64, help="images per SMPLify batch")
    parser.add_argument("--trust", action="append", default=[], choices=TRUSTABLE, metavar="COMPONENT",
                        help="unpickle this component of the run fully (it may run code; SECURITY.md): only for a "
                             f"legacy file whose origin you vouch for; one of {', '.join(TRUSTABLE)}; repeatable")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.chunk < 1:
        parser.error("--batch-size and --chunk must be >= 1")
    try:
        device = resolve_device(args.device)
    except ValueError as exc:  # one line (argparse's, without the usage), before anything loads
        parser.exit(2, f"{parser.prog}: error: --device: {exc}\n")
    files = expand_inputs(args.images)
    if not files:
        parser.error("no image files among the inputs")
    try:
        check_outputs(args.out, args.overlays, files)
        boxes = read_boxes(args.boxes, files) if args.boxes is not None else None
    except ValueError as exc:
        parser.error(str(exc))
    try:
        predictor = AIMSPosePredictor.load(args.run, device=device, trust=args.trust)
    except (FileNotFoundError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        print(f"error: cannot load the predictor: {exc}", file=sys.stderr)
        return 1
    try:
        summary = run_cli(files, predictor, args.out, args.overlays, args.chunk, args.batch_size, boxes)
    except OSError as exc:
        print(f"error: cannot write {exc.filename or args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    unwritten = f"; {summary.overlays_unwritten} overlays not written" if summary.overlays_unwritten else ""
    empty = f" ({summary.no_infant} with no infant found)" if summary.no_infant else ""
    print(f"{summary.predicted} of {len(files)} images predicted{empty}, {summary.failed} errors; wrote {args.out}{unwritten}",
          file=sys.stderr)
    return 0 if summary.predicted > 0 and not summary.overlays_unwritten else 1
