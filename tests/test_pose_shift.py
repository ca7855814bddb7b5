"""The pose distribution of a domain (``aims_lib.synth.pose_shift``): the synthetic domain is
today's sampler to the bit, the real proxy's poses are wider, more asymmetric, blended towards
neighbouring classes and touch the body, and still meet their class's predicates."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from aims_lib.body import DEFAULT_BETAS, load_body_model
from aims_lib.body.kinematics import forward_kinematics, rest_joints
from aims_lib.body.rotations import unit
from aims_lib.body.skeleton import JOINT_INDEX as J
from aims_lib.synth.body_facts import SEGMENT_INDEX, body_info, torso_axes
from aims_lib.synth.pose_angles import angles_to_rotations, draw_angles
from aims_lib.synth.domains import DOMAIN_SETTINGS
from aims_lib.synth.pose_shift import NEIGHBOURS, REAL, SYNTHETIC, PoseShift, free_hands, widened
from aims_lib.synth.pose_solvers import hands_to_body
from aims_lib.synth.poses import POSE_SPECS, PoseBatch, check_pose, sample_poses, self_intersecting
from aims_lib.taxonomy import FINE

PER_CLASS = 16


@pytest.fixture(scope="module")
def model():
    return load_body_model(num_betas=DEFAULT_BETAS)


def _sample(model, shift: PoseShift, per_class: int, seed: int) -> PoseBatch:
    rng = np.random.default_rng(seed)
    labels = [label for label in FINE for _ in range(per_class)]
    betas = np.clip(rng.normal(0.0, 1.0, (len(labels), model.num_betas)), -2.0, 2.0)
    return sample_poses(labels, rng, model, betas, shift=shift)


@pytest.fixture(scope="module")
def real(model) -> PoseBatch:
    return _sample(model, REAL, PER_CLASS, 11)


@pytest.fixture(scope="module")
def synthetic(model) -> PoseBatch:
    return _sample(model, SYNTHETIC, PER_CLASS, 11)


def _digest(batch: PoseBatch) -> str:
    h = hashlib.sha256()
    for name in ("global_orient", "body_pose", "transl", "joints"):
        h.update(np.round(np.asarray(getattr(batch, name), np.float64), 4).tobytes())
    h.update(repr([[round(float(p.capsule[2]), 4) for p in ps] for ps in batch.props]).encode())
    return h.hexdigest()


def test_synthetic_is_the_sampler_before_the_shift(model) -> None:
    """Digest and next random number computed on the sampler before pose shifts existed
    (commit 4d894f2): the synthetic domain draws the same numbers and makes the same poses."""
    for kwargs in ({}, {"shift": SYNTHETIC}):
        rng = np.random.default_rng(2025)
        labels = [label for label in FINE for _ in range(3)]
        betas = np.clip(rng.normal(0, 1, (len(labels), model.num_betas)), -2, 2)
        out = sample_poses(labels, rng, model, betas, **kwargs)
        assert _digest(out) == "18b93ef310e75237774fa6574fad7a8f66a941f1f1354fccf9c689b9960bfd75"
        assert rng.integers(2**62) == 579401677815204382
        assert out.tags == [()] * len(labels)


def test_synthetic_widens_nothing() -> None:
    for specs in POSE_SPECS.values():
        for spec in specs:
            assert widened(spec, SYNTHETIC) == spec
    assert {d: s.pose for d, s in DOMAIN_SETTINGS.items()} == {"synthetic": SYNTHETIC, "real": REAL}


def test_widening_by_hand() -> None:
    """w = fraction * (hi - lo) + degrees on each side; hinges stop at their limits, the head
    takes head_deg more; orientation is left alone."""
    spec = POSE_SPECS["Standing"][0]
    w = widened(spec, PoseShift(widen_fraction=0.5, widen_deg=2.0, head_deg=10.0))
    assert w.leg.flex == pytest.approx((-5.0 - 10.5, 12.0 + 10.5))  # width 17: 8.5 + 2
    assert w.leg.knee == pytest.approx((0.0, 20.0))  # (0, 12): no hyperextension below 0
    assert w.spine[0] == pytest.approx((-3.0 - 5.0, 3.0 + 5.0))
    assert w.head[1] == pytest.approx((-30.0 - 42.0, 30.0 + 42.0))  # 30 + 2 + 10
    assert w.neck[0] == pytest.approx((-5.0 - 17.0, 5.0 + 17.0))
    assert w.arm[0].elbow == pytest.approx((50.0 - 32.0, 110.0 + 32.0))  # guard arms: width 60
    assert (w.pitch, w.roll, w.contacts) == (spec.pitch, spec.roll, spec.contacts)


def test_real_samples_meet_their_class(real: PoseBatch, model) -> None:
    labels = np.asarray(real.fine_labels)
    for label in FINE:
        rows = np.flatnonzero(labels == label)
        checks = check_pose(label, real.joints[rows], real.vertices[rows], [real.props[i] for i in rows])
        failing = {name: int((~ok).sum()) for name, ok in checks.items() if not ok.all()}
        assert not failing, f"{label}: {failing}"
        assert real.drawn[label] >= PER_CLASS
    assert not self_intersecting(model, real.joints, real.vertices).any()


def test_real_tags_follow_the_settings(real: PoseBatch) -> None:
    """Blends name a neighbouring class, contacts happen only where the class leaves the hands
    free, and every kind of variation is among the accepted samples."""
    kinds = {"blend": 0, "asymmetric": 0, "contact": 0}
    for label, tags in zip(real.fine_labels, real.tags):
        for tag in tags:
            kind, _, what = tag.partition(":")
            kinds[kind] += 1
            if kind == "blend":
                assert what in NEIGHBOURS[label]
            if kind == "contact":
                assert what in REAL.contacts and free_hands(POSE_SPECS[label][0])
    assert all(count > 0 for count in kinds.values()), kinds


def _limb_angles(joints: np.ndarray) -> list[np.ndarray]:
    """Left and right (N, 2) angles in degrees: shoulder and hip (the bone to the torso's down
    axis), elbow and knee (at the joint)."""
    down = -torso_axes(joints)[0]
    angle = lambda u, v: np.degrees(np.arccos(np.clip(np.sum(unit(u) * unit(v), -1), -1.0, 1.0)))  # noqa: E731
    out = []
    for left, right in (((16, 18), (17, 19)), ((1, 4), (2, 5)), ((16, 18, 20), (17, 19, 21)), ((1, 4, 7), (2, 5, 8))):
        sides = []
        for j in (left, right):
            if len(j) == 2:
                sides.append(angle(joints[:, j[1]] - joints[:, j[0]], down))
            else:
                sides.append(angle(joints[:, j[0]] - joints[:, j[1]], joints[:, j[2]] - joints[:, j[1]]))
        out.append(np.stack(sides, 1))
    return out


def test_real_is_wider_and_more_asymmetric(real: PoseBatch, synthetic: PoseBatch) -> None:
    """Shoulder, hip, elbow and knee angles of the same classes, same seed: the real proxy's
    left-right difference and spread within a class are larger, averaged over classes and
    joints (measured at 200 a class: 21.1 -> 24.1 and 17.8 -> 20.9 degrees)."""
    stats = {}
    for name, batch in (("synthetic", synthetic), ("real", real)):
        labels = np.asarray(batch.fine_labels)
        lr, sd = [], []
        for angles in _limb_angles(batch.joints):
            for label in FINE:
                x = angles[labels == label]
                lr.append(np.abs(x[:, 0] - x[:, 1]).mean())
                sd.append(x.std())
        stats[name] = (np.mean(lr), np.mean(sd))
    assert stats["real"][0] > 1.05 * stats["synthetic"][0], stats
    assert stats["real"][1] > 1.08 * stats["synthetic"][1], stats


def test_real_is_deterministic(model, real: PoseBatch) -> None:
    again = _sample(model, REAL, PER_CLASS, 11)
    for name in ("global_orient", "body_pose", "transl", "joints"):
        np.testing.assert_array_equal(getattr(again, name), getattr(real, name))
    assert again.tags == real.tags and again.drawn == real.drawn


def test_hand_reaches_the_mouth_and_the_other_arm_stays(model) -> None:
    info = body_info(model)
    rng = np.random.default_rng(3)
    n = 20
    rest = rest_joints(info.arrays, np.zeros((n, model.num_betas)))
    angles, flip = draw_angles(POSE_SPECS["Sitting w/o Support"][0], rng, n)
    rots = angles_to_rotations(angles, flip, rest)
    before = rots.copy()
    hands = np.zeros((n, 2), dtype=bool)
    hands[:, 0] = True
    ok = hands_to_body(rots, rest, hands, np.zeros(n, dtype=np.int64), ("mouth",), info)
    assert ok.all()
    g, p = forward_kinematics(rots, rest)
    surface = info.radii[SEGMENT_INDEX["head"]] + info.radii[SEGMENT_INDEX["hand_l"]]
    target = p[:, J["head"]] + g[:, J["head"], :, 2] * surface  # the head's posed front axis
    assert np.linalg.norm(p[:, J["left_hand"]] - target, axis=-1).max() < 0.01  # metres
    right = [J[f"right_{k}"] for k in ("collar", "shoulder", "elbow", "wrist", "hand")]
    np.testing.assert_array_equal(rots[:, right], before[:, right])
    np.testing.assert_array_equal(rots[:, J["left_wrist"]], before[:, J["left_wrist"]])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"blend_share": 1.5}, "blend_share"),
        ({"asymmetric_share": -0.1}, "asymmetric_share"),
        ({"widen_deg": -1.0}, "widen_deg"),
        ({"head_deg": float("nan")}, "head_deg"),
        ({"widen_fraction": float("inf")}, "widen_fraction"),
        ({"blend_weight": (0.5, 0.2)}, "blend_weight"),
        ({"blend_weight": (0.1, 0.2, 0.3)}, "blend_weight"),
        ({"contacts": ("ear",)}, "contacts"),
        ({"contact_share": 0.3}, "contacts"),
    ],
)
def test_bad_settings_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=f"PoseShift.{field}"):
        PoseShift(**kwargs)
