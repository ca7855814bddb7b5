"""Numerics of the domain-adaptation losses on hand-computed cases, and the registry."""

import math

import pytest
import torch
from torch import nn

from aims_lib.adaptation import METHODS, AdaptationBatch, DomainAdaptation, build_method, get_method
from aims_lib.adaptation.adversarial import domain_adversarial_loss, reverse_gradient
from aims_lib.adaptation.cdan import CDANLoss, entropy_weights, multilinear_map
from aims_lib.adaptation.dan import MMDLoss, mmd_loss
from aims_lib.adaptation.dann import DANNLoss
from aims_lib.adaptation.kernels import gaussian_kernel
from aims_lib.adaptation.lmmd import LMMDLoss, lmmd_loss
from aims_lib.adaptation.mcc import MCCLoss, mcc_loss
from aims_lib.adaptation.schedule import grl_coefficient, ramp_factor, sigmoid_ramp

F64 = torch.float64


def softplus(x: float) -> float:
    """BCE of logit x against label 1 is softplus(-x); against label 0, softplus(x)."""
    return math.log1p(math.exp(x))


def k5(d2: float, mean_d2: float) -> float:
    """The default kernel's value at squared distance d2: 5 Gaussians at mean_d2 * 2**(m - 2)."""
    return sum(math.exp(-d2 / (mean_d2 * 2.0 ** (m - 2))) for m in range(5))


def _batch(n_s=6, n_t=5, c=4, d=8, seed=0, dtype=F64, grad=True):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n_s, d, generator=g, dtype=dtype).requires_grad_(grad)
    xt = (torch.randn(n_t, d, generator=g, dtype=dtype) + 0.5).requires_grad_(grad)
    zs = torch.randn(n_s, c, generator=g, dtype=dtype).requires_grad_(grad)
    zt = torch.randn(n_t, c, generator=g, dtype=dtype).requires_grad_(grad)
    ys = torch.randint(0, c, (n_s,), generator=g)
    return AdaptationBatch(xs, xt, zs, zt, ys, torch.softmax(zt, 1).detach(), progress=0.5)


# --- MMD (DAN) ---------------------------------------------------------------------------------

def test_mmd_of_identical_batches_is_zero():
    b = _batch(8, 8, grad=False)
    assert abs(mmd_loss(b.source_features, b.source_features.clone()).item()) < 1e-12


def test_mmd_of_two_points_does_not_depend_on_their_distance():
    # joint batch {0, a}: mean squared distance a^2, so k(0, a) = sum_m exp(-a^2 / (a^2 2^(m-2)))
    expected = 10.0 - 2.0 * sum(math.exp(-(2.0 ** (2 - m))) for m in range(5))
    for a in (0.5, 3.0):
        got = mmd_loss(torch.tensor([[0.0]], dtype=F64), torch.tensor([[a]], dtype=F64))
        assert got.item() == pytest.approx(expected, rel=1e-12)


def test_mmd_of_a_shifted_batch_matches_the_closed_form():
    # source {0, 1}, target {2, 3}: ordered distinct pairs sum 2 * (1+4+9+1+4+1) = 40 over 12
    xs, xt = torch.tensor([[0.0], [1.0]], dtype=F64), torch.tensor([[2.0], [3.0]], dtype=F64)
    k = lambda d2: k5(d2, 40 / 12)  # noqa: E731
    expected = (k(0) + k(1)) / 2 + (k(0) + k(1)) / 2 - 2 * (k(4) + k(9) + k(1) + k(4)) / 4
    assert mmd_loss(xs, xt).item() == pytest.approx(expected, rel=1e-12)
    assert MMDLoss()(xs, xt).item() == pytest.approx(expected, rel=1e-12)


