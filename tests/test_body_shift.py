"""The real proxy's body shift: region directions outside the shape space, joints that follow
the shape, today's draw kept for the synthetic domain, clothing thickness on the rendered mesh."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, replace

import numpy as np
import pytest
import torch

from aims_lib.body import DEFAULT_BETAS, BodyModel, body_forward, load_body_model, procedural_arrays, vertex_parts
from aims_lib.body.skeleton import JOINT_INDEX as J
from aims_lib.synth.appearance import Garment, diaper_mask
from aims_lib.synth.body_shift import (
    REAL,
    REGIONS,
    SYNTHETIC,
    clothing_weights,
    displace_clothing,
    region_directions,
    sample_clothing,
    sample_shapes,
    shifted_body_model,
    tapered_weight,
    vertex_normals,
)
from aims_lib.synth.poses import check_pose, sample_poses
from aims_lib.taxonomy import FINE


@pytest.fixture(scope="module")
def standard() -> BodyModel:
    return load_body_model(num_betas=DEFAULT_BETAS)


@pytest.fixture(scope="module")
def full() -> BodyModel:
    return BodyModel(procedural_arrays())  # every one of the 14 components


@pytest.fixture(scope="module")
def real(full):
    return shifted_body_model(full, REAL)


def _rest_joints(model, betas: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return body_forward(model, betas=torch.as_tensor(betas, dtype=torch.float32)).joints.numpy().astype(np.float64)


def _unit(model, region: str, value: float) -> np.ndarray:
    betas = np.zeros((1, model.num_betas))
    betas[0, model.own_components + REGIONS.index(region)] = value
    return betas


def test_region_directions_lie_outside_the_models_shape_space(full):
    dirs = region_directions(full)
    assert dirs.shape == (6890, 3, len(REGIONS))
    own = full.shapedirs.numpy().astype(np.float64).reshape(-1, full.num_betas)
    for k, name in enumerate(REGIONS):
        y = dirs[..., k].reshape(-1)
        coef, *_ = np.linalg.lstsq(own, y, rcond=None)
        residual = np.linalg.norm(y - own @ coef) / np.linalg.norm(y)
        assert residual > 0.15, f"{name}: only {residual:.3f} of it lies outside the 14 components"


def test_shifted_model_appends_the_regions_to_every_own_component(full, real):
    assert (real.own_components, real.regions, real.num_betas) == (14, REGIONS, 14 + len(REGIONS))
    assert torch.equal(real.shapedirs[..., :14], full.shapedirs)
    assert np.array_equal(real.faces, full.faces)
    for name in ("v_template", "J_regressor", "lbs_weights", "posedirs", "parents"):
        assert torch.equal(getattr(real, name), getattr(full, name)), name


def test_thigh_length_coefficient_lengthens_hip_to_knee_by_that_fraction(real):
    """gamma = 0.1 on the left thigh: hip-knee grows by 0.1 of its rest length; the shin keeps its
    length (it moves rigidly) and the right leg does not change."""
    rest = _rest_joints(real, np.zeros((1, real.num_betas)))[0]
    longer = _rest_joints(real, _unit(real, "thigh_length_l", 0.1))[0]

    def bone(j, a, b):
        return np.linalg.norm(j[J[b]] - j[J[a]])

    thigh = bone(rest, "left_hip", "left_knee")
    assert bone(longer, "left_hip", "left_knee") - thigh == pytest.approx(0.1 * thigh, rel=0.02)
    assert bone(longer, "left_knee", "left_ankle") == pytest.approx(bone(rest, "left_knee", "left_ankle"), abs=1e-4)
    assert bone(longer, "right_hip", "right_knee") == pytest.approx(bone(rest, "right_hip", "right_knee"), abs=1e-6)


def test_head_coefficient_scales_the_head_about_its_joint(real):
    """The nose is skinned to the head only: its distance from the head joint grows by gamma."""
    from aims_lib.body import COCO17_VERTEX_IDS

    def nose_distance(betas):
        with torch.no_grad():
            out = body_forward(real, betas=torch.as_tensor(betas, dtype=torch.float32))
        return float((out.vertices[0, COCO17_VERTEX_IDS[0]] - out.joints[0, J["head"]]).norm())

    base = nose_distance(np.zeros((1, real.num_betas)))
    assert nose_distance(_unit(real, "head", 0.1)) == pytest.approx(1.1 * base, rel=0.01)


def test_synthetic_is_todays_shape_draw(standard, full):
    for model in (standard, full, shifted_body_model(standard, SYNTHETIC)):
        rng, today = np.random.default_rng(7), np.random.default_rng(7)
        betas = sample_shapes(rng, 9, SYNTHETIC, model)
        assert np.array_equal(betas, np.clip(today.normal(0.0, 1.0, (9, DEFAULT_BETAS)), -2.0, 2.0))
        assert rng.random() == today.random()  # nothing else drawn


def test_synthetic_shifted_model_samples_the_same_poses(standard):
    labels = list(FINE)
    shifted = shifted_body_model(standard, SYNTHETIC)
    assert shifted.regions == () and shifted.num_betas == DEFAULT_BETAS
    a, b = (
        sample_poses(labels, np.random.default_rng(3), m, sample_shapes(np.random.default_rng(4), 12, SYNTHETIC, m))
        for m in (standard, shifted)
    )
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.body_pose, b.body_pose)


def test_real_draws_every_component_regions_and_asymmetry(real):
    betas = sample_shapes(np.random.default_rng(0), 500, REAL, real)
    assert betas.shape == (500, real.num_betas)
    assert np.all(np.abs(betas[:, :14]) <= REAL.clip_sd) and np.all(betas[:, 10:14].std(0) > 0.7)
    regions = betas[:, 14:]
    sd = regions.std(0)
    assert sd[REGIONS.index("head")] == pytest.approx(REAL.head_sd, rel=0.15)
    left, right = regions[:, REGIONS.index("thigh_length_l")], regions[:, REGIONS.index("thigh_length_r")]
    total = np.hypot(REAL.length_sd, REAL.asymmetry_sd)
    assert left.std() == pytest.approx(total, rel=0.15)
    assert (left - right).std() == pytest.approx(np.sqrt(2) * REAL.asymmetry_sd, rel=0.15)
    assert np.abs(left).max() <= REAL.clip_sd * (REAL.length_sd + REAL.asymmetry_sd) + 1e-12


def test_draws_are_deterministic(real):
    a = sample_shapes(np.random.default_rng(5), 4, REAL, real)
    assert np.array_equal(a, sample_shapes(np.random.default_rng(5), 4, REAL, real))
    assert not np.array_equal(a, sample_shapes(np.random.default_rng(6), 4, REAL, real))
    assert sample_clothing(np.random.default_rng(5), REAL) == sample_clothing(np.random.default_rng(5), REAL)


def test_clothing_thickness_ranges_and_no_draw_for_synthetic():
    rng, untouched = np.random.default_rng(1), np.random.default_rng(1)
    assert sample_clothing(rng, SYNTHETIC) == (0.0, 0.0)
    assert rng.random() == untouched.random()
    draws = np.array([sample_clothing(rng, REAL) for _ in range(200)])
    assert np.all((draws[:, 0] >= 0.005) & (draws[:, 0] <= 0.020))
    assert np.all((draws[:, 1] >= 0.002) & (draws[:, 1] <= 0.008))


def test_shifted_bodies_keep_the_pose_sampler_working(real):
    """Class predicates hold for shifted bodies, and the sampler's vertices and joints are the
    shifted model's own forward: the keypoints are the shifted body's joints."""
    labels = [label for label in FINE for _ in range(3)]
    rng = np.random.default_rng(11)
    poses = sample_poses(labels, rng, real, sample_shapes(rng, len(labels), REAL, real))
    for label in FINE:
        rows = [i for i, x in enumerate(poses.fine_labels) if x == label]
        checks = check_pose(label, poses.joints[rows], poses.vertices[rows], [poses.props[i] for i in rows])
        assert all(np.all(v) for v in checks.values()), label
    names = ("betas", "body_pose", "global_orient", "transl")
    as_tensor = {k: torch.as_tensor(getattr(poses, k), dtype=torch.float32) for k in names}
    with torch.no_grad():
        out = body_forward(real, **as_tensor)
    assert np.allclose(out.vertices.numpy(), poses.vertices, atol=1e-4)
    assert np.allclose(out.joints.numpy()[:, :24], poses.joints[:, :24], atol=1e-4)


def test_smil_format_file_is_shifted_alike(smil_like):
    path, shapedirs = smil_like
    model = load_body_model(path)
    shifted = shifted_body_model(model, REAL)
    assert (shifted.own_components, shifted.num_betas) == (20, 20 + len(REGIONS))
    betas = sample_shapes(np.random.default_rng(0), 3, REAL, shifted)
    assert betas.shape == (3, 20 + len(REGIONS))
    assert np.all(np.isfinite(_rest_joints(shifted, betas)))
    # Same template, skinning and regressor as the procedural body: the same directions.
    assert np.allclose(region_directions(model), region_directions(BodyModel(procedural_arrays())), atol=1e-6)


def _grid(n: int = 6, step: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """A flat square grid in z = 0, faces counter-clockwise seen from +z (normals +z)."""
    x, y = np.meshgrid(np.arange(n) * step, np.arange(n) * step, indexing="ij")
    vertices = np.stack([x.ravel(), y.ravel(), np.zeros(n * n)], 1)
    idx = np.arange(n * n).reshape(n, n)
    a, b, c, d = idx[:-1, :-1].ravel(), idx[1:, :-1].ravel(), idx[1:, 1:].ravel(), idx[:-1, 1:].ravel()
    return vertices, np.concatenate([np.stack([a, b, c], 1), np.stack([a, c, d], 1)])


def test_displacement_is_the_stated_thickness_along_the_normal():
    vertices, faces = _grid()
    assert np.allclose(vertex_normals(vertices, faces), [0.0, 0.0, 1.0])
    weight = np.linspace(0.0, 1.0, len(vertices))
    moved = displace_clothing(vertices, faces, weight, 0.012)
    assert np.allclose(moved - vertices, np.outer(0.012 * weight, [0.0, 0.0, 1.0]), atol=1e-15)


def test_taper_is_the_smoothstep_of_the_geodesic_distance_to_the_border():
    vertices, faces = _grid(n=6, step=0.01)
    mask = vertices[:, 0] >= 0.02  # columns 2..5 covered; the border is column 1, 1 cm away
    weight = tapered_weight(mask, vertices, faces, taper_m=0.02)
    column = np.round(vertices[:, 0] / 0.01).astype(int)
    expected = np.array([0.0, 0.0, 0.5, 1.0, 1.0, 1.0])  # smoothstep(0, 2 cm, 0 / 1 / 2 / 3 cm)
    assert np.allclose(weight, expected[column])


def test_body_clothing_moves_only_covered_vertices_outwards(standard):
    template = standard.v_template.numpy().astype(np.float64)
    faces = np.asarray(standard.faces, dtype=np.int64)
    parts = vertex_parts(standard)
    diaper_only = Garment(False, 0, 0, (1.0, 1.0, 1.0), "plain", (1.0, 1.0, 1.0), 0.03)
    diaper, garment = clothing_weights(diaper_only, template, parts, faces)
    assert not garment.any()
    covered = diaper_mask(template, parts)
    assert np.all(diaper[~covered] == 0.0) and diaper.max() == 1.0 and np.all(diaper >= 0.0)
    moved = displace_clothing(template.astype(np.float32), faces, diaper, 0.015)
    assert moved.dtype == np.float32
    step = moved.astype(np.float64) - template
    assert np.allclose(step[~covered], 0.0)
    thick = diaper > 0.99
    assert np.all(np.einsum("vc,vc->v", step[thick], vertex_normals(template, faces)[thick]) > 0.0)
    assert np.allclose(np.linalg.norm(step, axis=1), 0.015 * diaper, atol=1e-6)  # float32 rounding
    bodysuit = Garment(True, 1, 1, (1.0, 1.0, 1.0), "plain", (1.0, 1.0, 1.0), 0.03)
    assert clothing_weights(bodysuit, template, parts, faces)[1].sum() > diaper.sum()


@pytest.mark.parametrize(
    "change, field",
    [
        ({"length_sd": -0.1}, "length_sd"),
        ({"girth_sd": float("nan")}, "girth_sd"),
        ({"clip_sd": 0.0}, "clip_sd"),
        ({"length_sd": 0.2, "asymmetry_sd": 0.1}, "length_sd + asymmetry_sd"),
        ({"head_sd": 0.3}, "head_sd"),
        ({"own_components": 0}, "own_components"),
        ({"diaper_mm": (20.0, 5.0)}, "diaper_mm"),
        ({"clothing_mm": (-1.0, 2.0)}, "clothing_mm"),
    ],
)
def test_bad_settings_name_the_field(change, field):
    with pytest.raises(ValueError, match=f"BodyShift.{field.replace('+', '[+]')}"):
        replace(REAL, **change)


def test_misuse_is_refused(standard):
    with pytest.raises(ValueError, match="shifted_body_model"):
        sample_shapes(np.random.default_rng(0), 2, REAL, standard)
    with pytest.raises(ValueError, match="own_components = 12"):
        sample_shapes(np.random.default_rng(0), 2, replace(SYNTHETIC, own_components=12), standard)
    vertices, faces = _grid()
    with pytest.raises(ValueError, match="weight must have shape"):
        displace_clothing(vertices, faces, np.ones(3), 0.01)
    with pytest.raises(ValueError, match="offset_m"):
        displace_clothing(vertices, faces, np.ones(len(vertices)), -0.01)
    with pytest.raises(FrozenInstanceError):
        REAL.head_sd = 0.0  # type: ignore[misc]
