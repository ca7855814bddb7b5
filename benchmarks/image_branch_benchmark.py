"""Image-branch speed on the CPU: training steps and inference of each backbone setting.

Prints, per setting (backbone, input size, frozen stages), the seconds of one source-only step
(batch 32), of one LMMD step (32 source + 32 target images), the images per second of those
steps, and the inference images per second of the whole network. With frozen stages the steps
start from their cached output, as the trainer does; the one-off cost of building that cache is
printed too (the frozen prefix over 64 images, both views). The quick profile's setting is the
row marked ``quick``.

Run: ``.venv/bin/python benchmarks/image_branch_benchmark.py [--threads 2]``
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from aims_lib.adaptation.lmmd import lmmd_loss
from aims_lib.image_branch import ImageBranch, get_backbone
from aims_lib.profiles import get_profile


def best_of(fn, repeats: int = 4) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def measure(arch: str, size: int, frozen: int) -> dict[str, float]:
    spec = get_backbone(arch)
    weights = spec.packaged_weights() if spec.packaged_weights else None
    model = ImageBranch(arch, 4, weights, freeze_stages=frozen)
    opt = torch.optim.SGD([p for g in model.parameter_groups(0.01, 0.1) for p in g["params"]], lr=0.01, momentum=0.9)
    images = torch.randn(64, 3, size, size)
    with torch.no_grad():
        model.eval()
        inputs = model.backbone.forward_stages(images, 0, frozen)
        cache_seconds = best_of(lambda: [model.backbone.forward_stages(v, 0, frozen) for v in (images, images.flip(-1))], 2) if frozen else 0.0
    labels = torch.randint(0, 4, (32,))
    model.train()

    def source_only() -> None:
        logits, _ = model(inputs[:32], frozen)
        loss = nn.functional.cross_entropy(logits, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def with_lmmd() -> None:
        logits, feats = model(inputs, frozen)
        loss = nn.functional.cross_entropy(logits[:32], labels)
        loss = loss + 0.5 * lmmd_loss(feats[:32], feats[32:], labels, torch.softmax(logits[32:], 1).detach(), 4)
        opt.zero_grad()
        loss.backward()
        opt.step()

    so, lm = best_of(source_only), best_of(with_lmmd)
    model.eval()
    with torch.no_grad():
        infer = best_of(lambda: model(images))
    return {"source-only step s": so, "LMMD step s": lm, "train img/s": 32 / so, "LMMD img/s": 64 / lm,
            "inference img/s": 64 / infer, "cache s per 64 images": cache_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    quick = get_profile("quick")
    settings = [
        ("efficientnet_lite0", 128, 0), ("efficientnet_lite0", 128, 4), ("efficientnet_lite0", 128, 7),
        ("efficientnet_lite0", 160, 0), ("efficientnet_lite0", 160, 7), ("resnet18", 128, 0),
    ]
    print(f"{args.threads} CPU threads; quick profile: {quick.image_arch}, {quick.image_size} px, {quick.image_freeze_stages} frozen stages")
    header = None
    for arch, size, frozen in settings:
        row = measure(arch, size, frozen)
        if header is None:
            header = "| backbone | px | frozen | " + " | ".join(row) + " |"
            print(header)
            print("|" + "---|" * (3 + len(row)))
        mark = " (quick)" if (arch, size, frozen) == (quick.image_arch, quick.image_size, quick.image_freeze_stages) else ""
        print(f"| {arch}{mark} | {size} | {frozen} | " + " | ".join(f"{v:.2f}" for v in row.values()) + " |", flush=True)


if __name__ == "__main__":
    main()
