"""The AIMS dataset format: one COCO keypoint JSON with AIMS fields, its validator and writer.

The file is a plain COCO keypoint file (``pycocotools.coco.COCO`` loads it unchanged) with a
few extra fields, documented in ``data/README.md``:

* per image: ``aims_coarse``, ``aims_fine`` (canonical label names), ``domain``
  (``"synthetic"`` or ``"real"``) and ``split`` (``"train"``, ``"val"``, ``"test"``);
* per annotation, optionally: ``keypoints_3d`` (17 x 3, pelvis-centred and divided by the
  nose-to-pelvis distance, see :func:`aims_lib.taxonomy.normalise_keypoints_3d`), ``camera``
  (``K`` 3x3, ``R`` 3x3, ``T`` 3) and ``body`` (SMPL-format parameters of rendered samples);
* an ``info`` block with ``source`` (``"embedded-generator"``, ``"import"`` or ``"merged"``,
  see :mod:`aims_lib.data.merge`) saying where the data came from.

Every image holds exactly one infant, so every image has exactly one annotation.
:func:`load_dataset` rejects bad input with a :class:`DatasetError` naming the file, the entry
and the field; :func:`write_dataset` validates first and writes atomically. Beyond the COCO
structure it rejects numbers given as strings (``"12.5"`` would otherwise be converted
silently), labelled keypoints more than :data:`KEYPOINT_MARGIN` of the image size outside the
image (a unit or scale error, not an occluded limb) and image file names that leave the
dataset folder (absolute paths, ``..``), so that a file cannot make a reader open other files.
Importers reuse :func:`check_keypoints_2d`, :func:`check_numbers` and :func:`path_escape` so
that they reject the same input and name their own input file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import TYPE_CHECKING, Any, Final, Literal

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from aims_lib import taxonomy
from aims_lib.files import write_json
from aims_lib.image_io import ImageReadError, image_size

FORMAT_VERSION: Final[str] = "1.0"
DOMAINS: Final[tuple[str, ...]] = ("synthetic", "real")
SPLITS: Final[tuple[str, ...]] = ("train", "val", "test")
SOURCES: Final[tuple[str, ...]] = ("embedded-generator", "import", "merged")
ANNOTATIONS_FILE: Final[str] = "annotations.json"
#: Tolerance of the 3D convention check (pelvis at the origin, nose at distance 1).
KEYPOINTS_3D_TOL: Final[float] = 1e-3
#: How far outside its image a labelled keypoint may lie, as a fraction of the image width
#: (for x) or height (for y). Some margin is needed: annotators place occluded or cut-off limbs
#: slightly outside the frame, where they would be. Half the image size beyond the border is no
#: longer such a limb but a coordinate in the wrong units or frame.
KEYPOINT_MARGIN: Final[float] = 0.5

Domain = Literal["synthetic", "real"]
Split = Literal["train", "val", "test"]


class DatasetError(ValueError):
    """Invalid dataset content; the message names the file, the entry and the field."""


def person_category() -> dict[str, Any]:
    """The single COCO category of the format: a person with the COCO-17 keypoints."""
    return {
        "id": 1,
        "name": "person",
        "supercategory": "person",
        "keypoints": list(taxonomy.KEYPOINTS),
        "skeleton": [[a + 1, b + 1] for a, b in taxonomy.SKELETON],  # COCO is 1-based
    }


@dataclass(frozen=True)
class Sample:
    """One validated image with its single annotation, in the units of the file."""

    image_id: int
    file_name: str
    path: Path
    width: int
    height: int
    coarse: str
    fine: str
    domain: str
    split: str
    keypoints_2d: np.ndarray  # (17, 2) pixel coordinates
    visibility: np.ndarray  # (17,) COCO flags: 0 unlabelled, 1 occluded, 2 visible
    bbox: np.ndarray  # (4,) x, y, w, h
    keypoints_3d: np.ndarray | None  # (17, 3) normalised, or None
    camera: dict[str, np.ndarray] | None  # K (3,3), R (3,3), T (3,)
    body: dict[str, Any] | None

    @property
    def coarse_id(self) -> int:
        return taxonomy.COARSE.index(self.coarse)

    @property
    def fine_id(self) -> int:
        return taxonomy.FINE.index(self.fine)


@dataclass(frozen=True)
class AimsDataset:
    """A validated dataset file: its path, ``info`` block and samples in file order."""

    path: Path
    info: dict[str, Any]
    samples: tuple[Sample, ...]
    raw: dict[str, Any] = field(repr=False)

    @property
    def root(self) -> Path:
        """Directory that image ``file_name`` entries are relative to."""
        return self.path.parent

    def select(
        self, split: str | Iterable[str] | None = None, domain: str | Iterable[str] | None = None
    ) -> list[Sample]:
        """Samples of the given split(s) and domain(s); ``None`` means all."""
        splits = _as_set(split, SPLITS, "split")
        domains = _as_set(domain, DOMAINS, "domain")
        return [s for s in self.samples if s.split in splits and s.domain in domains]

    def __len__(self) -> int:
        return len(self.samples)

    def to_frame(self) -> pd.DataFrame:
        """One row per sample (id, file, labels, domain, split, visible keypoints, bbox size)."""
        import pandas as pd

        return pd.DataFrame(
            {
                "image_id": s.image_id,
                "file_name": s.file_name,
                "coarse": s.coarse,
                "fine": s.fine,
                "domain": s.domain,
                "split": s.split,
                "visible_keypoints": int((s.visibility == 2).sum()),
                "labelled_keypoints": int((s.visibility > 0).sum()),
                "bbox_area_fraction": float(s.bbox[2] * s.bbox[3] / (s.width * s.height)),
            }
            for s in self.samples
        )


def _as_set(value: str | Iterable[str] | None, valid: tuple[str, ...], name: str) -> set[str]:
    if value is None:
        return set(valid)
    values = {value} if isinstance(value, str) else set(value)
    unknown = values - set(valid)
    if unknown:
        raise ValueError(f"unknown {name} {sorted(unknown)}; valid: {', '.join(valid)}")
    return values


class _Where:
    """Builds error messages that name the file, the entry and the field."""

    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, entry: str, fld: str, problem: str) -> DatasetError:
        return DatasetError(f"{self.source}: {entry}: field '{fld}': {problem}")


def _require(d: Mapping[str, Any], key: str, where: _Where, entry: str) -> Any:
    if key not in d:
        raise where.error(entry, key, "missing")
    return d[key]


def _first_non_number(value: Any, index: tuple[int, ...] = ()) -> tuple[list[int], Any] | None:
    """Index and value of the first element of a nested list that is not an int or a float.

    ``np.asarray(..., dtype=float)`` would accept ``"12.5"`` and ``True``; a file holding them
    was written by something that does not follow the format, so they are rejected, not cast.
    """
    if isinstance(value, np.ndarray) and value.dtype.kind in "iuf":
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        for k, v in enumerate(value):
            found = _first_non_number(v, (*index, k))
            if found is not None:
                return found
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        return list(index), value
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        return "a string"
    return "a boolean" if isinstance(value, bool) else f"a {type(value).__name__}"


def _finite_array(
    value: Any, shape: tuple[int, ...], where: _Where, entry: str, fld: str
) -> np.ndarray:
    bad = _first_non_number(value)
    if bad is not None:
        index, item = bad
        raise where.error(
            entry, fld, f"expected numbers, got {item!r} ({_kind(item)}) at index {index}"
        )
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise where.error(entry, fld, f"not numeric ({exc})") from None
    if arr.size != math.prod(shape):
        raise where.error(
            entry, fld, f"expected {math.prod(shape)} values {shape}, got {arr.size}"
        )
    arr = arr.reshape(shape)
    if not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))[0].tolist()
        raise where.error(entry, fld, f"non-finite value {arr[tuple(bad)]} at index {bad}")
    return arr


def check_numbers(
    value: Any, shape: tuple[int, ...], source: str, entry: str, fld: str
) -> np.ndarray:
    """``value`` as a finite float array of ``shape``; a :class:`DatasetError` naming ``source``,
    ``entry`` and ``fld`` for strings, booleans, NaN, infinity or a wrong count."""
    return _finite_array(value, shape, _Where(source), entry, fld)


def _keypoints_2d(value: Any, width: int, height: int, where: _Where, entry: str) -> np.ndarray:
    n_values = len(value) if isinstance(value, list) else -1
    if n_values != 3 * taxonomy.NUM_KEYPOINTS:
        raise where.error(
            entry,
            "keypoints",
            f"expected {taxonomy.NUM_KEYPOINTS} keypoints ({3 * taxonomy.NUM_KEYPOINTS} values),"
            f" got {n_values if n_values >= 0 else type(value).__name__}"
            + (f" ({n_values / 3:g} keypoints)" if n_values >= 0 else ""),
        )
    kps = _finite_array(value, (taxonomy.NUM_KEYPOINTS, 3), where, entry, "keypoints")
    vis = kps[:, 2]
    if not np.isin(vis, (0, 1, 2)).all():
        raise where.error(entry, "keypoints", f"visibility flags must be 0, 1 or 2, got {vis}")
    lo = -KEYPOINT_MARGIN * np.array([width, height])
    hi = (1.0 + KEYPOINT_MARGIN) * np.array([width, height])
    far = (vis > 0) & ((kps[:, :2] < lo) | (kps[:, :2] > hi)).any(axis=1)
    if far.any():
        k = int(np.argmax(far))
        raise where.error(
            entry,
            "keypoints",
            f"labelled keypoint {k} ({taxonomy.KEYPOINTS[k]}) at ({kps[k, 0]:.1f}, {kps[k, 1]:.1f})"
            f" lies more than {KEYPOINT_MARGIN:.0%} of the image size outside its {width}x{height}"
            " image (pixel coordinates of this image expected)",
        )
    return kps


def check_keypoints_2d(
    value: Any, width: int, height: int, source: str, entry: str
) -> np.ndarray:
    """COCO ``keypoints`` of a ``width`` x ``height`` image as a (17, 3) array, checked as the
    reader checks them: 51 numbers, finite, flags 0/1/2, labelled points within
    :data:`KEYPOINT_MARGIN`. Errors name ``source``, ``entry`` and the field."""
    return _keypoints_2d(value, width, height, _Where(source), entry)


def path_escape(file_name: str) -> str | None:
    """Why ``file_name`` would leave the folder it is relative to, or ``None`` if it stays.

    Checked lexically, for POSIX and Windows spellings alike, since a dataset file may be read
    on either: an absolute path or a drive, or a ``..`` component.
    """
    win = PureWindowsPath(file_name)
    if PurePosixPath(file_name).is_absolute() or win.anchor:
        return "absolute path"
    if ".." in win.parts:
        return "'..' component"
    return None


def _validate_image(img: Any, i: int, where: _Where) -> dict[str, Any]:
    entry = f"images[{i}]"
    if not isinstance(img, Mapping):
        raise where.error(entry, "<entry>", f"expected an object, got {type(img).__name__}")
    image_id = _require(img, "id", where, entry)
    entry = f"images[{i}] (id={image_id})"
    if not isinstance(image_id, int) or isinstance(image_id, bool):
        raise where.error(entry, "id", f"expected an integer, got {image_id!r}")
    for key in ("width", "height"):
        v = _require(img, key, where, entry)
        if not isinstance(v, int) or v <= 0:
            raise where.error(entry, key, f"expected a positive integer, got {v!r}")
    file_name = _require(img, "file_name", where, entry)
    if not isinstance(file_name, str) or not file_name:
        raise where.error(entry, "file_name", f"expected a non-empty path, got {file_name!r}")
    escape = path_escape(file_name)
    if escape is not None:
        raise where.error(
            entry,
            "file_name",
            f"{file_name!r} lies outside the dataset folder ({escape}); "
            "image paths must be relative to the dataset folder and stay inside it",
        )
    try:
        fine = taxonomy.parse_fine(_require(img, "aims_fine", where, entry))
    except taxonomy.LabelError as exc:
        raise where.error(entry, "aims_fine", str(exc)) from None
    try:
        coarse = taxonomy.parse_coarse(_require(img, "aims_coarse", where, entry))
    except taxonomy.LabelError as exc:
        raise where.error(entry, "aims_coarse", str(exc)) from None
    if taxonomy.FINE_TO_COARSE[fine] != coarse:
        raise where.error(
            entry,
            "aims_coarse",
            f"{coarse!r} does not contain fine label {fine!r} "
            f"(expected {taxonomy.FINE_TO_COARSE[fine]!r})",
        )
    domain = _require(img, "domain", where, entry)
    if domain not in DOMAINS:
        raise where.error(entry, "domain", f"unknown value {domain!r}; valid: {', '.join(DOMAINS)}")
    split = _require(img, "split", where, entry)
    if split not in SPLITS:
        raise where.error(entry, "split", f"unknown value {split!r}; valid: {', '.join(SPLITS)}")
    return {
        "image_id": image_id,
        "file_name": file_name,
        "width": img["width"],
        "height": img["height"],
        "coarse": coarse,
        "fine": fine,
        "domain": domain,
        "split": split,
    }


def _validate_annotation(
    ann: Any, i: int, images: Mapping[int, dict[str, Any]], where: _Where
) -> dict[str, Any]:
    entry = f"annotations[{i}]"
    if not isinstance(ann, Mapping):
        raise where.error(entry, "<entry>", f"expected an object, got {type(ann).__name__}")
    ann_id = _require(ann, "id", where, entry)
    entry = f"annotations[{i}] (id={ann_id})"
    if not isinstance(ann_id, int) or isinstance(ann_id, bool):
        raise where.error(entry, "id", f"expected an integer, got {ann_id!r}")
    image_id = _require(ann, "image_id", where, entry)
    if image_id not in images:
        raise where.error(entry, "image_id", f"no image with id {image_id!r}")
    img = images[image_id]
    if _require(ann, "category_id", where, entry) != 1:
        raise where.error(entry, "category_id", f"expected 1 (person), got {ann['category_id']!r}")

    kps = _require(ann, "keypoints", where, entry)
    kps_arr = _keypoints_2d(kps, img["width"], img["height"], where, entry)
    vis = kps_arr[:, 2]

    bbox = _finite_array(_require(ann, "bbox", where, entry), (4,), where, entry, "bbox")
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        raise where.error(entry, "bbox", f"width and height must be positive, got {bbox.tolist()}")
    tol = 1.0  # one pixel of rounding
    if x < -tol or y < -tol or x + w > img["width"] + tol or y + h > img["height"] + tol:
        raise where.error(
            entry,
            "bbox",
            f"{bbox.tolist()} lies outside its image "
            f"({img['width']}x{img['height']}, image id {image_id})",
        )

    kp3d = None
    if ann.get("keypoints_3d") is not None:
        kp3d = _finite_array(
            ann["keypoints_3d"], (taxonomy.NUM_KEYPOINTS, 3), where, entry, "keypoints_3d"
        )
        root = taxonomy.pelvis(kp3d)
        scale = float(np.linalg.norm(kp3d[taxonomy.NOSE] - root))
        if np.abs(root).max() > KEYPOINTS_3D_TOL or abs(scale - 1.0) > KEYPOINTS_3D_TOL:
            raise where.error(
                entry,
                "keypoints_3d",
                f"not in the normalised convention (pelvis {root.round(4).tolist()}, "
                f"nose-to-pelvis {scale:.4f}; expected pelvis at 0 and distance 1)",
            )

    camera = None
    if ann.get("camera") is not None:
        cam = ann["camera"]
        if not isinstance(cam, Mapping):
            raise where.error(entry, "camera", f"expected an object, got {type(cam).__name__}")
        camera = {
            "K": _finite_array(_require(cam, "K", where, entry), (3, 3), where, entry, "camera.K"),
            "R": _finite_array(_require(cam, "R", where, entry), (3, 3), where, entry, "camera.R"),
            "T": _finite_array(_require(cam, "T", where, entry), (3,), where, entry, "camera.T"),
        }
    body = ann.get("body")
    if body is not None and not isinstance(body, Mapping):
        raise where.error(entry, "body", f"expected an object, got {type(body).__name__}")
    return {
        "ann_id": ann_id,
        "image_id": image_id,
        "keypoints_2d": kps_arr[:, :2],
        "visibility": vis.astype(np.int64),
        "bbox": bbox,
        "keypoints_3d": kp3d,
        "camera": camera,
        "body": body,
    }


def validate(
    data: Any, source: str = "<dataset>", root: Path | None = None, check_images: bool = False
) -> tuple[Sample, ...]:
    """Validate a parsed dataset dict and return its samples.

    ``source`` names the file in error messages; image paths are relative to ``root`` (default:
    the working directory); with ``check_images`` every image file must exist there.
    """
    where = _Where(source)
    if not isinstance(data, Mapping):
        raise DatasetError(f"{source}: expected a JSON object at the top level")
    for key in ("info", "images", "annotations", "categories"):
        if key not in data:
            raise DatasetError(f"{source}: top level: field '{key}': missing")
    info = data["info"]
    if not isinstance(info, Mapping):
        raise where.error("info", "<entry>", "expected an object")
    if info.get("source") not in SOURCES:
        raise where.error(
            "info", "source", f"unknown value {info.get('source')!r}; valid: {', '.join(SOURCES)}"
        )
    cats = data["categories"]
    if not isinstance(cats, list) or [c.get("id") for c in cats if isinstance(c, Mapping)] != [1]:
        raise where.error("categories", "id", "expected exactly one category with id 1 (person)")
    if list(cats[0].get("keypoints", [])) != list(taxonomy.KEYPOINTS):
        raise where.error("categories[0]", "keypoints", "expected the COCO-17 keypoint names")

    if not isinstance(data["images"], list):
        raise where.error("images", "<entry>", "expected a list")
    if not isinstance(data["annotations"], list):
        raise where.error("annotations", "<entry>", "expected a list")

    images: dict[int, dict[str, Any]] = {}
    file_names: dict[str, int] = {}
    for i, img in enumerate(data["images"]):
        v = _validate_image(img, i, where)
        entry = f"images[{i}] (id={v['image_id']})"
        if v["image_id"] in images:
            raise where.error(entry, "id", f"duplicate image id {v['image_id']}")
        if v["file_name"] in file_names:
            raise where.error(
                entry,
                "file_name",
                f"duplicate file {v['file_name']!r} (also image id {file_names[v['file_name']]})",
            )
        if check_images:
            path = (root or Path(".")) / v["file_name"]
            if not path.is_file():
                raise where.error(entry, "file_name", f"image file not found: {path}")
        images[v["image_id"]] = v
        file_names[v["file_name"]] = v["image_id"]

    anns: dict[int, dict[str, Any]] = {}
    ann_ids: set[int] = set()
    for i, ann in enumerate(data["annotations"]):
        a = _validate_annotation(ann, i, images, where)
        entry = f"annotations[{i}] (id={a['ann_id']})"
        if a["ann_id"] in ann_ids:
            raise where.error(entry, "id", f"duplicate annotation id {a['ann_id']}")
        if a["image_id"] in anns:
            raise where.error(
                entry, "image_id", f"image {a['image_id']} has more than one annotation"
            )
        ann_ids.add(a["ann_id"])
        anns[a["image_id"]] = a

    missing = [i for i in images if i not in anns]
    if missing:
        raise where.error(
            f"images (id={missing[0]})", "id", f"{len(missing)} image(s) have no annotation"
        )

    base = root if root is not None else Path(".")
    samples = []
    for image_id, v in images.items():
        a = anns[image_id]
        samples.append(
            Sample(
                image_id=image_id,
                file_name=v["file_name"],
                path=base / v["file_name"],
                width=v["width"],
                height=v["height"],
                coarse=v["coarse"],
                fine=v["fine"],
                domain=v["domain"],
                split=v["split"],
                keypoints_2d=a["keypoints_2d"],
                visibility=a["visibility"],
                bbox=a["bbox"],
                keypoints_3d=a["keypoints_3d"],
                camera=a["camera"],
                body=a["body"],
            )
        )
    return tuple(samples)


def load_dataset(path: str | os.PathLike[str], check_images: bool = True) -> AimsDataset:
    """Read and validate a dataset file (or a directory holding ``annotations.json``).

    Image paths are relative to the file's directory; with ``check_images`` every image file
    must exist.
    """
    path = Path(path)
    if path.is_dir():
        path = path / ANNOTATIONS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}")
    try:
        with path.open(encoding="utf-8") as f:
            data = json.load(f)
    except json.JSONDecodeError as exc:
        raise DatasetError(f"{path}: not valid JSON: {exc}") from None
    samples = validate(data, str(path), path.parent, check_images)
    return AimsDataset(path=path, info=dict(data["info"]), samples=samples, raw=data)


#: The dataset code's name for :class:`aims_lib.image_io.ImageReadError`: one error for an image
#: that cannot be read, wherever it is read.
UnreadableImage = ImageReadError


def decoded_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) of an image as training reads it (:func:`aims_lib.image_io.image_size`):
    upright after its EXIF orientation, which is the pixel frame of a dataset's boxes and
    keypoints, and decoded whole so that a truncated file fails here (:class:`UnreadableImage`)."""
    return image_size(path)


def write_dataset(
    data: Mapping[str, Any], path: str | os.PathLike[str], check_images: bool = False
) -> Path:
    """Validate ``data`` and write it atomically as JSON; returns the written path.

    Arrays are written as nested lists; the key order of ``data`` is kept so that the same
    content gives byte-identical files.
    """
    path = Path(path)
    if path.is_dir():
        path = path / ANNOTATIONS_FILE
    validate(data, str(path), path.parent, check_images)
    return write_json(path, data, indent=None, compact=True)


def new_dataset(info: Mapping[str, Any]) -> dict[str, Any]:
    """An empty dataset dict with the format's category and the given ``info`` block."""
    return {
        "info": {"format_version": FORMAT_VERSION, **info},
        "licenses": [],
        "images": [],
        "annotations": [],
        "categories": [person_category()],
    }
