"""SMPLify speed and accuracy on a synthetic test split.

Builds a split like the paper's test set in size (198 images): poses of the AIMS pose sampler
(the 12 classes in turn, shapes drawn as the generator draws them), each seen by a random
camera of :func:`aims_lib.camera.sample_camera` at 256 px with the generator's framing; the 2D
input is the exact projection of the COCO-17 keypoints, all confident (visibility and HRNet
errors are not simulated), optionally with Gaussian pixel noise. Prints

* fits per second at batch 1 (on the first ``--single`` images) and for the whole split in
  one batch, and the time of the split;
* PA-MPJPE and MPJPE (nose-to-pelvis units, camera frame) and the reprojection error, from
  ground-truth 2D and from 2D with noise, with the diagnostics of the fit.

Run: ``.venv/bin/python benchmarks/smplify_benchmark.py [--threads 1] [--noise 3] [--device cuda]``
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass

import numpy as np
import torch

from aims_lib.body import DEFAULT_BETAS, coco17_keypoints, load_body_model
from aims_lib.camera import project, sample_camera, to_camera
from aims_lib.pose_branch.metrics import fits_per_second, mpjpe, pa_mpjpe
from aims_lib.pose_branch.priors import default_pose_prior
from aims_lib.pose_branch.smplify import SMPLify, SMPLifyConfig, SMPLifyResult
from aims_lib.synth.generator import CAMERA_FILL
from aims_lib.synth.poses import sample_poses
from aims_lib.taxonomy import FINE, normalise_keypoints_3d


@dataclass(frozen=True)
class Split:
    keypoints_2d: np.ndarray  # (N, 17, 2)
    K: np.ndarray  # (N, 3, 3)
    truth: np.ndarray  # (N, 17, 3) normalised, camera frame
    labels: np.ndarray  # (N,) fine ids


def make_split(model: torch.nn.Module, n: int, seed: int, image_size: int) -> Split:
    """``n`` sampler poses with one random camera each, as the generator draws them."""
    rng = np.random.default_rng(seed)
    labels = [FINE[i % len(FINE)] for i in range(n)]
    betas = np.clip(rng.normal(0.0, 1.0, size=(n, model.num_betas)), -2.0, 2.0)
    poses = sample_poses(labels, rng, model, betas)
    keypoints = np.asarray(coco17_keypoints(poses.vertices, poses.joints), dtype=np.float64)
    pixels, Ks, truth = [], [], []
    for vertices, points in zip(poses.vertices, keypoints):
        lo, hi = vertices.min(0), vertices.max(0)
        camera = sample_camera(rng, 0.5 * (lo + hi), float(0.5 * np.linalg.norm(hi - lo)), image_size, fill=CAMERA_FILL)
        pixels.append(project(points, camera.K, camera.R, camera.T))
        Ks.append(camera.K)
        truth.append(normalise_keypoints_3d(to_camera(points, camera.R, camera.T)))
    return Split(np.stack(pixels), np.stack(Ks), np.stack(truth), np.array([FINE.index(x) for x in labels]))


def report(name: str, result: SMPLifyResult, truth: np.ndarray, labels: np.ndarray) -> None:
    out = result.numpy()
    pa, mp = pa_mpjpe(out["keypoints_3d"], truth), mpjpe(out["keypoints_3d"], truth)
    print(
        f"{name}: PA-MPJPE mean {np.nanmean(pa):.4f} median {np.nanmedian(pa):.4f} "
        f"(> 0.15: {np.mean(pa > 0.15):.1%}), MPJPE mean {np.nanmean(mp):.4f} median {np.nanmedian(mp):.4f}, "
        f"reprojection {np.nanmean(out['reprojection_error']):.2f} px; failed {int(out['failed'].sum())}, "
        f"flipped {int(out['flipped'].sum())}, converged {out['converged'].mean():.0%}"
    )
    per_class = " ".join(f"{np.nanmean(pa[labels == c]):.3f}" for c in range(len(FINE)))
    print(f"  PA-MPJPE per class ({', '.join(FINE)}):\n  {per_class}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=198)
    parser.add_argument("--single", type=int, default=10, help="images fitted one at a time for the batch-1 speed")
    parser.add_argument("--noise", type=float, default=3.0, help="std of the 2D noise, pixels")
    parser.add_argument("--image-size", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads of a CPU fit (SMPLifyConfig.cpu_threads; default: torch's, all cores)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seed", type=int, default=2024)
    args = parser.parse_args()

    model = load_body_model(num_betas=DEFAULT_BETAS)
    prior = default_pose_prior(model)
    split = make_split(model, args.images, args.seed, args.image_size)
    smplify = SMPLify(model, prior, SMPLifyConfig(cpu_threads=args.threads), device=args.device)
    confidence = np.ones(split.keypoints_2d.shape[:2])
    threads = args.threads or torch.get_num_threads()
    threads = f", {threads} torch threads of {os.cpu_count()} CPUs" if args.device == "cpu" else ""
    print(f"device {args.device}{threads}, {args.images} images of {args.image_size} px")

    def fit_single() -> None:
        for i in range(args.single):
            smplify.fit(split.keypoints_2d[i : i + 1], confidence[i : i + 1], split.K[i : i + 1]).numpy()

    def fit_split(keypoints_2d: np.ndarray) -> SMPLifyResult:
        result = smplify.fit(keypoints_2d, confidence, split.K)
        result.numpy()  # waits for the device
        return result

    smplify.fit(split.keypoints_2d[:2], confidence[:2], split.K[:2]).numpy()  # warm-up
    single_rate, _, _ = fits_per_second(fit_single, args.single)
    cpu_start = time.process_time()
    split_rate, split_time, result = fits_per_second(lambda: fit_split(split.keypoints_2d), args.images)
    cpu_time = time.process_time() - cpu_start
    print(f"batch 1: {single_rate:.2f} fits/s (over {args.single} images)")
    print(
        f"whole split in one batch: {split_rate:.1f} fits/s, {split_time:.2f} s wall ({cpu_time:.2f} s CPU) "
        f"for {args.images} images; load average before: {os.getloadavg()[0]:.1f}"
    )
    report("ground-truth 2D", result, split.truth, split.labels)
    noisy = split.keypoints_2d + np.random.default_rng(args.seed + 1).normal(0.0, args.noise, split.keypoints_2d.shape)
    report(f"2D noise {args.noise:g} px", fit_split(noisy), split.truth, split.labels)


if __name__ == "__main__":
    main()
