"""SMPL's forward pass: shaped rest joints, the kinematic chain and linear blend skinning.

smplx's forward poses the whole mesh from axis-angle parameters, which is more than the two
batched callers need, so the same maths is here twice, each for what its caller needs, both equal
to smplx's output to float precision (``tests/test_kinematics.py``):

* NumPy, for the pose sampler: rotation matrices in, any subset of vertices out, the per-vertex
  blend in float32 (its CPU cost is memory traffic). It defines the embedded generator's numbers,
  so its operations and their order are part of the generator's output.
* torch, for SMPLify: axis-angle in, differentiable, only the joints and vertices asked for (the
  fit never needs the 6890-vertex mesh), one batched product per depth of the tree.

Both read the skeleton of :mod:`aims_lib.body.skeleton`; the root joint stays at its shaped rest
position and no translation is applied (smplx's convention).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from aims_lib.body.rotations import axis_angle_to_matrix
from aims_lib.body.skeleton import NUM_JOINTS, PARENTS

# --- NumPy --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BodyArrays:
    """An SMPL-format model's arrays in NumPy float64, as the NumPy forward reads them."""

    j_template: np.ndarray  # (24, 3) rest joints of the mean shape
    j_shapedirs: np.ndarray  # (24, 3, B) joint displacement per shape coefficient
    v_template: np.ndarray  # (V, 3)
    shapedirs: np.ndarray  # (V, 3, B)
    posedirs: np.ndarray | None  # (207, V * 3) pose blend shapes, None when all zero
    weights: np.ndarray  # (V, 24) skinning weights
    extra_joints: np.ndarray  # vertex ids of smplx's extra joints (nose, eyes, ears, toes, ...)

    @classmethod
    def of(cls, model: Any) -> BodyArrays:
        """The arrays of a smplx SMPL module; its kinematic tree must be SMPL's."""
        parents = model.parents.detach().cpu().numpy()
        if parents.shape != (NUM_JOINTS,) or tuple(int(p) for p in parents[1:]) != PARENTS[1:]:
            raise ValueError("the NumPy body forward needs an SMPL-layout model (24 joints, SMPL kinematic tree)")
        v = model.v_template.detach().cpu().double().numpy()
        jreg = model.J_regressor.detach().cpu().double().numpy()
        shapedirs = model.shapedirs.detach().cpu().double().numpy()
        posedirs = model.posedirs.detach().cpu().double().numpy()
        return cls(
            j_template=jreg @ v,
            j_shapedirs=np.einsum("jv,vck->jck", jreg, shapedirs),
            v_template=v,
            shapedirs=shapedirs,
            posedirs=posedirs if np.any(posedirs) else None,
            weights=model.lbs_weights.detach().cpu().double().numpy(),
            extra_joints=model.vertex_joint_selector.extra_joints_idxs.detach().cpu().numpy(),
        )


def rest_joints(body: BodyArrays, betas: np.ndarray) -> np.ndarray:
    """Shaped rest joints (N, 24, 3) for ``betas`` (N, B): the regressor applied to the shape."""
    return body.j_template[None] + np.einsum("jck,nk->njc", body.j_shapedirs[..., : betas.shape[1]], betas)


