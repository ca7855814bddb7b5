"""What a rendered infant looks like: skin, hair, clothes, light, background and camera effects.

An :class:`Appearance` is plain data (JSON via :meth:`Appearance.to_dict`), drawn by
:func:`sample_appearance` from one of two domains whose gap is what domain adaptation must bridge:

* ``synthetic`` imitates the paper's SMIL renders: flat skin and clothing colours, plain or
  gradient backgrounds or a low-contrast procedural floor, soft light from the camera, clean
  pixels: the infant stands out from an uncluttered scene.
* ``real`` is a proxy for photographs: sharp photographic floors and photographic backdrops
  out of focus behind the infant (scikit-image's bundled photos, depth of field 2-5 px) with
  colour casts, a coloured directional key light over a dim hemisphere ambient with a contact
  shadow (shape from shading, as in a photo taken under a lamp or a window). Both domains are
  stored as JPEG at quality 95.

Why the real domain looks so: a domain-adaptation benchmark needs a target domain that carries
the label (a classifier trained on target labels does well there) and still differs from the
source. So the real domain keeps what photographs have and renders lack and what costs the label
least (photographic lighting, photo backdrops out of focus), and gives up clutter, patterned
clothes, mottled skin, vignetting, exposure and white-balance shifts, blur and sensor noise,
each of which cost the benchmark card's target ceiling points on its own (the measurements:
``docs/decisions.md``, "Measurements moved from docstrings", and
``benchmarks/real_domain_levers.py``, which measures them again).

Surface colours are per vertex and computed in template space (the body's rest pose), so
patterns stick to the body whatever its pose. Body regions come from per-vertex SMPL part ids
(the argmax of the skinning weights over the 24 SMPL joints).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any, Final

import numpy as np

from aims_lib.body.smoothstep import smoothstep
from aims_lib.data.format import DOMAINS

RGB = tuple[float, float, float]

NUM_PARTS: Final[int] = 24

# SMPL part ids (the joint that drives each body segment).
PELVIS, L_HIP, R_HIP, SPINE1, L_KNEE, R_KNEE, SPINE2, L_ANKLE, R_ANKLE, SPINE3 = range(10)
L_FOOT, R_FOOT, NECK, L_COLLAR, R_COLLAR, HEAD, L_SHOULDER, R_SHOULDER = range(10, 18)
L_ELBOW, R_ELBOW, L_WRIST, R_WRIST, L_HAND, R_HAND = range(18, 24)

#: Parts a top (bodysuit, onesie) covers; sleeves and legs add the parts of their length index.
TOP_PARTS: Final[tuple[int, ...]] = (PELVIS, SPINE1, SPINE2, SPINE3, L_COLLAR, R_COLLAR)
SLEEVE_PARTS: Final[tuple[tuple[int, ...], ...]] = (
    (),
    (L_SHOULDER, R_SHOULDER),
    (L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW),
)
LEG_PARTS: Final[tuple[tuple[int, ...], ...]] = (
    (),
    (L_HIP, R_HIP),
    (L_HIP, R_HIP, L_KNEE, R_KNEE),
    (L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE, L_FOOT, R_FOOT),
)

PATTERNS: Final[tuple[str, ...]] = ("plain", "stripes", "dots", "blotches")
BACKDROPS: Final[tuple[str, ...]] = ("solid", "gradient", "photo")
FLOORS: Final[tuple[str, ...]] = ("none", "checker", "planks", "stripes", "photo")
#: scikit-image photos without people: scenes for backdrops, surfaces for floors.
BACKDROP_PHOTOS: Final[tuple[str, ...]] = ("coffee", "chelsea", "rocket", "coins", "immunohistochemistry", "brick")
FLOOR_PHOTOS: Final[tuple[str, ...]] = ("brick", "grass", "gravel", "moon", "immunohistochemistry")

#: Eye vertices of SMPL-topology meshes (6890 vertices: SMPL, SMIL, the procedural infant):
#: the SMPL-H ids smplx uses for its eye joints, which are also the COCO eye keypoints.
SMPL_NUM_VERTICES: Final[int] = 6890
EYE_VERTICES: Final[tuple[int, int]] = (2800, 6260)
EYE_COLOUR: Final[RGB] = (0.09, 0.07, 0.06)
EYE_RADIUS: Final[float] = 0.009  # metres, template space

# Streams of ``np.random.default_rng([appearance.seed, stream])`` for the procedural parts.
SKIN_STREAM, PATTERN_STREAM, FLOOR_STREAM, SENSOR_STREAM, CLUTTER_STREAM = range(5)

#: Skin tones from light to dark (sRGB), interpolated by a uniform draw.
SKIN_TONES: Final[np.ndarray] = np.array(
    [
        [0.98, 0.86, 0.79],
        [0.95, 0.79, 0.69],
        [0.89, 0.70, 0.58],
        [0.79, 0.58, 0.45],
        [0.65, 0.45, 0.33],
        [0.49, 0.33, 0.24],
        [0.35, 0.23, 0.17],
    ]
)
HAIR_COLOURS: Final[np.ndarray] = np.array(
    [[0.10, 0.07, 0.05], [0.25, 0.16, 0.09], [0.45, 0.30, 0.16], [0.75, 0.60, 0.38], [0.55, 0.25, 0.12]]
)
#: Baby clothes and diapers: whites, pastels and a few strong colours (sRGB).
CLOTH_COLOURS: Final[np.ndarray] = np.array(
    [
        [0.96, 0.96, 0.94], [0.95, 0.92, 0.84], [0.97, 0.80, 0.85], [0.70, 0.84, 0.96],
        [0.72, 0.92, 0.80], [0.98, 0.93, 0.60], [0.80, 0.74, 0.93], [0.62, 0.63, 0.66],
        [0.16, 0.22, 0.42], [0.82, 0.20, 0.22], [0.98, 0.72, 0.56], [0.55, 0.66, 0.50],
    ]
)


@dataclass(frozen=True)
class Garment:
    """Clothing over a diaper: which parts it covers and how it is coloured."""

    top: bool  # covers the torso (bodysuit, onesie); without it only the diaper is worn
    sleeves: int  # index into SLEEVE_PARTS: none, upper arms, to the wrists
    legs: int  # index into LEG_PARTS: briefs only, thighs, to the ankles, footed
    colour: RGB
    pattern: str  # one of PATTERNS
    pattern_colour: RGB
    pattern_scale: float  # metres: stripe period, dot spacing or blotch size


@dataclass(frozen=True)
class Lighting:
    """Per-vertex lighting: hemisphere ambient plus one directional key light (linear RGB)."""

    sky: RGB  # ambient reaching surfaces that face up
    ground: RGB  # ambient reaching surfaces that face down (light bounced off the floor)
    key: RGB  # key light colour times intensity
    key_direction: tuple[float, float, float]  # unit vector towards the light, camera frame
    wrap: float  # > 0 lets the key light wrap past the terminator (soft, studio-like)
    specular: float  # Blinn-Phong highlight strength (skin sheen)
    shininess: float


@dataclass(frozen=True)
class Background:
    """A backdrop image behind everything plus an optional floor plane y = 0 in perspective."""

    backdrop: str  # one of BACKDROPS
    colours: tuple[RGB, RGB]  # solid uses the first, a gradient goes from the first to the second
    gradient_angle: float  # radians, image plane
    photo: str  # scikit-image photo of a "photo" backdrop
    crop: tuple[float, float, float]  # left, top, side of the square crop, fractions of the photo
    flip: bool
    tint: RGB  # per-channel gains on the photo (grey photos become coloured)
    blur: float  # Gaussian sigma of the backdrop in pixels (depth of field)
    floor: str  # one of FLOORS
    floor_colours: tuple[RGB, RGB]
    floor_photo: str
    floor_tint: RGB
    floor_tile: float  # metres covered by one repeat of the floor texture
    floor_angle: float  # radians, rotation of the floor texture about the vertical
    floor_radius: float  # metres: beyond this distance from the origin the backdrop shows
    clutter: int  # objects (toys, blankets) drawn behind the infant; shapes from the appearance seed


@dataclass(frozen=True)
class CameraEffects:
    """The photographic pipeline after rendering; the identity for the synthetic domain."""

    white_balance: RGB  # per-channel gains
    exposure: float  # gain
    vignette: float  # brightness lost at the image corners
    blur: float  # Gaussian sigma in pixels (defocus, motion)
    noise: float  # read-noise sigma (0..1 intensity scale)
    shot_noise: float  # signal-dependent noise: variance noise**2 + shot_noise * intensity
    jpeg_quality: int  # 0 means no compression


@dataclass(frozen=True)
class Appearance:
    """Everything the renderer needs besides geometry and camera; plain data."""

    domain: str
    seed: int  # seeds the procedural textures and the sensor noise
    skin: RGB
    skin_mottle: float  # amplitude of low-frequency skin brightness variation
    hair: RGB
    hair_density: float  # 0: bald; 1: hair fully hides the scalp
    hairline: float  # head-height (in head radii) above which hair grows, raised at the front
    garment: Garment
    lighting: Lighting
    background: Background
    shadow: float  # darkening of the floor right under the body
    effects: CameraEffects

    def __post_init__(self) -> None:
        if self.domain not in DOMAINS:
            raise ValueError(f"Appearance: domain must be one of {DOMAINS}, got {self.domain!r}")
        if self.garment.pattern not in PATTERNS:
            raise ValueError(f"Appearance: garment pattern must be one of {PATTERNS}, got {self.garment.pattern!r}")
        if self.background.backdrop not in BACKDROPS:
            raise ValueError(f"Appearance: backdrop must be one of {BACKDROPS}, got {self.background.backdrop!r}")
        if self.background.floor not in FLOORS:
            raise ValueError(f"Appearance: floor must be one of {FLOORS}, got {self.background.floor!r}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready nested dict of plain types (tuples become lists)."""
        return json.loads(json.dumps(asdict(self)))


