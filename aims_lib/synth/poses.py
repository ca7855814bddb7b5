"""Samplers for the 12 AIMS fine poses on an SMPL-format body (procedural infant or SMIL).

Why this shape: the classes differ mainly in *which body parts touch the floor* and in a few joint
angles, so a sample is built in steps that use only SMPL joint semantics (joint order, kinematic
tree, rest T-pose, skinning weights), never the mesh's particulars, so that the same sampler
drives the procedural body and the real SMIL model:

1. **Joint angles from a per-class table** (:data:`POSE_SPECS`, one or more :class:`PoseSpec`
   variants per class): uniform ranges (degrees) for the spine, neck and head, and for each
   limb in anatomical terms (:class:`Arm`, :class:`Leg`: shoulder/hip flexion, abduction and
   external rotation as a swing-twist from the rest bone, elbow/knee flexion about their hinge,
   wrist/ankle Euler angles). Limbs are given in left-side terms and mirrored for the right;
   a limb may list alternatives ("W" arms or arms along the body) drawn independently, and the
   whole pose is mirrored left/right with probability 1/2: varied, asymmetric, recognisable.
2. **Contact tilt**: a base orientation (pitch/roll) puts the body roughly in its posture, then
   it is tilted rigidly until the lowest points of the class's contact regions (hands and knees
   for kneeling, buttocks and lower legs for sitting, ...) lie on one horizontal plane. Regions
   are vertices grouped by their dominant skinning joint (:data:`REGIONS`).
3. **Limb solves** where sampling alone cannot meet a contact: two-bone arm IK puts the wrists at
   the knees/feet or the hands on the floor (:class:`Plant`); closed-form hinge solves lay
   forearms, shins, palms and soles flat and bring prone knees down; a turn of the chest about
   the spine takes up the warp that four contacts (crawling) leave. Each round of solves is
   followed by another tilt. These steps pose only the contact regions, with the model's own
   linear blend skinning in NumPy (:func:`aims_lib.body.kinematics.skin`), which is much
   cheaper than a full forward.
4. **Placement**: a random yaw about the vertical, the full mesh (same numbers as a smplx
   forward), then a translation that puts the lowest vertex at y = 0 and the centre of the
   vertex bounding box's x/z on the origin.

Sitting w/ Support is modelled with a support object: a cylindrical bolster with rounded ends
(a rolled cushion, radius about half the spine length) lying on the floor across the infant's
back, pushed against the body until it touches without entering it; the hip angles make the
torso lean back onto it. It is returned as a :class:`Prop` (mesh, placement, colour hint and
exact capsule) for the renderer.

Every candidate is checked with the class predicates (:func:`check_pose`), the gross
self-intersection test (:func:`self_intersecting`) and the joint limits of the solved joints;
failures are re-drawn. Conventions: SMPL joint order, rest T-pose with y up, the body facing +z
and its left at +x; world in metres, y up, the floor is y = 0.

This module is the sampler itself and the public face of its parts, whose names it re-exports:
:mod:`~aims_lib.synth.pose_specs` (the class tables), :mod:`~aims_lib.synth.pose_angles` (step 1),
:mod:`~aims_lib.synth.pose_solvers` (steps 2 and 3), :mod:`~aims_lib.synth.body_facts` (what the
sampler knows about a model), :mod:`~aims_lib.synth.pose_predicates` (the class predicates),
:mod:`~aims_lib.synth.self_intersection` (the capsule test), :mod:`~aims_lib.synth.props` (the
bolster) and :mod:`~aims_lib.synth.capsules` (their geometry).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Sequence

import numpy as np

from aims_lib.body.kinematics import forward, rest_joints, skin
from aims_lib.body.rotations import EY, matrix_to_rotvec, rotation_about
from aims_lib.body.skeleton import JOINT_INDEX as J
from aims_lib.body.skeleton import MIRROR_PERM, NUM_JOINTS
from aims_lib.synth.body_facts import REGIONS, SEGMENTS, BodyInfo, body_info, limb_radii
from aims_lib.synth.pose_angles import angles_to_rotations, draw_angles
from aims_lib.synth.pose_predicates import (
    BELLY_UP,
    CHEST_RAISED,
    FLOOR_TOL,
    JOINT_SPHERE,
    LEAD,
    LIMB_RESTING,
    PREDICATES,
    REACH,
    TOUCH,
    check_pose,
    satisfies_pose,
)
from aims_lib.synth.pose_shift import REAL, SYNTHETIC, PoseShift, draw_contacts, shift_angles, widened
from aims_lib.synth.pose_solvers import (
    HAND_SPOTS,
    WRIST_LIMIT,
    contact_names,
    hands_to_body,
    lay_flat,
    plant_hands,
    reach_legs,
    rigid,
    tilt,
    untwist,
)
from aims_lib.synth.pose_specs import POSE_SPECS, Arm, Leg, Plant, PoseSpec, Range, Triple
from aims_lib.synth.props import Prop, bolster
from aims_lib.synth.self_intersection import INTERSECTION_FRACTION, self_intersecting
from aims_lib.taxonomy import FINE, parse_fine

__all__ = [
    "BATCH",
    "BELLY_UP",
    "CHEST_RAISED",
    "FLOOR_TOL",
    "HAND_SPOTS",
    "INTERSECTION_FRACTION",
    "J",
    "JOINT_SPHERE",
    "LEAD",
    "LIMB_RESTING",
    "MIRROR_PERM",
    "POSE_SPECS",
    "PREDICATES",
    "REACH",
    "REAL",
    "REGIONS",
    "SEGMENTS",
    "SYNTHETIC",
    "TOUCH",
    "WRIST_LIMIT",
    "Arm",
    "Leg",
    "Plant",
    "PoseBatch",
    "PoseShift",
    "PoseSpec",
    "Prop",
    "Range",
    "Triple",
    "check_pose",
    "limb_radii",
    "sample_poses",
    "satisfies_pose",
    "self_intersecting",
]


#: Samples posed together: bounds the memory of the skinning (its size per sample: docs/decisions.md, "measurements moved from docstrings, second part").
BATCH: Final[int] = 256


@dataclass
class PoseBatch:
    """Sampled poses with the placed body: SMPL parameters, vertices, joints and scene props.

    ``vertices``/``joints`` are the model's output for these parameters (joints include smplx's
    extra vertex joints after the 24 SMPL joints), already on the floor. ``tags`` name what the
    pose shift did to each sample (``"blend:<class>"``, ``"asymmetric"``, ``"contact:<spot>"``;
    none in the synthetic domain); ``drawn`` counts the candidates drawn per class, accepted or
    not (``len`` of the class's samples over it is the acceptance rate).
    """

    fine_labels: list[str]
    global_orient: np.ndarray  # (N, 3) axis-angle
    body_pose: np.ndarray  # (N, 69) axis-angle, joints 1..23
    transl: np.ndarray  # (N, 3)
    betas: np.ndarray  # (N, B)
    vertices: np.ndarray  # (N, V, 3)
    joints: np.ndarray  # (N, J, 3)
    props: list[list[Prop]] = field(default_factory=list)
    tags: list[tuple[str, ...]] = field(default_factory=list)
    drawn: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.fine_labels)


def _skin(info: BodyInfo, rots: np.ndarray, rest: np.ndarray, betas: np.ndarray, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named vertex regions (decimated, see :func:`~aims_lib.synth.body_facts.body_info`)
    posed by ``rots``."""
    idx = np.unique(np.concatenate([info.solve_regions[k] for k in names]))
    posed = skin(info.arrays, rots, rest, betas, idx)
    return {k: posed[:, np.searchsorted(idx, info.solve_regions[k])] for k in names}


@dataclass
class _Candidates:
    """One batch of placed candidates and whether their solved joints stayed within limits."""

    rots: np.ndarray
    transl: np.ndarray
    vertices: np.ndarray
    joints: np.ndarray
    props: list[list[Prop]]
    feasible: np.ndarray
    tags: list[list[str]]


def _candidates(
    label: str, spec: PoseSpec, shift: PoseShift, rng: np.random.Generator, betas: np.ndarray, info: BodyInfo
) -> _Candidates:
    """One batch of placed candidates of a pose variant of class ``label`` (not yet checked),
    drawn as ``shift`` says."""
    n = len(betas)
    rest = rest_joints(info.arrays, betas)
    angles, flipped = draw_angles(widened(spec, shift), rng, n)
    tags = shift_angles(label, angles, shift, rng)
    rots = angles_to_rotations(angles, flipped, rest)
    hands, spots = draw_contacts(spec, shift, rng, n)
    feasible = hands_to_body(rots, rest, hands, spots, shift.contacts, info)
    for i in np.flatnonzero(hands.any(1)):
        tags[i].append(f"contact:{shift.contacts[spots[i]]}")
    if spec.reach in ("knee", "foot"):
        feasible &= reach_legs(rots, rest, spec, info, rng)
    names = contact_names(spec)
    adjust = spec.plant or spec.hands_flat or spec.feet_flat or spec.shins_flat or spec.forearms_flat or spec.knees_down
    rounds = 2 if spec.untwist else 1 if adjust else 0
    flat = np.ones((n, 2), dtype=bool)
    # Limb solves need the floor found by the tilt and change what touches it, so each round of
    # them is followed by another tilt; untwisting four contacts needs the hands already flat.
    for round_ in range(rounds + 1):
        pts = _skin(info, rots, rest, betas, names)
        level = tilt(pts, spec, flipped)
        rots[:, 0] = level @ rots[:, 0]
        if round_ == rounds:
            break
        pts = {k: rigid(x, level, rest[:, 0]) for k, x in pts.items()}
        if round_ == 1:
            untwist(rots, rest, pts, spec)
        floor_y = np.min([pts[k][..., 1].min(1) for k in names if k != "body"], axis=0)
        if spec.plant and round_ == 0:
            reached, flat = plant_hands(rots, rest, floor_y, spec, info, rng)
            feasible &= reached
        feasible &= lay_flat(rots, rest, spec, flat, floor_y, info.knee_radius, rng)
    rots[:, 0] = rotation_about(EY, rng.uniform(0.0, 2 * np.pi, n)) @ rots[:, 0]
    v, jt = forward(info.arrays, rots, rest, betas)
    lo, hi = v.min(1), v.max(1)
    transl = -np.stack([0.5 * (lo[:, 0] + hi[:, 0]), lo[:, 1], 0.5 * (lo[:, 2] + hi[:, 2])], 1)
    v, jt = v + transl[:, None], jt + transl[:, None]
    props = [[bolster(v[i], jt[i], rng)] if spec.support else [] for i in range(n)]
    return _Candidates(rots, transl, v, jt, props, feasible, tags)


def _accept(label: str, c: _Candidates, model: Any) -> tuple[np.ndarray, dict[str, int]]:
    """Which candidates pass; also counts failures per reason for error messages."""
    checks = check_pose(label, c.joints, c.vertices, c.props)
    checks["feasible_joints"] = c.feasible
    checks["no_self_intersection"] = ~self_intersecting(model, c.joints, c.vertices)
    ok = np.all(list(checks.values()), axis=0)
    return ok, {k: int((~val).sum()) for k, val in checks.items() if (~val).any()}


def sample_poses(
    fine_labels: Sequence[str],
    rng: np.random.Generator,
    model: Any,
    betas: np.ndarray,
    max_rounds: int = 200,
    shift: PoseShift = SYNTHETIC,
) -> PoseBatch:
    """Sample one placed body per label (any spelling :func:`aims_lib.taxonomy.parse_fine`
    accepts); ``betas`` (N, B) are the shapes. Deterministic for a given ``rng`` state.
    ``shift`` is the domain's departure from the class tables (:mod:`~aims_lib.synth.pose_shift`:
    :data:`SYNTHETIC` draws the tables as they are, :data:`REAL` the real proxy's poses).

    Samples of one class are drawn together in batches of up to :data:`BATCH`: the solves pose
    only the contact regions, and the full mesh is skinned once per batch with the model's own
    blend skinning (the same vertices and joints as its smplx forward with the returned
    parameters). Candidates failing the predicates, the self-intersection test or joint limits
    are re-drawn, up to ``max_rounds`` times, after which a ``RuntimeError`` names the failing
    checks. 200 rounds: the real proxy's shift accepts as few as 1 in 10 candidates of Sitting
    w/ Arm Support for some bodies (``docs/pose_distributions.md``), which then fail 200 rounds
    with probability 0.9^200 < 1e-9; rounds after the first re-draw only the samples still
    missing, so a higher limit changes no batch that fewer rounds fill.
    """
    labels = [parse_fine(x) for x in fine_labels]
    betas = np.atleast_2d(np.asarray(betas, dtype=np.float64))
    n = len(labels)
    if betas.shape[0] != n:
        raise ValueError(f"betas has {betas.shape[0]} rows for {n} labels")
    info = body_info(model)
    components = info.arrays.shapedirs.shape[-1]
    if betas.shape[1] > components:
        raise ValueError(f"betas has {betas.shape[1]} columns; the model has {components} shape components")
    nv = model.v_template.shape[0]
    rots = np.zeros((n, NUM_JOINTS, 3, 3))
    transl = np.zeros((n, 3))
    verts = np.zeros((n, nv, 3), dtype=np.float32)
    joints: np.ndarray | None = None
    props: list[list[Prop]] = [[] for _ in range(n)]
    tags: list[tuple[str, ...]] = [() for _ in range(n)]
    drawn: dict[str, int] = {}
    for label in FINE:
        todo = [i for i, x in enumerate(labels) if x == label]
        failures: dict[str, int] = {}
        for _ in range(max_rounds):
            if not todo:
                break
            specs = POSE_SPECS[label]
            variant = rng.integers(len(specs), size=len(todo))
            accepted: list[int] = []
            for k, spec in enumerate(specs):
                chosen = [i for i, vk in zip(todo, variant) if vk == k]
                for start in range(0, len(chosen), BATCH):
                    sel = chosen[start : start + BATCH]
                    c = _candidates(label, spec, shift, rng, betas[sel], info)
                    drawn[label] = drawn.get(label, 0) + len(sel)
                    ok, fails = _accept(label, c, model)
                    for key, cnt in fails.items():
                        failures[key] = failures.get(key, 0) + cnt
                    if joints is None:
                        joints = np.zeros((n,) + c.joints.shape[1:], dtype=np.float32)
                    for pos in np.flatnonzero(ok):
                        i = sel[pos]
                        rots[i], transl[i], props[i] = c.rots[pos], c.transl[pos], c.props[pos]
                        verts[i], joints[i], tags[i] = c.vertices[pos], c.joints[pos], tuple(c.tags[pos])
                        accepted.append(i)
            done = set(accepted)
            todo = [i for i in todo if i not in done]
        if todo:
            raise RuntimeError(f"could not sample {len(todo)} {label!r} poses in {max_rounds} rounds; failures: {failures}")
    aa = matrix_to_rotvec(rots) if n else np.zeros((0, NUM_JOINTS, 3))
    return PoseBatch(
        fine_labels=labels,
        global_orient=aa[:, 0],
        body_pose=aa[:, 1:].reshape(n, -1),
        transl=transl,
        betas=betas,
        vertices=verts,
        joints=joints if joints is not None else np.zeros((0, NUM_JOINTS, 3), dtype=np.float32),
        props=props,
        tags=tags,
        drawn=drawn,
    )

