"""Two finished runs of the same data and seed, compared image by image on the real test split.

What changes when code changes only the rounding (a BatchNorm fold, a thread count, a batched
call): the 2D keypoints' PCK at 0.05 and 0.1 (paired over images, bootstrap interval) and the
top-1 of each model and level (paired difference, bootstrap interval, McNemar's p, and how many
images changed their label). Reads each run's reports the way the explorer does
(:func:`aims_lib.explore.run.load_run`), so HIPC scores the saved fits again (seconds).

    python benchmarks/compare_runs.py REPORTS_A REPORTS_B --data data/embedded/quick-seed0
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aims_lib.data.format import load_dataset
from aims_lib.explore.run import load_run
from aims_lib.pose_branch.metrics_2d import pck_counts
from aims_lib.statistics import paired_comparison, paired_rate_difference

MODELS_AT = (("image branch", "coarse"), ("pose branch", "coarse"), ("pose branch", "fine"),
             ("full model", "coarse"), ("full model", "fine"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", type=Path, help="reports folder of run A (e.g. reports/quick/seed0)")
    parser.add_argument("b", type=Path, help="reports folder of run B")
    parser.add_argument("--data", type=Path, required=True, help="the dataset both ran on (folder or annotations.json)")
    args = parser.parse_args()
    data = args.data / "annotations.json" if args.data.is_dir() else args.data
    dataset = load_dataset(data)
    runs = {name: load_run(folder, dataset) for name, folder in (("A", args.a), ("B", args.b))}
    test = [i for i, s in enumerate(dataset.samples) if s.split == "test" and s.domain == "real"]
    samples = [dataset.samples[i] for i in test]
    print(f"A: {args.a}\nB: {args.b}\n{len(test)} real test images of {data}\n")
    print("| measure | A | B | B - A (points) | 95% CI | McNemar p | labels changed |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for threshold in (0.05, 0.1):
        (hits_a, labelled), (hits_b, _) = (pck_counts(samples, runs[r].keypoints_2d[test], threshold) for r in "AB")
        diff, low, high = paired_rate_difference(hits_a, hits_b, labelled)
        print(f"| 2D PCK@{threshold} | {hits_a.sum() / labelled.sum():.4f} | {hits_b.sum() / labelled.sum():.4f} "
              f"| {diff:+.2f} | [{low:.2f}, {high:.2f}] | - | - |")
    for model, level in MODELS_AT:
        truth = runs["A"].truth(level)[test]
        pred = {r: runs[r].predicted(model, level)[test] for r in "AB"}
        c = paired_comparison(f"{model}, {level}", "A", pred["A"] == truth, "B", pred["B"] == truth)
        print(f"| {model}, {level} top-1 | {100 * (pred['A'] == truth).mean():.1f} | {100 * (pred['B'] == truth).mean():.1f} "
              f"| {c.difference:+.1f} | [{c.low:.1f}, {c.high:.1f}] | {c.p:.3f} | {int((pred['A'] != pred['B']).sum())} |")


if __name__ == "__main__":
    main()