def test_injected_linear_kernel_gives_the_distance_of_the_means():
    b = _batch(grad=False)
    linear = lambda x: x @ x.T  # noqa: E731
    expected = (b.source_features.mean(0) - b.target_features.mean(0)).square().sum()
    assert MMDLoss(kernel=linear).adaptation_loss(b).item() == pytest.approx(expected.item(), rel=1e-12)
    # LMMD with the same kernel: the class-wise distance of the weighted means, averaged over classes
    ys = torch.tensor([0, 0, 1, 1, 1, 0])
    pt = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.7, 0.3], [0.4, 0.6], [0.5, 0.5]], dtype=F64)  # argmax: both classes
    xs, xt = b.source_features, b.target_features
    per_class = [(xs[ys == c].mean(0) - (pt[:, c, None] * xt).sum(0) / pt[:, c].sum()).square().sum() for c in (0, 1)]
    assert LMMDLoss(2, kernel=linear)(xs, xt, ys, pt).item() == pytest.approx(sum(per_class).item() / 2, rel=1e-12)


def test_lmmd_with_one_class_is_mmd():
    b = _batch(grad=False)
    one = lmmd_loss(b.source_features, b.target_features, torch.zeros(6, dtype=torch.long), torch.ones(5, 1, dtype=F64), 1)
    assert one.item() == pytest.approx(mmd_loss(b.source_features, b.target_features).item(), rel=1e-10)


def test_the_kernels_of_mmd_and_lmmd_are_one_function():
    x = torch.tensor([[0.0], [3.0]], dtype=F64)  # d2 = 9
    assert gaussian_kernel(x)[0, 1].item() == pytest.approx(k5(9.0, 9.0), rel=1e-12)


# --- gradient reversal, DANN ------------------------------------------------------------------

@pytest.mark.parametrize("coefficient", [1.0, 0.25])
def test_gradient_reversal_flips_the_sign_exactly(coefficient):
    x = torch.randn(5, 3, dtype=F64, requires_grad=True)
    w = torch.randn(5, 3, dtype=F64)
    y = reverse_gradient(x, coefficient)
    (y * w).sum().backward()
    assert torch.equal(y, x) and torch.equal(x.grad, -coefficient * w)


def test_dann_schedule():
    assert grl_coefficient(0.0) == 0.0
    assert grl_coefficient(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert grl_coefficient(1.0) == pytest.approx(2 / (1 + math.exp(-10)) - 1)
    assert sigmoid_ramp(1.0) == pytest.approx(0.4621171572600098)
    assert ramp_factor("dsan", 0.5, 0) == grl_coefficient(0.5)  # DSAN's ramp is DANN's schedule
    with pytest.raises(ValueError, match="ramp must be one of none, dsan, deepda, got 'linear'"):
        ramp_factor("linear", 0.5, 0)


def _identity_discriminator() -> nn.Linear:
    """Domain logit = the 1-d feature itself."""
    d = nn.Linear(1, 1, bias=False).double()
    nn.init.ones_(d.weight)
    return d


def test_dann_loss_hand_computed_with_reversed_feature_gradients():
    xs = torch.tensor([[1.0], [-2.0]], dtype=F64, requires_grad=True)
    xt = torch.tensor([[0.5]], dtype=F64, requires_grad=True)
    dann = DANNLoss(1, discriminator=_identity_discriminator())
    loss = dann(xs, xt, progress=1.0)
    expected = 0.5 * ((softplus(-1.0) + softplus(2.0)) / 2 + softplus(0.5))
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    loss.backward()
    c = grl_coefficient(1.0)
    sigmoid = lambda v: 1 / (1 + math.exp(-v))  # noqa: E731
    # d loss / d x without reversal: source -(1 - sigmoid(x)) / 4, target sigmoid(x) / 2
    assert xs.grad[:, 0].tolist() == pytest.approx([c * (1 - sigmoid(1.0)) / 4, c * (1 - sigmoid(-2.0)) / 4], rel=1e-12)
    assert xt.grad[0, 0].item() == pytest.approx(-c * sigmoid(0.5) / 2, rel=1e-12)
    # the discriminator descends its own loss: d loss / d w = sum over rows of (d loss / d logit) * x
    w_grad = -(1 - sigmoid(1.0)) / 4 * 1.0 - (1 - sigmoid(-2.0)) / 4 * -2.0 + sigmoid(0.5) / 2 * 0.5
    assert dann.discriminator.weight.grad.item() == pytest.approx(w_grad, rel=1e-12)


def test_dann_features_learn_nothing_at_the_start():
    b = _batch()
    dann = DANNLoss(8).double()
    dann(b.source_features, b.target_features, progress=0.0).backward()
    assert torch.equal(b.source_features.grad, torch.zeros_like(b.source_features))
    assert dann.discriminator[0].weight.grad.abs().sum() > 0


def test_an_undecided_discriminator_gives_log_2():
    d = torch.zeros(3, dtype=F64)
    assert domain_adversarial_loss(d, d[:2]).item() == pytest.approx(math.log(2), rel=1e-12)
    assert domain_adversarial_loss(d, d[:2], torch.tensor([1.0, 2.0, 3.0], dtype=F64)).item() == pytest.approx(math.log(2))


def test_a_discriminator_with_the_wrong_output_is_named():
    b = _batch(grad=False)
    with pytest.raises(ValueError, match=r"one logit per row: 11 rows gave shape \(11, 2\)"):
        DANNLoss(8, discriminator=nn.Linear(8, 2).double())(b.source_features, b.target_features, 0.5)


# --- CDAN+E -----------------------------------------------------------------------------------

def test_multilinear_map_and_entropy_weights():
    h = multilinear_map(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.25, 0.75]]))
    assert h.tolist() == [[0.25, 0.5, 0.75, 1.5]]
    w = entropy_weights(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25]], dtype=F64))
    assert w.tolist() == pytest.approx([2.0, 1.25], rel=1e-12)  # certain: 1 + e^0; uniform: 1 + 1/C


