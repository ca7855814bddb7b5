"""How fast the CPU profiles' 2D estimator trains and predicts, per memory layout and precision.

Times the training step of ``configs/pose2d/lite0_160x160.py`` (backbone, neck and heatmap head
forward, the head's loss on a heatmap target, backward, Adam step) on random batches, so the
figures are the model's compute without the data pipeline, for each combination of memory layout
(``contiguous``, ``channels_last``) and precision (``float32``; ``bfloat16`` autocast where the CPU
computes it natively, or with ``--force-bf16``), and the flip-test inference step, as it is and
with the backbone's and neck's BatchNorm folded (what the estimator runs). Prints the CPU,
its instruction-set level (:func:`aims_lib.machine.cpu_isa_level`) and images per second;
measured figures only.

To see what a CPU without AVX-512 gets, run it with oneDNN and ATen held to AVX2 on this one:
``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 python benchmarks/pose2d_training_speed.py``
(the ISA level printed then says ``AVX2 (held)``).

    python benchmarks/pose2d_training_speed.py [--steps 6] [--batch 32] [--size 160] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from aims_lib.batchnorm_folding import fold_batchnorm
from aims_lib.machine import computes_bf16, cpu_isa_level, cpu_name
from aims_lib.pose_branch.keypoints2d import CONFIG_DIR
from aims_lib.pose_branch.mmcv_shim import import_mmpose
from aims_lib.pose_branch.model_config import read_config


def build(config_name: str, size: int) -> torch.nn.Module:
    import_mmpose()
    from mmpose.apis import init_model

    cfg = read_config(CONFIG_DIR / config_name)
    cfg.model.head.decoder.input_size = (size, size)
    cfg.model.head.decoder.heatmap_size = (size // 4, size // 4)
    return init_model(cfg, None, device="cpu")


def train_speed(model: torch.nn.Module, batch: int, size: int, steps: int, layout: str, bf16: bool) -> float:
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    target = torch.rand(batch, 17, size // 4, size // 4)
    weights = torch.ones(batch, 17)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            heatmaps = model.head.forward(model.neck(model.backbone(x)))
        loss = model.head.loss_module(heatmaps.float(), target, weights)
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()  # warm-up: oneDNN picks its kernels
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


@torch.no_grad()
def predict_speed(model: torch.nn.Module, batch: int, size: int, steps: int, layout: str, fold: bool = False) -> float:
    """Flip-test inference; ``fold``: the backbone and neck with BatchNorm folded, as
    :class:`aims_lib.pose_branch.mmpose_estimator.Pose2DEstimator` runs them."""
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt).eval()
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    features = torch.nn.ModuleDict({"backbone": model.backbone, "neck": getattr(model, "neck", None) or torch.nn.Identity()})

    def run(m: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        return m["neck"](m["backbone"](images))

    if fold:
        features = fold_batchnorm(features, x[:2], run)

    def step() -> None:
        for images in (x, x.flip(-1)):  # flip test: the image and its mirror
            model.head.forward(run(features, images))

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return batch * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="lite0_160x160.py")
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, nargs="+", default=[160])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--force-bf16", action="store_true", help="time bfloat16 autocast on a CPU without native bfloat16")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    level = cpu_isa_level()
    print(f"CPU: {cpu_name()}; instruction-set level: {level}; torch {torch.__version__}, {args.threads} threads")
    bf16 = [False] + ([True] if args.force_bf16 or computes_bf16() else [])
    print("| config | input | layout | precision | training img/s | flip-test inference img/s | the same, BatchNorm folded |")
    print("|---|---|---|---|---|---|---|")
    for size in args.size:
        model = build(args.config, size)
        for layout in ("contiguous", "channels_last"):
            infer = predict_speed(model, args.batch, size, max(2, args.steps // 2), layout)
            folded = predict_speed(model, args.batch, size, max(2, args.steps // 2), layout, fold=True)
            for use_bf16 in bf16:
                train = train_speed(model, args.batch, size, args.steps, layout, use_bf16)
                print(f"| {args.config} | {size} | {layout} | {'bfloat16' if use_bf16 else 'float32'} | {train:.1f} "
                      f"| {infer:.1f} | {folded:.1f} |", flush=True)


if __name__ == "__main__":
    main()
