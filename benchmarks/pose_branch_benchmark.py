"""Pose-branch figures: SMPLify fits per second at batch 1 against one batch of the whole test
split, and the 2D estimators' speeds and accuracies side by side.

* SMPLify: the 198-image real test split of a dataset (``--data``: annotated 2D keypoints, the
  images' intrinsics, through :func:`aims_lib.pose_branch.lifting.lift_dataset`), or without
  ``--data`` a split of sampler poses seen by random cameras
  (``benchmarks/smplify_benchmark.py``'s, which also reports accuracy against noise). Also
  prints PA-MPJPE and MPJPE of the batched fit, so a speed is never bought with a wrong fit.
* 2D estimators: each trained keypoints2d run of ``--runs`` (e.g. the quick profile's
  ``reports/quick/runs/pose2d`` and an HRNet-W16 run of the same data) with its training figures
  from ``metrics.json`` (epochs, training seconds and images/s, real test AP and PCK@0.05 / 0.1),
  or without runs the quick config (ImageNet Lite0) and the HRNet-W16 CPU config; for each, the
  inference images/s on the dataset's real test images with their boxes (random 160-px images
  without ``--data``), one image per call and ``--batch`` per call, with flip test as
  configured; then the paper config (HRNet-W32, 256x192) on ``--paper-images`` images (random
  weights: the speed does not depend on them; 0 skips it).

Measured figures only, no assertions; the load average is printed because other processes on
the cores change the figures a lot.

Run: ``.venv/bin/python benchmarks/pose_branch_benchmark.py [--data data/embedded/quick-seed0]
[--runs reports/quick/runs/pose2d runs/hrnet_w16] [--device cpu] [--threads 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from aims_lib.data import load_dataset  # noqa: E402
from aims_lib.data.torch_datasets import read_image  # noqa: E402
from aims_lib.pose_branch.estimator import load_estimator  # noqa: E402
from aims_lib.pose_branch.keypoints2d import CONFIG_DIR, CPU_CONFIG, METRICS_FILE, PAPER_CONFIG  # noqa: E402
from aims_lib.pose_branch.lifting import evaluate_lifting, ground_truth_2d, intrinsics  # noqa: E402
from aims_lib.pose_branch.metrics import mpjpe, pa_mpjpe  # noqa: E402
from aims_lib.pose_branch.smplify import SMPLify, SMPLifyConfig  # noqa: E402


def smplify_speed(args: argparse.Namespace) -> None:
    smplify = SMPLify(config=SMPLifyConfig(cpu_threads=args.smplify_threads), device=args.device)
    if args.data:
        ds = load_dataset(args.data)
        samples = ds.select("test", "real") or list(ds.samples)[:198]
        kp, conf = ground_truth_2d(samples)
        K = intrinsics(samples)
        what = f"{len(samples)} real test images of {args.data} (annotated 2D)"
    else:
        from smplify_benchmark import make_split

        from aims_lib.body import DEFAULT_BETAS, load_body_model

        split = make_split(load_body_model(num_betas=DEFAULT_BETAS), args.images, args.seed, 256)
        kp, conf, K = split.keypoints_2d, np.ones(split.keypoints_2d.shape[:2]), split.K
        what = f"{args.images} sampler poses at 256 px (exact 2D)"
    n = len(kp)
    smplify.fit(kp[:2], conf[:2], K[:2]).numpy()  # warm-up
    start = time.perf_counter()
    for i in range(min(args.single, n)):
        smplify.fit(kp[i : i + 1], conf[i : i + 1], K[i : i + 1]).numpy()
    single = min(args.single, n) / (time.perf_counter() - start)
    start = time.perf_counter()
    result = smplify.fit(kp, conf, K)
    out = result.numpy()
    seconds = time.perf_counter() - start
    print(f"SMPLify on {args.device} ({args.smplify_threads or torch.get_num_threads()} torch threads), {what}:")
    print(f"  batch 1: {single:.2f} fits/s (over {min(args.single, n)} images)")
    print(f"  whole split in one batch: {n / seconds:.1f} fits/s, {seconds:.2f} s for {n} images "
          f"({n / seconds / single:.0f}x batch 1)")
    if args.data:
        from aims_lib.pose_branch.lifting import Pose3DSet

        pose3d = Pose3DSet(np.array([s.image_id for s in samples]), out["keypoints_3d"], out["failed"],
                           out["reprojection_error"], "gt", seconds)
        e = evaluate_lifting(pose3d, samples)
        print(f"  PA-MPJPE {e['pa_mpjpe']:.4f}, MPJPE {e['mpjpe']:.4f} (nose-to-pelvis units), "
              f"reprojection {e['reprojection_error']:.2f} px, failed {e['n_failed']}")
    else:
        print(f"  PA-MPJPE {np.nanmean(pa_mpjpe(out['keypoints_3d'], split.truth)):.4f}, "
              f"MPJPE {np.nanmean(mpjpe(out['keypoints_3d'], split.truth)):.4f}, failed {int(out['failed'].sum())}")


def training_figures(metrics: dict) -> str:
    """A trained run's figures from its ``metrics.json``."""
    train = [h for h in metrics["history"] if "train_images_per_s" in h]
    seconds = sum(h["seconds"] for h in train)
    test = metrics["test"]
    return (f"{len(train)} epochs in {seconds:.0f} s, training {np.mean([h['train_images_per_s'] for h in train]):.1f} "
            f"images/s; real test AP {test['AP']:.3f}, PCK@0.05 {test['PCK@0.05']:.3f}, PCK@0.1 {test['PCK@0.1']:.3f}")


