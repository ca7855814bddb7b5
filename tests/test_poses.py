"""The AIMS pose sampler: every class meets its geometric predicates, rests on the floor without
gross self-intersection, is told apart from the other classes, and is reproducible."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aims_lib.body import DEFAULT_BETAS, load_body_model
from aims_lib.synth.poses import (
    FLOOR_TOL,
    POSE_SPECS,
    PoseBatch,
    Prop,
    check_pose,
    sample_poses,
    satisfies_pose,
    self_intersecting,
)
from aims_lib.taxonomy import COARSE, FINE, FINE_TO_COARSE, LabelError

PER_CLASS = 200


@pytest.fixture(scope="module")
def model():
    return load_body_model(num_betas=DEFAULT_BETAS)


def _betas(rng: np.random.Generator, n: int, num_betas: int) -> np.ndarray:
    return np.clip(rng.normal(size=(n, num_betas)), -2.0, 2.0)


@pytest.fixture(scope="module")
def batch(model) -> PoseBatch:
    rng = np.random.default_rng(0)
    labels = [label for label in FINE for _ in range(PER_CLASS)]
    return sample_poses(labels, rng, model, _betas(rng, len(labels), model.num_betas))


def _rows(batch: PoseBatch, label: str) -> np.ndarray:
    return np.flatnonzero(np.asarray(batch.fine_labels) == label)


def _props(batch: PoseBatch, rows: np.ndarray) -> list[list[Prop]]:
    return [batch.props[i] for i in rows]


def test_table_covers_every_class() -> None:
    assert set(POSE_SPECS) == set(FINE)


def test_batch_layout(batch: PoseBatch, model) -> None:
    n = len(FINE) * PER_CLASS
    assert len(batch) == n
    assert batch.global_orient.shape == (n, 3)
    assert batch.body_pose.shape == (n, 69)
    assert batch.transl.shape == (n, 3)
    assert batch.betas.shape == (n, model.num_betas)
    assert batch.vertices.shape == (n, model.v_template.shape[0], 3)
    assert batch.joints.shape[:1] == (n,) and batch.joints.shape[1] >= 24
    assert len(batch.props) == n
    assert np.isfinite(batch.vertices).all() and np.isfinite(batch.body_pose).all()


@pytest.mark.parametrize("label", FINE)
def test_every_sample_meets_its_class(batch: PoseBatch, label: str) -> None:
    rows = _rows(batch, label)
    checks = check_pose(label, batch.joints[rows], batch.vertices[rows], _props(batch, rows))
    failing = {name: int((~ok).sum()) for name, ok in checks.items() if not ok.all()}
    assert not failing, f"{label}: samples failing predicates {failing}"


def test_bodies_rest_on_the_floor_centred(batch: PoseBatch) -> None:
    lowest = batch.vertices[..., 1].min(axis=1)
    assert np.abs(lowest).max() <= FLOOR_TOL  # touches y = 0, nothing below it
    lo, hi = batch.vertices.min(axis=1), batch.vertices.max(axis=1)
    np.testing.assert_allclose(0.5 * (lo + hi)[:, [0, 2]], 0.0, atol=1e-5)


def test_yaw_is_spread_over_the_floor_plane(batch: PoseBatch) -> None:
    left = batch.joints[:, 16] - batch.joints[:, 17]
    heading = np.degrees(np.arctan2(left[:, 0], left[:, 2]))
    counts, _ = np.histogram(heading, bins=8, range=(-180, 180))
    assert counts.min() > 0.5 * len(heading) / 8


def test_no_gross_self_intersection(batch: PoseBatch, model) -> None:
    bad = self_intersecting(model, batch.joints, batch.vertices)
    assert not bad.any(), f"{int(bad.sum())} self-intersecting samples: {np.asarray(batch.fine_labels)[bad][:5]}"


def test_self_intersection_check_detects_a_hand_in_the_head(batch: PoseBatch, model) -> None:
    i = _rows(batch, "Standing")[0]
    joints, vertices = batch.joints[i : i + 1].copy(), batch.vertices[i : i + 1]
    head_centre = vertices[0][model.lbs_weights.numpy().argmax(1) == 15].mean(0)
    joints[0, 20], joints[0, 22] = head_centre, head_centre + [0.0, 0.01, 0.0]  # left wrist, hand
    assert self_intersecting(model, joints, vertices)[0]


def test_parameters_reproduce_the_mesh(batch: PoseBatch, model) -> None:
    rows = np.concatenate([_rows(batch, label)[:4] for label in FINE])
    t = lambda x: torch.as_tensor(x[rows], dtype=torch.float32)  # noqa: E731
    with torch.no_grad():
        out = model(betas=t(batch.betas), global_orient=t(batch.global_orient), body_pose=t(batch.body_pose), transl=t(batch.transl))
    np.testing.assert_allclose(out.vertices.numpy(), batch.vertices[rows], atol=1e-4)
    np.testing.assert_allclose(out.joints.numpy(), batch.joints[rows], atol=1e-4)


def test_predicates_tell_the_classes_apart(batch: PoseBatch) -> None:
    """A sample of one class meets no other class's predicates (supine is not prone, standing is
    not sitting, kneeling is not crawling, ...)."""
    overlaps = {}
    for label in FINE:
        rows = _rows(batch, label)[: PER_CLASS // 2]  # half the samples keep the test quick
        for other in FINE:
            if other != label:
                hits = satisfies_pose(other, batch.joints[rows], batch.vertices[rows], _props(batch, rows))
                if hits.any():
                    overlaps[(label, other)] = int(hits.sum())
    across = {k: c for k, c in overlaps.items() if FINE_TO_COARSE[k[0]] != FINE_TO_COARSE[k[1]]}
    assert not across, f"samples meeting a class of another coarse posture: {across}"
    assert all(c <= 0.01 * PER_CLASS for c in overlaps.values()), overlaps


def test_single_sample_api(batch: PoseBatch) -> None:
    i = _rows(batch, "Supine Lying")[0]
    checks = check_pose("supine lying", batch.joints[i], batch.vertices[i])
    assert all(isinstance(v, bool) for v in checks.values()) and all(checks.values())
    assert satisfies_pose("Supine Lying", batch.joints[i], batch.vertices[i]) is True
    assert check_pose("Prone Lying", batch.joints[i], batch.vertices[i])["faces_down"] is False
    j = _rows(batch, "Standing")[0]
    assert not satisfies_pose("Sitting w/o Support", batch.joints[j], batch.vertices[j])


def test_support_bolster(batch: PoseBatch) -> None:
    for label in FINE:
        for i in _rows(batch, label):
            assert len(batch.props[i]) == (1 if label == "Sitting w/ Support" else 0)
    for i in _rows(batch, "Sitting w/ Support")[:20]:
        prop = batch.props[i][0]
        mesh = prop.world_mesh()
        assert mesh.is_watertight and prop.transform.shape == (4, 4)
        assert abs(mesh.vertices[:, 1].min()) < 1e-6  # lies on the floor
        assert all(0.0 <= c <= 1.0 for c in prop.color)
    # Without its support the same body is not "Sitting w/ Support".
    i = _rows(batch, "Sitting w/ Support")[0]
    assert not satisfies_pose("Sitting w/ Support", batch.joints[i], batch.vertices[i])


def test_deterministic_for_a_seed(model) -> None:
    labels = [label for label in FINE for _ in range(2)]

    def run() -> PoseBatch:
        rng = np.random.default_rng(7)
        return sample_poses(labels, rng, model, _betas(rng, len(labels), model.num_betas))

    a, b = run(), run()
    for name in ("global_orient", "body_pose", "transl", "betas", "vertices", "joints"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert [[p.capsule[2] for p in ps] for ps in a.props] == [[p.capsule[2] for p in ps] for ps in b.props]


def test_lenient_and_unknown_labels(model) -> None:
    rng = np.random.default_rng(1)
    out = sample_poses(["sitting_with_support", "FOUR POINT KNEEING"], rng, model, np.zeros((2, model.num_betas)))
    assert out.fine_labels == ["Sitting w/ Support", "Four-Point Kneeling"]
    with pytest.raises(LabelError, match="unknown fine label 'Cartwheel'"):
        sample_poses(["Cartwheel"], rng, model, np.zeros((1, model.num_betas)))
    with pytest.raises(LabelError):
        check_pose("Cartwheel", np.zeros((24, 3)), np.zeros((10, 3)))
    with pytest.raises(ValueError, match="betas"):
        sample_poses(["Standing"], rng, model, np.zeros((3, model.num_betas)))


def test_every_coarse_posture_is_sampled(batch: PoseBatch) -> None:
    assert {FINE_TO_COARSE[x] for x in batch.fine_labels} == set(COARSE)
