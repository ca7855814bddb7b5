"""Import SyRIP-style COCO keypoint files plus an AIMS label table into the AIMS format.

Usage::

    python -m aims_lib.data.import_syrip --coco person_keypoints_train_infant.json \\
        --images DIR --labels LABELS.csv --out OUT [--split auto|train|val|test] [--seed 0]

``LABELS.csv`` has a ``file_name`` column and a fine-label column (``fine``, ``aims_fine`` or
``label``; spelling is lenient), and optionally a ``split`` column. The coarse label is always
the parent of the fine label. SyRIP's per-image ``posture`` is kept as ``syrip_posture`` and
checked against it: a disagreement is reported (printed and listed in
``OUT/import_report.json``), never silently overwritten. Images with no label row are left out
and counted (the paper withdrew about 5 % of SyRIP's real images that fit no AIMS class).
Images are copied into ``OUT/images`` so that the imported set is self-contained; the source
files are never modified: ``OUT`` must not be or hold the COCO file, the label table or the
``--images`` folder, nor lie inside ``--images`` (:func:`check_output_dir`).

Input is checked before anything is written, and every error names the input file (not the
output), the entry and the field:

* both files must be UTF-8 (a byte-order mark, as Excel writes, is accepted);
* the ``split`` column is all or nothing: filled for some rows and empty for others is an
  error, never a reason to re-split (a new split would move test images into training); a
  filled column that contradicts ``--split`` is an error too;
* COCO image ids and file names are unique, and file names are relative paths inside
  ``--images`` (no absolute path, no ``..``) that stay inside it when symbolic links are
  followed (a link within ``--images`` is fine; one to a file or folder outside is an error);
* every imported image must decode, at the width and height that COCO gives;
* keypoints are checked as the dataset reader checks them
  (:func:`aims_lib.data.format.check_keypoints_2d`);
* several annotations for one image: SyRIP holds one infant per image, so this policy keeps
  the annotation with the most labelled keypoints (ties: the first in the file), warns naming
  the image and the dropped annotation ids, and lists them in the report under
  ``several_annotations``;
* a bbox partly outside its image is clipped to it with a warning naming it; a bbox wholly
  outside is an error.

Image copies are compared with their source by content, so a re-import over an older output
replaces every stale copy.

Sources: ``docs/references.md#syrip``.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import warnings
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from aims_lib import taxonomy
from aims_lib.data.format import (
    SPLITS,
    DatasetError,
    UnreadableImage,
    check_keypoints_2d,
    check_numbers,
    decoded_image_size,
    new_dataset,
    path_escape,
    write_dataset,
)
from aims_lib.files import copy_file_atomic, write_json

FINE_COLUMNS = ("fine", "aims_fine", "fine_label", "label")
#: Paper scale: 198 of 750 real images are the test split; validation takes 10 %.
AUTO_TEST_FRACTION = 198 / 750
AUTO_VAL_FRACTION = 0.10


def _not_utf8(path: Path, exc: UnicodeDecodeError, hint: str = "") -> DatasetError:
    bad = exc.object[exc.start : exc.start + 1]
    return DatasetError(f"{path}: not UTF-8 text ({exc.reason}: byte {bad!r}); save it as UTF-8{hint}")


def read_label_table(path: Path, split: str = "auto") -> dict[str, dict[str, str]]:
    """``file_name`` -> {"fine": canonical label, "split": split or ""}; errors name the row.

    The ``split`` column must be filled for every row or for none (a partial column is an
    error, never re-split); with ``split`` other than ``"auto"`` (the import's ``--split``) a
    filled value must agree with it.
    """
    table: dict[str, dict[str, str]] = {}
    first_filled: tuple[int, str, str] | None = None
    first_empty: tuple[int, str] | None = None
    n_empty = 0
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or []]
            if "file_name" not in columns:
                raise DatasetError(f"{path}: header: column 'file_name' missing (found {columns})")
            fine_col = next((c for c in FINE_COLUMNS if c in columns), None)
            if fine_col is None:
                raise DatasetError(
                    f"{path}: header: no fine-label column (one of {', '.join(FINE_COLUMNS)}); "
                    f"found {columns}"
                )
            for row in reader:
                line = reader.line_num
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
                name = row["file_name"]
                try:
                    fine = taxonomy.parse_fine(row[fine_col])
                except taxonomy.LabelError as exc:
                    raise DatasetError(f"{path}: line {line} ({name}): field '{fine_col}': {exc}") from None
                row_split = row.get("split", "")
                if row_split and row_split not in SPLITS:
                    raise DatasetError(
                        f"{path}: line {line} ({name}): field 'split': unknown value {row_split!r}; "
                        f"valid: {', '.join(SPLITS)}"
                    )
                if row_split and split != "auto" and row_split != split:
                    raise DatasetError(
                        f"{path}: line {line} ({name}): field 'split': {row_split!r} conflicts with "
                        f"--split {split}; drop the column or the option"
                    )
                if row_split and first_filled is None:
                    first_filled = (line, name, row_split)
                if not row_split:
                    n_empty += 1
                    first_empty = first_empty or (line, name)
                if name in table:
                    raise DatasetError(f"{path}: line {line}: field 'file_name': duplicate {name!r}")
                table[name] = {"fine": fine, "split": row_split}
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc, " (in Excel: 'CSV UTF-8')") from None
    if first_filled is not None and first_empty is not None:
        raise DatasetError(
            f"{path}: line {first_empty[0]} ({first_empty[1]}): field 'split': empty, but line "
            f"{first_filled[0]} has {first_filled[2]!r}; fill the split of every row or of none "
            f"({n_empty} of {len(table)} rows have none); a partial column is never re-split, "
            "since a new split would move test images into training"
        )
    return table


def assign_splits(
    names_and_labels: Sequence[tuple[str, str]],
    seed: int,
    test_fraction: float = AUTO_TEST_FRACTION,
    val_fraction: float = AUTO_VAL_FRACTION,
) -> dict[str, str]:
    """Stratified, seeded train/val/test assignment.

    The test and validation sets get ``round(fraction * N)`` images in all (198 of the paper's
    750 for testing), shared among the fine classes by largest remainder: each class first gets
    the whole part of its share, the images left go to the classes with the largest remainders
    (ties in a seeded order). Per-class rounding alone would give small classes no validation
    image at all (4 images x 10 % rounds to 0), and model selection needs them.
    """
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[str]] = defaultdict(list)
    for name, fine in sorted(names_and_labels):
        by_class[fine].append(name)
    classes = [fine for fine in taxonomy.FINE if by_class.get(fine)]
    sizes = np.array([len(by_class[fine]) for fine in classes])
    tie_order = rng.permutation(len(classes))

    def shares(fraction: float, available: np.ndarray) -> np.ndarray:
        exact = fraction * sizes
        count = np.minimum(np.floor(exact).astype(int), available)
        left = int(round(fraction * sizes.sum())) - int(count.sum())
        for k in sorted(range(len(classes)), key=lambda k: (-(exact[k] - np.floor(exact[k])), tie_order[k])):
            if left <= 0:
                break
            if count[k] < available[k]:
                count[k] += 1
                left -= 1
        return count

    n_test = shares(test_fraction, sizes)
    n_val = shares(val_fraction, sizes - n_test)
    out: dict[str, str] = {}
    for k, fine in enumerate(classes):
        names = by_class[fine]
        for rank, idx in enumerate(rng.permutation(len(names))):
            out[names[idx]] = "test" if rank < n_test[k] else "val" if rank < n_test[k] + n_val[k] else "train"
    return out


def _is_synthetic(image: Mapping[str, Any]) -> bool:
    flag = image.get("is_synthetic", False)
    return flag in (True, 1) or str(flag).strip().lower() in ("true", "1", "yes")


def _bbox_from_keypoints(kps: np.ndarray, width: int, height: int) -> list[float]:
    labelled = kps[kps[:, 2] > 0, :2]
    if len(labelled) == 0:
        return [0.0, 0.0, float(width), float(height)]
    size = np.array([width, height], dtype=np.float64)
    lo, hi = np.clip(labelled.min(0), 0.0, size), np.clip(labelled.max(0), 0.0, size)
    pad = 0.1 * (hi - lo).max() + 2.0
    x0, y0 = max(0.0, lo[0] - pad), max(0.0, lo[1] - pad)
    x1, y1 = min(float(width), hi[0] + pad), min(float(height), hi[1] + pad)
    return [x0, y0, x1 - x0, y1 - y0]


def _clip_bbox(bbox: Sequence[float], width: int, height: int) -> list[float]:
    x, y, w, h = (float(v) for v in bbox)
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    return [x0, y0, x1 - x0, y1 - y0]


def _read_coco(path: Path) -> dict[str, Any]:
    try:
        coco = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise _not_utf8(path, exc) from None
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON: {exc}") from None
    if not isinstance(coco, dict):
        raise DatasetError(f"{path}: expected a JSON object at the top level")
    for key in ("images", "annotations"):
        if not isinstance(coco.get(key), list):
            raise DatasetError(f"{path}: top level: field '{key}': missing or not a list")
    for key in ("images", "annotations"):
        for i, item in enumerate(coco[key]):
            if not isinstance(item, Mapping):
                raise DatasetError(
                    f"{path}: {key}[{i}]: expected an object, got {type(item).__name__}"
                )
    return coco


def check_output_dir(out_dir: Path, coco_path: Path, images_dir: Path, labels_path: Path) -> None:
    """Refuse an output folder that is or holds an input (the COCO file, the label table, the
    ``--images`` folder) or lies inside ``--images``: the import would write over what it reads.
    Judged on resolved paths (symbolic links, ``..``); the error names both."""
    out = out_dir.resolve()
    for flag, given in (("--coco", coco_path), ("--labels", labels_path), ("--images", images_dir)):
        src = given.resolve()
        if src.is_relative_to(out):
            relation = "is" if src == out else "contains"
        elif flag == "--images" and out.is_relative_to(src):
            relation = "lies inside"
        else:
            continue
        raise ValueError(f"--out {out} {relation} {flag} {src}: an import never writes into its input; "
                         "choose an --out outside it")


@dataclass
class _Kept:
    """One image to import: its COCO entry, its fine label and its checked annotation."""

    img: Mapping[str, Any]
    fine: str
    kps: np.ndarray
    bbox: list[float]
    kp3d: np.ndarray | None
    source: Path


@dataclass
class _Scan:
    """What the scan of the COCO images found: the images kept and what the report lists."""

    kept: list[_Kept] = field(default_factory=list)
    unlabelled: list[str] = field(default_factory=list)
    disagreements: list[dict[str, str]] = field(default_factory=list)
    several: list[dict[str, Any]] = field(default_factory=list)


def import_syrip(
    coco_path: Path,
    images_dir: Path,
    labels_path: Path,
    out_dir: Path,
    split: str = "auto",
    seed: int = 0,
    domain: str | None = None,
) -> dict[str, Any]:
    """Convert; returns the import report (also written to ``out_dir/import_report.json``).

    Everything is checked before ``out_dir`` is touched, so bad input leaves no partial output;
    an ``out_dir`` that overlaps an input is a ValueError (:func:`check_output_dir`).
    """
    if split not in (*SPLITS, "auto"):
        raise ValueError(f"--split must be auto, train, val or test, got {split!r}")
    check_output_dir(out_dir, coco_path, images_dir, labels_path)
    coco = _read_coco(coco_path)
    labels = read_label_table(labels_path, split)
    coco_names = _check_image_entries(coco, coco_path)
    scan = _scan_images(coco, labels, coco_path, images_dir)
    if not scan.kept:
        raise DatasetError(
            f"{labels_path}: no file_name matches an image of {coco_path} "
            f"(label table has {len(labels)} rows)"
        )
    splits = _choose_splits(scan.kept, labels, split, seed)
    data = _aims_dataset(scan.kept, splits, coco_path, images_dir, labels_path, domain)
    _write_images_and_dataset(scan.kept, data, out_dir)
    report = _report(scan, splits, sorted(set(labels) - coco_names))
    write_json(out_dir / "import_report.json", report)
    return report


def _check_image_entries(coco: Mapping[str, Any], coco_path: Path) -> set[str]:
    """The COCO images' file names, after checking that names and ids are valid and unique."""
    index_of_id: dict[int, int] = {}
    index_of_name: dict[str, int] = {}
    for i, img in enumerate(coco["images"]):
        name = img.get("file_name")
        if not isinstance(name, str) or not name:
            raise DatasetError(
                f"{coco_path}: images[{i}]: field 'file_name': missing or not a path: {name!r}"
            )
        entry = f"images[{i}] ({name})"
        escape = path_escape(name)
        if escape is not None:
            raise DatasetError(
                f"{coco_path}: {entry}: field 'file_name': {name!r} lies outside the images "
                f"directory ({escape}); file names must be relative to --images"
            )
        image_id = img.get("id")
        if not isinstance(image_id, int) or isinstance(image_id, bool):
            raise DatasetError(
                f"{coco_path}: {entry}: field 'id': expected an integer, got {image_id!r}"
            )
        if image_id in index_of_id:
            raise DatasetError(
                f"{coco_path}: {entry}: field 'id': duplicate image id {image_id} "
                f"(also images[{index_of_id[image_id]}])"
            )
        if name in index_of_name:
            raise DatasetError(
                f"{coco_path}: {entry}: field 'file_name': duplicate {name!r} "
                f"(also images[{index_of_name[name]}])"
            )
        index_of_id[image_id] = i
        index_of_name[name] = i
    return set(index_of_name)


def _scan_images(
    coco: Mapping[str, Any], labels: Mapping[str, dict[str, str]], coco_path: Path, images_dir: Path
) -> _Scan:
    """Check every labelled image and its annotation in file order (the first error stops the
    import); images without a label row are counted, not checked."""
    images_root = images_dir.resolve()
    anns_by_image: dict[Any, list[int]] = defaultdict(list)
    for j, ann in enumerate(coco["annotations"]):
        anns_by_image[ann.get("image_id")].append(j)
    scan = _Scan()
    for i, img in enumerate(coco["images"]):
        name = img["file_name"]
        if name not in labels:
            scan.unlabelled.append(name)
            continue
        entry = f"images[{i}] ({name})"
        image_file = _check_image_file(img, entry, images_dir, images_root, coco_path)
        width, height = img["width"], img["height"]
        ann, a_entry, kps = _pick_annotation(coco, anns_by_image.get(img["id"], []), img, entry, coco_path, scan.several)
        bbox = _annotation_bbox(ann, a_entry, kps, width, height, coco_path)
        kp3d = _annotation_keypoints_3d(ann, a_entry, coco_path)
        fine = labels[name]["fine"]
        disagreement = _posture_disagreement(img, entry, fine, coco_path)
        if disagreement is not None:
            scan.disagreements.append(disagreement)
        scan.kept.append(_Kept(img, fine, kps, bbox, kp3d, image_file))
    return scan


def _check_image_file(
    img: Mapping[str, Any], entry: str, images_dir: Path, images_root: Path, coco_path: Path
) -> Path:
    """The image's file inside ``--images``, checked to decode at COCO's width and height."""
    for key in ("width", "height"):
        v = img.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            raise DatasetError(
                f"{coco_path}: {entry}: field '{key}': expected a positive integer, got {v!r}"
            )
    width, height = img["width"], img["height"]
    image_file = images_dir / img["file_name"]
    target = image_file.resolve()
    if not target.is_relative_to(images_root):  # a symbolic link out of the dataset
        raise DatasetError(
            f"{coco_path}: {entry}: field 'file_name': {image_file} leads to {target}, outside "
            f"--images {images_root} (a symbolic link); the import copies only files inside "
            "--images: copy the file there instead of linking it"
        )
    if not image_file.is_file():
        raise DatasetError(
            f"{coco_path}: {entry}: field 'file_name': image file not found: {image_file}"
        )
    try:
        actual = decoded_image_size(image_file)
    except UnreadableImage as exc:
        raise DatasetError(f"{coco_path}: {entry}: field 'file_name': {exc}") from None
    if actual != (width, height):
        fld = "width" if actual[0] != width else "height"
        raise DatasetError(
            f"{coco_path}: {entry}: field '{fld}': image is {actual[0]}x{actual[1]}, "
            f"COCO says {width}x{height} ({image_file})"
        )
    return image_file


def _pick_annotation(
    coco: Mapping[str, Any],
    ann_indices: Sequence[int],
    img: Mapping[str, Any],
    entry: str,
    coco_path: Path,
    several: list[dict[str, Any]],
) -> tuple[Mapping[str, Any], str, np.ndarray]:
    """The image's annotation, its entry name and its checked keypoints: SyRIP holds one infant
    per image, so of several the one with the most labelled keypoints (ties: the first in the
    file), with a warning and a record in ``several``."""
    name = img["file_name"]
    candidates = []
    for j in ann_indices:
        ann = coco["annotations"][j]
        a_entry = f"annotations[{j}] (id={ann.get('id')}, {name})"
        kps = check_keypoints_2d(ann.get("keypoints"), img["width"], img["height"], str(coco_path), a_entry)
        candidates.append((j, a_entry, kps))
    if not candidates:
        raise DatasetError(f"{coco_path}: {entry}: no annotation for image id {img['id']!r}")
    j, a_entry, kps = max(candidates, key=lambda c: int((c[2][:, 2] > 0).sum()))  # max keeps the first of a tie
    ann = coco["annotations"][j]
    if len(candidates) > 1:
        dropped = [coco["annotations"][k].get("id") for k, _, _ in candidates if k != j]
        warnings.warn(
            f"{coco_path}: {entry}: {len(candidates)} annotations for one image; kept "
            f"annotation id {ann.get('id')} ({int((kps[:, 2] > 0).sum())} labelled keypoints), "
            f"dropped {dropped}",
            stacklevel=4,  # import_syrip's caller
        )
        several.append({"file_name": name, "kept": ann.get("id"), "dropped": dropped})
    return ann, a_entry, kps


def _annotation_bbox(
    ann: Mapping[str, Any], a_entry: str, kps: np.ndarray, width: int, height: int, coco_path: Path
) -> list[float]:
    """The annotation's bbox clipped to the image (with a warning), or one around the keypoints."""
    raw_bbox = ann.get("bbox")
    if not raw_bbox:
        return _bbox_from_keypoints(kps, width, height)
    given = check_numbers(raw_bbox, (4,), str(coco_path), a_entry, "bbox")
    if given[2] <= 0 or given[3] <= 0:
        raise DatasetError(
            f"{coco_path}: {a_entry}: field 'bbox': width and height must be positive, "
            f"got {given.tolist()}"
        )
    bbox = _clip_bbox(given, width, height)
    if bbox[2] <= 0 or bbox[3] <= 0:
        raise DatasetError(
            f"{coco_path}: {a_entry}: field 'bbox': {given.tolist()} lies wholly outside "
            f"the {width}x{height} image"
        )
    if not np.allclose(bbox, given, rtol=0.0, atol=1e-6):
        warnings.warn(
            f"{coco_path}: {a_entry}: field 'bbox': {given.tolist()} extends outside the "
            f"{width}x{height} image; clipped to {bbox}",
            stacklevel=4,  # import_syrip's caller
        )
    return bbox


def _annotation_keypoints_3d(ann: Mapping[str, Any], a_entry: str, coco_path: Path) -> np.ndarray | None:
    """The annotation's normalised 3D keypoints (``3d_keypoints`` or ``keypoints_3d``), if any."""
    key3d = "3d_keypoints" if "3d_keypoints" in ann else "keypoints_3d"
    if ann.get(key3d) is None:
        return None
    try:
        n3d = np.asarray(ann[key3d], dtype=object).size
    except ValueError:
        n3d = -1
    if n3d not in (51, 68):  # 17 x 3, or 17 x 4 with a flag column
        raise DatasetError(
            f"{coco_path}: {a_entry}: field '{key3d}': expected 17 x 3 values, got {n3d}"
        )
    arr = check_numbers(ann[key3d], (taxonomy.NUM_KEYPOINTS, n3d // 17), str(coco_path), a_entry, key3d)
    try:
        return taxonomy.normalise_keypoints_3d(arr[:, :3])
    except ValueError as exc:
        raise DatasetError(f"{coco_path}: {a_entry}: field '{key3d}': {exc}") from None


def _posture_disagreement(img: Mapping[str, Any], entry: str, fine: str, coco_path: Path) -> dict[str, str] | None:
    """The report's record when SyRIP's ``posture`` rules out the fine label's parent; the label is kept."""
    posture = img.get("posture")
    if posture is None:
        return None
    coarse = taxonomy.FINE_TO_COARSE[fine]
    try:
        allowed = taxonomy.coarse_from_syrip_posture(str(posture))
    except taxonomy.LabelError as exc:
        raise DatasetError(f"{coco_path}: {entry}: field 'posture': {exc}") from None
    if allowed and coarse not in allowed:
        return {"file_name": img["file_name"], "posture": str(posture), "fine": fine, "coarse_kept": coarse}
    return None


def _choose_splits(kept: Sequence[_Kept], labels: Mapping[str, dict[str, str]], split: str, seed: int) -> dict[str, str]:
    """``file_name`` -> split: ``--split`` for all, else the table's column, else stratified."""
    names = [k.img["file_name"] for k in kept]
    if split != "auto":
        return dict.fromkeys(names, split)
    if all(labels[n]["split"] for n in names):  # the table's column is all or nothing
        return {n: labels[n]["split"] for n in names}
    return assign_splits([(k.img["file_name"], k.fine) for k in kept], seed)


def _aims_dataset(
    kept: Sequence[_Kept],
    splits: Mapping[str, str],
    coco_path: Path,
    images_dir: Path,
    labels_path: Path,
    domain: str | None,
) -> dict[str, Any]:
    """The kept images and annotations in the AIMS format, renumbered from 1 in file order."""
    data = new_dataset(
        {
            "source": "import",
            "description": "SyRIP-style COCO keypoints with AIMS labels",
            "imported_from": {"coco": str(coco_path), "images": str(images_dir), "labels": str(labels_path)},
            "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )
    for new_id, k in enumerate(kept, start=1):
        img, kps, bbox, fine = k.img, k.kps, k.bbox, k.fine
        name = img["file_name"]
        out_img: dict[str, Any] = {
            "id": new_id,
            "file_name": f"images/{PurePosixPath(name).as_posix()}",
            "width": img["width"],
            "height": img["height"],
            "aims_coarse": taxonomy.FINE_TO_COARSE[fine],
            "aims_fine": fine,
            "domain": domain or ("synthetic" if _is_synthetic(img) else "real"),
            "split": splits[name],
            "source_file_name": name,
        }
        if img.get("posture") is not None:
            out_img["syrip_posture"] = str(img["posture"])
        data["images"].append(out_img)
        out_ann: dict[str, Any] = {
            "id": new_id,
            "image_id": new_id,
            "category_id": 1,
            "keypoints": kps.reshape(-1).tolist(),
            "num_keypoints": int((kps[:, 2] > 0).sum()),
            "bbox": bbox,
            "area": float(bbox[2] * bbox[3]),
            "iscrowd": 0,
        }
        if k.kp3d is not None:
            out_ann["keypoints_3d"] = k.kp3d.tolist()
        data["annotations"].append(out_ann)
    return data


def _write_images_and_dataset(kept: Sequence[_Kept], data: dict[str, Any], out_dir: Path) -> None:
    """Copy the images into ``out_dir/images`` and write the dataset, once the input is checked.

    Copies are compared by content (a same-size stale copy from an older import must not
    survive) and written atomically.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    for k, out_img in zip(kept, data["images"]):
        copy_file_atomic(k.source, out_dir / out_img["file_name"])
    write_dataset(data, out_dir, check_images=True)


def _report(scan: _Scan, splits: Mapping[str, str], labels_without_image: list[str]) -> dict[str, Any]:
    """The import report: counts, and the images the import left out, doubted or chose among."""
    return {
        "imported": len(scan.kept),
        "unlabelled_images_left_out": len(scan.unlabelled),
        "labels_without_image": labels_without_image,
        "posture_disagreements": scan.disagreements,
        "several_annotations": scan.several,
        "splits": dict(Counter(splits.values())),
        "fine_counts": dict(Counter(k.fine for k in scan.kept)),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m aims_lib.data.import_syrip", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--coco", type=Path, required=True, help="SyRIP COCO keypoint JSON")
    parser.add_argument("--images", type=Path, required=True, help="directory of its images")
    parser.add_argument("--labels", type=Path, required=True, help="CSV: file_name, fine label")
    parser.add_argument("--out", type=Path, required=True, help="output dataset directory")
    parser.add_argument("--split", default="auto", choices=["auto", *SPLITS],
                        help="split for all images, or auto: the table's split column, else stratified")
    parser.add_argument("--seed", type=int, default=0, help="seed of the automatic split")
    parser.add_argument("--domain", choices=["synthetic", "real"], default=None,
                        help="override SyRIP's is_synthetic flag")
    args = parser.parse_args(argv)
    for flag, path, is_dir in (("--coco", args.coco, False), ("--images", args.images, True),
                               ("--labels", args.labels, False)):
        if not (path.is_dir() if is_dir else path.is_file()):
            parser.error(f"{flag}: {'directory' if is_dir else 'file'} not found: {path}")
    try:
        report = import_syrip(args.coco, args.images, args.labels, args.out, args.split, args.seed, args.domain)
    except ValueError as exc:  # a DatasetError, or an --out that overlaps an input
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"imported {report['imported']} images into {args.out} (splits {report['splits']})")
    if report["unlabelled_images_left_out"]:
        print(f"left out {report['unlabelled_images_left_out']} images with no AIMS label")
    for d in report["posture_disagreements"]:
        print(f"posture disagreement: {d['file_name']}: SyRIP posture {d['posture']!r} "
              f"vs fine label {d['fine']!r} (kept {d['coarse_kept']!r})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
