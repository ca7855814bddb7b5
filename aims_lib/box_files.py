"""Boxes for the command line's images, read from a CSV or COCO file a user hands over.

The predictor reads an image best inside the infant's annotated box (``aims_lib.auto_box`` finds
one when none is given). A user with boxes passes them as

* a CSV with a header naming ``file, x, y, w, h`` (pixels, ``x, y`` the top-left corner), or
* a COCO file (``.json``): ``images`` with ``id`` and ``file_name``, ``annotations`` with
  ``image_id`` and ``bbox`` ``[x, y, w, h]``; an image with several annotations gets the largest
  box (one infant per image) and a warning says how many such images there were.

A row names its image by the path as given on the command line, by the same file resolved, or by
its file name alone when that is unique among the inputs. Inputs without a box get a row of NaN:
the predictor finds the infant. Bad values are errors that name the file, line or annotation,
field and value; the file is read as data only (JSON or CSV text).
"""

from __future__ import annotations

import csv
import json
import logging
import math
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Final

import numpy as np

from aims_lib.boxes import invalid_boxes

log = logging.getLogger(__name__)

CSV_FIELDS: Final[tuple[str, ...]] = ("file", "x", "y", "w", "h")


class BoxFileError(ValueError):
    """A box file that cannot be used; the message names the file, the place and the value."""


def _box(values: Sequence[Any], where: str) -> list[float]:
    """Four finite numbers with positive width and height (:mod:`aims_lib.boxes`), or
    :class:`BoxFileError` naming ``where`` and the field."""
    out = []
    for field, value in zip(("x", "y", "w", "h"), values):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise BoxFileError(f"{where}: {field} = {value!r} is not a number") from None
        if not math.isfinite(number):
            raise BoxFileError(f"{where}: {field} = {value!r} is not finite")
        out.append(number)
    if invalid_boxes(np.array([out]))[0]:
        raise BoxFileError(f"{where}: w = {out[2]}, h = {out[3]}: a box needs a positive width and height")
    return out


def _csv_rows(path: Path) -> Iterable[tuple[str, list[float]]]:
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in CSV_FIELDS if c not in (reader.fieldnames or [])]
        if missing:
            raise BoxFileError(f"{path}: the header lacks {', '.join(missing)} (needs {', '.join(CSV_FIELDS)}); "
                               f"found {reader.fieldnames}")
        for row in reader:
            where = f"{path}, line {reader.line_num}"
            yield row["file"], _box([row[c] for c in CSV_FIELDS[1:]], where)


def _coco_rows(path: Path) -> Iterable[tuple[str, list[float]]]:
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BoxFileError(f"{path}: not a JSON file ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) or not isinstance(data.get("annotations"), list):
        raise BoxFileError(f"{path}: a COCO file needs lists 'images' and 'annotations'")
    names = {}
    for k, image in enumerate(data["images"]):
        if not isinstance(image, dict) or "id" not in image or not isinstance(image.get("file_name"), str):
            raise BoxFileError(f"{path}: images[{k}] needs an 'id' and a 'file_name' string, got {str(image)[:80]}")
        names[image["id"]] = image["file_name"]
    best: dict[Any, list[float]] = {}
    counts: Counter[Any] = Counter()
    for k, ann in enumerate(data["annotations"]):
        where = f"{path}, annotations[{k}]"
        if not isinstance(ann, dict) or ann.get("image_id") not in names:
            raise BoxFileError(f"{where}: image_id {ann.get('image_id') if isinstance(ann, dict) else ann!r} is not an "
                               "id of 'images'")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise BoxFileError(f"{where}: bbox = {bbox!r} is not a list [x, y, w, h]")
        box = _box(bbox, where)
        counts[ann["image_id"]] += 1
        if ann["image_id"] not in best or box[2] * box[3] > best[ann["image_id"]][2] * best[ann["image_id"]][3]:
            best[ann["image_id"]] = box
    if several := sum(c > 1 for c in counts.values()):
        log.warning("%s: %d images have several annotations; the largest box of each is used", path, several)
    return [(names[i], box) for i, box in best.items()]


def read_boxes(path: str | Path, files: Sequence[Path]) -> np.ndarray:
    """One ``x, y, w, h`` row per input file (N, 4) from the CSV or COCO file ``path``; NaN rows
    for the inputs it has no box for (module docstring). A file named twice is an error."""
    path = Path(path)
    if not path.is_file():
        raise BoxFileError(f"{path}: no such box file")
    rows = _coco_rows(path) if path.suffix.lower() == ".json" else _csv_rows(path)
    exact = {str(f): i for i, f in enumerate(files)}
    resolved = {f.resolve(): i for i, f in enumerate(files)}
    by_name = Counter(f.name for f in files)
    unique_name = {f.name: i for i, f in enumerate(files) if by_name[f.name] == 1}
    boxes = np.full((len(files), 4), np.nan)
    seen: dict[int, str] = {}
    unmatched = 0
    for name, box in rows:
        i = exact.get(name, resolved.get((path.parent / name).resolve(), resolved.get(Path(name).resolve(),
                                                                                      unique_name.get(Path(name).name))))
        if i is None:
            unmatched += 1
            continue
        if i in seen:
            raise BoxFileError(f"{path}: {files[i]} has two boxes (as {seen[i]!r} and {name!r}); give one box per image")
        seen[i] = name
        boxes[i] = box
    if unmatched:
        log.info("%s: %d boxes name no input image (ignored)", path, unmatched)
    return boxes
