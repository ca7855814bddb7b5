import pytest
import torch

from aims_lib import taxonomy
from aims_lib.hipc import HIPC, coarse_marginal, hierarchical_log_probs


def _inputs(b=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    kp = torch.randn(b, 17, 3, generator=g)
    coarse = torch.softmax(torch.randn(b, 4, generator=g), 1)
    return kp, coarse


def test_output_is_a_distribution_over_fine_classes():
    model = HIPC().eval()
    kp, coarse = _inputs()
    logp = model(kp, coarse)
    assert logp.shape == (6, 12)
    torch.testing.assert_close(logp.exp().sum(1), torch.ones(6))


GROUPS = torch.tensor(taxonomy.FINE_TO_COARSE_ID)
CHILDREN = torch.bincount(GROUPS, minlength=4).double()  # 4, 3, 3, 2


def test_zero_logits_give_the_image_branch_spread_over_each_parents_children():
    coarse = torch.tensor([[0.1, 0.2, 0.3, 0.4]], dtype=torch.float64)
    p = hierarchical_log_probs(torch.zeros(1, 12, dtype=torch.float64), coarse, GROUPS).exp()[0]
    torch.testing.assert_close(p, (coarse[0] / CHILDREN)[GROUPS])  # already normalised
    torch.testing.assert_close(p[:4], torch.full((4,), 0.025, dtype=torch.float64))
    torch.testing.assert_close(p[10:], torch.full((2,), 0.2, dtype=torch.float64))


def test_fine_scores_are_the_product_of_the_two_experts_and_follow_their_parent():
    logits = torch.tensor([[3.0, -1.0, 0.5, -2.0, 1.0, -4.0, 0.0, 2.0, -1.0, 0.3, -0.5, 1.5]], dtype=torch.float64)
    coarse = torch.tensor([[0.1, 0.2, 0.3, 0.4]], dtype=torch.float64)
    p = hierarchical_log_probs(logits, coarse, GROUPS).exp()[0]
    # hand-computed: p(f) proportional to p(c(f)) / n(c(f)) * exp(z_f)
    unnorm = (coarse[0] / CHILDREN)[GROUPS] * logits[0].exp()
    torch.testing.assert_close(p, unnorm / unnorm.sum())
    assert p.sum().item() == pytest.approx(1.0)
    # raising a parent's probability raises every child's score, whatever the sign of its
    # logit, and lowers every other fine class
    for c in range(4):
        raised = coarse.clone()
        raised[0, c] += 0.3
        raised /= raised.sum()
        p2 = hierarchical_log_probs(logits, raised, GROUPS).exp()[0]
        assert torch.all(p2[GROUPS == c] > p[GROUPS == c]) and torch.all(p2[GROUPS != c] < p[GROUPS != c])
    # zero probabilities are clamped, not -inf
    sure = hierarchical_log_probs(logits, torch.tensor([[0.0, 0.0, 0.0, 1.0]], dtype=torch.float64), GROUPS)
    assert torch.isfinite(sure).all() and sure.exp()[0, 10:].sum().item() == pytest.approx(1.0)


def test_strong_pose_evidence_overrides_a_weak_coarse_input():
    coarse = torch.tensor([[0.7, 0.2, 0.05, 0.05]])
    logits = torch.zeros(1, 12)
    logits[0, 8] = 6.0  # a child of parent 2, whose coarse probability is small but not zero
    logp = hierarchical_log_probs(logits, coarse, GROUPS)
    assert int(logp.argmax()) == 8
    marginal = coarse_marginal(logp.numpy())[0]
    assert marginal.argmax() == 2 and marginal[2] > 0.8  # the full model's coarse decision moves too
    # with a zero coarse probability the pose cannot win (1e-12 clamp)
    assert int(hierarchical_log_probs(logits, torch.tensor([[0.7, 0.3, 0.0, 0.0]]), GROUPS).argmax()) == 0


def test_the_gradient_depends_on_the_coarse_input():
    logits = torch.zeros(1, 12, requires_grad=True)
    grads = []
    for coarse in ([[0.25, 0.25, 0.25, 0.25]], [[0.7, 0.1, 0.1, 0.1]]):
        logits.grad = None
        torch.nn.functional.nll_loss(hierarchical_log_probs(logits, torch.tensor(coarse), GROUPS), torch.tensor([7])).backward()
        grads.append(logits.grad.clone())
    assert not torch.allclose(grads[0], grads[1])


def test_pose_branch_variant_needs_no_coarse_input_and_hierarchical_does():
    kp, coarse = _inputs()
    assert HIPC(hierarchical=False).eval()(kp).shape == (6, 12)
    with pytest.raises(ValueError, match="coarse_probs"):
        HIPC()(kp)
    with pytest.raises(ValueError, match=r"\(B, 17, 3\)"):
        HIPC()(kp[:, :10], coarse)


def test_tnet_starts_at_identity_and_gradients_flow():
    model = HIPC()
    kp, coarse = _inputs()
    torch.testing.assert_close(model.tnet(kp.transpose(1, 2)), torch.eye(3).expand(6, 3, 3))
    loss = torch.nn.functional.nll_loss(model(kp, coarse), torch.arange(6))
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


# ----------------------------------------------------------------------------- training

import math  # noqa: E402

import numpy as np  # noqa: E402

from aims_lib.hipc import (  # noqa: E402
    HIPCTrainConfig,
    coarse_of_fine,
    load_hipc,
    predict_hipc,
    random_rotations,
    save_hipc,
    train_hipc,
)

FAST = HIPCTrainConfig(epochs=15, batch_size=32, lr=3e-3, lr_step_epochs=10)


def _toy(n_per_class=12, seed=0, noise=0.05):
    """A separable problem: each fine class is a fixed random skeleton plus a little noise."""
    rng = np.random.default_rng(seed)
    protos = rng.normal(size=(taxonomy.NUM_FINE, 17, 3)).astype(np.float32)
    labels = np.repeat(np.arange(taxonomy.NUM_FINE), n_per_class)
    kp = protos[labels] + noise * rng.normal(size=(len(labels), 17, 3)).astype(np.float32)
    return kp, labels


def _image_coarse(n, seed=0):
    """Coarse probabilities of a near-chance image branch (N, 4)."""
    logits = np.random.default_rng(seed + 100).normal(scale=0.5, size=(n, 4))
    return np.exp(logits) / np.exp(logits).sum(1, keepdims=True)


def test_rotations_are_rotations_and_keep_norms():
    g = torch.Generator().manual_seed(0)
    R = random_rotations(64, "xyz", 180.0, g)
    torch.testing.assert_close(R @ R.transpose(1, 2), torch.eye(3).expand(64, 3, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(64), atol=1e-5, rtol=0)
    kp = torch.randn(64, 17, 3)
    rotated = kp @ R.transpose(1, 2)
    assert rotated.shape == kp.shape
    torch.testing.assert_close(rotated.norm(dim=2), kp.norm(dim=2), atol=1e-5, rtol=0)
    # about y only: the y coordinates stay, the angle stays within the bound
    Ry = random_rotations(64, "y", 30.0, g)
    torch.testing.assert_close(Ry[:, 1], torch.tensor([0.0, 1.0, 0.0]).expand(64, 3))
    assert (Ry[:, 0, 0] >= math.cos(math.radians(30.0)) - 1e-6).all()
    torch.testing.assert_close(random_rotations(3, "", 180.0), torch.eye(3).expand(3, 3, 3))
    with pytest.raises(ValueError, match="rotation_axes"):
        HIPCTrainConfig(rotation_axes="xw").validate()


@pytest.mark.parametrize("hierarchical", [False, True])
def test_training_learns_a_separable_toy_problem(hierarchical):
    kp, y = _toy()
    cfg = HIPCTrainConfig(**{**FAST.__dict__, "hierarchical": hierarchical, "rotation_axes": ""})
    coarse = _image_coarse(len(y)) if hierarchical else None  # uninformative: the pose must decide
    result = train_hipc(kp, y, cfg, coarse_probs=coarse, val_keypoints=kp, val_labels=y, val_coarse_probs=coarse)
    assert result.history[-1]["loss"] < 0.5 * result.history[0]["loss"]
    logp = predict_hipc(result.model, kp, coarse)
    assert (logp.argmax(1) == y).mean() > 0.9
    assert 1 <= result.best_epoch <= cfg.epochs and result.best_val_acc > 90
    assert result.n_train == len(y) and result.n_excluded == 0


def test_training_is_deterministic_with_a_seed():
    kp, y = _toy(n_per_class=4)
    coarse = _image_coarse(len(y))
    cfg = HIPCTrainConfig(epochs=2, batch_size=16, seed=3)
    a, b = train_hipc(kp, y, cfg, coarse), train_hipc(kp, y, cfg, coarse)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        torch.testing.assert_close(va, vb, rtol=0, atol=0, msg=k)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    c = train_hipc(kp, y, HIPCTrainConfig(epochs=2, batch_size=16, seed=4), coarse)
    assert c.history[0]["loss"] != a.history[0]["loss"]


def test_the_hierarchical_model_needs_the_image_branchs_coarse_probs():
    kp, y = _toy(n_per_class=2)
    cfg = HIPCTrainConfig(epochs=1, batch_size=8)
    with pytest.raises(ValueError, match="coarse_probs"):
        train_hipc(kp, y, cfg)
    with pytest.raises(ValueError, match="val_coarse_probs"):
        train_hipc(kp, y, cfg, _image_coarse(len(y)), val_keypoints=kp, val_labels=y)
    with pytest.raises(ValueError, match=r"coarse_probs must be \(24, 4\)"):
        train_hipc(kp, y, cfg, _image_coarse(len(y))[:, :3])


def test_failed_fits_are_excluded_from_training_and_fall_back_at_prediction():
    kp, y = _toy(n_per_class=4)
    kp[:5] = np.nan
    kp[5, 3, 1] = np.inf
    result = train_hipc(kp, y, HIPCTrainConfig(epochs=1, batch_size=16, hierarchical=True), _image_coarse(len(y)))
    assert result.n_excluded == 6 and result.n_train == len(y) - 6
    assert all(math.isfinite(h["loss"]) for h in result.history)
    coarse = np.tile([[0.1, 0.2, 0.6, 0.1]], (len(y), 1))
    logp = predict_hipc(result.model, kp, coarse)
    assert np.isfinite(logp).all()
    p = np.exp(logp[:6])
    groups = np.array(taxonomy.FINE_TO_COARSE_ID)
    for c in range(4):  # p(c) / n(c) for each child: the full model is the image branch
        np.testing.assert_allclose(p[:, groups == c], coarse[0, c] / (groups == c).sum(), rtol=1e-5)
    np.testing.assert_allclose(coarse_marginal(logp[:6]), coarse[:6], rtol=1e-5)
    assert not np.allclose(coarse_marginal(logp[6:]), coarse[6:])  # fitted rows: the pose has a say
    assert taxonomy.FINE_TO_COARSE_ID[int(p[0].argmax())] == 2
    pose = train_hipc(kp, y, HIPCTrainConfig(epochs=1, batch_size=16, hierarchical=False))
    np.testing.assert_allclose(np.exp(predict_hipc(pose.model, kp[:6])), 1 / 12, rtol=1e-5)
    with pytest.raises(ValueError, match="at least 2"):
        train_hipc(np.full((4, 17, 3), np.nan, np.float32), y[:4], coarse_probs=coarse[:4])


def test_pose_branch_coarse_is_the_parent_of_its_fine_prediction():
    fine = np.array([0, 3, 4, 6, 7, 9, 10, 11])
    assert coarse_of_fine(fine).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]


def test_save_and_load_give_the_same_predictions(tmp_path):
    kp, y = _toy(n_per_class=3)
    result = train_hipc(kp, y, HIPCTrainConfig(epochs=1, batch_size=16), _image_coarse(len(y)))
    path = save_hipc(tmp_path / "hipc.pt", result, extra={"source": "toy"})
    model = load_hipc(path)
    coarse = np.full((len(y), 4), 0.25)
    np.testing.assert_array_equal(predict_hipc(model, kp, coarse), predict_hipc(result.model, kp, coarse))
    assert model.hierarchical and model.checkpoint_info["extra"] == {"source": "toy"}
    assert model.checkpoint_info["config"]["epochs"] == 1
    with pytest.raises(ValueError, match="coarse_probs"):
        predict_hipc(model, kp)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="bad.pt: not a readable weights file"):
        load_hipc(tmp_path / "bad.pt")
    torch.save({"format": "something else", "state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt: not a HIPC checkpoint"):
        load_hipc(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError):
        load_hipc(tmp_path / "missing.pt")


def test_cpu_threads_are_pinned_and_restored():
    import torch

    from aims_lib.threads import cpu_threads

    before = torch.get_num_threads()
    with cpu_threads(1, "cpu"):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), cpu_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before
    with cpu_threads(None):
        assert torch.get_num_threads() == before
