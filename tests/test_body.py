"""The procedural infant body, its SMPL pickle, the chumpy-free loader and COCO-17 keypoints."""

from __future__ import annotations

import hashlib
import pickle
import sys
import time

import numpy as np
import pytest
import scipy.sparse
import smplx
import torch
from scipy.sparse.csgraph import connected_components

from aims_lib import taxonomy as tx
from aims_lib.body import (
    JOINT_NAMES,
    LANDMARK_IDS,
    PARENTS,
    SHAPE_COMPONENTS,
    BodyModelFileError,
    body_forward,
    body_measurements,
    coco17_keypoints,
    load_body_model,
    procedural_arrays,
    vertex_parts,
    write_smpl_pickle,
)
from aims_lib.body import procedural
from aims_lib.body.__main__ import main as body_cli

J = {name: i for i, name in enumerate(JOINT_NAMES)}
HEAD = J["head"]


@pytest.fixture(scope="module")
def arrays() -> dict[str, np.ndarray]:
    return procedural_arrays()


@pytest.fixture(scope="module")
def rest(arrays) -> tuple[np.ndarray, np.ndarray]:
    """Template vertices and regressed joints of the mean body in the rest pose."""
    v = arrays["v_template"]
    return v, arrays["J_regressor"] @ v


def _winding_numbers(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Generalised winding number of each point (number of closed parts that contain it)."""
    out = []
    for p in points:
        a, b, c = (vertices[faces[:, k]] - p for k in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=1) for x in (a, b, c))
        det = np.einsum("ij,ij->i", a, np.cross(b, c))
        den = la * lb * lc + (a * b).sum(1) * lc + (b * c).sum(1) * la + (c * a).sum(1) * lb
        out.append(np.arctan2(det, den).sum() / (2 * np.pi))
    return np.asarray(out)


def test_cli_pickle_loads_unchanged_in_smplx_and_is_byte_identical(tmp_path):
    a, b = tmp_path / "a.pkl", tmp_path / "b.pkl"
    assert body_cli(["--out", str(a)]) == 0
    assert body_cli(["--out", str(b)]) == 0
    assert hashlib.sha256(a.read_bytes()).digest() == hashlib.sha256(b.read_bytes()).digest()
    with a.open("rb") as fh:
        raw = pickle.load(fh, encoding="latin1")
    assert all(type(v) is np.ndarray for v in raw.values())
    model = smplx.SMPL(model_path=str(a))
    out = model()
    assert out.vertices.shape == (1, 6890, 3)
    assert out.joints.shape[1] >= 24
    assert torch.isfinite(out.vertices).all()


class _Unpicklable:
    """An array element whose pickling fails: a write that dies half-way through the file."""

    def __reduce__(self):
        raise RuntimeError("simulated crash while writing")


def test_cli_writes_atomically(tmp_path, monkeypatch):
    out = tmp_path / "infant.pkl"
    assert body_cli(["--out", str(out)]) == 0
    good = out.read_bytes()
    broken = dict(procedural_arrays())
    broken["f"] = np.array([_Unpicklable()], dtype=object)  # "f" is written last
    monkeypatch.setattr("aims_lib.body.__main__.procedural_arrays", lambda: broken)
    with pytest.raises(RuntimeError, match="simulated crash"):
        body_cli(["--out", str(out)])
    assert out.read_bytes() == good  # the old file, never a half-written one
    assert sorted(p.name for p in tmp_path.iterdir()) == ["infant.pkl"]  # no temporary left


def test_two_builds_are_identical():
    first, second = procedural.smpl_arrays(), procedural.smpl_arrays()
    assert first.keys() == second.keys()
    for key in first:
        assert first[key].dtype == second[key].dtype
        assert first[key].tobytes() == second[key].tobytes(), key


def test_build_is_fast():
    start = time.perf_counter()
    procedural.smpl_arrays()
    assert time.perf_counter() - start < 2.0


def test_arrays_have_smpl_shapes(arrays):
    assert arrays["v_template"].shape == (6890, 3)
    assert arrays["shapedirs"].shape[:2] == (6890, 3) and arrays["shapedirs"].shape[2] >= 10
    assert arrays["posedirs"].shape == (6890, 3, 207)
    assert arrays["J_regressor"].shape == (24, 6890)
    assert arrays["weights"].shape == (6890, 24)
    assert arrays["kintree_table"].shape == (2, 24)
    assert list(arrays["kintree_table"][0][1:]) == list(PARENTS[1:])
    assert np.issubdtype(arrays["f"].dtype, np.integer) and arrays["f"].shape[1] == 3


def test_regressor_and_weights_are_convex_and_weights_blend(arrays):
    jr, w = arrays["J_regressor"], arrays["weights"]
    assert (jr >= 0).all() and np.allclose(jr.sum(1), 1.0)
    assert (w >= 0).all() and np.allclose(w.sum(1), 1.0)
    for joint in ("left_elbow", "right_knee", "left_shoulder", "neck"):
        blended = ((w[:, J[joint]] > 0.2) & (w[:, J[joint]] < 0.8)).sum()
        assert blended >= 10, f"no smooth blending around {joint}"


def test_faces_are_valid_closed_and_outward(arrays):
    v, f = arrays["v_template"], arrays["f"]
    assert f.min() == 0 and f.max() == len(v) - 1
    assert len(np.unique(f)) == len(v)  # every vertex is used
    tri = v[f]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    assert area.min() > 1e-9
    # every connected part is closed (each edge used exactly twice, in opposite directions)
    edges = np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]])
    directed = {tuple(e) for e in edges.tolist()}
    assert len(directed) == len(edges)
    assert all((b, a) in directed for a, b in directed)
    # and has a positive signed volume (outward normals)
    adjacency = scipy.sparse.coo_matrix((np.ones(len(edges)), (edges[:, 0], edges[:, 1])), shape=(len(v),) * 2)
    n_parts, label = connected_components(adjacency, directed=False)
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    volumes = np.bincount(label[f[:, 0]], weights=signed, minlength=n_parts)
    assert n_parts > 10 and (volumes > 0).all()


def test_joints_follow_the_smpl_layout_and_lie_inside_the_body(arrays, rest):
    v, joints = rest
    x, y, z = joints.T
    for name, i in J.items():
        if name.startswith("left_"):
            assert x[i] > 0.01 and np.isclose(x[J["right_" + name[5:]]], -x[i], atol=1e-6)
    assert y[J["left_hip"]] < y[J["pelvis"]] < y[J["spine1"]] < y[J["spine2"]] < y[J["spine3"]] < y[J["neck"]] < y[J["head"]]
    assert y[J["left_ankle"]] < y[J["left_knee"]] < y[J["left_hip"]]
    assert x[J["left_collar"]] < x[J["left_shoulder"]] < x[J["left_elbow"]] < x[J["left_wrist"]] < x[J["left_hand"]]
    assert z[J["left_foot"]] > z[J["left_ankle"]] + 0.02
    winding = _winding_numbers(joints, v, arrays["f"])
    assert (winding > 0.5).all(), [JOINT_NAMES[i] for i in np.flatnonzero(winding <= 0.5)]
    outside = _winding_numbers(np.array([[0.0, 0.0, 0.5], [0.5, 0.3, 0.0]]), v, arrays["f"])
    assert np.abs(outside).max() < 0.01


def test_landmarks_sit_on_the_right_body_parts(arrays, rest):
    v, joints = rest
    parts = vertex_parts(arrays["weights"])
    lm = {name: v[i] for name, i in LANDMARK_IDS.items()}
    for name in ("nose", "leye", "reye", "lear", "rear"):
        assert parts[LANDMARK_IDS[name]] == HEAD, name
    head = v[parts == HEAD]
    assert lm["nose"][2] == pytest.approx(head[:, 2].max())
    assert abs(lm["nose"][0]) < 1e-6
    assert lm["leye"][1] > lm["nose"][1] and lm["leye"][2] > lm["lear"][2] + 0.03
    for name, point in lm.items():
        left = name[0] in "lL"
        assert (point[0] > 0) == left, name
    for side, prefix in (("left", "l"), ("right", "r")):
        wrist, hand = joints[J[f"{side}_wrist"]], joints[J[f"{side}_hand"]]
        for finger in ("thumb", "index", "middle", "ring", "pinky"):
            tip = lm[prefix + finger]
            assert abs(tip[0]) > abs(wrist[0]) + 0.02, finger
            assert parts[LANDMARK_IDS[prefix + finger]] in (J[f"{side}_wrist"], J[f"{side}_hand"])
        assert abs(lm[prefix + "middle"][0]) > abs(hand[0])
        assert lm[prefix + "thumb"][2] > lm[prefix + "pinky"][2]  # palms down, thumbs forward
        ankle, cap = joints[J[f"{side}_ankle"]], prefix.upper()
        for toe in ("BigToe", "SmallToe"):
            assert lm[cap + toe][1] < ankle[1] and lm[cap + toe][2] > ankle[2] + 0.04, toe
        assert abs(lm[cap + "BigToe"][0]) < abs(lm[cap + "SmallToe"][0])  # big toe is medial
        assert lm[cap + "Heel"][1] < ankle[1] and lm[cap + "Heel"][2] < ankle[2]


def _stature_and_head_ratio(model, betas: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    m = body_measurements(model, betas)
    return m["stature"], m["head_ratio"]


def test_shape_space_spans_plausible_infants():
    k = len(SHAPE_COMPONENTS)
    model = load_body_model(num_betas=k)
    assert model.num_betas == k >= 10
    rng = np.random.default_rng(0)
    betas = rng.uniform(-2, 2, size=(32, k))
    betas[:4, :2] = [[2, 2], [2, -2], [-2, 2], [-2, -2]]
    stature, ratio = _stature_and_head_ratio(model, torch.tensor(betas, dtype=torch.float32))
    assert ((stature > 0.5) & (stature < 0.9)).all(), stature
    assert ((ratio > 0.2) & (ratio < 0.3)).all(), ratio
    mean_stature, mean_ratio = _stature_and_head_ratio(model, torch.zeros(1, k))
    assert mean_stature[0] == pytest.approx(0.70, abs=0.01)
    one = torch.eye(k)[:2]
    stature, ratio = _stature_and_head_ratio(model, one)
    assert stature[0] - mean_stature[0] == pytest.approx(0.05, abs=0.01)  # beta 0: one sd of stature
    assert ratio[1] > mean_ratio[0] + 0.005  # beta 1: bigger head


def test_shape_components_move_joints_with_the_mesh(arrays):
    jr, dirs = arrays["J_regressor"], arrays["shapedirs"]
    legs = [name for name, _ in SHAPE_COMPONENTS].index("legs")
    joint_shift = np.einsum("jv,vc->jc", jr, dirs[..., legs])
    assert joint_shift[J["left_ankle"], 1] < -0.005  # longer legs put the ankles lower
    assert abs(joint_shift[J["left_shoulder"], 1]) < 1e-3  # and leave the pelvis-centred arms alone


def test_posing_bends_only_the_posed_limb():
    model = load_body_model()
    rest = body_forward(model)
    pose = torch.zeros(1, 69)
    elbow = J["left_elbow"]
    pose[0, 3 * (elbow - 1) : 3 * elbow] = torch.tensor([0.0, -1.5, 0.0])
    bent = body_forward(model, body_pose=pose)
    moved = (bent.vertices - rest.vertices).norm(dim=-1)[0]
    left_tips = [LANDMARK_IDS[n] for n in ("lindex", "lthumb")]
    right_tips = [LANDMARK_IDS[n] for n in ("rindex", "rthumb")]
    assert (moved[left_tips] > 0.05).all() and (moved[right_tips] < 1e-6).all()
    assert moved[LANDMARK_IDS["nose"]] < 1e-6
    wrist = bent.joints[0, J["left_wrist"]] - bent.joints[0, elbow]
    forearm = rest.joints[0, J["left_wrist"]] - rest.joints[0, elbow]
    assert torch.dot(wrist, forearm) / forearm.norm() ** 2 < 0.2  # folded about 90 degrees
    assert moved.max() < 0.3


def test_coco17_keypoints_numpy_and_batched_torch(rest):
    v, joints = rest
    kp = coco17_keypoints(v, joints)
    assert kp.shape == (17, 3)
    assert np.allclose(kp[tx.NOSE], v[LANDMARK_IDS["nose"]])
    assert np.allclose(kp[tx.KEYPOINTS.index("left_eye")], v[LANDMARK_IDS["leye"]])
    assert np.allclose(kp[tx.KEYPOINTS.index("right_ear")], v[LANDMARK_IDS["rear"]])
    assert np.allclose(kp[tx.KEYPOINTS.index("left_wrist")], joints[J["left_wrist"]])
    assert np.allclose(kp[tx.KEYPOINTS.index("right_ankle")], joints[J["right_ankle"]])
    for a, b in tx.FLIP_PAIRS:  # left keypoints on +x, right ones on -x
        assert kp[a, 0] > 0 > kp[b, 0]
    model = load_body_model(batch_size=3)
    betas = torch.zeros(3, model.num_betas, requires_grad=True)
    out = body_forward(model, betas=betas)
    assert out.keypoints.shape == (3, 17, 3) and out.joints.shape == (3, 24, 3)
    normalised = tx.normalise_keypoints_3d(out.keypoints)
    assert torch.allclose(normalised[:, tx.NOSE].norm(dim=-1), torch.ones(3))
    normalised.sum().backward()
    assert betas.grad is not None and torch.isfinite(betas.grad).all()


def test_vertex_parts_from_model_or_weights(arrays):
    model = load_body_model()
    parts = vertex_parts(model)
    assert parts.shape == (6890,) and np.issubdtype(parts.dtype, np.integer)
    assert np.array_equal(parts, vertex_parts(arrays["weights"]))
    assert set(parts.tolist()) == set(range(24))  # every joint owns some skin
    assert parts[LANDMARK_IDS["LHeel"]] in (J["left_ankle"], J["left_foot"])


def test_num_betas_beyond_the_model_is_refused():
    with pytest.raises(ValueError, match="num_betas"):
        load_body_model(num_betas=len(SHAPE_COMPONENTS) + 1)


def test_procedural_body_keeps_all_its_shape_components_by_default():
    assert load_body_model().num_betas == len(SHAPE_COMPONENTS) == 14
    assert load_body_model(num_betas=10).num_betas == 10


# --- SMIL-format pickles without chumpy ---------------------------------------------------------


def test_smil_like_pickle_loads_without_chumpy(smil_like, arrays):
    path, shapedirs = smil_like
    model = load_body_model(path, num_betas=20)
    assert "chumpy" not in sys.modules
    assert model.num_betas == 20
    betas = torch.zeros(1, 20)
    betas[0, 15] = 1.0
    out = model(betas=betas)
    expected = arrays["v_template"] + shapedirs[..., 15]
    assert np.allclose(out.vertices[0].detach().numpy() - model.transl.detach().numpy(), expected, atol=1e-5)
    assert torch.allclose(model.posedirs, torch.zeros_like(model.posedirs))


def test_smil_like_file_keeps_every_shape_component_unless_asked_for_fewer(smil_like):
    path, _ = smil_like
    model = load_body_model(path)
    assert model.num_betas == 20 and tuple(model.shapedirs.shape) == (6890, 3, 20)
    assert body_forward(model, betas=torch.ones(2, 20)).vertices.shape == (2, 6890, 3)
    assert load_body_model(path, num_betas=12).num_betas == 12


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_template_with_non_finite_values_is_refused(tmp_path, arrays, bad):
    template = arrays["v_template"].copy()
    template[123, 1] = bad
    path = write_smpl_pickle({**arrays, "v_template": template}, tmp_path / "bad_template.pkl")
    with pytest.raises(BodyModelFileError, match=r"bad_template\.pkl: v_template has 1 non-finite value.*\[123, 1\]"):
        load_body_model(path)


def test_missing_file_is_named():
    with pytest.raises(FileNotFoundError, match="smil_web_missing.pkl"):
        load_body_model("/nonexistent/dir/smil_web_missing.pkl")


def test_pickle_without_smpl_keys_names_them(tmp_path, arrays):
    path = tmp_path / "broken.pkl"
    data = {k: v for k, v in arrays.items() if k not in ("weights", "f")}
    path.write_bytes(pickle.dumps(data))
    with pytest.raises(BodyModelFileError, match="weights, f"):
        load_body_model(path)
