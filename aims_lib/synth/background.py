"""Backgrounds behind the rendered infant: a backdrop image plus an optional floor in perspective.

The floor is the plane y = 0 seen through the sample's camera, computed per pixel by
intersecting the viewing rays with the plane and looking the texture up with ``cv2.remap``: a
perspective-correct textured floor without adding geometry to the GL scene. Beyond
``floor_radius`` (the room's size) and above the horizon the backdrop shows. A contact shadow
darkens the floor where the body is close to it. Clutter (toys, blankets: soft shaded ellipses
in skin and clothing colours) lies on top of the background, behind the infant, so that it
distracts without hiding keypoints; it is placed beside the infant's projected box, not under it. Everything is vectorised NumPy/OpenCV.
"""

from __future__ import annotations

import functools

import cv2
import numpy as np

from aims_lib.camera import Camera, project
from aims_lib.synth.appearance import (
    BACKDROP_PHOTOS, CLOTH_COLOURS, CLUTTER_STREAM, FLOOR_PHOTOS, FLOOR_STREAM, SKIN_TONES, Appearance, Background,
)

#: Size (metres) of the contact-shadow grid cells and the height over which the shadow fades.
SHADOW_CELL = 0.02
SHADOW_HEIGHT = 0.05
#: Largest floor texture side in texels.
MAX_TEXELS = 512


@functools.lru_cache(maxsize=None)
def photo(name: str) -> np.ndarray:
    """A scikit-image bundled photo as read-only float32 RGB in 0..1 (grey photos get 3 channels)."""
    if name not in BACKDROP_PHOTOS + FLOOR_PHOTOS:
        known = sorted(set(BACKDROP_PHOTOS + FLOOR_PHOTOS))
        raise ValueError(f"photo: {name!r} is not one of the bundled photos {known}")
    import skimage.data

    image = np.asarray(getattr(skimage.data, name)())
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    image = np.ascontiguousarray(image[:, :, :3], dtype=np.float32) / 255.0
    image.setflags(write=False)
    return image


def _photo_square(name: str, crop: tuple[float, float, float], size: int) -> np.ndarray:
    """A square crop (fractions of the photo's shorter side) resized to ``size``."""
    image = photo(name)
    short = min(image.shape[:2])
    left, top, side = crop
    x0, y0 = int(left * (image.shape[1] - side * short)), int(top * (image.shape[0] - side * short))
    n = max(1, int(side * short))
    square = image[y0 : y0 + n, x0 : x0 + n]
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if n > size else cv2.INTER_LINEAR)


def backdrop_image(background: Background, size: int) -> np.ndarray:
    """The backdrop (size, size, 3) float32 in 0..1."""
    first, second = (np.asarray(c, dtype=np.float32) for c in background.colours)
    if background.backdrop == "solid":
        return np.broadcast_to(first, (size, size, 3)).copy()
    if background.backdrop == "gradient":
        coords = (np.arange(size, dtype=np.float32) - (size - 1) / 2.0) / size
        angle = background.gradient_angle
        t = np.clip(coords[None, :] * np.cos(angle) + coords[:, None] * np.sin(angle) + 0.5, 0.0, 1.0)[:, :, None]
        return (1.0 - t) * first + t * second
    image = _photo_square(background.photo, background.crop, size)
    if background.flip:
        image = image[:, ::-1]
    image = image * np.asarray(background.tint, dtype=np.float32)
    if background.blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), background.blur)
    return np.ascontiguousarray(image)