@dataclass(frozen=True)
class _Style:
    """Ranges a domain draws from: the two domains are two rows of data, one sampler."""

    backdrops: tuple[str, ...]
    floors: tuple[str, ...]
    patterns: tuple[str, ...]
    skin_mottle: tuple[float, float]
    key_angle_deg: tuple[float, float]  # key light direction away from the viewing direction
    key: tuple[float, float]
    ambient: tuple[float, float]
    ground_ratio: tuple[float, float]  # ground ambient relative to sky ambient
    sky_kelvin: tuple[float, float]  # colour temperature of the ambient light
    kelvin: tuple[float, float]  # colour temperature of the key light
    wrap: tuple[float, float]
    specular: tuple[float, float]
    shadow: tuple[float, float]
    backdrop_blur: tuple[float, float]
    photo_tint: float  # spread of the per-channel gains on photos (colour casts)
    floor_contrast: tuple[float, float]  # 0: the two floor colours equal; 1: independent colours
    clutter: tuple[int, int]  # objects behind the infant, inclusive range
    white_balance: float  # spread of the per-channel gains
    exposure: tuple[float, float]
    vignette: tuple[float, float]
    blur: tuple[float, float]
    noise: tuple[float, float]
    shot_noise: tuple[float, float]
    jpeg_quality: tuple[int, int]


