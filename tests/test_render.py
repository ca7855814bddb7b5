"""Renderer and appearance: geometry against an analytic sphere, both domains, determinism, domain gap."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import trimesh

from aims_lib.camera import Camera, project, sample_camera, to_camera
from aims_lib.synth.appearance import HEAD, L_KNEE, NECK, PELVIS, SPINE2, garment_mask, vertex_albedo
from aims_lib.synth.render import Renderer, orient, sample_appearance

SIZE = 96
CENTRE = np.array([0.05, 0.12, -0.03])
RADIUS = 0.12


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    with Renderer(SIZE) as r:
        yield r


@pytest.fixture(scope="module")
def ball() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A sphere standing in for a body: vertices, faces, template vertices and made-up part ids."""
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=RADIUS)
    template = np.asarray(mesh.vertices)
    height = template[:, 1] / RADIUS
    parts = np.select([height > 0.6, height > 0.45, height > 0.0, height > -0.5], [HEAD, NECK, SPINE2, PELVIS], L_KNEE)
    return template + CENTRE, np.asarray(mesh.faces), template, parts


def _camera(seed: int = 3) -> Camera:
    return sample_camera(np.random.default_rng(seed), CENTRE, RADIUS, SIZE)


def _sphere_depth(camera: Camera) -> np.ndarray:
    """Analytic camera z of the sphere's front surface per pixel, 0 where the ray misses it."""
    pixels = np.arange(SIZE, dtype=np.float64)
    grid = np.stack([*np.meshgrid(pixels, pixels), np.ones((SIZE, SIZE))], axis=-1)
    rays = grid @ (camera.R.T @ np.linalg.inv(camera.K)).T  # camera z component 1: t is the depth
    offset = camera.position - CENTRE
    a = np.einsum("hwc,hwc->hw", rays, rays)
    b = 2.0 * rays @ offset
    disc = b * b - 4.0 * a * (offset @ offset - RADIUS**2)
    return np.where(disc > 0, (-b - np.sqrt(np.clip(disc, 0.0, None))) / (2.0 * a), 0.0)


def test_geometry_matches_the_camera(renderer: Renderer, ball) -> None:
    vertices, faces, template, parts = ball
    appearance = sample_appearance("synthetic", np.random.default_rng(0))
    for seed in range(3):
        camera = _camera(seed)
        result = renderer.render(vertices, faces, camera, appearance, template, parts)
        assert result.mask.dtype == bool and result.depth.dtype == np.float32
        expected = _sphere_depth(camera)

        # Silhouette: same pixels up to the boundary, same centroid (a half-pixel convention
        # error would move it by 0.5 px).
        assert (result.mask != (expected > 0)).sum() < 0.1 * result.mask.sum()
        rows, cols = np.nonzero(result.mask)
        rows_e, cols_e = np.nonzero(expected > 0)
        assert abs(rows.mean() - rows_e.mean()) < 0.15 and abs(cols.mean() - cols_e.mean()) < 0.15

        # Depth of the front surface inside the silhouette, zero on the background (the depth
        # comes from one multisample sample: at the silhouette it may differ by a pixel).
        kernel = np.ones((3, 3), np.uint8)
        interior = cv2.erode(result.mask.astype(np.uint8), kernel).astype(bool)
        nearest = cv2.erode(expected.astype(np.float32), kernel)  # depth range within one pixel
        farthest = cv2.dilate(expected.astype(np.float32), kernel)
        assert np.all(result.depth[interior] > nearest[interior] - 1e-3)
        assert np.all(result.depth[interior] < farthest[interior] + 1e-3)
        outside = ~cv2.dilate(result.mask.astype(np.uint8), kernel).astype(bool)
        assert np.all(result.depth[outside] == 0)

        # Vertices facing the camera project into the mask, at their own depth.
        view = camera.position - vertices
        normals = orient(vertices, faces)[1]
        facing = np.einsum("ij,ij->i", normals, view / np.linalg.norm(view, axis=1)[:, None]) > 0.3
        pix = np.floor(project(vertices[facing], camera.K, camera.R, camera.T) + 0.5).astype(int)
        assert result.mask[pix[:, 1], pix[:, 0]].all()
        z = to_camera(vertices[facing], camera.R, camera.T)[:, 2]
        lo, hi = cv2.erode(result.depth, kernel), cv2.dilate(result.depth, kernel)
        assert np.all(z > lo[pix[:, 1], pix[:, 0]] - 1e-3) and np.all(z < hi[pix[:, 1], pix[:, 0]] + 1e-3)


