"""The shared SMPL kinematics: skeleton layout, rotation conversions, the NumPy and torch forward
passes (both equal smplx's), and the one smoothstep."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from aims_lib.body import DEFAULT_BETAS, BodyModel, load_body_model, procedural_arrays
from aims_lib.body.kinematics import BodyArrays, PartialForward, forward, rest_joints, skin
from aims_lib.body.rotations import (
    EY,
    axis_angle_to_matrix,
    coordinate_rotation,
    euler_yxz,
    matrix_to_rotvec,
    rotation_about,
    rotation_angle,
    rotation_between,
    twist_part,
    unit,
    yaw_between,
)
from aims_lib.body.skeleton import (
    JOINT_INDEX,
    JOINT_NAMES,
    MIRROR_MATRIX,
    MIRROR_PERM,
    NUM_JOINTS,
    PARENTS,
    mirror_name,
)
from aims_lib.body.smoothstep import smoothstep


@pytest.fixture(scope="module")
def corrective_model() -> BodyModel:
    """The procedural body with pose blend shapes (SMIL has them), float64, 12 betas; smplx's
    Rodrigues offsets the angle by 1e-8, so float64 forwards agree to about 1e-9."""
    arrays = dict(procedural_arrays())
    arrays["posedirs"] = np.random.default_rng(0).normal(0.0, 0.01, arrays["posedirs"].shape)
    return BodyModel(arrays, num_betas=12, dtype=torch.float64)


def _params(n: int, num_betas: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 0.6, (n, NUM_JOINTS, 3)), rng.normal(0.0, 1.0, (n, num_betas))


# --- skeleton -------------------------------------------------------------------------------------


def test_skeleton_layout() -> None:
    assert len(JOINT_NAMES) == len(PARENTS) == NUM_JOINTS == 24
    assert PARENTS[0] == -1 and all(0 <= PARENTS[j] < j for j in range(1, NUM_JOINTS))
    assert all(JOINT_INDEX[name] == j for j, name in enumerate(JOINT_NAMES))


def test_mirror_map_swaps_sides_and_keeps_the_tree() -> None:
    assert all(MIRROR_PERM[MIRROR_PERM[j]] == j for j in range(NUM_JOINTS))
    for j, name in enumerate(JOINT_NAMES):
        twin = JOINT_NAMES[MIRROR_PERM[j]]
        assert twin == mirror_name(name)
        assert twin.split("_")[-1] == name.split("_")[-1]
        assert name.startswith(("left_", "right_")) != (twin == name)
        if j:  # a mirrored joint hangs from the mirrored parent
            assert PARENTS[MIRROR_PERM[j]] == MIRROR_PERM[PARENTS[j]]
    assert np.array_equal(MIRROR_MATRIX @ [0.3, 0.2, 0.1], [-0.3, 0.2, 0.1])


# --- rotations ------------------------------------------------------------------------------------


def test_numpy_rotations_agree_with_scipy() -> None:
    rng = np.random.default_rng(1)
    axis, angle = unit(rng.normal(size=(200, 3))), rng.uniform(-math.pi, math.pi, 200)
    r = rotation_about(axis, angle)
    np.testing.assert_allclose(r, Rotation.from_rotvec(axis * angle[:, None]).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(rotation_angle(r), np.abs(angle), atol=1e-6)
    np.testing.assert_array_equal(rotation_about(axis, np.zeros(200)), np.broadcast_to(np.eye(3), r.shape))
    rotvec = matrix_to_rotvec(r.reshape(20, 10, 3, 3))  # any leading shape
    assert rotvec.shape == (20, 10, 3)
    back = rotation_about(unit(rotvec), np.linalg.norm(rotvec, axis=-1)).reshape(r.shape)
    np.testing.assert_allclose(back, r, atol=1e-12)
    x, y, z = rng.uniform(-90.0, 90.0, (3, 50))
    expected = Rotation.from_euler("YXZ", np.stack([y, x, z], 1), degrees=True).as_matrix()
    np.testing.assert_allclose(euler_yxz(x, y, z), expected, atol=1e-12)


def test_rotation_between_and_yaw() -> None:
    rng = np.random.default_rng(2)
    a, b = unit(rng.normal(size=(100, 3))), unit(rng.normal(size=(100, 3)))
    r = rotation_between(a, b)
    np.testing.assert_allclose(np.einsum("nij,nj->ni", r, a), b, atol=1e-12)
    # Smallest rotation: the angle between the vectors, about an axis normal to both.
    np.testing.assert_allclose(rotation_angle(r), np.arccos(np.sum(a * b, -1)), atol=1e-6)
    y = yaw_between(a, b)
    np.testing.assert_allclose(y @ EY, np.broadcast_to(EY, a.shape), atol=1e-12)
    turned = np.einsum("nij,nj->ni", y, a * [1, 0, 1])
    np.testing.assert_allclose(unit(turned), unit(b * [1, 0, 1]), atol=1e-12)


def test_twist_part_splits_swing_and_twist() -> None:
    rng = np.random.default_rng(3)
    r = Rotation.random(100, random_state=4).as_matrix()
    axis = unit(rng.normal(size=3))
    twist = twist_part(r, axis)
    np.testing.assert_allclose(twist @ axis, np.broadcast_to(axis, (100, 3)), atol=1e-12)  # about the axis
    swing = r @ np.swapaxes(twist, -1, -2)
    swing_axis = Rotation.from_matrix(swing).as_rotvec()
    np.testing.assert_allclose(swing_axis @ axis, 0.0, atol=1e-9)  # the rest turns about a normal axis


def test_torch_rotations() -> None:
    rotvec = torch.as_tensor(Rotation.random(300, random_state=5).as_rotvec())
    expected = torch.as_tensor(Rotation.from_rotvec(rotvec.numpy()).as_matrix())
    torch.testing.assert_close(axis_angle_to_matrix(rotvec), expected, atol=1e-12, rtol=0)
    angle = torch.linspace(-math.pi, math.pi, 101, dtype=torch.float64)
    for axis in range(3):  # right-handed, like the axis-angle form
        vec = torch.zeros(101, 3, dtype=torch.float64)
        vec[:, axis] = angle
        torch.testing.assert_close(coordinate_rotation(axis, angle), axis_angle_to_matrix(vec), atol=1e-12, rtol=0)


# --- forward passes -------------------------------------------------------------------------------


@pytest.mark.parametrize("corrective", [False, True])
def test_numpy_forward_equals_smplx(corrective: bool, corrective_model: BodyModel) -> None:
    model = corrective_model if corrective else load_body_model(num_betas=DEFAULT_BETAS, dtype=torch.float64)
    body = BodyArrays.of(model)
    assert (body.posedirs is not None) == corrective
    rotvec, betas = _params(6, model.num_betas)
    rots = Rotation.from_rotvec(rotvec.reshape(-1, 3)).as_matrix().reshape(6, NUM_JOINTS, 3, 3)
    rest = rest_joints(body, betas)
    vertices, joints = forward(body, rots, rest, betas)
    with torch.no_grad():
        out = model(
            betas=torch.as_tensor(betas),
            global_orient=torch.as_tensor(rotvec[:, 0]),
            body_pose=torch.as_tensor(rotvec[:, 1:].reshape(6, -1)),
        )
    np.testing.assert_allclose(vertices, out.vertices.numpy(), atol=1e-5)
    np.testing.assert_allclose(joints, out.joints.numpy(), atol=1e-5)
    idx = np.array([5, 332, 2800, 4000, 6889])
    np.testing.assert_array_equal(skin(body, rots, rest, betas, idx), vertices[:, idx])


def test_numpy_forward_needs_smpl_tree() -> None:
    model = load_body_model(num_betas=DEFAULT_BETAS)
    model.parents = model.parents.flip(0)
    with pytest.raises(ValueError, match="SMPL kinematic tree"):
        BodyArrays.of(model)


def test_torch_forward_equals_smplx_on_any_subset(corrective_model: BodyModel) -> None:
    vertex_ids, joint_ids = [10, 3000, 6000, 412], [22, 0, 7, 15]
    layer = PartialForward(corrective_model, vertex_ids, joint_ids)
    assert layer.has_posedirs
    rotvec, betas = _params(5, corrective_model.num_betas, seed=1)
    params = {
        "betas": torch.as_tensor(betas),
        "global_orient": torch.as_tensor(rotvec[:, 0]),
        "body_pose": torch.as_tensor(rotvec[:, 1:].reshape(5, -1)),
    }
    vertices, joints = layer(**params)
    with torch.no_grad():
        out = corrective_model(**params)
    torch.testing.assert_close(vertices, out.vertices[:, vertex_ids], atol=1e-7, rtol=0)
    torch.testing.assert_close(joints, out.joints[:, joint_ids], atol=1e-7, rtol=0)
    # Differentiable: the fit's gradients flow to the pose.
    pose = params["body_pose"].clone().requires_grad_(True)
    layer(params["betas"], params["global_orient"], pose)[0].sum().backward()
    assert pose.grad is not None and torch.isfinite(pose.grad).all() and pose.grad.abs().sum() > 0


# --- smoothstep -----------------------------------------------------------------------------------


def test_smoothstep() -> None:
    x = np.linspace(-1.0, 2.0, 301)
    y = smoothstep(0.0, 1.0, x)
    assert np.all(y[x <= 0.0] == 0.0) and np.all(y[x >= 1.0] == 1.0)
    assert np.all(np.diff(y) >= 0.0)
    np.testing.assert_allclose(smoothstep(0.0, 1.0, np.array([0.25, 0.5])), [0.15625, 0.5])
    np.testing.assert_allclose(smoothstep(2.0, -2.0, np.array([-3.0, 3.0])), [1.0, 0.0])  # reversed edges fall