def test_cdan_loss_hand_computed():
    # discriminator = sum of its inputs; sum(f x g) = sum(f) since g sums to 1: the logit is the 1-d feature
    disc = nn.Linear(2, 1, bias=False).double()
    nn.init.ones_(disc.weight)
    xs = torch.tensor([[1.0], [2.0]], dtype=F64)
    xt = torch.tensor([[0.0]], dtype=F64)
    ps = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=F64)  # weights 2 and 1.5
    pt = torch.tensor([[1.0, 0.0]], dtype=F64)
    loss = CDANLoss(1, 2, discriminator=disc)(xs, xt, ps, pt, progress=1.0)
    expected = 0.5 * ((2 * softplus(-1.0) + 1.5 * softplus(-2.0)) / 3.5 + softplus(0.0))
    assert loss.item() == pytest.approx(expected, rel=1e-12)
    plain = CDANLoss(1, 2, entropy=False, discriminator=disc)(xs, xt, ps, pt, progress=1.0)
    assert plain.item() == pytest.approx(0.5 * ((softplus(-1.0) + softplus(-2.0)) / 2 + softplus(0.0)), rel=1e-12)


def test_cdan_refuses_maps_that_need_the_randomized_variant():
    CDANLoss(256, 12)  # 3072 inputs: the fine level fits
    with pytest.raises(ValueError, match="2048 x 4 = 8192 exceeds 4096"):
        CDANLoss(2048, 4)


# --- MCC ------------------------------------------------------------------------------------------

def test_mcc_uniform_predictions_confuse_every_class():
    for c in (2, 4, 12):
        assert mcc_loss(torch.zeros(5, c, dtype=F64)).item() == pytest.approx((c - 1) / c, rel=1e-12)


def test_mcc_one_hot_batch_has_no_confusion_even_with_a_class_missing():
    logits = 1000.0 * torch.eye(4)[[0, 1, 1, 2, 0]]  # float32 softmax at T = 2.5 is exactly one-hot; class 3 absent
    loss = mcc_loss(logits)
    assert loss.item() == 0.0


def test_mcc_hand_computed_cases():
    # two examples predicted (3/4, 1/4) and (1/4, 3/4), equal certainty: C~ = C, loss 2 p (1 - p) = 3/8
    z = torch.tensor([[math.log(3.0), 0.0], [0.0, math.log(3.0)]], dtype=F64)
    assert mcc_loss(z, temperature=1.0).item() == pytest.approx(0.375, rel=1e-12)
    assert MCCLoss()(2.5 * z).item() == pytest.approx(0.375, rel=1e-12)  # the default temperature 2.5
    # (1, 0) and (1/2, 1/2): weights 2 * (2, 3/2) / 7.5; C = [[9.5, 1.5], [1.5, 1.5]] / 7, columns 11/7
    # and 3/7: off-diagonal 0.5 + 1.5/11, over 2 classes = 7/22
    z = torch.tensor([[1000.0, 0.0], [0.0, 0.0]], dtype=F64)
    assert mcc_loss(z, temperature=1.0).item() == pytest.approx(7 / 22, rel=1e-12)
    with pytest.raises(ValueError, match="temperature must be > 0, got 0"):
        MCCLoss(0)