def test_props_are_in_depth_but_not_in_mask(renderer: Renderer, ball) -> None:
    vertices, faces, template, parts = ball
    camera = _camera()
    appearance = sample_appearance("real", np.random.default_rng(1))
    alone = renderer.render(vertices, faces, camera, appearance, template, parts)
    # A box between the camera and half of the ball.
    towards_camera = camera.position - CENTRE
    box = trimesh.creation.box(extents=(0.1, 0.1, 0.1))
    box.apply_translation(CENTRE + 0.5 * towards_camera / np.linalg.norm(towards_camera) * 0.4)
    box.visual.vertex_colors = (200, 50, 50, 255)
    with_box = renderer.render(vertices, faces, camera, appearance, template, parts, props=[box])
    assert ((with_box.depth > 0) & (alone.depth == 0)).sum() > 20  # the box sticks out of the ball
    assert with_box.mask.sum() < alone.mask.sum()  # and hides part of it
    assert np.all(with_box.mask <= alone.mask)
    hidden = (alone.depth > 0) & (with_box.depth < alone.depth - 1e-3)
    assert hidden.sum() > 20 and not with_box.mask[hidden].any()
    assert np.all(with_box.depth <= np.where(alone.depth > 0, alone.depth + 1e-4, np.inf))
    # The infant alone, as keypoint visibility without props needs it (the near and far planes
    # differ with the box, hence the float32 rounding).
    np.testing.assert_allclose(with_box.body_depth, alone.depth, rtol=1e-5, atol=0)
    np.testing.assert_array_equal(alone.body_depth, alone.depth)


@pytest.mark.parametrize("domain", ["synthetic", "real"])
def test_domains_render_valid_deterministic_images(renderer: Renderer, ball, domain: str) -> None:
    vertices, faces, template, parts = ball
    camera = _camera()
    first, again, other = (
        renderer.render(vertices, faces, camera, sample_appearance(domain, np.random.default_rng(s)), template, parts)
        for s in (7, 7, 8)
    )
    assert first.rgb.dtype == np.uint8 and first.rgb.shape == (SIZE, SIZE, 3)
    assert first.rgb.std() > 5  # not a blank frame
    assert first.rgb.tobytes() == again.rgb.tobytes()
    assert not np.array_equal(first.rgb, other.rgb)