_SYNTHETIC: Final[_Style] = _Style(
    backdrops=("solid", "gradient"),
    floors=("none", "none", "checker", "planks", "stripes"),
    patterns=("plain",),
    skin_mottle=(0.0, 0.0),
    key_angle_deg=(0.0, 20.0),
    key=(0.50, 0.60),
    ambient=(0.45, 0.55),
    ground_ratio=(1.0, 1.0),
    sky_kelvin=(6500.0, 6500.0),
    kelvin=(6500.0, 6500.0),
    wrap=(0.2, 0.5),
    specular=(0.0, 0.0),
    shadow=(0.0, 0.0),
    backdrop_blur=(0.0, 0.0),
    photo_tint=0.15,
    floor_contrast=(0.1, 0.35),
    clutter=(0, 0),
    white_balance=0.0,
    exposure=(1.0, 1.0),
    vignette=(0.0, 0.0),
    blur=(0.0, 0.0),
    noise=(0.0, 0.0),
    shot_noise=(0.0, 0.0),
    jpeg_quality=(0, 0),
)
#: The real domain: the synthetic style with what photographs have and renders lack, where it
#: costs the label least (module docstring).
_REAL: Final[_Style] = replace(
    _SYNTHETIC,
    backdrops=("photo",),
    floors=("none", "photo", "photo"),
    key_angle_deg=(25.0, 75.0),
    key=(0.8, 1.4),
    ambient=(0.12, 0.35),
    ground_ratio=(0.3, 0.8),
    sky_kelvin=(5000.0, 7500.0),
    kelvin=(2800.0, 7500.0),
    wrap=(0.0, 0.3),
    specular=(0.03, 0.15),
    shadow=(0.3, 0.7),
    backdrop_blur=(2.0, 5.0),
    photo_tint=0.3,
    floor_contrast=(1.0, 1.0),
)
STYLES: Final[dict[str, _Style]] = {"synthetic": _SYNTHETIC, "real": _REAL}

