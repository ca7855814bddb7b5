"""LMMD speed: our torch implementation against the reference style, and its share of a step.

Prints (i) forward+backward time of LMMD at B in {32, 128}, C in {4, 12}, 256-d features on the
CPU, for ``aims_lib.adaptation.lmmd.lmmd_loss`` and for a faithful re-implementation of the style of the
public code (class weights computed in NumPy on the host from labels and probabilities copied
off the device, pairwise distances by broadcasting a (2B, 2B, d) difference tensor, a Python
loop over kernels), and (ii) the share of a ResNet-18 image-branch training step spent in LMMD.

Run: ``.venv/bin/python benchmarks/lmmd_benchmark.py``
"""

from __future__ import annotations

import time

import numpy as np
import torch

from aims_lib.adaptation.lmmd import lmmd_loss
from aims_lib.image_branch import ImageBranch


def reference_style_lmmd(xs: torch.Tensor, xt: torch.Tensor, ys: torch.Tensor, pt: torch.Tensor, num_classes: int,
                         kernel_mul: float = 2.0, kernel_num: int = 5) -> torch.Tensor:
    """LMMD as the public implementations compute it (host NumPy weights, equal semantics)."""
    batch = ys.shape[0]
    y = ys.cpu().numpy()
    p = pt.detach().cpu().numpy()
    s_onehot = np.eye(num_classes)[y]
    s_sum = s_onehot.sum(0, keepdims=True)
    s_sum[s_sum == 0] = 100
    s_vec = s_onehot / s_sum
    t_label = p.argmax(1)
    t_sum = p.sum(0, keepdims=True)
    t_sum[t_sum == 0] = 100
    t_vec = p / t_sum
    common = sorted(set(y.tolist()) & set(t_label.tolist()))
    mask = np.zeros((1, num_classes))
    mask[0, common] = 1
    s_vec, t_vec = s_vec * mask, t_vec * mask
    n = max(len(common), 1)
    w_ss = (s_vec @ s_vec.T / n).astype("float32")
    w_tt = (t_vec @ t_vec.T / n).astype("float32")
    w_st = (s_vec @ t_vec.T / n).astype("float32")
    w_ss, w_tt, w_st = (torch.from_numpy(w).to(xs.device) for w in (w_ss, w_tt, w_st))

    total = torch.cat([xs, xt])
    n_samples = total.shape[0]
    diff = total.unsqueeze(0) - total.unsqueeze(1)
    l2 = (diff**2).sum(2)
    bandwidth = l2.detach().sum() / (n_samples**2 - n_samples)
    bandwidth = bandwidth / kernel_mul ** (kernel_num // 2)
    kernels = sum(torch.exp(-l2 / (bandwidth * kernel_mul**i)) for i in range(kernel_num))
    ss, tt, st = kernels[:batch, :batch], kernels[batch:, batch:], kernels[:batch, batch:]
    return (w_ss * ss + w_tt * tt - 2 * w_st * st).sum()


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def bench_lmmd() -> None:
    print("LMMD forward+backward on the CPU, 256-d features (ms per call)")
    print(f"{'B':>5} {'C':>4} {'ours':>9} {'reference':>10} {'speed-up':>9} {'|diff|':>9}")
    for batch in (32, 128):
        for classes in (4, 12):
            g = torch.Generator().manual_seed(0)
            xs = torch.randn(batch, 256, generator=g, requires_grad=True)
            xt = torch.randn(batch, 256, generator=g, requires_grad=True)
            ys = torch.randint(0, classes, (batch,), generator=g)
            pt = torch.softmax(torch.randn(batch, classes, generator=g) * 3, 1)

            def run(impl):
                return lambda: impl(xs, xt, ys, pt, classes).backward()

            ours = _time(run(lmmd_loss), 50)
            ref = _time(run(reference_style_lmmd), 50)
            diff = abs(lmmd_loss(xs, xt, ys, pt, classes).item() - reference_style_lmmd(xs, xt, ys, pt, classes).item())
            print(f"{batch:>5} {classes:>4} {ours * 1e3:>9.3f} {ref * 1e3:>10.3f} {ref / ours:>8.1f}x {diff:>9.2e}")


def bench_step_share(image_size: int = 112, batch: int = 32) -> None:
    torch.manual_seed(0)
    model = ImageBranch("resnet18", num_classes=4)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    images = torch.randn(2 * batch, 3, image_size, image_size)
    labels = torch.randint(0, 4, (batch,))

    def step(with_lmmd: bool) -> None:
        logits, feats = model(images)
        loss = torch.nn.functional.cross_entropy(logits[:batch], labels)
        if with_lmmd:
            probs = torch.softmax(logits[batch:], 1).detach()
            loss = loss + 0.5 * lmmd_loss(feats[:batch], feats[batch:], labels, probs, 4)
        opt.zero_grad()
        loss.backward()
        opt.step()

    plain = _time(lambda: step(False), 5)
    full = _time(lambda: step(True), 5)
    feats = torch.randn(2 * batch, 256, requires_grad=True)
    probs = torch.softmax(torch.randn(batch, 4), 1)
    alone = _time(lambda: lmmd_loss(feats[:batch], feats[batch:], labels, probs, 4).backward(), 50)
    print(f"\nResNet-18 step, {batch}+{batch} images at {image_size} px, {torch.get_num_threads()} threads:")
    print(f"  step without LMMD {plain * 1e3:.0f} ms, with LMMD {full * 1e3:.0f} ms; "
          f"LMMD alone {alone * 1e3:.2f} ms = {alone / full * 100:.2f} % of the step")


if __name__ == "__main__":
    bench_lmmd()
    bench_step_share()