def _high_frequency(image: np.ndarray) -> float:
    """Median absolute Laplacian of the grey image: ~0 on flat colours, large on texture and noise."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return float(np.median(np.abs(cv2.Laplacian(grey, cv2.CV_32F))))


def test_domains_differ(renderer: Renderer, ball) -> None:
    vertices, faces, template, parts = ball
    rng = np.random.default_rng(11)
    energy: dict[str, list[float]] = {"synthetic": [], "real": []}
    for _ in range(6):
        camera = sample_camera(rng, CENTRE, RADIUS, SIZE)
        for domain in energy:
            result = renderer.render(vertices, faces, camera, sample_appearance(domain, rng), template, parts)
            energy[domain].append(_high_frequency(result.rgb))
    # Flat colours give a zero median (one grey level of quantisation at most); photographic
    # floors do not (an out-of-focus backdrop without a floor can be nearly flat too).
    assert max(energy["synthetic"]) <= 1.0
    assert np.mean(energy["real"]) > 4.0 and sorted(energy["real"])[len(energy["real"]) // 2] > 1.0


def test_appearance_is_plain_data_and_deterministic() -> None:
    first = sample_appearance("real", np.random.default_rng(3))
    assert json.loads(json.dumps(first.to_dict())) == first.to_dict()
    assert sample_appearance("real", np.random.default_rng(3)) == first
    assert sample_appearance("synthetic", np.random.default_rng(3)).effects.jpeg_quality == 0
    with pytest.raises(ValueError, match="domain must be one of"):
        sample_appearance("cartoon", np.random.default_rng(0))


def test_clutter_and_floor_contrast_separate_the_domains() -> None:
    rng = np.random.default_rng(5)
    synthetic = [sample_appearance("synthetic", rng).background for _ in range(200)]
    real = [sample_appearance("real", rng).background for _ in range(200)]
    assert all(b.clutter == 0 for b in synthetic + real)  # clutter cost the real domain its label (issue 13)
    assert all(b.backdrop == "photo" and b.blur >= 2.0 for b in real)  # photo backdrops, out of focus
    # synthetic floors are low-contrast: their two colours differ by at most 0.35 of two random colours
    gaps = [np.abs(np.subtract(*b.floor_colours)).max() for b in synthetic]
    assert max(gaps) <= 0.35 * 1.0 + 1e-3


def test_clutter_is_deterministic_and_soft() -> None:
    from aims_lib.synth.background import add_clutter

    image = np.full((64, 64, 3), 0.5, dtype=np.float32)
    assert add_clutter(image, 0, seed=1) is image
    first, again, other = add_clutter(image, 4, seed=1), add_clutter(image, 4, seed=1), add_clutter(image, 4, seed=2)
    assert np.array_equal(first, again) and not np.array_equal(first, other)
    assert np.array_equal(image, np.full((64, 64, 3), 0.5, dtype=np.float32))  # the input is left alone
    changed = np.abs(first - image).max(axis=2) > 1e-3
    assert 0.02 < changed.mean() < 0.95 and first.min() >= 0.0 and first.max() <= 1.0


def test_clutter_keeps_clear_of_the_infant_box() -> None:
    from aims_lib.synth.background import add_clutter

    image = np.full((64, 64, 3), 0.5, dtype=np.float32)
    box = (0.35, 0.35, 0.65, 0.65)
    for seed in range(10):
        out = add_clutter(image, 6, seed=seed, avoid=box)
        assert np.abs(out[23:41, 23:41] - 0.5).max() < 1e-6, seed  # nothing reaches into the box
    assert any(np.abs(add_clutter(image, 6, seed=s)[23:41, 23:41] - 0.5).max() > 0.01 for s in range(10))
    everywhere = add_clutter(image, 6, seed=0, avoid=(0.0, 0.0, 1.0, 1.0))  # no free place: left out
    assert np.array_equal(everywhere, image)


def test_clothes_follow_body_parts(ball) -> None:
    _, _, template, parts = ball
    rng = np.random.default_rng(0)
    appearances = [sample_appearance("real", rng) for _ in range(30)]
    for appearance in appearances:
        albedo = vertex_albedo(appearance, template, parts)
        assert albedo.shape == template.shape and albedo.min() >= 0 and albedo.max() <= 1
        covered = garment_mask(appearance.garment, template, parts)
        assert covered[parts == PELVIS].all()  # the diaper is always there
        assert not covered[parts == HEAD].any()
        assert covered[parts == L_KNEE].any() == (appearance.garment.legs >= 2)
    assert len({a.garment.legs for a in appearances}) > 1


def test_bad_inputs_are_named(renderer: Renderer, ball) -> None:
    vertices, faces, template, parts = ball
    camera = _camera()
    appearance = sample_appearance("synthetic", np.random.default_rng(0))
    with pytest.raises(ValueError, match="faces must be integers"):
        renderer.render(vertices, faces[:, :2], camera, appearance, template, parts)
    with pytest.raises(ValueError, match="vertex_parts must lie in"):
        renderer.render(vertices, faces, camera, appearance, template, np.full(len(parts), 30))
    with pytest.raises(ValueError, match="template vertices"):
        renderer.render(vertices, faces, camera, appearance, template[:10], parts[:10])
    with pytest.raises(ValueError, match="platform must be one of"):
        Renderer(SIZE, backend="vulkan")


def test_inward_winding_is_fixed(ball) -> None:
    vertices, faces, _, _ = ball
    for winding in (faces, faces[:, ::-1]):
        oriented, normals = orient(vertices, winding)
        np.testing.assert_array_equal(oriented, faces)
        assert np.all(np.einsum("ij,ij->i", normals, vertices - CENTRE) > 0.99 * RADIUS)


def test_closing_one_renderer_leaves_the_others_working(renderer: Renderer, ball) -> None:
    """pyrender's EGL clean-up terminates the display, which used to end every context of the
    process: a renderer closed while another is alive must leave that one working."""
    vertices, faces, template, parts = ball
    camera, appearance = _camera(), sample_appearance("synthetic", np.random.default_rng(7))
    before = renderer.render(vertices, faces, camera, appearance, template, parts)
    other = Renderer(SIZE)
    other.render(vertices, faces, camera, appearance, template, parts)
    other.close()
    after = renderer.render(vertices, faces, camera, appearance, template, parts)
    assert after.rgb.tobytes() == before.rgb.tobytes()


def test_offscreen_platform_probes_egl_then_osmesa(monkeypatch) -> None:
    import subprocess
    import types

    from aims_lib.synth import render

    def fake_run(results):
        def run(cmd, env, **kwargs):
            code, err = results[env["PYOPENGL_PLATFORM"]]
            return types.SimpleNamespace(returncode=code, stderr=err)
        return run

    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    for results, expected in (({"egl": (0, ""), "osmesa": (0, "")}, "egl"),
                              ({"egl": (1, "EGLError: no device\n"), "osmesa": (0, "")}, "osmesa")):
        render.offscreen_platform.cache_clear()
        monkeypatch.setattr(subprocess, "run", fake_run(results))
        assert render.offscreen_platform() == expected
    render.offscreen_platform.cache_clear()
    monkeypatch.setattr(subprocess, "run", fake_run({"egl": (1, "EGLError: no device\n"), "osmesa": (1, "")}))
    with pytest.raises(RuntimeError, match="egl: EGLError: no device; osmesa: exit 1"):
        render.offscreen_platform()
    render.offscreen_platform.cache_clear()
    monkeypatch.setenv("PYOPENGL_PLATFORM", "osmesa")  # a user's choice is taken as it is, without a probe
    monkeypatch.setattr(subprocess, "run", None)
    assert render.offscreen_platform() == "osmesa"
    render.offscreen_platform.cache_clear()


def test_offscreen_platform_on_this_machine(monkeypatch) -> None:
    from aims_lib.synth import render

    monkeypatch.delenv("PYOPENGL_PLATFORM", raising=False)
    render.offscreen_platform.cache_clear()
    try:
        assert render.offscreen_platform() in render.PLATFORMS  # a real probe in a fresh process
    finally:
        render.offscreen_platform.cache_clear()