#: Key-light colour (relative RGB) at a few colour temperatures, interpolated in between.
_KELVIN: Final[np.ndarray] = np.array([2800.0, 4000.0, 5000.0, 6500.0, 7500.0])
_KELVIN_RGB: Final[np.ndarray] = np.array(
    [[1.0, 0.68, 0.40], [1.0, 0.82, 0.64], [1.0, 0.91, 0.82], [1.0, 1.0, 1.0], [0.90, 0.93, 1.0]]
)


def _rgb(values: np.ndarray) -> RGB:
    r, g, b = (round(float(v), 4) for v in np.clip(values, 0.0, None))
    return (r, g, b)


def _pick(rng: np.random.Generator, options: tuple[str, ...] | np.ndarray) -> Any:
    return options[int(rng.integers(len(options)))]


def _colour(rng: np.random.Generator, palette: np.ndarray, jitter: float) -> RGB:
    return _rgb(np.clip(_pick(rng, palette) + rng.uniform(-jitter, jitter, 3), 0.0, 1.0))


def _any_colour(rng: np.random.Generator) -> RGB:
    """A random colour of moderate saturation, for plain synthetic backgrounds."""
    base = rng.uniform(0.2, 0.95)
    return _rgb(np.clip(base + rng.uniform(-0.25, 0.25, 3), 0.0, 1.0))


def _kelvin_rgb(kelvin: float) -> np.ndarray:
    return np.array([np.interp(kelvin, _KELVIN, _KELVIN_RGB[:, c]) for c in range(3)])


def _sample_garment(rng: np.random.Generator, style: _Style) -> Garment:
    kind = _pick(rng, ("diaper", "bodysuit", "onesie"))
    sleeves, legs = {
        "diaper": (0, 0),
        "bodysuit": (int(rng.integers(3)), int(rng.integers(2))),
        "onesie": (int(rng.integers(1, 3)), int(rng.integers(2, 4))),
    }[kind]
    pattern = _pick(rng, style.patterns)
    return Garment(
        top=kind != "diaper",
        sleeves=sleeves,
        legs=legs,
        colour=_colour(rng, CLOTH_COLOURS[:3] if kind == "diaper" else CLOTH_COLOURS, 0.03),
        pattern=pattern,
        pattern_colour=_colour(rng, CLOTH_COLOURS, 0.05),
        pattern_scale=float(rng.uniform(0.02, 0.06)),
    )


def _sample_lighting(rng: np.random.Generator, style: _Style) -> Lighting:
    # The key light comes from the camera's side, turned away from the viewing direction by
    # key_angle towards the upper half of the image (photos are lit from above).
    angle = np.radians(rng.uniform(*style.key_angle_deg))
    around = rng.uniform(-np.pi, 0.0)  # image y points down: negative y is up
    direction = (np.sin(angle) * np.cos(around), np.sin(angle) * np.sin(around), -np.cos(angle))
    sky = rng.uniform(*style.ambient) * _kelvin_rgb(rng.uniform(*style.sky_kelvin))
    return Lighting(
        sky=_rgb(sky),
        ground=_rgb(sky * rng.uniform(*style.ground_ratio)),
        key=_rgb(rng.uniform(*style.key) * _kelvin_rgb(rng.uniform(*style.kelvin))),
        key_direction=(float(direction[0]), float(direction[1]), float(direction[2])),
        wrap=float(rng.uniform(*style.wrap)),
        specular=float(rng.uniform(*style.specular)),
        shininess=float(rng.uniform(8.0, 30.0)),
    )


def _sample_background(rng: np.random.Generator, style: _Style) -> Background:
    side = rng.uniform(0.35, 1.0)
    floor = _any_colour(rng)
    other = np.asarray(_any_colour(rng))
    floor_second = _rgb(np.asarray(floor) + rng.uniform(*style.floor_contrast) * (other - np.asarray(floor)))
    return Background(
        backdrop=_pick(rng, style.backdrops),
        colours=(_any_colour(rng), _any_colour(rng)),
        gradient_angle=float(rng.uniform(0.0, 2.0 * np.pi)),
        photo=_pick(rng, BACKDROP_PHOTOS),
        crop=(float(rng.uniform(0.0, 1.0 - side)), float(rng.uniform(0.0, 1.0 - side)), float(side)),
        flip=bool(rng.integers(2)),
        tint=_rgb(rng.uniform(1.0 - style.photo_tint, 1.0 + style.photo_tint, 3)),
        blur=float(rng.uniform(*style.backdrop_blur)),
        floor=_pick(rng, style.floors),
        floor_colours=(floor, floor_second),
        floor_photo=_pick(rng, FLOOR_PHOTOS),
        floor_tint=_rgb(rng.uniform(1.0 - style.photo_tint, 1.0 + style.photo_tint, 3)),
        floor_tile=float(rng.uniform(0.3, 1.5)),
        floor_angle=float(rng.uniform(0.0, np.pi)),
        floor_radius=float(rng.uniform(1.5, 4.0)),
        clutter=int(rng.integers(style.clutter[0], style.clutter[1] + 1)),
    )