def estimator_figures(args: argparse.Namespace) -> None:
    if args.data:
        samples = load_dataset(args.data).select("test", "real")[: args.estimator_images]
        images = [np.asarray(read_image(s)) for s in samples]
        boxes = np.stack([s.bbox for s in samples])
    else:
        rng = np.random.default_rng(args.seed)
        images = [rng.integers(0, 256, (160, 160, 3), dtype=np.uint8) for _ in range(args.estimator_images)]
        boxes = np.tile([20.0, 30.0, 120.0, 90.0], (len(images), 1))
    sources = [Path(r) for r in args.runs] or [CONFIG_DIR / "lite0_160x160.py", CPU_CONFIG]
    runs = [(source, len(images)) for source in sources]
    if args.paper_images:
        runs.append((PAPER_CONFIG, min(args.paper_images, len(images))))
    for source, n in runs:
        est = load_estimator(source, device=args.device, trusted_config=args.trust_config)
        est.predict(images[:2], boxes[:2], batch_size=2)  # warm-up
        rates = {}
        for batch in (1, args.batch):
            start = time.perf_counter()
            est.predict(images[:n], boxes[:n], batch_size=batch)
            if args.device.startswith("cuda"):
                torch.cuda.synchronize()
            rates[batch] = n / (time.perf_counter() - start)
        cfg = est.model.cfg
        metrics = json.loads((source / METRICS_FILE).read_text()) if source.is_dir() else None
        name = Path(metrics["config"]["config"]).name if metrics else source.name
        flip = cfg.model.test_cfg.get("flip_test", False)
        print(f"{name}{f' (run {source})' if source.is_dir() else ''} on {args.device}, {n} images, flip test {flip}: "
              f"inference batch 1 {rates[1]:.1f} images/s, batch {args.batch} {rates[args.batch]:.1f} images/s")
        if metrics:
            print(f"  {training_figures(metrics)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="", help="a dataset directory; '' uses generated poses and random images")
    parser.add_argument("--runs", nargs="*", default=[], help="trained keypoints2d run directories (default: the configs)")
    parser.add_argument("--trust-config", action="store_true",
                        help="execute the config.py of run directories written before runs stored config.json "
                             "(code: only for runs you vouch for; SECURITY.md)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch threads for the 2D estimators on the CPU")
    parser.add_argument("--smplify-threads", type=int, default=None,
                        help="torch threads of a CPU fit (default: torch's, all cores)")
    parser.add_argument("--images", type=int, default=198, help="split size without --data")
    parser.add_argument("--single", type=int, default=10, help="images fitted one at a time")
    parser.add_argument("--estimator-images", type=int, default=128)
    parser.add_argument("--batch", type=int, default=8, help="2D inference batch")
    parser.add_argument("--paper-images", type=int, default=8, help="images for the paper config (0: skip)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--skip-smplify", action="store_true")
    parser.add_argument("--skip-estimators", action="store_true")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    if not args.skip_smplify:
        smplify_speed(args)
    if not args.skip_estimators:
        torch.set_num_threads(args.threads)
        estimator_figures(args)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
