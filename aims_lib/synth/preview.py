"""Turntable-style renders of bodies for figures: the shape space, single poses, galleries.

Unlike the generator, the camera here is steady (fixed elevation, no roll or aim offset) and the
appearance plain, so that pictures compare bodies rather than cameras.
"""

from __future__ import annotations

import numpy as np
import torch

from aims_lib.body import body_forward, vertex_parts
from aims_lib.camera import sample_camera
from aims_lib.synth.appearance import sample_appearance
from aims_lib.synth.render import Renderer


def render_bodies(
    model,
    betas: np.ndarray,
    body_pose: np.ndarray | None = None,
    global_orient: np.ndarray | None = None,
    image_size: int = 256,
    azimuth_deg: float = 20.0,
    elevation_deg: float = 10.0,
    seed: int = 0,
    shared_frame: bool = True,
) -> list[np.ndarray]:
    """RGB renders (uint8) of ``len(betas)`` bodies; with ``shared_frame`` one camera frames
    them all (sizes compare), otherwise each body fills its own picture."""
    betas_t = torch.as_tensor(np.asarray(betas), dtype=torch.float32)
    kwargs = {}
    if body_pose is not None:
        kwargs["body_pose"] = torch.as_tensor(np.asarray(body_pose), dtype=torch.float32)
    if global_orient is not None:
        kwargs["global_orient"] = torch.as_tensor(np.asarray(global_orient), dtype=torch.float32)
    with torch.no_grad():
        verts = body_forward(model, betas=betas_t, **kwargs).vertices.numpy()
    faces = np.asarray(model.faces, dtype=np.int64)
    template = model.v_template.detach().cpu().numpy()
    parts = vertex_parts(model)
    rng = np.random.default_rng(seed)
    appearance = sample_appearance("synthetic", rng)
    images = []
    with Renderer(image_size) as renderer:
        for v in verts:
            lo, hi = (verts.min((0, 1)), verts.max((0, 1))) if shared_frame else (v.min(0), v.max(0))
            camera = sample_camera(
                np.random.default_rng(seed), 0.5 * (lo + hi), float(0.5 * np.linalg.norm(hi - lo)), image_size,
                azimuth_deg=(azimuth_deg, azimuth_deg), elevation_deg=(elevation_deg, elevation_deg),
                roll_deg=(0.0, 0.0), fov_deg=(40.0, 40.0), fill=(0.9, 0.9), principal_jitter=0.0, aim_offset=0.0,
            )
            images.append(renderer.render(v, faces, camera, appearance, template, parts).rgb)
    return images
