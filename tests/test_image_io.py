"""The one image reader: EXIF orientation, every pixel format, errors, and its callers agreeing."""

from __future__ import annotations

import copy
import dataclasses
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image

from aims_lib.data import torch_datasets
from aims_lib.data.format import DatasetError, UnreadableImage, decoded_image_size, load_dataset
from aims_lib.image_io import ImageNotFoundError, ImageReadError, image_size, read_image
from aims_lib.pose_branch import mmpose_estimator


def _stored(upright: np.ndarray, orientation: int) -> np.ndarray:
    """The pixels a camera stores for an ``upright`` picture with this EXIF Orientation, from the
    EXIF definition of where the stored row 0 and column 0 are seen (not from Pillow's code)."""
    return {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],  # row 0 top, column 0 right
        3: lambda a: a[::-1, ::-1],  # row 0 bottom, column 0 right
        4: lambda a: a[::-1],  # row 0 bottom, column 0 left
        5: lambda a: a.swapaxes(0, 1),  # row 0 left, column 0 top
        6: lambda a: np.rot90(a, 1),  # row 0 right, column 0 top
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),  # row 0 right, column 0 bottom
        8: lambda a: np.rot90(a, -1),  # row 0 left, column 0 bottom
    }[orientation](upright)


def _save(array: np.ndarray, path: Path, orientation: int = 1, **kw: object) -> Path:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    Image.fromarray(np.ascontiguousarray(array)).save(path, exif=exif, **kw)
    return path


def _png16(path: Path, array: np.ndarray) -> Path:
    """A 16-bit RGB or RGBA PNG written by hand (Pillow writes none)."""
    h, w, c = array.shape
    raw = b"".join(b"\x00" + row.astype(">u2").tobytes() for row in array)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 16, {3: 2, 4: 6}[c], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
def test_every_exif_orientation_is_read_upright(tmp_path: Path, orientation: int) -> None:
    upright = np.random.default_rng(orientation).integers(0, 256, (6, 10, 3), np.uint8)
    png = _save(_stored(upright, orientation), tmp_path / "o.png", orientation)
    np.testing.assert_array_equal(read_image(png), upright)
    assert image_size(png) == (10, 6)
    # JPEG, the phone's format: a smooth picture, so that compression errors stay small
    y, x = np.mgrid[0:48, 0:80]
    smooth = np.stack([x * 3, y * 5, np.where((x < 20) & (y < 12), 230, 20)], axis=2).astype(np.uint8)
    jpg = _save(_stored(smooth, orientation), tmp_path / "o.jpg", orientation, quality=95)
    got = read_image(jpg).astype(int)
    assert got.shape == smooth.shape and np.abs(got - smooth).mean() < 3


def test_image_size_is_that_of_the_upright_image(tmp_path: Path) -> None:
    path = _save(np.zeros((6, 10, 3), np.uint8), tmp_path / "side.png", 6)  # stored 10 wide, 6 high
    with Image.open(path) as stored:
        assert stored.size == (10, 6)
    assert image_size(path) == decoded_image_size(path) == (6, 10)


def test_16_bit_images_are_scaled_not_saturated(tmp_path: Path) -> None:
    ramp = np.full((64, 64), 32768, np.uint16)  # a mid-grey band above a ramp over the whole range
    ramp[8:] = np.linspace(0, 65535, 56 * 64).round().reshape(56, 64)
    Image.fromarray(ramp).save(tmp_path / "gray16.png")
    Image.fromarray(ramp.astype(np.int32)).save(tmp_path / "gray32.tif")  # mode "I"
    for name in ("gray16.png", "gray32.tif"):
        arr = read_image(tmp_path / name)
        assert arr.dtype == np.uint8 and arr.shape == (64, 64, 3), name
        assert arr[:8].min() == arr[:8].max() == 128, name  # mid-grey stays mid-grey, not white
        assert arr.min() == 0 and arr.max() == 255 and (arr == 255).mean() < 0.01, name
        assert (np.diff(arr[8:, :, 0].ravel().astype(int)) >= 0).all(), name  # the ramp keeps its order


def test_16_bit_files_read_as_their_8_bit_version(tmp_path: Path) -> None:
    deep = np.random.default_rng(0).integers(0, 65536, (5, 7, 4)).astype(np.uint16)
    eight = np.round(deep / 257).astype(np.uint8)
    Image.fromarray(deep[..., 0]).save(tmp_path / "g16.png")
    Image.fromarray(eight[..., 0]).save(tmp_path / "g8.png")
    _png16(tmp_path / "rgb16.png", deep[..., :3])
    _png16(tmp_path / "rgba16.png", deep)
    Image.fromarray(eight[..., :3]).save(tmp_path / "rgb8.png")
    for deep_file, eight_file in (("g16.png", "g8.png"), ("rgb16.png", "rgb8.png"), ("rgba16.png", "rgb8.png")):
        diff = read_image(tmp_path / deep_file).astype(int) - read_image(tmp_path / eight_file)
        assert np.abs(diff).max() <= 1, deep_file
    exact = (eight[..., 0].astype(np.uint16) * 257)  # 8-bit values widened: the same values back
    Image.fromarray(exact).save(tmp_path / "wide.png")
    np.testing.assert_array_equal(read_image(tmp_path / "wide.png"), read_image(tmp_path / "g8.png"))