def _sample_effects(rng: np.random.Generator, style: _Style) -> CameraEffects:
    return CameraEffects(
        white_balance=_rgb(1.0 + rng.uniform(-style.white_balance, style.white_balance, 3)),
        exposure=float(rng.uniform(*style.exposure)),
        vignette=float(rng.uniform(*style.vignette)),
        blur=float(rng.uniform(*style.blur)),
        noise=float(rng.uniform(*style.noise)),
        shot_noise=float(rng.uniform(*style.shot_noise)),
        jpeg_quality=int(rng.integers(style.jpeg_quality[0], style.jpeg_quality[1] + 1)),
    )


def sample_appearance(domain: str, rng: np.random.Generator) -> Appearance:
    """A random appearance of ``domain`` ("synthetic" or "real"); deterministic given ``rng``."""
    if domain not in STYLES:
        raise ValueError(f"sample_appearance: domain must be one of {DOMAINS}, got {domain!r}")
    style = STYLES[domain]
    tone = rng.uniform()
    skin = np.array([np.interp(tone, np.linspace(0, 1, len(SKIN_TONES)), SKIN_TONES[:, c]) for c in range(3)])
    return Appearance(
        domain=domain,
        seed=int(rng.integers(2**31)),
        skin=_rgb(np.clip(skin + rng.uniform(-0.02, 0.02, 3), 0.0, 1.0)),
        skin_mottle=float(rng.uniform(*style.skin_mottle)),
        hair=_colour(rng, HAIR_COLOURS, 0.03),
        hair_density=float(rng.uniform(0.2, 0.85)) if rng.uniform() < 0.7 else 0.0,
        hairline=float(rng.uniform(0.05, 0.5)),
        garment=_sample_garment(rng, style),
        lighting=_sample_lighting(rng, style),
        background=_sample_background(rng, style),
        shadow=float(rng.uniform(*style.shadow)),
        effects=_sample_effects(rng, style),
    )


# --------------------------------------------------------------------------------------------
# Surface colours in template space.


