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
files are never modified.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from aims_lib import taxonomy
from aims_lib.data.format import (
    SPLITS,
    DatasetError,
    atomic_write_bytes,
    new_dataset,
    write_dataset,
)

FINE_COLUMNS = ("fine", "aims_fine", "fine_label", "label")
#: Paper scale: 198 of 750 real images are the test split; validation takes 10 %.
AUTO_TEST_FRACTION = 198 / 750
AUTO_VAL_FRACTION = 0.10


def read_label_table(path: Path) -> dict[str, dict[str, str]]:
    """``file_name`` -> {"fine": canonical label, "split": split or ""}; errors name the row."""
    with path.open(newline="", encoding="utf-8") as f:
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
        table: dict[str, dict[str, str]] = {}
        for line, row in enumerate(reader, start=2):
            row = {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
            name = row["file_name"]
            try:
                fine = taxonomy.parse_fine(row[fine_col])
            except taxonomy.LabelError as exc:
                raise DatasetError(f"{path}: line {line} ({name}): field '{fine_col}': {exc}") from None
            split = row.get("split", "")
            if split and split not in SPLITS:
                raise DatasetError(
                    f"{path}: line {line} ({name}): field 'split': unknown value {split!r}; "
                    f"valid: {', '.join(SPLITS)}"
                )
            if name in table:
                raise DatasetError(f"{path}: line {line}: field 'file_name': duplicate {name!r}")
            table[name] = {"fine": fine, "split": split}
    return table


def assign_splits(
    names_and_labels: Sequence[tuple[str, str]],
    seed: int,
    test_fraction: float = AUTO_TEST_FRACTION,
    val_fraction: float = AUTO_VAL_FRACTION,
) -> dict[str, str]:
    """Stratified, seeded train/val/test assignment: each fine class is split in proportion."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[str]] = defaultdict(list)
    for name, fine in sorted(names_and_labels):
        by_class[fine].append(name)
    out: dict[str, str] = {}
    for fine in taxonomy.FINE:
        names = by_class.get(fine, [])
        order = rng.permutation(len(names))
        n_test = int(round(test_fraction * len(names)))
        n_val = int(round(val_fraction * len(names)))
        for rank, idx in enumerate(order):
            out[names[idx]] = "test" if rank < n_test else "val" if rank < n_test + n_val else "train"
    return out


def _is_synthetic(image: Mapping[str, Any]) -> bool:
    flag = image.get("is_synthetic", False)
    return flag in (True, 1) or str(flag).strip().lower() in ("true", "1", "yes")


def _bbox_from_keypoints(kps: np.ndarray, width: int, height: int) -> list[float]:
    labelled = kps[kps[:, 2] > 0, :2]
    if len(labelled) == 0:
        return [0.0, 0.0, float(width), float(height)]
    lo, hi = labelled.min(0), labelled.max(0)
    pad = 0.1 * (hi - lo).max() + 2.0
    x0, y0 = max(0.0, lo[0] - pad), max(0.0, lo[1] - pad)
    x1, y1 = min(float(width), hi[0] + pad), min(float(height), hi[1] + pad)
    return [x0, y0, x1 - x0, y1 - y0]


def _clip_bbox(bbox: Sequence[float], width: int, height: int) -> list[float]:
    x, y, w, h = (float(v) for v in bbox)
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(width), x + w), min(float(height), y + h)
    return [x0, y0, x1 - x0, y1 - y0]


def import_syrip(
    coco_path: Path,
    images_dir: Path,
    labels_path: Path,
    out_dir: Path,
    split: str = "auto",
    seed: int = 0,
    domain: str | None = None,
) -> dict[str, Any]:
    """Convert; returns the import report (also written to ``out_dir/import_report.json``)."""
    if split not in (*SPLITS, "auto"):
        raise ValueError(f"--split must be auto, train, val or test, got {split!r}")
    try:
        coco = json.loads(coco_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{coco_path}: not valid JSON: {exc}") from None
    for key in ("images", "annotations"):
        if not isinstance(coco.get(key), list):
            raise DatasetError(f"{coco_path}: top level: field '{key}': missing or not a list")
    labels = read_label_table(labels_path)

    anns_by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    for ann in coco["annotations"]:
        anns_by_image[ann.get("image_id")].append(ann)

    unlabelled: list[str] = []
    disagreements: list[dict[str, str]] = []
    kept: list[tuple[dict[str, Any], dict[str, Any], str]] = []
    seen_files: set[str] = set()
    for i, img in enumerate(coco["images"]):
        name = img.get("file_name")
        if name is None:
            raise DatasetError(f"{coco_path}: images[{i}]: field 'file_name': missing")
        seen_files.add(name)
        if name not in labels:
            unlabelled.append(name)
            continue
        anns = anns_by_image.get(img.get("id"), [])
        if not anns:
            raise DatasetError(f"{coco_path}: images[{i}] ({name}): no annotation for image id {img.get('id')!r}")
        # One infant per image: keep the annotation with the most labelled keypoints.
        ann = max(anns, key=lambda a: a.get("num_keypoints", 0))
        fine = labels[name]["fine"]
        coarse = taxonomy.FINE_TO_COARSE[fine]
        posture = img.get("posture")
        if posture is not None:
            try:
                allowed = taxonomy.coarse_from_syrip_posture(str(posture))
            except taxonomy.LabelError as exc:
                raise DatasetError(f"{coco_path}: images[{i}] ({name}): field 'posture': {exc}") from None
            if allowed and coarse not in allowed:
                disagreements.append(
                    {"file_name": name, "posture": str(posture), "fine": fine, "coarse_kept": coarse}
                )
        kept.append((img, ann, fine))
    if not kept:
        raise DatasetError(
            f"{labels_path}: no file_name matches an image of {coco_path} "
            f"(label table has {len(labels)} rows)"
        )
    missing_in_coco = sorted(set(labels) - seen_files)

    if split == "auto":
        table_splits = {labels[img["file_name"]]["split"] for img, _, _ in kept}
        if table_splits <= set(SPLITS):  # every row carries its split
            splits = {img["file_name"]: labels[img["file_name"]]["split"] for img, _, _ in kept}
        else:
            splits = assign_splits([(img["file_name"], fine) for img, _, fine in kept], seed)
    else:
        splits = {img["file_name"]: split for img, _, _ in kept}

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "images").mkdir(exist_ok=True)
    data = new_dataset(
        {
            "source": "import",
            "description": "SyRIP-style COCO keypoints with AIMS labels",
            "imported_from": {"coco": str(coco_path), "images": str(images_dir), "labels": str(labels_path)},
            "date_created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )
    for new_id, (img, ann, fine) in enumerate(kept, start=1):
        name = img["file_name"]
        src = images_dir / name
        if not src.is_file():
            raise DatasetError(f"{coco_path}: image {name!r}: field 'file_name': image file not found: {src}")
        dst_name = f"images/{Path(name).name}"
        dst = out_dir / dst_name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            shutil.copy2(src, dst)
        width, height = int(img["width"]), int(img["height"])
        kps = np.asarray(ann.get("keypoints", []), dtype=np.float64)
        if kps.size != 3 * taxonomy.NUM_KEYPOINTS:
            raise DatasetError(
                f"{coco_path}: annotation of {name!r}: field 'keypoints': expected 51 values, got {kps.size}"
            )
        kps = kps.reshape(-1, 3)
        bbox = ann.get("bbox")
        bbox = _clip_bbox(bbox, width, height) if bbox else _bbox_from_keypoints(kps, width, height)
        entry: dict[str, Any] = {
            "id": new_id,
            "file_name": dst_name,
            "width": width,
            "height": height,
            "aims_coarse": taxonomy.FINE_TO_COARSE[fine],
            "aims_fine": fine,
            "domain": domain or ("synthetic" if _is_synthetic(img) else "real"),
            "split": splits[name],
            "source_file_name": name,
        }
        if img.get("posture") is not None:
            entry["syrip_posture"] = str(img["posture"])
        data["images"].append(entry)
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
        raw3d = ann.get("3d_keypoints", ann.get("keypoints_3d"))
        if raw3d is not None:
            arr = np.asarray(raw3d, dtype=np.float64)
            if arr.size not in (51, 68):  # 17 x 3, or 17 x 4 with a flag column
                raise DatasetError(
                    f"{coco_path}: annotation of {name!r}: field '3d_keypoints': expected 17 x 3 values, got {arr.size}"
                )
            arr = arr.reshape(17, -1)[:, :3]
            out_ann["keypoints_3d"] = taxonomy.normalise_keypoints_3d(arr).tolist()
        data["annotations"].append(out_ann)

    write_dataset(data, out_dir, check_images=True)
    report = {
        "imported": len(kept),
        "unlabelled_images_left_out": len(unlabelled),
        "labels_without_image": missing_in_coco,
        "posture_disagreements": disagreements,
        "splits": dict(Counter(splits.values())),
        "fine_counts": dict(Counter(f for _, _, f in kept)),
    }
    atomic_write_bytes(out_dir / "import_report.json", json.dumps(report, indent=2).encode())
    return report


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
    except DatasetError as exc:
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
