"""Occlusion and framing of a domain's photographs: what hides part of the infant, and how the camera frames it.

Real infant photos show a blanket over the legs, a toy in the hands, a caregiver's hand on the
belly; they are taken close and from above, and cut limbs off at the image border. The real
proxy imitates that with two settings, data as the appearance styles are:

* :class:`Occlusion`: the share of images with one occluder between the camera and the body,
  and the mix of kinds (:data:`OCCLUDERS`):

  - ``blanket``: a thin sheet over the legs from some point between the hips and the knees to
    past the feet, draped from the camera's side: along each camera ray it lies
    :data:`CLEARANCE` above the body's surface, falls away from it at 45 degrees and rests on
    the floor, whichever is nearest the camera;
  - ``toy``: a coloured ball, block or ring at a hand or in front of the chest;
  - ``hand``: a caregiver's hand, a flat skin-coloured ellipsoid laid over one of the infant's
    limb joints palm towards the camera, on a forearm (a capsule) from beyond the image border.

  Every occluder stands at least :data:`CLEARANCE` (more than the depth tolerance of
  :func:`aims_lib.camera.keypoint_visibility`) in front of the body surface it covers, so the
  keypoints it hides get ``v=1`` (labelled, not visible) from the rendered depth map, with their
  coordinates. A toy or hand is placed over its target, then scaled about the camera centre,
  which keeps its image, until it clears the body.
* :class:`Framing`: the camera kinds of a domain (:class:`Shot`, each the ranges handed to
  :func:`aims_lib.camera.sample_camera`) with their shares, e.g. close and from above, or
  cropped by the image border (``overflow``: part of the body's bounding sphere leaves the image;
  keypoints outside get ``v=0``), and how many keypoints an image must keep inside.

Whether an image is occluded is drawn once per image (:func:`draws_occluder`), so the share is
exact; :func:`keeps_enough` is the check after rendering, and the caller redraws the camera and
the occluder until it holds. :data:`SYNTHETIC` changes nothing: one shot with the generator's
ranges, picked without a draw, and no occluder, decided without a draw, so the synthetic domain
keeps its bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

import numpy as np
import trimesh
from scipy.ndimage import minimum_filter

from aims_lib import taxonomy
from aims_lib.camera import OCCLUSION_TOL, Camera, project, sample_camera, to_camera
from aims_lib.synth.appearance import SKIN_TONES

__all__ = [
    "CLEARANCE", "OCCLUDERS", "REAL", "SYNTHETIC", "Framing", "Occlusion", "PhotoSettings", "Shot",
    "camera_for", "draws_occluder", "keeps_enough", "pick_shot", "sample_occluder",
]  # fmt: skip

OCCLUDERS: Final[tuple[str, ...]] = ("blanket", "toy", "hand")
#: How far (metres, along the camera ray) an occluder stays in front of the body surface it
#: covers: the visibility test's tolerance and 2 cm more, so what it hides is flagged occluded.
CLEARANCE: Final[float] = OCCLUSION_TOL + 0.02
#: Cell of the body's depth map that places occluders: 2.5 cm at the nearest vertex, the minimum
#: taken over 5 x 5 cells, i.e. >= 5 cm around each cell: more than the longest triangle edge of
#: the infant meshes (4.8 cm on the procedural infant), so all corners of a triangle drawn at a
#: pixel lie in its neighbourhood and the minimum is at most the rendered depth there.
_CELL_M: Final[float] = 0.025
_CELL_NEIGHBOURHOOD: Final[int] = 5

_KP: Final[dict[str, int]] = {name: i for i, name in enumerate(taxonomy.KEYPOINTS)}
_HIPS: Final[list[int]] = [_KP["left_hip"], _KP["right_hip"]]
_ANKLES: Final[list[int]] = [_KP["left_ankle"], _KP["right_ankle"]]
_LEGS: Final[list[int]] = [_KP[f"{s}_{j}"] for j in ("hip", "knee", "ankle") for s in ("left", "right")]
_WRISTS: Final[list[int]] = [_KP["left_wrist"], _KP["right_wrist"]]
_TORSO: Final[list[int]] = [_KP["left_shoulder"], _KP["right_shoulder"], *_HIPS]
#: Joints a caregiver's hand may cover: shoulders, elbows, wrists, hips, knees, ankles.
_LIMB_JOINTS: Final[list[int]] = list(range(_KP["left_shoulder"], taxonomy.NUM_KEYPOINTS))

#: Blanket: where it starts, as a fraction of the hips-to-ankles line in the image, how far
#: (metres at the legs) it reaches past them sideways and beyond the feet, its thickness, its
#: grid of (along, across) nodes, the floor it falls to (y, metres) and how steeply it falls.
_BLANKET_START: Final[tuple[float, float]] = (0.0, 0.6)
_BLANKET_MARGIN_M: Final[tuple[float, float]] = (0.05, 0.12)
_BLANKET_THICKNESS_M: Final[float] = 0.01
_BLANKET_GRID: Final[tuple[int, int]] = (24, 16)
_BLANKET_FLOOR_Y: Final[float] = 0.005
_BLANKET_SLOPE: Final[float] = 1.0  # depth per lateral metre where it falls from the body (45 degrees)
_BLANKET_STRIPE_ROWS: Final[tuple[int, int]] = (2, 6)  # rows per stripe, inclusive
_BLANKET_COLOURS: Final[np.ndarray] = np.array(
    [[0.93, 0.90, 0.84], [0.80, 0.87, 0.95], [0.95, 0.80, 0.84], [0.82, 0.92, 0.80],
     [0.98, 0.93, 0.70], [0.85, 0.80, 0.92], [0.60, 0.70, 0.85], [0.95, 0.95, 0.95]]
)  # fmt: skip
#: Toy: radius (metres; a ball of 8-14 cm), shapes, and saturated plastic colours.
_TOY_RADIUS_M: Final[tuple[float, float]] = (0.04, 0.07)
_TOY_SHAPES: Final[dict[str, Callable[[float], trimesh.Trimesh]]] = {
    "ball": lambda r: trimesh.creation.icosphere(subdivisions=2, radius=r),
    "block": lambda r: trimesh.creation.box(extents=np.full(3, 1.6 * r)).subdivide().subdivide(),
    "ring": lambda r: trimesh.creation.torus(0.75 * r, 0.25 * r, major_sections=24, minor_sections=8),
}
_TOY_COLOURS: Final[np.ndarray] = np.array(
    [[0.90, 0.15, 0.15], [0.15, 0.45, 0.90], [0.98, 0.80, 0.10], [0.20, 0.70, 0.30],
     [0.95, 0.50, 0.10], [0.60, 0.25, 0.75]]
)  # fmt: skip
#: Caregiver's hand: the palm's semi-axes (metres: along the arm, across, thickness; an adult
#: hand is about 19 cm long with the fingers and 9 cm wide), the forearm's radius, and how far
#: the forearm's end lies beyond the image border (fraction of the image size).
_PALM_SEMI_AXES_M: Final[np.ndarray] = np.array([0.08, 0.05, 0.02])
_FOREARM_RADIUS_M: Final[tuple[float, float]] = (0.035, 0.045)
_HAND_BEYOND_BORDER: Final[float] = 0.15


def _check_share(owner: str, name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{owner}: {name} must be in [0, 1], got {value}")


def _check_range(owner: str, name: str, value: tuple[float, float], low: float, high: float) -> None:
    if len(value) != 2 or not low <= value[0] <= value[1] <= high:
        raise ValueError(f"{owner}: {name} must be (low, high) with {low} <= low <= high <= {high}, got {value}")


@dataclass(frozen=True)
class Occlusion:
    """How often an image gets an occluder and of which kind (relative weights); ``max_hidden``:
    the share of the keypoints visible without it that an occluder may hide, else the caller
    redraws (an absolute count cannot hold: from some views the crawling and four-point poses
    hide more than half their keypoints themselves)."""

    share: float
    blanket: float = 1.0  # relative weights of the kinds
    toy: float = 1.0
    hand: float = 1.0
    max_hidden: float = 1.0

    def __post_init__(self) -> None:
        _check_share("Occlusion", "share", self.share)
        for kind in OCCLUDERS:
            if not getattr(self, kind) >= 0.0:
                raise ValueError(f"Occlusion: {kind} (a weight) must be >= 0, got {getattr(self, kind)}")
        if self.weights.sum() == 0:
            raise ValueError("Occlusion: blanket, toy and hand (the weights) must not all be 0")
        _check_share("Occlusion", "max_hidden", self.max_hidden)

    @property
    def weights(self) -> np.ndarray:
        """The kinds' weights in :data:`OCCLUDERS` order."""
        return np.array([getattr(self, kind) for kind in OCCLUDERS], dtype=np.float64)


