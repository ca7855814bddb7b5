"""Why does LMMD gain little on the quick profile? Prints real-test accuracies of coarse runs
(synthetic source) that separate the schedule from the quality of LMMD's target class weights.

Runs, all from the quick profile's backbone start (its packaged ImageNet weights): source-only, LMMD with the network's
pseudo-labels (the method) and LMMD with the target's true labels (``target_labels="oracle"``, a
diagnostic upper bound of class-wise alignment, never a result), each at the quick schedule and
at ``--long`` times its iterations. Needs the quick data (``make reproduce`` writes it); runs
go to ``--out`` and resume.

    python benchmarks/lmmd_diagnostic.py --out /tmp/lmmd_diagnostic
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from aims_lib.data import load_dataset
from aims_lib.image_branch import backbone_start, profile_config, train_image_branch
from aims_lib.profiles import embedded_data_dir, get_profile


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=None, help="dataset (default: the quick embedded data)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--long", type=int, default=4, help="schedule multiplier of the long runs")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    prof = get_profile("quick")
    ds = load_dataset(args.data or embedded_data_dir("quick", args.seed))
    start = backbone_start(ds, args.out, prof, seed=args.seed, device="cpu")
    runs = [("source-only", "source_only", "predicted"), ("LMMD, pseudo-labels", "lmmd", "predicted"),
            ("LMMD, oracle labels", "lmmd", "oracle")]
    print(f"coarse top-1 % on the real test split (synthetic source, {len(ds)} images)")
    print(f"{'run':22s} {'iterations':>10s} {'real val':>9s} {'real test':>9s} {'seconds':>8s}")
    for mult in (1, args.long):
        for label, method, targets in runs:
            cfg = profile_config(prof, "coarse", "synthetic", method, epochs=prof.image_epochs * mult,
                                 target_labels=targets, pretrained=start.weights, pretrained_source=start.source,
                                 seed=args.seed, device="cpu")
            t0 = time.perf_counter()
            m = train_image_branch(ds, args.out / f"{method}_{targets}_x{mult}", cfg)
            iters = cfg.epochs * cfg.iters_per_epoch
            print(f"{label:22s} {iters:10d} {m['best_val_acc']:9.1f} {m['test_acc']:9.1f} {time.perf_counter() - t0:8.0f}")


if __name__ == "__main__":
    main()