def floor_texture(background: Background, texels: int, seed: int) -> np.ndarray:
    """One seamless repeat (n, n, 3) of the floor texture; repeats with ``BORDER_WRAP``."""
    first, second = (np.asarray(c, dtype=np.float32) for c in background.floor_colours)
    index = (np.arange(texels) * 2) // texels  # 0 for the first half of the tile, 1 for the second
    if background.floor == "checker":
        which = (index[:, None] + index[None, :]) % 2
    elif background.floor == "stripes":
        which = np.broadcast_to(index[:, None], (texels, texels))
    elif background.floor == "planks":
        boards = 5
        rng = np.random.default_rng([seed, FLOOR_STREAM])
        shade = rng.uniform(0.85, 1.15, boards).astype(np.float32)
        row_board = (np.arange(texels) * boards) // texels
        texture = np.broadcast_to((first * shade[row_board][:, None])[:, None, :], (texels, texels, 3)).copy()
        seams = (np.arange(texels) * boards) % texels < max(1, texels // 64)
        texture[seams] = second
        return texture
    else:  # photo: mirror the crop into a 2x2 tile so that wrapping shows no seams
        half = _photo_square(background.floor_photo, (0.5, 0.5, 1.0), max(1, texels // 2))
        half = half * np.asarray(background.floor_tint, dtype=np.float32)
        top = np.concatenate([half, half[:, ::-1]], axis=1)
        return np.concatenate([top, top[::-1]], axis=0)
    return np.where(which[:, :, None] == 0, first, second).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _pixel_grid(size: int) -> np.ndarray:
    """Homogeneous pixel centres (size, size, 3): (column, row, 1)."""
    pixels = np.arange(size, dtype=np.float64)
    grid = np.stack([*np.meshgrid(pixels, pixels), np.ones((size, size))], axis=-1)
    grid.setflags(write=False)
    return grid


def floor_points(camera: Camera, size: int) -> tuple[np.ndarray, np.ndarray]:
    """World (x, z) where each pixel's ray meets the floor (size, size, 2), and where it does (size, size)."""
    rays = _pixel_grid(size) @ (camera.R.T @ np.linalg.inv(camera.K)).T
    origin = camera.position
    going_down = rays[..., 1] < -1e-9
    distance = np.where(going_down, -origin[1] / np.where(going_down, rays[..., 1], -1.0), 0.0)
    hits = origin[[0, 2]] + distance[..., None] * rays[..., [0, 2]]
    return hits, going_down & (origin[1] > 0)


def _contact_shadow(vertices: np.ndarray, hits: np.ndarray) -> np.ndarray:
    """Occupancy (size, size) in 0..1 of the floor under the body, blurred into a soft shadow."""
    weight = np.exp(-np.clip(vertices[:, 1], 0.0, None) / SHADOW_HEIGHT)
    low = vertices[:, [0, 2]].min(axis=0) - 6 * SHADOW_CELL
    cells = np.ceil((vertices[:, [0, 2]].max(axis=0) + 6 * SHADOW_CELL - low) / SHADOW_CELL).astype(int)
    index = ((vertices[:, [0, 2]] - low) / SHADOW_CELL).astype(int)
    grid = np.zeros((cells[1], cells[0]), dtype=np.float32)
    np.maximum.at(grid, (index[:, 1], index[:, 0]), weight.astype(np.float32))
    grid = cv2.GaussianBlur(grid, (0, 0), 1.5)
    coords = ((hits - low) / SHADOW_CELL - 0.5).astype(np.float32)
    return cv2.remap(grid, coords[..., 0], coords[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


#: Attempts at placing one clutter object clear of the infant before it is left out.
CLUTTER_TRIES = 12


def add_clutter(
    image: np.ndarray, count: int, seed: int, avoid: tuple[float, float, float, float] | None = None
) -> np.ndarray:
    """``count`` soft ellipses (toys, blankets) in skin and clothing colours, shaded across their
    length, blended over ``image`` (size, size, 3); returns a new array.

    ``avoid`` is a box ``(x0, y0, x1, y1)`` in fractions of the image (the infant's): an object
    whose extent would reach into it is moved elsewhere, so clutter stands beside the infant
    rather than under its silhouette (where it would blur the figure into the ground); an object
    that finds no free place in :data:`CLUTTER_TRIES` draws is left out."""
    if count <= 0:
        return image
    size = image.shape[0]
    rng = np.random.default_rng([seed, CLUTTER_STREAM])
    palette = np.concatenate([CLOTH_COLOURS, SKIN_TONES]).astype(np.float32)
    out = image.copy()
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32) / size
    for _ in range(count):
        for _ in range(CLUTTER_TRIES):
            centre = rng.uniform(0.0, 1.0, 2)
            axes = rng.uniform(0.04, 0.22, 2)
            if avoid is None or not _reaches(centre, float(axes.max()), avoid):
                break
        else:
            continue
        angle = rng.uniform(0.0, np.pi)
        c, s = np.cos(angle), np.sin(angle)
        u = ((xs - centre[0]) * c + (ys - centre[1]) * s) / axes[0]
        v = (-(xs - centre[0]) * s + (ys - centre[1]) * c) / axes[1]
        r = np.sqrt(u * u + v * v)
        alpha = np.clip((1.0 - r) * 6.0, 0.0, 1.0)[..., None]  # soft edge
        colour = palette[rng.integers(len(palette))] * rng.uniform(0.7, 1.1)
        shade = (1.0 + 0.25 * np.clip(u, -1.0, 1.0) * rng.choice([-1.0, 1.0]))[..., None]
        out = out + alpha * (np.clip(colour * shade, 0.0, 1.0) - out)
    return out


def _reaches(centre: np.ndarray, radius: float, box: tuple[float, float, float, float]) -> bool:
    """Whether a disc of ``radius`` around ``centre`` overlaps ``box`` (x0, y0, x1, y1)."""
    nearest = np.clip(centre, box[:2], box[2:])
    return bool(np.hypot(*(centre - nearest)) < radius)


def infant_box(camera: Camera, size: int, vertices: np.ndarray) -> tuple[float, float, float, float]:
    """The projected body's bounding box in fractions of the image."""
    points = project(vertices, camera.K, camera.R, camera.T) / size
    x0, y0 = points.min(axis=0)
    x1, y1 = points.max(axis=0)
    return float(x0), float(y0), float(x1), float(y1)


def background_image(appearance: Appearance, camera: Camera, size: int, vertices: np.ndarray) -> np.ndarray:
    """The full background (size, size, 3) float32 in 0..1: backdrop, floor, contact shadow and
    clutter (beside the infant, never under it)."""
    background = appearance.background
    image = backdrop_image(background, size)
    avoid = infant_box(camera, size, vertices) if background.clutter else None
    if background.floor == "none":
        return add_clutter(image, background.clutter, appearance.seed, avoid)
    hits, on_floor = floor_points(camera, size)
    radius = np.linalg.norm(hits, axis=-1)
    inside = np.where(on_floor, 1.0 - np.clip((radius - background.floor_radius) / 0.3 + 0.5, 0.0, 1.0), 0.0)

    # Texel density matching the image near the infant (at the origin), so the texture is not
    # aliased where it matters; capped because the photos hold no finer detail anyway.
    per_metre = camera.K[1, 1] / max(np.linalg.norm(camera.position), 1e-6)
    texels = int(np.clip(background.floor_tile * per_metre, 8, MAX_TEXELS))
    texture = floor_texture(background, texels, appearance.seed)
    c, s = np.cos(background.floor_angle), np.sin(background.floor_angle)
    uv = hits @ np.array([[c, -s], [s, c]]) * (texture.shape[0] / background.floor_tile)
    uv = np.mod(uv, texture.shape[0]).astype(np.float32)
    floor = cv2.remap(texture, uv[..., 0], uv[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
    if appearance.shadow > 0:
        floor *= (1.0 - appearance.shadow * _contact_shadow(vertices, hits))[..., None]
    weight = inside[..., None].astype(np.float32)
    return add_clutter(image + weight * (floor - image), background.clutter, appearance.seed, avoid)