@dataclass(frozen=True)
class Shot:
    """One kind of camera: its share of a domain's images and the ranges it draws from (see
    :func:`aims_lib.camera.sample_camera`; ``overflow`` None keeps the body's sphere inside)."""

    name: str
    share: float
    fov_deg: tuple[float, float] = (35.0, 65.0)
    elevation_deg: tuple[float, float] = (20.0, 80.0)
    fill: tuple[float, float] = (0.6, 0.9)
    overflow: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        owner = f"Shot {self.name!r}"
        _check_share(owner, "share", self.share)
        _check_range(owner, "fov_deg", self.fov_deg, 1.0, 170.0)
        _check_range(owner, "elevation_deg", self.elevation_deg, -90.0, 90.0)
        _check_range(owner, "fill", self.fill, 1e-3, 0.95)  # within sample_camera's bound (0.959)
        if self.overflow is not None:
            _check_range(owner, "overflow", self.overflow, 0.0, 1.0)

    def camera(self, rng: np.random.Generator, target: np.ndarray, extent: float, image_size: int) -> Camera:
        """A camera of this kind around a body at ``target`` with bounding radius ``extent``."""
        return sample_camera(
            rng, target, extent, image_size,
            fov_deg=self.fov_deg, elevation_deg=self.elevation_deg, fill=self.fill, overflow=self.overflow,
        )  # fmt: skip