# --- the registry and the interface -------------------------------------------------------------

def test_registry_names_the_paper_defaults():
    defaults = {n: (m.default_weight, m.default_ramp, m.uses_target) for n, m in METHODS.items()}
    assert defaults == {
        "source_only": (0.0, "none", False), "lmmd": (0.5, "deepda", True), "dan": (1.0, "none", True),
        "dann": (1.0, "none", True), "cdan": (1.0, "none", True), "mcc": (1.0, "none", True),
    }
    assert build_method("dann", 4, 256).discriminator[0].out_features == 1024
    assert build_method("cdan", 4, 256).discriminator[0].in_features == 1024  # 256 x 4
    assert build_method("mcc", 4, 256).temperature == 2.5
    with pytest.raises(ValueError, match="method must be one of source_only, lmmd, .*, got 'coral'"):
        get_method("coral")


@pytest.mark.parametrize("name", [n for n in METHODS if n != "source_only"])
def test_every_method_gives_a_finite_scalar_with_gradients(name):
    b = _batch()
    loss = build_method(name, 4, 8).double().adaptation_loss(b)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    grads = [t.grad for t in (b.source_features, b.target_features, b.target_logits) if t.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_source_only_adds_nothing():
    assert build_method("source_only", 4, 8).adaptation_loss(_batch()).item() == 0.0


def test_lmmd_as_a_method_is_the_lmmd_loss():
    b = _batch(grad=False)
    expected = lmmd_loss(b.source_features, b.target_features, b.source_labels, b.target_probs, 4)
    assert torch.equal(build_method("lmmd", 4, 8).adaptation_loss(b), expected)


# --- a method registered here trains through the unchanged trainer --------------------------------

class CORALLoss(DomainAdaptation):
    """Deep CORAL, as the registry's docstring adds it: ||Cov(f^s) - Cov(f^t)||_F^2 / (4 d^2)."""

    title = "Deep CORAL"
    default_weight = 1.0

    def forward(self, source_features: torch.Tensor, target_features: torch.Tensor) -> torch.Tensor:
        d = source_features.shape[1]
        return (torch.cov(source_features.T) - torch.cov(target_features.T)).square().sum() / (4 * d * d)

    def adaptation_loss(self, batch: AdaptationBatch) -> torch.Tensor:
        return self(batch.source_features, batch.target_features)


def test_coral_hand_computed():
    # 1-d features: variances 1/2 (source {0, 1}) and 2 (target {0, 2}): (2 - 1/2)^2 / 4
    loss = CORALLoss()(torch.tensor([[0.0], [1.0]], dtype=F64), torch.tensor([[0.0], [2.0]], dtype=F64))
    assert loss.item() == pytest.approx(1.5**2 / 4, rel=1e-12)


def test_a_method_registered_in_a_test_trains_through_the_trainer(aims_tiny, tmp_path, monkeypatch):
    from aims_lib.image_branch import ImageTrainConfig, run_name, train_image_branch

    monkeypatch.setitem(METHODS, "coral", CORALLoss)
    cfg = ImageTrainConfig(arch="resnet18", image_size=32, batch_size=4, epochs=2, iters_per_epoch=2, seed=3, method="coral")
    assert (cfg.adaptation_weight, cfg.ramp) == (1.0, "none")
    name = run_name("coarse", "synthetic+real", "coral")
    metrics = train_image_branch(aims_tiny, tmp_path / name, cfg)
    assert name == "image_coarse_synthetic+real_coral"
    assert [set(h) for h in metrics["history"]] == [{"epoch", "ce", "coral", "val_acc", "lr", "seconds"}] * 2
    assert all(h["coral"] > 0 for h in metrics["history"])  # batches of different images differ in covariance
    assert metrics["config"]["method"] == "coral" and (tmp_path / name / "outputs.npz").is_file()
