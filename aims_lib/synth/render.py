"""Offscreen rendering of a posed infant (plus props) into RGB, depth and the infant's mask.

How a frame is made, and why:

1. Surface colours per vertex (:func:`aims_lib.synth.appearance.vertex_albedo`) are lit on the
   CPU (:func:`shade`: hemisphere ambient, wrapped Lambert key light, Blinn-Phong sheen) and
   drawn by pyrender's flat, unlit shader. Baking the light into vertex colours gives full
   control over both domains' lighting and renders faster than pyrender's PBR shader under the
   software (llvmpipe) OpenGL this project runs on (``docs/decisions.md``, "measurements moved
   from docstrings, second part").
2. One pyrender scene and one OffscreenRenderer are reused across frames (EGL by default,
   OSMesa as the fallback); pyrender's 4x multisampling gives antialiased RGBA whose alpha
   composites the body over the background without halos. The mask is where at least half of
   a pixel is covered (alpha >= 0.5), centred like the colours; the depth map is read from one
   multisample sample, which sits up to half a pixel off the pixel centre (0.4 px on Mesa's
   llvmpipe), so at the silhouette ``depth > 0`` and the mask can differ by a pixel. With
   props, a second pass draws the infant alone: the mask is its silhouette less the pixels a
   prop covers (the visible infant, COCO's segmentation), and ``body_depth`` its depth, against
   which keypoint visibility tells what the props hide.
3. The background (:mod:`aims_lib.synth.background`) is composited behind the geometry, then
   the photographic pipeline (:func:`apply_camera_effects`) turns the frame into uint8.

The OpenCV camera of :mod:`aims_lib.camera` is converted to pyrender's OpenGL camera with the
principal point moved by half a pixel, so that pixel centres sit on integer coordinates as
:func:`aims_lib.camera.project` assumes.
"""

from __future__ import annotations

import functools
import os
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Final

import cv2
import numpy as np

from aims_lib.camera import Camera, to_camera
from aims_lib.synth.appearance import (
    SENSOR_STREAM,
    Appearance,
    CameraEffects,
    Lighting,
    sample_appearance,
    vertex_albedo,
)
from aims_lib.synth.background import background_image

__all__ = [
    "PLATFORMS", "RenderResult", "Renderer", "apply_camera_effects", "offscreen_platform", "orient", "sample_appearance", "shade",
]

PLATFORMS: Final[tuple[str, ...]] = ("egl", "osmesa")
#: Renderers of this process whose OpenGL context is open (see :meth:`Renderer.close`).
_LIVE: set[int] = set()
_GL_TO_CV: Final[np.ndarray] = np.diag([1.0, -1.0, -1.0])  # OpenGL camera axes: y up, looking along -z
_GAMMA: Final[float] = 2.2
#: Standard normal quantiles of the 256 byte values: sensor noise from random bytes.
_GAUSSIAN_LUT: Final[np.ndarray] = np.array(
    [statistics.NormalDist().inv_cdf((k + 0.5) / 256) for k in range(256)], dtype=np.float32
)


def _no_context(platform: str, error: BaseException) -> RuntimeError:
    """The error for a missing OpenGL platform, saying how to fall back."""
    hint = (
        "start a fresh process with Renderer(backend='osmesa') (or PYOPENGL_PLATFORM=osmesa); OSMesa needs the "
        "system library libosmesa6 (apt-get install libosmesa6) and PyOpenGL >= 3.1.5"
        if platform == "egl"
        else "install libosmesa6 (apt-get install libosmesa6), or use the default backend 'egl' in a fresh process"
    )
    return RuntimeError(f"Renderer: no offscreen OpenGL on {platform!r} ({error!r}); {hint}")


#: What a probe process runs to see whether a platform gives an offscreen OpenGL context.
_PROBE: Final[str] = "import pyrender; r = pyrender.OffscreenRenderer(8, 8); r.delete()"