@dataclass(frozen=True)
class Framing:
    """A domain's camera kinds (shares summing to 1) and the keypoints an image must keep inside
    (``v > 0``), else the caller redraws the camera."""

    shots: tuple[Shot, ...]
    min_keypoints: int

    def __post_init__(self) -> None:
        if not self.shots:
            raise ValueError("Framing: shots must hold at least one Shot, got ()")
        names = [s.name for s in self.shots]
        if len(set(names)) != len(names):
            raise ValueError(f"Framing: shots must have distinct names, got {names}")
        total = sum(s.share for s in self.shots)
        if not math.isclose(total, 1.0, abs_tol=1e-9):
            raise ValueError(f"Framing: the shares of shots must sum to 1, got {total} ({names})")
        if not 1 <= self.min_keypoints <= taxonomy.NUM_KEYPOINTS:
            raise ValueError(
                f"Framing: min_keypoints must be in [1, {taxonomy.NUM_KEYPOINTS}], got {self.min_keypoints}"
            )


@dataclass(frozen=True)
class PhotoSettings:
    """Occlusion and framing of one domain."""

    occlusion: Occlusion
    framing: Framing


#: Today's behaviour: the generator's camera (fill 0.6-0.9 of the image, sample_camera's other
#: ranges), 12 of 17 keypoints inside, no occluder.
SYNTHETIC: Final[PhotoSettings] = PhotoSettings(
    occlusion=Occlusion(share=0.0),
    framing=Framing(shots=(Shot("standard", 1.0),), min_keypoints=12),
)
#: The real proxy (each value's reason in the comment beside it).
REAL: Final[PhotoSettings] = PhotoSettings(
    occlusion=Occlusion(
        share=0.3,  # the middle of the 20-40 %
        # our assumption (no published frequencies): the blanket, named first, a bit more often
        blanket=0.4, toy=0.3, hand=0.3,
        max_hidden=0.5,  # the photo still shows at least half of what the infant's own pose shows
    ),
    framing=Framing(
        shots=(
            Shot("standard", 0.5),  # half the photos framed as the synthetic renders
            # a parent over the crib with a phone: close (wide lens, body fills the frame), from above
            Shot("close", 0.3, fov_deg=(55.0, 75.0), elevation_deg=(60.0, 88.0), fill=(0.8, 0.95)),
            # limbs cut off: 30-70 % of the bounding sphere's diameter past the inscribed circle
            # (most of these images lose keypoints: docs/decisions.md, "measurements moved from docstrings, second part")
            Shot("cropped", 0.2, elevation_deg=(30.0, 88.0), fill=(0.75, 0.95), overflow=(0.3, 0.7)),
        ),
        min_keypoints=8,  # a cropped photo keeps about half the keypoints
    ),
)