def _smooth_noise(points: np.ndarray, rng: np.random.Generator, scale: float, waves: int = 8) -> np.ndarray:
    """Band-limited noise in 3D, roughly N(0, 0.5): a sum of random plane waves near ``scale`` metres."""
    directions = rng.normal(size=(waves, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    wavelengths = scale * rng.uniform(0.7, 1.4, waves)
    phases = rng.uniform(0.0, 2.0 * np.pi, waves)
    return np.cos(2.0 * np.pi * (points @ directions.T) / wavelengths + phases).sum(axis=1) / np.sqrt(waves)


def _pattern_weight(garment: Garment, points: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Share (0..1) of the pattern colour at each point; soft edges so Gouraud shading does not alias."""
    if garment.pattern == "plain":
        return np.zeros(len(points))
    if garment.pattern == "stripes":
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        wave = np.cos(2.0 * np.pi * (points @ direction) / garment.pattern_scale + rng.uniform(0, 2 * np.pi))
        return smoothstep(-0.3, 0.3, wave)
    if garment.pattern == "dots":
        lattice = points / garment.pattern_scale + rng.uniform(0.0, 1.0, 3)
        distance = np.linalg.norm(lattice - np.round(lattice), axis=1)
        return 1.0 - smoothstep(0.22, 0.32, distance)
    return smoothstep(-0.15, 0.15, _smooth_noise(points, rng, 2.0 * garment.pattern_scale))


def _part_centre(template: np.ndarray, parts: np.ndarray, part_ids: tuple[int, ...]) -> np.ndarray | None:
    selected = np.isin(parts, part_ids)
    return template[selected].mean(axis=0) if selected.any() else None


def diaper_mask(template: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """The pelvis part plus the neighbouring thigh and belly vertices within the pelvis' reach."""
    pelvis = parts == PELVIS
    if not pelvis.any():
        return pelvis
    centre = template[pelvis].mean(axis=0)
    reach = np.linalg.norm(template[pelvis] - centre, axis=1).max()
    near = np.linalg.norm(template - centre, axis=1) < 0.9 * reach
    return pelvis | (near & np.isin(parts, (L_HIP, R_HIP, SPINE1)))


def garment_parts(garment: Garment) -> tuple[int, ...]:
    """SMPL parts the garment itself covers (none for a diaper alone)."""
    return (TOP_PARTS if garment.top else ()) + SLEEVE_PARTS[garment.sleeves] + LEG_PARTS[garment.legs]


def garment_mask(garment: Garment, template: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Vertices covered by the diaper and the garment."""
    return diaper_mask(template, parts) | np.isin(parts, garment_parts(garment))


def hair_weight(appearance: Appearance, template: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """Hair cover (0..1) per vertex: the head above a hairline that rises towards the face.

    Up is neck -> head; forward is ankles -> toes (the feet point where the face looks), which
    holds for any SMPL-format template whatever its rest orientation.
    """
    weight = np.zeros(len(template))
    head = parts == HEAD
    neck = _part_centre(template, parts, (NECK,))
    if appearance.hair_density <= 0 or not head.any() or neck is None:
        return weight
    centre = template[head].mean(axis=0)
    up = centre - neck
    up /= np.linalg.norm(up)
    toes, ankles = _part_centre(template, parts, (L_FOOT, R_FOOT)), _part_centre(template, parts, (L_ANKLE, R_ANKLE))
    forward = np.zeros(3) if toes is None or ankles is None else (toes - ankles) - ((toes - ankles) @ up) * up
    forward /= max(np.linalg.norm(forward), 1e-9)
    offsets = template[head] - centre
    radius = np.linalg.norm(offsets, axis=1).max()
    height = offsets @ up / radius
    frontness = offsets @ forward / radius
    weight[head] = appearance.hair_density * smoothstep(-0.05, 0.05, height - appearance.hairline - 0.6 * frontness)
    return weight


def eye_weight(template: np.ndarray) -> np.ndarray:
    """Dark eyes (0..1 per vertex) around the eye vertices of SMPL-topology meshes; none otherwise.

    Without them the face keypoints (eyes) would have no image evidence at all.
    """
    if len(template) != SMPL_NUM_VERTICES:
        return np.zeros(len(template))
    distance = np.linalg.norm(template[:, None, :] - template[list(EYE_VERTICES)][None], axis=2).min(axis=1)
    return 1.0 - smoothstep(0.5 * EYE_RADIUS, EYE_RADIUS, distance)


def vertex_albedo(appearance: Appearance, template_vertices: np.ndarray, vertex_parts: np.ndarray) -> np.ndarray:
    """Unlit surface colour (V, 3) in sRGB 0..1 from template-space positions and SMPL part ids."""
    template = np.asarray(template_vertices, dtype=np.float64)
    parts = np.asarray(vertex_parts)
    if template.ndim != 2 or template.shape[1] != 3:
        raise ValueError(f"vertex_albedo: template_vertices must have shape (V, 3), got {template.shape}")
    if parts.shape != (len(template),) or not np.issubdtype(parts.dtype, np.integer):
        raise ValueError(
            f"vertex_albedo: vertex_parts must be integers of shape ({len(template)},), got {parts.dtype} {parts.shape}"
        )
    if parts.size and (parts.min() < 0 or parts.max() >= NUM_PARTS):
        raise ValueError(
            f"vertex_albedo: vertex_parts must lie in [0, {NUM_PARTS}), got [{parts.min()}, {parts.max()}]"
        )

    colour = np.tile(np.asarray(appearance.skin), (len(template), 1))
    if appearance.skin_mottle > 0:
        mottle = _smooth_noise(template, np.random.default_rng([appearance.seed, SKIN_STREAM]), 0.05)
        colour *= 1.0 + appearance.skin_mottle * mottle[:, None] * np.array([0.8, 1.0, 1.1])
    paints = ((hair_weight(appearance, template, parts), appearance.hair), (eye_weight(template), EYE_COLOUR))
    for weight, paint in paints:
        colour = (1.0 - weight[:, None]) * colour + weight[:, None] * np.asarray(paint)

    garment = appearance.garment
    covered = garment_mask(garment, template, parts)
    pattern = _pattern_weight(garment, template[covered], np.random.default_rng([appearance.seed, PATTERN_STREAM]))
    colour[covered] = (1.0 - pattern[:, None]) * np.asarray(garment.colour) + pattern[:, None] * np.asarray(
        garment.pattern_colour
    )
    return np.clip(colour, 0.0, 1.0)