@functools.cache
def offscreen_platform() -> str:
    """The OpenGL platform to render on: ``PYOPENGL_PLATFORM`` when set, else the first of
    :data:`PLATFORMS` on which a fresh probe process opens an offscreen context (EGL: a GPU's
    driver or Mesa's software one; OSMesa where EGL has no device). A fresh process, because
    PyOpenGL fixes its platform at its first import: a failed EGL cannot be retried in this one."""
    if current := os.environ.get("PYOPENGL_PLATFORM"):
        return current
    import subprocess

    failures = []
    for platform in PLATFORMS:
        try:
            probe = subprocess.run([sys.executable, "-c", _PROBE], env={**os.environ, "PYOPENGL_PLATFORM": platform},
                                   capture_output=True, text=True, timeout=120)
        except subprocess.TimeoutExpired:
            failures.append(f"{platform}: no answer in 120 s")
            continue
        if probe.returncode == 0:
            return platform
        failures.append(f"{platform}: {(probe.stderr.strip().splitlines() or ['exit ' + str(probe.returncode)])[-1]}")
    raise RuntimeError("Renderer: no offscreen OpenGL platform works here (" + "; ".join(failures) + "); EGL needs a GPU "
                       "driver's or Mesa's libEGL, OSMesa the system library libosmesa6 (apt-get install libosmesa6)")


def _import_pyrender(backend: str | None) -> tuple[ModuleType, str]:
    """Import pyrender on the requested OpenGL platform (PyOpenGL fixes it at its first import)."""
    current = os.environ.get("PYOPENGL_PLATFORM")
    platform = backend or current or "egl"
    if platform not in PLATFORMS:
        raise ValueError(
            f"Renderer: the OpenGL platform must be one of {PLATFORMS}, got {platform!r} "
            f"(backend={backend!r}, PYOPENGL_PLATFORM={current!r})"
        )
    if current != platform:
        if "OpenGL" in sys.modules:
            raise RuntimeError(
                f"Renderer: OpenGL was already imported with PYOPENGL_PLATFORM={current!r}, cannot switch to "
                f"{platform!r} in this process; set PYOPENGL_PLATFORM={platform} before anything imports OpenGL"
            )
        os.environ["PYOPENGL_PLATFORM"] = platform
    try:
        import pyrender
    except ImportError as exc:
        raise _no_context(platform, exc) from exc
    return pyrender, platform


@dataclass(frozen=True, eq=False)
class RenderResult:
    """One rendered frame."""

    rgb: np.ndarray  # (H, W, 3) uint8
    depth: np.ndarray  # (H, W) float32 camera z in metres of the infant and props, 0 elsewhere
    mask: np.ndarray  # (H, W) bool, the pixels at least half covered by the visible infant
    body_depth: np.ndarray  # (H, W) float32 camera z of the infant alone (props not drawn), 0 elsewhere


