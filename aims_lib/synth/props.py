"""Scene props of the pose sampler: the bolster behind the back of Sitting w/ Support.

That class is defined by its support, so the sampler places a support object against the body
(a cylindrical bolster with rounded ends, a rolled cushion) and hands it to the renderer and the
predicates as a :class:`Prop`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import trimesh

from aims_lib.body.rotations import EY, unit
from aims_lib.synth.body_facts import spine_length, torso_axes


@dataclass
class Prop:
    """A rigid object in the scene (the back support of Sitting w/ Support).

    ``mesh`` is in the prop's own frame and ``transform`` (4x4) places it in the world, so a
    renderer adds ``mesh`` with pose ``transform``; ``world_mesh()`` gives a placed copy.
    ``capsule`` = (end a, end b, radius) in world coordinates describes the same surface exactly,
    for contact and penetration checks. ``color`` is an RGB hint in [0, 1].
    """

    name: str
    mesh: trimesh.Trimesh
    transform: np.ndarray
    color: tuple[float, float, float]
    capsule: tuple[np.ndarray, np.ndarray, float]

    def world_mesh(self) -> trimesh.Trimesh:
        """A copy of ``mesh`` placed in the world."""
        return self.mesh.copy().apply_transform(self.transform)


_CUSHION_COLOURS: Final[tuple[tuple[float, float, float], ...]] = (
    (0.85, 0.55, 0.60), (0.55, 0.70, 0.85), (0.90, 0.82, 0.55), (0.65, 0.80, 0.60),
    (0.80, 0.80, 0.82), (0.75, 0.62, 0.85),
)  # fmt: skip


def bolster(v: np.ndarray, j: np.ndarray, rng: np.random.Generator) -> Prop:
    """A cylindrical bolster with rounded ends lying on the floor across the back of a sitting
    infant, pushed against the body: the farthest-back position at which no vertex is inside,
    so the back rests on it (contact at one point, no penetration)."""
    L = float(spine_length(j[None])[0])
    _, left, front = torso_axes(j[None])
    back = -unit(front[0] * [1, 0, 1])
    axis = unit(np.cross(back, EY))
    r = rng.uniform(0.5, 0.7) * L
    half = rng.uniform(0.8, 1.1) * L
    q = v - j[0]
    qa, qb = q @ axis, q @ back
    dy = v[:, 1] - r
    inside = (np.abs(qa) <= half + r) & (np.abs(dy) < r)
    s = float((qb[inside] + np.sqrt(r**2 - dy[inside] ** 2)).max()) if inside.any() else 0.0
    centre = j[0] * [1, 0, 1] + back * s + EY * r
    rot = np.stack([back, EY, axis], 1)  # prop frame: x back, y up, z along the bolster
    transform = np.eye(4)
    transform[:3, :3], transform[:3, 3] = rot, centre
    mesh = trimesh.creation.capsule(height=2 * half, radius=r, count=[24, 24])
    # Widen the tessellated equator to the exact radius, so the mesh touches the floor and body
    # where the capsule does (its ring has a vertex straight down) and stays inside it elsewhere.
    mesh.vertices[:, :2] *= r / np.linalg.norm(mesh.vertices[:, :2], axis=1).max()
    colour = _CUSHION_COLOURS[int(rng.integers(len(_CUSHION_COLOURS)))]
    return Prop("bolster", mesh, transform, colour, (centre - half * axis, centre + half * axis, r))