def forward_kinematics(rots: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global joint rotations and positions from local rotations ``rots`` (N, 24, 3, 3) and rest
    joints ``rest`` (N, 24, 3), root at its rest position, as smplx computes them."""
    g = np.empty_like(rots)
    p = np.empty_like(rest)
    g[:, 0], p[:, 0] = rots[:, 0], rest[:, 0]
    for i in range(1, NUM_JOINTS):
        k = PARENTS[i]
        g[:, i] = g[:, k] @ rots[:, i]
        p[:, i] = p[:, k] + np.einsum("nij,nj->ni", g[:, k], rest[:, i] - rest[:, k])
    return g, p


def skin(body: BodyArrays, rots: np.ndarray, rest: np.ndarray, betas: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Vertices ``idx`` posed by rotation matrices ``rots`` (N, 24, 3, 3): smplx's linear blend
    skinning (shape and pose blend shapes), float32.

    Posing just the few vertices an intermediate step looks at costs a fraction of the mesh."""
    n, m = len(rots), len(idx)
    shapes = body.shapedirs[idx, :, : betas.shape[1]].reshape(m * 3, -1)
    v = body.v_template[idx][None] + (betas @ shapes.T).reshape(n, m, 3)
    if body.posedirs is not None:
        cols = (idx[:, None] * 3 + np.arange(3)).ravel()
        v = v + ((rots[:, 1:] - np.eye(3)).reshape(n, -1) @ body.posedirs[:, cols]).reshape(n, m, 3)
    g, p = forward_kinematics(rots, rest)
    shift = p - np.einsum("nkij,nkj->nki", g, rest)  # translation of each joint's transform
    # Blend the 24 transforms per vertex with one (m, 24) @ (24, n * 12) product in float32
    # (the CPU cost is memory traffic), then apply them to the vertices.
    per_joint = np.concatenate([g, shift[..., None]], -1).astype(np.float32)  # (n, 24, 3, 4)
    blend = body.weights[idx].astype(np.float32) @ per_joint.transpose(1, 0, 2, 3).reshape(NUM_JOINTS, -1)
    homog = np.empty((m, n, 4), np.float32)  # contiguous in the blend's layout: einsum is fast
    homog[..., :3] = v.transpose(1, 0, 2)
    homog[..., 3] = 1.0
    return np.einsum("mnij,mnj->nmi", blend.reshape(m, n, 3, 4), homog)


def forward(body: BodyArrays, rots: np.ndarray, rest: np.ndarray, betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All vertices and the joints smplx's SMPL outputs (24 joints, then its extra vertex
    joints), float32."""
    v = np.ascontiguousarray(skin(body, rots, rest, betas, np.arange(len(body.v_template))))
    _, p = forward_kinematics(rots, rest)
    return v, np.concatenate([p.astype(np.float32), v[:, body.extra_joints]], axis=1)


# --- torch --------------------------------------------------------------------------------------


def _take(x: torch.Tensor, slots: list[int]) -> torch.Tensor:
    """``x[:, slots]``, as a view when ``slots`` is a run of consecutive slots or one repeated
    slot (always the case for SMPL's tree): slicing is cheaper than indexing, backward too."""
    first = slots[0]
    if slots == list(range(first, first + len(slots))):
        return x[:, first : first + len(slots)]
    if slots == [first] * len(slots):
        return x[:, first : first + 1].expand(x.shape[0], len(slots), *x.shape[2:])
    return x[:, slots]


class PartialForward(torch.nn.Module):
    """Chosen vertices and joints of an SMPL-format body without the rest of the mesh:
    ``layer(betas, global_orient, body_pose) -> (vertices (B, V', 3), joints (B, J', 3))``.

    Joints: shaped rest joints ``J = J_template + J_shapedirs beta`` (the joint regressor is
    linear, so it is applied to the blend shapes once, here), then the kinematic chain, one
    batched product per tree depth, over the chosen joints, the joints skinning the chosen
    vertices and their ancestors. Vertices: shaped and pose-corrected rest positions
    (``posedirs``; skipped when they are all zero, as on the procedural body), linearly
    blend-skinned with the joints' transforms.
    """

    j_template: torch.Tensor
    j_shapedirs: torch.Tensor
    v_template: torch.Tensor
    v_shapedirs: torch.Tensor
    v_posedirs: torch.Tensor
    v_weights: torch.Tensor

    def __init__(self, model: Any, vertex_ids: Sequence[int], joint_ids: Sequence[int]) -> None:
        super().__init__()
        num_betas = int(model.num_betas)
        parents = [int(p) for p in model.parents]
        vertices = list(vertex_ids)
        weights = model.lbs_weights.detach()[vertices]
        skin_joints = sorted(set(torch.nonzero(weights.abs().sum(0)).flatten().tolist()))
        # Joints that move an output: the chosen joints, those skinning the vertices, ancestors.
        needed = set(joint_ids) | set(skin_joints)
        for j in list(needed):
            while parents[j] >= 0:
                j = parents[j]
                needed.add(j)
        depth = [0] * len(parents)
        for j in range(1, len(parents)):  # SMPL orders parents before children
            depth[j] = depth[parents[j]] + 1
        levels = [sorted(j for j in needed if depth[j] == d) for d in range(max(depth[j] for j in needed) + 1)]
        order = [j for level in levels for j in level]
        slot = {j: i for i, j in enumerate(order)}
        self.num_joints = len(parents)
        self.order = order
        self.level_sizes = [len(level) for level in levels]
        # Slot of every joint's parent within the previous level.
        self.parent_slots = [[levels[d - 1].index(parents[j]) for j in levels[d]] for d in range(1, len(levels))]
        self.parent_order = [max(parents[j], 0) for j in order]
        self.joint_slots = [slot[j] for j in joint_ids]
        self.skin_slots = [slot[j] for j in skin_joints]

        v_template = model.v_template.detach()
        shapedirs = model.shapedirs.detach()[..., :num_betas]
        regressor = model.J_regressor.detach()
        posedirs = model.posedirs.detach()[:, [3 * v + c for v in vertices for c in range(3)]]
        self.has_posedirs = bool(posedirs.abs().max() > 0)
        self.register_buffer("j_template", regressor @ v_template)
        self.register_buffer("j_shapedirs", torch.einsum("jv,vck->jck", regressor, shapedirs))
        self.register_buffer("v_template", v_template[vertices])
        self.register_buffer("v_shapedirs", shapedirs[vertices])
        self.register_buffer("v_posedirs", posedirs)
        self.register_buffer("v_weights", weights[:, skin_joints])

    def forward(
        self, betas: torch.Tensor, global_orient: torch.Tensor, body_pose: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch = betas.shape[0]
        pose = torch.cat([global_orient, body_pose], -1).reshape(batch, -1, 3)
        shaped = self.j_template + torch.einsum("bk,jck->bjc", betas, self.j_shapedirs)  # (B, 24, 3)
        rest = shaped[:, self.order]  # joints in level order
        bones = (rest - shaped[:, self.parent_order])[..., None]
        # Local transforms [R_j | J_j - J_parent] (3 x 4), split per level: a split's backward is
        # one concatenation, while every slice's backward would fill its own full-size zeros.
        local = torch.cat([axis_angle_to_matrix(pose[:, self.order]), bones], -1).split(self.level_sizes, 1)
        # Chain, one product per level: G_parent [R_j | b_j] = [G_j | p_j - p_parent].
        g_rot, g_pos = [local[0][..., :3]], [rest[:, : self.level_sizes[0]]]
        for transform, slots in zip(local[1:], self.parent_slots):
            world = _take(g_rot[-1], slots) @ transform
            g_rot.append(world[..., :3])
            g_pos.append(world[..., 3] + _take(g_pos[-1], slots))
        world_rot, joints = torch.cat(g_rot, 1), torch.cat(g_pos, 1)
        # Vertices: v' = sum_j w_j (G_j (v - J_j) + p_j), v with shape and pose blend shapes.
        v = self.v_template + torch.einsum("bk,vck->bvc", betas, self.v_shapedirs)
        if self.has_posedirs:
            all_rot = axis_angle_to_matrix(pose[:, 1:])
            pose_feature = (all_rot - torch.eye(3, dtype=all_rot.dtype, device=all_rot.device)).reshape(batch, -1)
            v = v + (pose_feature @ self.v_posedirs).reshape(batch, -1, 3)
        skin_rot, skin_pos = world_rot[:, self.skin_slots], joints[:, self.skin_slots]
        offset = skin_pos - (skin_rot @ rest[:, self.skin_slots, :, None])[..., 0]  # (B, S, 3)
        blend_rot = torch.einsum("vs,bsij->bvij", self.v_weights, skin_rot)
        blend_off = torch.einsum("vs,bsi->bvi", self.v_weights, offset)
        posed = (blend_rot @ v[..., None])[..., 0] + blend_off
        return posed, joints[:, self.joint_slots]
