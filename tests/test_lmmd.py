import math

import pytest
import torch

from aims_lib.adaptation.kernels import gaussian_kernel
from aims_lib.adaptation.lmmd import LMMDLoss, class_weights, lmmd_loss


def _batch(n_s, n_t, c, d=16, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    xs = torch.randn(n_s, d, generator=g, dtype=dtype)
    xt = torch.randn(n_t, d, generator=g, dtype=dtype) + 0.5
    ys = torch.randint(0, c, (n_s,), generator=g)
    pt = torch.softmax(torch.randn(n_t, c, generator=g, dtype=dtype) * 2, 1)
    return xs, xt, ys, pt


def test_hand_computed_tiny_case():
    # 1-D features; source {0 (class 0), 1 (class 1)}, target {0, 2} predicted one-hot as class 0, 1.
    xs = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    xt = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    ys = torch.tensor([0, 1])
    pt = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    # Joint batch [0, 1, 0, 2]: off-diagonal squared distances sum to 22 over 12 ordered pairs,
    # so b_m = (22/12) / 4 * 2**m. Class 0 matches exactly (0 vs 0); class 1 compares 1 with 2:
    # loss = 1/2 * (k(1,1) + k(2,2) - 2 k(1,2)) = 5 - k(1,2) with k(1,2) = sum_m exp(-1 / b_m).
    k12 = sum(math.exp(-1.0 / ((22 / 12) / 4 * 2**m)) for m in range(5))
    expected = 5.0 - k12
    got = lmmd_loss(xs, xt, ys, pt, num_classes=2)
    assert got.item() == pytest.approx(expected, rel=1e-12)


def test_kernel_bandwidths_hand_computed():
    x = torch.tensor([[0.0], [3.0]], dtype=torch.float64)  # d2 = 9, mean off-diagonal = 9
    k = gaussian_kernel(x, kernel_mul=2.0, kernel_num=3)  # b = 9/2 * [1, 2, 4]
    expected = sum(math.exp(-9.0 / (4.5 * 2**m)) for m in range(3))
    assert k[0, 1].item() == pytest.approx(expected) and k[0, 0].item() == pytest.approx(3.0)


def test_zero_for_identical_batches():
    xs, _, ys, _ = _batch(20, 20, 4)
    pt = torch.nn.functional.one_hot(ys, 4).double()
    assert lmmd_loss(xs, xs.clone(), ys, pt, 4).abs().item() < 1e-12


def test_permutation_invariance_within_a_domain():
    xs, xt, ys, pt = _batch(24, 17, 12)
    base = lmmd_loss(xs, xt, ys, pt, 12)
    ps, pt_perm = torch.randperm(24), torch.randperm(17)
    perm = lmmd_loss(xs[ps], xt[pt_perm], ys[ps], pt[pt_perm], 12)
    assert perm.item() == pytest.approx(base.item(), rel=1e-10)


def test_absent_classes_are_masked():
    xs, xt, _, _ = _batch(8, 8, 4)
    ys = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])  # classes 0, 1 in the source
    pt = torch.zeros(8, 4, dtype=torch.float64)
    pt[:, 1], pt[:, 2] = 0.3, 0.7  # argmax: class 2 everywhere, class 1 has mass but loses
    s, t = class_weights(ys, pt, 4)
    assert torch.all(s[:, [0, 1, 3]] == 0) and torch.all(t == 0)  # no common class
    assert lmmd_loss(xs, xt, ys, pt, 4).item() == 0.0
    pt[0] = torch.tensor([0.0, 0.9, 0.1, 0.0], dtype=torch.float64)  # class 1 now common
    s, t = class_weights(ys, pt, 4)
    assert torch.all(s[:, [0, 2, 3]] == 0) and torch.all(t[:, [0, 2, 3]] == 0)
    assert s[:, 1].sum().item() == pytest.approx(1.0) and t[:, 1].sum().item() == pytest.approx(1.0)
    assert lmmd_loss(xs, xt, ys, pt, 4).item() > 0


def test_common_class_count_divides_the_weights():
    ys = torch.tensor([0, 1, 2, 3])
    pt = torch.eye(4, dtype=torch.float64)
    s, t = class_weights(ys, pt, 4)
    assert (s @ s.T).trace().item() == pytest.approx(1.0)  # 4 classes x 1 / 4


@pytest.mark.parametrize("c", [4, 12])
@pytest.mark.parametrize("sizes", [(32, 32), (32, 7), (5, 40)])
def test_classes_and_unequal_batches(c, sizes):
    xs, xt, ys, pt = _batch(*sizes, c)
    loss = LMMDLoss(c)(xs, xt, ys, pt)
    assert loss.ndim == 0 and torch.isfinite(loss) and loss.item() >= -1e-9


def test_more_separated_domains_give_a_larger_loss():
    xs, xt, ys, pt = _batch(32, 32, 4)
    near = lmmd_loss(xs, xs + 0.05 * xt, ys, pt, 4)
    far = lmmd_loss(xs, xs + 3.0 + 0.05 * xt, ys, pt, 4)
    assert far > near


def test_finite_gradients_and_no_gradient_through_the_bandwidth():
    xs, xt, ys, pt = _batch(16, 16, 12, dtype=torch.float32)
    xs.requires_grad_(True)
    xt.requires_grad_(True)
    lmmd_loss(xs, xt, ys, pt, 12).backward()
    assert torch.isfinite(xs.grad).all() and torch.isfinite(xt.grad).all() and xs.grad.abs().sum() > 0
    # identical points: zero distances must not give NaN
    same = torch.zeros(4, 3, requires_grad=True)
    lmmd_loss(same, same, torch.tensor([0, 1, 0, 1]), torch.eye(2)[[0, 1, 0, 1]], 2).backward()
    assert torch.isfinite(same.grad).all()


def test_float32_agrees_with_float64():
    xs, xt, ys, pt = _batch(32, 32, 12)
    l64 = lmmd_loss(xs, xt, ys, pt, 12)
    l32 = lmmd_loss(xs.float(), xt.float(), ys, pt.float(), 12)
    assert l32.dtype == torch.float32
    assert l32.item() == pytest.approx(l64.item(), rel=1e-4, abs=1e-6)


def test_bad_inputs():
    xs, xt, ys, pt = _batch(8, 8, 4)
    with pytest.raises(ValueError, match="4 classes, expected num_classes=12"):
        lmmd_loss(xs, xt, ys, pt, 12)
    with pytest.raises(ValueError, match="feature dims differ"):
        lmmd_loss(xs, xt[:, :3], ys, pt, 4)
    with pytest.raises(ValueError, match="batch sizes"):
        lmmd_loss(xs, xt, ys[:5], pt, 4)
    with pytest.raises(ValueError, match="num_classes"):
        LMMDLoss(0)


def test_matches_the_reference_style_implementation():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "lmmd_benchmark.py"
    spec = importlib.util.spec_from_file_location("lmmd_benchmark", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for c in (4, 12):
        xs, xt, ys, pt = _batch(32, 32, c, d=256, seed=c, dtype=torch.float32)
        ours = lmmd_loss(xs, xt, ys, pt, c)
        ref = bench.reference_style_lmmd(xs, xt, ys, pt, c)
        assert ours.item() == pytest.approx(ref.item(), rel=1e-4, abs=1e-6)