def pick_shot(rng: np.random.Generator, framing: Framing) -> Shot:
    """One of the framing's shots by share; a single shot is returned without a draw."""
    if len(framing.shots) == 1:
        return framing.shots[0]
    return framing.shots[int(rng.choice(len(framing.shots), p=[s.share for s in framing.shots]))]


def camera_for(
    rng: np.random.Generator, target: np.ndarray, extent: float, image_size: int, framing: Framing
) -> Camera:
    """A camera of the domain's framing around a body at ``target`` with bounding radius ``extent``."""
    return pick_shot(rng, framing).camera(rng, target, extent, image_size)


def draws_occluder(rng: np.random.Generator, occlusion: Occlusion) -> bool:
    """Whether an image gets an occluder, drawn once per image before its camera loop, so that
    redrawn cameras keep the share exact; share 0 draws nothing."""
    return occlusion.share > 0.0 and bool(rng.random() < occlusion.share)


def keeps_enough(visibility: np.ndarray, settings: PhotoSettings, without_props: np.ndarray | None) -> bool:
    """Whether a rendered sample's COCO flags (17,) keep ``framing.min_keypoints`` keypoints in
    the image (``v > 0``) and, for an image with an occluder, whether it hides at most
    ``occlusion.max_hidden`` of the keypoints visible without it: ``without_props`` are the flags
    against the infant alone (:attr:`aims_lib.synth.render.RenderResult.body_depth`); None (no
    occluder) leaves visibility unlimited, self-occlusion being the synthetic domain's too."""
    visibility = np.asarray(visibility)
    if (visibility > 0).sum() < settings.framing.min_keypoints:
        return False
    if without_props is None:
        return True
    shown = np.asarray(without_props) == 2
    return bool((shown & (visibility == 1)).sum() <= settings.occlusion.max_hidden * shown.sum())


