"""Is the embedded benchmark valid on more than one seed? The benchmark card per seed.

Generates the quick profile's dataset for each seed (under ``--out``; reused when there) and
prints the card's validity checks (``aims_lib.card.VALIDITY`` and the pose rows'
``aims_lib.pose_card.POSE_VALIDITY``) side by side, then the probes with their 95 % intervals,
the coarse ceiling by photo subset and, with ``--curve``, the coarse ``T->T`` learning curve
(``aims_lib.card.ceiling_learning_curve``: does the ceiling grow with more real images?).
About 4.5 minutes a seed on 2 cores (``--no-pose``: 3.5; ``--curve`` adds about 1.5).

    python benchmarks/card_seeds.py --out /tmp/card_seeds --seeds 0 1 2 3 4
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from aims_lib.card import LEVELS, PROBES, benchmark_card, ceiling_learning_curve, crop_features
from aims_lib.data import load_dataset
from aims_lib.pose_card import pose_card
from aims_lib.profiles import get_profile
from aims_lib.synth.generator import GeneratorConfig, default_workers, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--card-size", type=int, default=224)
    parser.add_argument("--no-pose", action="store_true", help="leave out the pose rows (SMPLify, HIPC)")
    parser.add_argument("--curve", action="store_true", help="print the coarse T->T learning curve per seed")
    args = parser.parse_args()
    prof = get_profile(args.profile)
    cards, curves = {}, {}
    for seed in args.seeds:
        out = args.out / f"{args.profile}-seed{seed}"
        generate(GeneratorConfig(prof.n_synthetic, prof.n_real, prof.render_size, seed, default_workers()), out)
        ds = load_dataset(out)
        cards[seed] = benchmark_card(ds, image_size=args.card_size, seed=seed)
        if not args.no_pose:
            cards[seed] = dataclasses.replace(cards[seed], pose=pose_card(ds, seed=seed))
        if args.curve:
            real = ds.select(domain="real")
            labels = np.array([s.coarse_id for s in real])
            curves[seed] = ceiling_learning_curve(crop_features(real, args.card_size), labels, seed=seed)
    print(f"| check ({args.profile} data, card at {args.card_size} px) | threshold | "
          + " | ".join(f"seed {s}" for s in cards) + " |")
    print("|---|---|" + "---|" * len(cards))
    rows = {s: c.validity() for s, c in cards.items()}
    for i, row in enumerate(next(iter(rows.values()))):
        cells = [f"{rows[s][i]['value']:.1f} {'pass' if rows[s][i]['passed'] else 'FAIL'}" for s in cards]
        print(f"| {row['check']} | {row['threshold']} | " + " | ".join(cells) + " |")
    print()
    print("| probe | level | " + " | ".join(f"seed {s} (95% CI)" for s in cards) + " |")
    print("|---|---|" + "---|" * len(cards))
    first = next(iter(cards.values()))
    for level in LEVELS:
        for probe in PROBES:
            cells = [f"{c.get(probe, level).accuracy:.1f} [{c.get(probe, level).ci_low:.1f}, "
                     f"{c.get(probe, level).ci_high:.1f}]" for c in cards.values()]
            print(f"| {probe} | {level} | " + " | ".join(cells) + " |")
    if first.pose is not None:
        for row in range(len(first.pose.rows())):
            cells = [f"{c.pose.rows()[row]['value']} {c.pose.rows()[row]['95% CI']}" for c in cards.values()]
            print(f"| {first.pose.rows()[row]['probe']} | pose | " + " | ".join(cells) + " |")
    if first.subsets:
        print()
        print("| photo subset (real images at the first seed) | coarse | " + " | ".join(f"seed {s} T->T / S->T all" for s in cards) + " |")
        print("|---|---|" + "---|" * len(cards))
        for r in first.subsets:
            if r.level != "coarse":
                continue
            same = [next((x for x in c.subsets if (x.subset, x.level) == (r.subset, "coarse")), None) for c in cards.values()]
            cells = [f"{x.t_to_t:.1f} / {x.s_to_t:.1f}" if x else "-" for x in same]
            print(f"| {r.subset} ({r.n}) | coarse | " + " | ".join(cells) + " |")
    for seed, curve in curves.items():
        print(f"seed {seed}: coarse T->T by real training images: " + ", ".join(f"{n}: {a:.1f}" for n, a in curve))


if __name__ == "__main__":
    main()
