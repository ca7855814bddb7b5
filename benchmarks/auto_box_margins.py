"""Which automatic box to use (:mod:`aims_lib.auto_box`): overlap with the annotated boxes on real val.

For a run's 2D estimator and the real val images of its dataset, prints the mean and median IoU
of the automatic boxes with the annotated ones, and the median area ratio, for each margin and
number of passes; and how many confident joints (score >= MIN_SCORE) the whole image gives, the
number "no infant found" is decided on, for the val infants and for images without one. Real
val only: the test split is never used to choose.

Run: ``.venv/bin/python benchmarks/auto_box_margins.py --run reports/quick/seed0/runs/pose2d
--data data/embedded/quick-seed0``
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from aims_lib.auto_box import MIN_SCORE, keypoint_boxes, whole_image_boxes
from aims_lib.data.format import load_dataset
from aims_lib.deployment import box_iou, images_without_an_infant
from aims_lib.image_io import read_image
from aims_lib.machine import machine
from aims_lib.pose_branch.estimator import load_estimator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, required=True, help="a 2D keypoints run directory (notebook 03's runs/pose2d)")
    parser.add_argument("--data", type=Path, required=True, help="its dataset directory")
    parser.add_argument("--margins", type=float, nargs="+", default=[0.05, 0.1, 0.15, 0.2, 0.3])
    parser.add_argument("--passes", type=int, default=3)
    args = parser.parse_args()
    print("machine:", machine())
    val = load_dataset(args.data).select("val", "real")
    estimator = load_estimator(args.run, None, "cpu")
    images = [read_image(s.path) for s in val]
    sizes = np.array([[a.shape[1], a.shape[0]] for a in images], dtype=np.float64)
    annotated = np.array([s.bbox for s in val])
    start = time.perf_counter()
    keypoints, scores = estimator.predict(images, whole_image_boxes(sizes), batch_size=32)
    print(f"{len(val)} real val images; one 2D pass {time.perf_counter() - start:.1f} s")
    confident = (scores >= MIN_SCORE).sum(1)
    print(f"confident joints in the whole image, val infants: min {confident.min()}, 5th percentile "
          f"{np.percentile(confident, 5):.0f}, median {np.median(confident):.0f}")
    negatives = images_without_an_infant()
    large = [a for a in negatives.values() if min(a.shape[:2]) >= 32]
    _, neg_scores = estimator.predict(large, whole_image_boxes(np.array([[a.shape[1], a.shape[0]] for a in large])))
    print("confident joints, images without an infant:", (neg_scores >= MIN_SCORE).sum(1).tolist(),
          "max score", round(float(neg_scores.max()), 3))
    print(f"whole image: IoU {box_iou(whole_image_boxes(sizes), annotated).mean():.3f}")
    for margin in args.margins:
        kp, sc, row = keypoints, scores, []
        for k in range(args.passes):
            boxes = keypoint_boxes(kp, sc, sizes, margin)
            iou = box_iou(boxes, annotated)
            ratio = np.median(boxes[:, 2] * boxes[:, 3] / (annotated[:, 2] * annotated[:, 3]))
            row.append(f"pass {k + 1}: IoU {iou.mean():.3f} (median {np.median(iou):.3f}, area x{ratio:.2f})")
            if k + 1 < args.passes:
                kp, sc = estimator.predict(images, boxes, batch_size=32)
        print(f"margin {margin:.2f}: " + "; ".join(row))


if __name__ == "__main__":
    main()