class _View:
    """The body as one camera sees it: keypoint pixels and depths, rays, and the depth of the
    nearest body surface around any pixel (a lower bound of the rendered depth, ``inf`` where no
    body is): the vertices' camera z kept per cell (:data:`_CELL_M`), then the minimum over the
    cell's neighbourhood."""

    def __init__(self, vertices: np.ndarray, keypoints_3d: np.ndarray, camera: Camera, image_size: int) -> None:
        self.camera, self.image_size = camera, image_size
        self.focal = float(camera.K[0, 0])
        self.pixels = project(keypoints_3d, camera.K, camera.R, camera.T)
        self.depth = to_camera(keypoints_3d, camera.R, camera.T)[:, 2]
        z = to_camera(vertices, camera.R, camera.T)[:, 2]
        self.far = float(2.0 * z.max() - z.min())  # the farthest an occluder point may lie
        self.cell = self.focal * _CELL_M / float(z.min())
        cells = np.floor(project(vertices, camera.K, camera.R, camera.T) / self.cell).astype(np.int64)
        self.origin = cells.min(0)
        grid = np.full(tuple(cells.max(0) - self.origin + 1), np.inf)
        np.minimum.at(grid, tuple((cells - self.origin).T), z)
        self.grid = minimum_filter(grid, size=_CELL_NEIGHBOURHOOD, mode="constant", cval=np.inf)

    def front(self, pixels: np.ndarray) -> np.ndarray:
        """Depth (..., ) of the nearest body surface around ``pixels`` (..., 2)."""
        cells = np.floor(pixels / self.cell).astype(np.int64) - self.origin
        inside = np.all((cells >= 0) & (cells < self.grid.shape), axis=-1)
        out = np.full(pixels.shape[:-1], np.inf)
        out[inside] = self.grid[tuple(cells[inside].T)]
        return out

    def rays(self, pixels: np.ndarray) -> np.ndarray:
        """Camera-frame directions (..., 3) through ``pixels`` with z = 1 (a depth scales them)."""
        homogeneous = np.concatenate([pixels, np.ones(pixels.shape[:-1] + (1,))], axis=-1)
        return homogeneous @ np.linalg.inv(self.camera.K).T

    def world(self, pixels: np.ndarray, depth: np.ndarray | float) -> np.ndarray:
        """World points (..., 3) at camera ``depth`` on the rays through ``pixels``."""
        camera_points = self.rays(pixels) * np.asarray(depth)[..., None]
        return (camera_points - self.camera.T) @ self.camera.R

    def floor(self, pixels: np.ndarray, height: float) -> np.ndarray:
        """Camera depth (...,) where the rays through ``pixels`` meet the plane y = ``height``;
        :attr:`far` where they miss it or meet it farther."""
        up = self.rays(pixels) @ self.camera.R[:, 1]  # world y component of each ray
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (height - self.camera.position[1]) / up
        return np.where(t > 0, np.minimum(t, self.far), self.far)

    def inside(self, indices: list[int]) -> list[int]:
        """Those of the keypoint ``indices`` inside the image (all of them when none is)."""
        kept = [k for k in indices if np.all((self.pixels[k] >= -0.5) & (self.pixels[k] <= self.image_size - 0.5))]
        return kept or indices

    def clear(self, mesh: trimesh.Trimesh) -> trimesh.Trimesh:
        """``mesh`` scaled about the camera centre (its image does not change) so that every
        vertex over the body stands :data:`CLEARANCE` in front of it; never pushed back."""
        z = to_camera(np.asarray(mesh.vertices), self.camera.R, self.camera.T)[:, 2]
        pixels = project(np.asarray(mesh.vertices), self.camera.K, self.camera.R, self.camera.T)
        scale = min(1.0, float(np.min((self.front(pixels) - CLEARANCE) / z)))
        centre = self.camera.position
        mesh.vertices = centre + scale * (np.asarray(mesh.vertices) - centre)
        return mesh


def _coloured(mesh: trimesh.Trimesh, colours: np.ndarray, kind: str) -> trimesh.Trimesh:
    """``mesh`` with RGB ``colours`` in [0, 1] (one, or one per vertex) as vertex colours, named."""
    rgb = np.broadcast_to(np.asarray(colours, dtype=np.float64), (len(mesh.vertices), 3))
    mesh.visual.vertex_colors = np.column_stack([np.round(rgb * 255), np.full(len(rgb), 255)]).astype(np.uint8)
    mesh.metadata["occluder"] = kind
    return mesh