def orient(vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Faces wound counter-clockwise seen from outside, and unit area-weighted vertex normals.

    The body is drawn with back-face culling (much faster in software OpenGL), which needs the
    winding right whatever the mesh's convention. With ``N_v`` the unnormalised normals,
    ``sum_v v . N_v`` is 18 times the signed volume: negative means the faces wind inwards, and
    both the faces and the normals are flipped.
    """
    corners = vertices[faces]
    face_normals = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    def accumulate(axis: int) -> np.ndarray:
        return sum(np.bincount(faces[:, c], weights=face_normals[:, axis], minlength=len(vertices)) for c in range(3))

    normals = np.stack([accumulate(axis) for axis in range(3)], axis=1)
    if np.einsum("ij,ij->", vertices, normals) < 0:
        faces, normals = faces[:, ::-1], -normals
    return faces, normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)


def shade(
    albedo: np.ndarray, vertices: np.ndarray, normals: np.ndarray, camera: Camera, lighting: Lighting
) -> np.ndarray:
    """Lit vertex colours (V, 3) in sRGB 0..1; the lighting itself is computed in linear RGB."""
    to_light = camera.R.T @ np.asarray(lighting.key_direction)
    facing = normals @ to_light
    diffuse = np.clip((facing + lighting.wrap) / (1.0 + lighting.wrap), 0.0, None)
    up = 0.5 * (1.0 + normals[:, 1:2])
    ambient = up * np.asarray(lighting.sky) + (1.0 - up) * np.asarray(lighting.ground)
    linear = np.clip(albedo, 0.0, 1.0) ** _GAMMA * (ambient + diffuse[:, None] * np.asarray(lighting.key))
    if lighting.specular > 0:
        view = camera.position - vertices
        half = view / np.linalg.norm(view, axis=1, keepdims=True) + to_light
        half /= np.maximum(np.linalg.norm(half, axis=1, keepdims=True), 1e-12)
        highlight = np.clip(np.einsum("ij,ij->i", normals, half), 0.0, None) ** lighting.shininess * (facing > 0)
        linear = linear + lighting.specular * highlight[:, None] * np.asarray(lighting.key)
    return np.clip(linear, 0.0, 1.0) ** (1.0 / _GAMMA)


@functools.lru_cache(maxsize=4)
def _radius_squared(height: int, width: int) -> np.ndarray:
    """Squared distance from the image centre, 1 at the middle of the edges, 2 at the corners."""
    ys = (np.arange(height, dtype=np.float32) - (height - 1) / 2) / (height / 2)
    xs = (np.arange(width, dtype=np.float32) - (width - 1) / 2) / (width / 2)
    radius = ys[:, None] ** 2 + xs[None, :] ** 2
    radius.setflags(write=False)
    return radius


def apply_camera_effects(image: np.ndarray, effects: CameraEffects, seed: int) -> np.ndarray:
    """Float RGB (H, W, 3) in 0..1 -> uint8 through white balance, exposure, vignetting, blur, noise, JPEG."""
    gain = np.asarray(effects.white_balance, dtype=np.float32) * np.float32(effects.exposure)
    if effects.vignette > 0:
        gain = (1.0 - 0.5 * effects.vignette * _radius_squared(*image.shape[:2]))[..., None] * gain
    image = image * gain
    if effects.blur > 0:
        image = cv2.GaussianBlur(image, (0, 0), effects.blur)
    if effects.noise > 0 or effects.shot_noise > 0:
        sigma = np.sqrt(effects.noise**2 + effects.shot_noise * np.clip(image, 0.0, 1.0))
        # Quantised Gaussian samples from random bytes: several times faster than standard_normal.
        uniform = np.frombuffer(np.random.default_rng([seed, SENSOR_STREAM]).bytes(image.size), dtype=np.uint8)
        image = image + sigma * _GAUSSIAN_LUT[uniform].reshape(image.shape)
    rgb = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if effects.jpeg_quality > 0:
        ok, encoded = cv2.imencode(".jpg", rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, effects.jpeg_quality])
        if not ok:
            raise RuntimeError(f"apply_camera_effects: JPEG encoding failed at quality {effects.jpeg_quality}")
        rgb = np.ascontiguousarray(cv2.imdecode(encoded, cv2.IMREAD_COLOR)[..., ::-1])
    return rgb


def _check_mesh(name: str, vertices: np.ndarray, faces: np.ndarray) -> None:
    if vertices.ndim != 2 or vertices.shape[1] != 3 or not np.all(np.isfinite(vertices)):
        raise ValueError(f"Renderer.render: {name} vertices must be finite with shape (V, 3), got {vertices.shape}")
    if faces.ndim != 2 or faces.shape[1] != 3 or not np.issubdtype(faces.dtype, np.integer):
        raise ValueError(
            f"Renderer.render: {name} faces must be integers of shape (F, 3), got {faces.dtype} {faces.shape}"
        )
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise ValueError(
            f"Renderer.render: {name} faces index vertices [{faces.min()}, {faces.max()}] of {len(vertices)}"
        )


class Renderer:
    """A reusable offscreen renderer of square ``image_size`` images; close it (or use ``with``).

    ``backend`` is "egl" (default, headless, no display) or "osmesa"; None uses
    ``PYOPENGL_PLATFORM`` when set. The platform is fixed for the whole process at the first
    OpenGL import.
    """

    def __init__(self, image_size: int, backend: str | None = None) -> None:
        if image_size < 1:
            raise ValueError(f"Renderer: image_size must be >= 1, got {image_size}")
        self.image_size = image_size
        self._pyrender, platform = _import_pyrender(backend)
        try:
            self._gl: Any = self._pyrender.OffscreenRenderer(image_size, image_size)
        except Exception as exc:
            raise _no_context(platform, exc) from exc
        _LIVE.add(id(self))
        self._scene = self._pyrender.Scene(bg_color=(0.0, 0.0, 0.0, 0.0), ambient_light=(0.0, 0.0, 0.0))
        # The body is closed and wound outwards: cull its back faces. Props may be open surfaces.
        self._body_material = self._pyrender.MetallicRoughnessMaterial(doubleSided=False)
        self._prop_material = self._pyrender.MetallicRoughnessMaterial(doubleSided=True)

    def close(self) -> None:
        """Free the OpenGL context; the renderer cannot be used afterwards.

        pyrender's EGL clean-up also terminates the EGL display, which ends every context on it,
        those of other renderers alive in this process too (e.g. the generator's in-process
        worker after a preview renderer closes). While others are alive, only this renderer's
        resources and context are freed; the last one to close terminates the display."""
        if self._gl is None:
            return
        _LIVE.discard(id(self))
        platform = getattr(self._gl, "_platform", None)
        if _LIVE and getattr(platform, "_egl_context", None) is not None:
            from OpenGL.EGL import eglDestroyContext

            platform.make_current()
            self._gl._renderer.delete()
            eglDestroyContext(platform._egl_display, platform._egl_context)
            # pyrender's __del__ would still terminate the display: leave it nothing to end
            platform._egl_context = platform._egl_display = None
        else:
            self._gl.delete()
        self._gl = None

    def __enter__(self) -> Renderer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _mesh(self, vertices: np.ndarray, faces: np.ndarray, colours: np.ndarray, material: Any) -> Any:
        primitive = self._pyrender.Primitive(
            positions=vertices.astype(np.float32),
            indices=faces.astype(np.uint32),
            color_0=colours.astype(np.float32),
            material=material,
        )
        return self._pyrender.Mesh([primitive])

    def render(
        self,
        vertices: np.ndarray,
        faces: np.ndarray,
        camera: Camera,
        appearance: Appearance,
        template_vertices: np.ndarray,
        vertex_parts: np.ndarray,
        props: Sequence[Any] | None = None,
    ) -> RenderResult:
        """Render the infant (posed ``vertices`` in world metres) and optional trimesh ``props``.

        ``template_vertices`` (rest pose) and ``vertex_parts`` (SMPL part ids) place the
        appearance on the body; props keep their own colours and get the same light.
        """
        if self._gl is None:
            raise RuntimeError("Renderer.render: the renderer was closed")
        vertices = np.asarray(vertices, dtype=np.float64)
        faces = np.asarray(faces)
        _check_mesh("body", vertices, faces)
        props = list(props or [])
        albedo = vertex_albedo(appearance, template_vertices, vertex_parts)
        if albedo.shape[0] != len(vertices):
            raise ValueError(
                f"Renderer.render: {len(template_vertices)} template vertices for a mesh of {len(vertices)} vertices"
            )

        meshes = [(vertices, faces, albedo, self._body_material)]
        for index, prop in enumerate(props):
            prop_vertices, prop_faces = np.asarray(prop.vertices, dtype=np.float64), np.asarray(prop.faces)
            _check_mesh(f"props[{index}]", prop_vertices, prop_faces)
            visual = prop.visual.to_color() if prop.visual.kind == "texture" else prop.visual
            prop_albedo = np.asarray(visual.vertex_colors)[:, :3] / 255.0
            meshes.append((prop_vertices, prop_faces, prop_albedo, self._prop_material))

        # Near and far planes bracket the geometry tightly for depth precision.
        depths = np.concatenate([to_camera(m[0], camera.R, camera.T)[:, 2] for m in meshes])
        znear = max(0.5 * float(depths.min()), 1e-3)
        zfar = max(2.0 * float(depths.max()), znear) + 1.0

        scene = self._scene
        scene.clear()
        fx, fy, cx, cy = camera.K[0, 0], camera.K[1, 1], camera.K[0, 2], camera.K[1, 2]
        pose = np.eye(4)
        pose[:3, :3] = camera.R.T @ _GL_TO_CV
        pose[:3, 3] = camera.position
        scene.add(self._pyrender.IntrinsicsCamera(fx, fy, cx + 0.5, cy + 0.5, znear=znear, zfar=zfar), pose=pose)
        nodes = []
        for mesh_vertices, mesh_faces, albedo, material in meshes:
            mesh_faces, normals = orient(mesh_vertices, mesh_faces)
            colours = shade(albedo, mesh_vertices, normals, camera, appearance.lighting)
            nodes.append(scene.add(self._mesh(mesh_vertices, mesh_faces, colours, material)))
        flags = self._pyrender.RenderFlags
        rgba, depth = self._gl.render(scene, flags=flags.FLAT | flags.RGBA)
        mask, body_depth = rgba[..., 3] >= 128, depth
        if props:
            for node in nodes[1:]:
                node.mesh.is_visible = False
            body_rgba, body_depth = self._gl.render(scene, flags=flags.FLAT | flags.RGBA)
            prop_in_front = (depth > 0) & ((body_depth == 0) | (depth < body_depth - 1e-4))
            mask = (body_rgba[..., 3] >= 128) & ~prop_in_front

        background = background_image(appearance, camera, self.image_size, vertices)
        alpha = rgba[..., 3:].astype(np.float32) / 255.0
        image = rgba[..., :3].astype(np.float32) / 255.0 + (1.0 - alpha) * background
        rgb = apply_camera_effects(image, appearance.effects, appearance.seed)
        return RenderResult(rgb=rgb, depth=depth.astype(np.float32), mask=mask, body_depth=body_depth.astype(np.float32))