def test_palette_grey_bilevel_alpha_and_cmyk_become_rgb(tmp_path: Path) -> None:
    pal = Image.new("P", (4, 2))
    pal.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    pal.putdata([0, 1, 2, 1, 2, 1, 0, 0])
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)[[0, 1, 2, 1, 2, 1, 0, 0]].reshape(2, 4, 3)
    pal.save(tmp_path / "p.png")
    pal.save(tmp_path / "p_index.png", transparency=1)  # green transparent: its colour stays
    pal.save(tmp_path / "p_alpha.png", transparency=bytes([255, 0, 128]))  # alpha per palette entry
    pal.save(tmp_path / "p.gif", transparency=2)
    for name in ("p.png", "p_index.png", "p_alpha.png", "p.gif"):
        np.testing.assert_array_equal(read_image(tmp_path / name), colours, err_msg=name)

    Image.new("L", (3, 2), 77).save(tmp_path / "l.png")
    Image.new("LA", (3, 2), (77, 10)).save(tmp_path / "la.png")
    Image.new("RGBA", (3, 2), (10, 20, 30, 0)).save(tmp_path / "rgba.png")  # alpha dropped, not composited
    bilevel = Image.new("1", (3, 2), 0)
    bilevel.putpixel((1, 0), 1)
    bilevel.save(tmp_path / "b.png")
    assert (read_image(tmp_path / "l.png") == 77).all() and (read_image(tmp_path / "la.png") == 77).all()
    assert (read_image(tmp_path / "rgba.png") == [10, 20, 30]).all()
    np.testing.assert_array_equal(read_image(tmp_path / "b.png")[..., 0], [[0, 255, 0], [0, 0, 0]])

    # CMYK JPEG (Pillow writes Adobe's inverted CMYK): R = (255 - C) * (255 - K) / 255, and so on
    for cmyk, rgb in (((10, 20, 30, 40), (207, 198, 190)), ((0, 0, 0, 0), (255, 255, 255)),
                      ((0, 0, 0, 255), (0, 0, 0)), ((255, 0, 0, 0), (0, 255, 255))):
        Image.new("CMYK", (16, 16), cmyk).save(tmp_path / "c.jpg", quality=100)
        with Image.open(tmp_path / "c.jpg") as jpeg:
            assert "adobe" in jpeg.info
        assert np.abs(read_image(tmp_path / "c.jpg").astype(int) - rgb).max() <= 2, cmyk


def test_arrays() -> None:
    rgba = np.random.default_rng(0).integers(0, 256, (4, 5, 4), np.uint8)
    np.testing.assert_array_equal(read_image(rgba), rgba[..., :3])
    flipped = read_image(rgba[:, ::-1, :3])
    assert flipped.flags.c_contiguous and (flipped == rgba[:, ::-1, :3]).all()
    grey = read_image(rgba[..., 0])
    assert grey.shape == (4, 5, 3) and (grey == rgba[..., :1]).all()
    with pytest.raises(ImageReadError, match="uint8"):
        read_image(np.zeros((8, 8, 3), np.float32))
    with pytest.raises(ImageReadError, match="too small"):
        read_image(np.zeros((1, 8, 3), np.uint8))


def test_read_errors_name_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)
    for fmt in ("png", "jpg"):
        whole = _save(noise, tmp_path / f"whole.{fmt}")
        (tmp_path / f"cut.{fmt}").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    Image.new("RGB", (1, 5)).save(tmp_path / "thin.png")
    cases = {
        "cut.png": "truncated", "cut.jpg": "truncated", "empty.png": "empty file", "text.png": "not a readable image",
        "missing.png": "no such file", "thin.png": "too small",
    }
    for name, reason in cases.items():
        for read in (read_image, image_size):
            with pytest.raises(ImageReadError, match=reason) as err:
                read(tmp_path / name)
            assert name in str(err.value) and reason in err.value.reason
    with Image.open(tmp_path / "cut.jpg") as cut:
        assert cut.size == (64, 64)  # the header alone would pass
    with pytest.raises(FileNotFoundError):  # a missing file is also what file readers raise
        read_image(tmp_path / "missing.png")
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # whole.png has 4096 > 2 x 1000
    with pytest.raises(ImageReadError, match="whole.png.*decompression bomb"):
        read_image(tmp_path / "whole.png")
    again = copy.deepcopy(ImageNotFoundError(tmp_path / "x.png", "no such file"))  # rebuilt by __reduce__, as a worker sends it
    assert type(again) is ImageNotFoundError and again.reason == "no such file" and "x.png" in str(again)


def test_the_callers_read_the_same_pixels(tmp_path: Path, aims_tiny: Path) -> None:
    """Training, the 2D pose model, the dataset validator and the predictor: one reader."""
    upright = (np.arange(6 * 10).reshape(6, 10) * 1000).astype(np.uint16)  # 16-bit grey, 10 wide
    path = _save(_stored(upright, 6), tmp_path / "side16.png", 6)
    expected = np.repeat(np.round(upright / 65535 * 255).astype(np.uint8)[..., None], 3, axis=2)
    np.testing.assert_array_equal(read_image(path), expected)
    sample = dataclasses.replace(load_dataset(aims_tiny).samples[0], path=path)
    np.testing.assert_array_equal(np.asarray(torch_datasets.read_image(sample)), expected)
    np.testing.assert_array_equal(mmpose_estimator._as_bgr(path), expected[..., ::-1])
    assert decoded_image_size(path) == (10, 6)

    broken = dataclasses.replace(sample, path=tmp_path / "broken.png")
    broken.path.write_text("not an image")
    with pytest.raises(DatasetError, match=rf"broken.png: image id {sample.image_id}: unreadable: not a readable image"):
        torch_datasets.read_image(broken)
    with pytest.raises(UnreadableImage, match="cannot read image .*broken.png"):
        decoded_image_size(broken.path)