def _slab(top: np.ndarray, bottom: np.ndarray) -> trimesh.Trimesh:
    """A closed thin sheet between two (n, m, 3) node grids: faces of the top grid, the bottom
    grid wound the other way, and strips along the border, all wound consistently (the renderer
    orients a closed mesh by its signed volume)."""
    n, m = top.shape[:2]
    idx = np.arange(n * m).reshape(n, m)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    upper = np.concatenate([np.column_stack([a, b, c]), np.column_stack([a, c, d])])
    lower = upper[:, ::-1] + n * m
    # The border in the direction the upper triangles run along it; each strip runs it backwards.
    loop = np.concatenate([idx[:, 0], idx[-1, 1:], idx[-2::-1, -1], idx[0, -2:0:-1]])
    start, end = loop, np.roll(loop, -1)
    sides = np.concatenate(
        [np.column_stack([end, start, start + n * m]), np.column_stack([end, start + n * m, end + n * m])]
    )
    vertices = np.concatenate([top.reshape(-1, 3), bottom.reshape(-1, 3)])
    return trimesh.Trimesh(vertices, np.concatenate([upper, lower, sides]), process=False)


def _blanket(rng: np.random.Generator, view: _View) -> trimesh.Trimesh:
    """A striped blanket over the legs, draped along the camera rays (module docstring)."""
    hips, ankles = view.pixels[_HIPS].mean(0), view.pixels[_ANKLES].mean(0)
    length = float(np.linalg.norm(ankles - hips))
    along = (ankles - hips) / length if length > 1e-6 else np.array([0.0, 1.0])
    across = np.array([-along[1], along[0]])
    legs = view.pixels[_LEGS] - hips
    u, w = legs @ along, legs @ across
    start = rng.uniform(*_BLANKET_START) * length
    margin = view.focal * rng.uniform(*_BLANKET_MARGIN_M) / float(view.depth[_LEGS].min())
    covered = u >= start  # the ankles' mean lies at u = length >= start: never empty
    us = np.linspace(start, u.max() + margin, _BLANKET_GRID[0])
    ws = np.linspace(w[covered].min() - margin, w[covered].max() + margin, _BLANKET_GRID[1])
    pixels = hips + us[:, None, None] * along + ws[None, :, None] * across
    # Drape: each node lies on the floor or on a cone of slope _BLANKET_SLOPE falling away from
    # the body surface under every node (lifted by CLEARANCE), whichever is nearer the camera.
    metres = pixels.reshape(-1, 2) * float(view.depth[_LEGS].mean()) / view.focal
    spread = _BLANKET_SLOPE * np.linalg.norm(metres[:, None] - metres[None], axis=-1)
    cone = np.min(view.front(pixels).reshape(1, -1) - CLEARANCE + spread, axis=1).reshape(pixels.shape[:2])
    bottom = np.minimum(cone, view.floor(pixels, _BLANKET_FLOOR_Y))
    mesh = _slab(view.world(pixels, bottom - _BLANKET_THICKNESS_M), view.world(pixels, bottom))
    colours = _BLANKET_COLOURS[rng.choice(len(_BLANKET_COLOURS), size=2, replace=False)]
    rows_per_stripe = rng.integers(_BLANKET_STRIPE_ROWS[0], _BLANKET_STRIPE_ROWS[1] + 1)
    stripe = (np.arange(_BLANKET_GRID[0]) // rows_per_stripe) % 2
    per_node = np.repeat(colours[stripe], _BLANKET_GRID[1], axis=0)
    return _coloured(mesh, np.concatenate([per_node, per_node]), "blanket")


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    """A uniformly random 4x4 rotation (a normalised Gaussian quaternion)."""
    return trimesh.transformations.quaternion_matrix(rng.normal(size=4))


def _toy(rng: np.random.Generator, view: _View) -> trimesh.Trimesh:
    """A ball, block or ring held at a wrist or in front of the chest."""
    radius = rng.uniform(*_TOY_RADIUS_M)
    mesh = list(_TOY_SHAPES.values())[int(rng.integers(len(_TOY_SHAPES)))](radius)
    wrists = view.inside(_WRISTS)
    targets = [view.pixels[k] for k in wrists] + [view.pixels[_TORSO].mean(0)]
    depths = [view.depth[k] for k in wrists] + [view.depth[_TORSO].mean()]
    pick = int(rng.integers(len(targets)))
    offset = rng.uniform(-0.5, 0.5, size=2) * view.focal * radius / depths[pick]
    mesh.apply_transform(_random_rotation(rng))
    mesh.apply_translation(view.world(targets[pick] + offset, depths[pick]))
    colour = _TOY_COLOURS[int(rng.integers(len(_TOY_COLOURS)))]
    return _coloured(view.clear(mesh), colour, "toy")


def _hand(rng: np.random.Generator, view: _View) -> trimesh.Trimesh:
    """A caregiver's hand laid over one limb joint, its palm towards the camera, and the forearm
    from it to beyond the image border."""
    joints = view.inside(_LIMB_JOINTS)
    joint = joints[int(rng.integers(len(joints)))]
    target, depth = view.pixels[joint], float(view.depth[joint])
    angle = rng.uniform(0.0, 2.0 * math.pi)
    direction = np.array([math.cos(angle), math.sin(angle)])  # from the hand towards the border
    palm_length = _PALM_SEMI_AXES_M[0] * view.focal / depth  # pixels
    palm_shift = rng.uniform(-0.5, 0.5) * palm_length  # of the palm's centre from the target
    with np.errstate(divide="ignore"):  # distance along ``direction`` to the border, per axis
        to_border = np.where(direction > 0, view.image_size - 0.5 - target, -0.5 - target) / direction
    beyond = max(float(to_border.min()), palm_shift + palm_length) + _HAND_BEYOND_BORDER * view.image_size
    offsets = np.array([beyond, palm_shift + palm_length, palm_shift])  # entry, wrist, palm
    entry, wrist, palm = view.world(target + offsets[:, None] * direction, depth)
    along = (wrist - entry) / np.linalg.norm(wrist - entry)
    across = np.cross(along, view.camera.position - palm)
    across /= np.linalg.norm(across)
    frame = np.eye(4)
    frame[:3, :3] = np.column_stack([along, across, np.cross(along, across)])
    frame[:3, 3] = palm
    hand = trimesh.creation.icosphere(subdivisions=2, radius=1.0)
    hand.apply_scale(_PALM_SEMI_AXES_M)
    hand.apply_transform(frame)
    forearm = trimesh.creation.capsule(
        height=float(np.linalg.norm(wrist - entry)), radius=rng.uniform(*_FOREARM_RADIUS_M), count=[16, 16]
    )
    forearm.apply_transform(trimesh.geometry.align_vectors([0.0, 0.0, 1.0], along))
    forearm.apply_translation(0.5 * (entry + wrist))
    skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
    return _coloured(view.clear(trimesh.util.concatenate([forearm, hand])), skin, "hand")


_MAKERS: Final = {"blanket": _blanket, "toy": _toy, "hand": _hand}


def sample_occluder(
    rng: np.random.Generator,
    vertices: np.ndarray,
    keypoints_3d: np.ndarray,
    camera: Camera,
    image_size: int,
    occlusion: Occlusion,
) -> trimesh.Trimesh:
    """One occluder of a kind drawn by the weights (a coloured trimesh mesh, the kind in
    ``mesh.metadata["occluder"]``) between ``camera`` and part of the body (posed ``vertices``,
    COCO ``keypoints_3d`` (17, 3), world metres), for an image that :func:`draws_occluder` chose.
    Render it as a prop; whether it left enough keypoints visible is :func:`keeps_enough`'s check."""
    kind = OCCLUDERS[int(rng.choice(len(OCCLUDERS), p=occlusion.weights / occlusion.weights.sum()))]
    view = _View(np.asarray(vertices, dtype=np.float64), np.asarray(keypoints_3d, dtype=np.float64), camera, image_size)
    return _MAKERS[kind](rng, view)
