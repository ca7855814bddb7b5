"""Is the embedded benchmark valid on more than one seed? The benchmark card per seed.

Generates the quick profile's dataset for each seed (under ``--out``; reused when there) and
prints the card's validity checks (``aims_lib.card.VALIDITY``) side by side, then the probes
with their 95 % intervals. About 3.5 minutes a seed on 2 cores.

    python benchmarks/card_seeds.py --out /tmp/card_seeds --seeds 0 1
"""

from __future__ import annotations

import argparse
from pathlib import Path

from aims_lib.card import benchmark_card
from aims_lib.data import load_dataset
from aims_lib.profiles import get_profile
from aims_lib.synth.generator import GeneratorConfig, default_workers, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--card-size", type=int, default=224)
    args = parser.parse_args()
    prof = get_profile(args.profile)
    cards = {}
    for seed in args.seeds:
        out = args.out / f"{args.profile}-seed{seed}"
        generate(GeneratorConfig(prof.n_synthetic, prof.n_real, prof.render_size, seed, default_workers()), out)
        cards[seed] = benchmark_card(load_dataset(out), image_size=args.card_size, seed=seed)
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
    for r in first.results:
        cells = [f"{c.get(r.probe, r.level).accuracy:.1f} [{c.get(r.probe, r.level).ci_low:.1f}, "
                 f"{c.get(r.probe, r.level).ci_high:.1f}]" for c in cards.values()]
        print(f"| {r.probe} | {r.level} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
