"""One image reader for training, evaluation and prediction: a file or an array in, uint8 RGB out.

Training (:func:`aims_lib.data.torch_datasets.read_image`), the 2D pose model, the dataset
validator and the predictor all read files here, so that every stage sees the same pixels of a
file: upright (EXIF orientation applied: a phone photo stored sideways would show a lying infant
standing), deep images scaled by their bit depth rather than clipped, and one error,
:class:`ImageReadError`, naming the file and the reason.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

T = TypeVar("T")

#: Smallest width and height read: below this an image holds no infant to recognise.
MIN_SIDE = 2


class ImageReadError(ValueError):
    """An input image that is missing, empty, undecodable, truncated, a possible decompression
    bomb or too small. The message reads ``"cannot read image <file>: <reason>"``; :attr:`reason`
    holds the reason alone, so that callers can name the file their own way."""

    def __init__(self, file: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"cannot read image {file}: {reason}")
        self.file = str(file)
        self.reason = reason

    def __reduce__(self) -> tuple[type[ImageReadError], tuple[str, str]]:
        return type(self), (self.file, self.reason)  # picklable across worker processes


class ImageNotFoundError(ImageReadError, FileNotFoundError):
    """A missing image file: also a :class:`FileNotFoundError`, which callers of file readers expect."""


def _rgb8(im: Image.Image) -> np.ndarray:
    """A Pillow image as uint8 RGB. One-channel images of more than 8 bits (16-bit PNG/TIFF:
    modes ``I;16*``; ``I``; ``F``) are scaled by their bit depth: ``convert("RGB")`` clips them
    at 255, which turns a 16-bit image nearly white. ``I``/``F`` do not say their depth: 16 bits
    when the values fit (the usual content), else 31; ``F`` within [0, 1] is taken as such.
    Every other mode goes through Pillow's ``convert("RGB")``: palette images show their palette
    colours, grey and bilevel images are repeated over the channels, alpha (``RGBA``, ``LA``,
    ``PA``, a palette's transparency) is dropped, as for arrays, and CMYK (JPEG CMYK, Adobe's
    inverted one included) becomes ``(255 - C) * (255 - K) / 255`` per channel. Pillow reads
    16-bit RGB(A) PNGs as 8-bit ``RGB(A)`` already."""
    if im.mode == "P":  # through RGBA: to RGB directly Pillow warns on per-entry transparency
        im = im.convert("RGBA")
    if not (im.mode.startswith("I;16") or im.mode in ("I", "F")):
        return np.asarray(im.convert("RGB"))
    values = np.asarray(im).astype(np.float64)
    top = float(values.max()) if values.size else 0.0
    if im.mode == "F" and values.size and values.min() >= 0.0 and top <= 1.0:
        full = 1.0
    elif im.mode.startswith("I;16") or top <= 65535:
        full = 65535.0
    else:
        full = float(2**31 - 1)
    gray = np.round(np.clip(np.nan_to_num(values) / full, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _decode(path: Path, take: Callable[[Image.Image], T]) -> T:
    """``take`` of the file decoded whole (a truncated file fails, not just a bad header) and
    turned upright by its EXIF orientation; :class:`ImageReadError` says why not."""
    from PIL import Image, ImageOps

    if not path.is_file():
        raise ImageNotFoundError(path, "no such file")
    if path.stat().st_size == 0:
        raise ImageReadError(path, "empty file (0 bytes)")
    try:
        with Image.open(path) as im:
            im.load()
            ImageOps.exif_transpose(im, in_place=True)
            return take(im)
    except Image.DecompressionBombError as exc:  # not an OSError: it would end the whole batch
        raise ImageReadError(
            path, f"refused as a possible decompression bomb ({exc}); raise PIL.Image.MAX_IMAGE_PIXELS to read it"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, struct.error) as exc:  # Pillow's decoder errors
        raise ImageReadError(path, f"not a readable image ({type(exc).__name__}: {exc})") from None


def _check_size(name: str | os.PathLike[str], width: int, height: int) -> None:
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageReadError(name, f"image too small ({width} x {height} px)")


def read_image(image: np.ndarray | str | os.PathLike[str]) -> np.ndarray:
    """A file, upright, or a uint8 array ((H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA, alpha
    dropped) as a C-contiguous uint8 RGB array (H, W, 3); :class:`ImageReadError` says why not."""
    if isinstance(image, (str, os.PathLike)):
        name: str | os.PathLike[str] = image
        arr = _decode(Path(image), _rgb8)
    else:
        name = "<array>"
        arr = np.asarray(image)
        if arr.ndim == 2:
            arr = np.repeat(arr[..., None], 3, axis=2)
        if arr.ndim != 3 or arr.shape[2] not in (3, 4) or arr.dtype != np.uint8:
            raise ImageReadError(name, f"images must be uint8 RGB arrays (H, W, 3) or files; got {arr.dtype} {arr.shape}")
        arr = arr[..., :3]
    _check_size(name, arr.shape[1], arr.shape[0])
    return np.ascontiguousarray(arr)


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) of a file as :func:`read_image` returns it (upright), decoding all of it:
    the dataset validator rejects here what training could not read."""
    width, height = _decode(Path(path), lambda im: im.size)
    _check_size(path, width, height)
    return width, height
