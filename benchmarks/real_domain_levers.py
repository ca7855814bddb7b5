"""Which appearance of the real-proxy domain costs the benchmark card's target ceiling what?

Renders the real domain (750 images, the paper's count) with the synthetic domain's plain style,
then with one group of photographic settings at a time (photo backdrops, photo floors, clothing
patterns and skin mottle, lighting, a strong camera pipeline, clutter), then with today's real
style, or with real-style fields given as JSON, and prints the card's probes for each: T->T (4-fold cross-validation inside
the real domain: is the label learnable there?), S->T (a synthetic training set to the real test
split: is there a gap?) and S+T->T, coarse and fine, with the card's instrument (frozen ImageNet
EfficientNet-Lite0 features, linear classifier; ``aims_lib.card``). Rendering runs in this
process (one core) because the variants patch the style table. About 1.5 minutes a variant at
224 px on 2 cores, after a one-off synthetic set.

    python benchmarks/real_domain_levers.py --out /tmp/levers [--size 224] [--seed 0]
    python benchmarks/real_domain_levers.py --out /tmp/levers --style '{"clutter": [0, 0]}'
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np

from aims_lib.card import crop_features, linear_probe
from aims_lib.data import load_dataset
from aims_lib.synth import appearance
from aims_lib.synth.generator import GeneratorConfig, generate

#: What photographs have and renders lack, one group at a time, at the strength of the real
#: domain before issue 13 (the current real style keeps the backdrops, floors, lighting and a
#: milder noise and JPEG; ``aims_lib/synth/appearance.py`` says why).
LEVERS: dict[str, dict[str, object]] = {
    "photo backdrops": {"backdrops": ["photo"], "backdrop_blur": [0.0, 1.0], "photo_tint": 0.3},
    "photo floors": {"floors": ["none", "photo", "photo"], "floor_contrast": [1.0, 1.0]},
    "patterns, skin mottle": {"patterns": ["plain", "stripes", "dots", "blotches"], "skin_mottle": [0.04, 0.10]},
    "lighting": {"key_angle_deg": [25.0, 75.0], "key": [0.8, 1.4], "ambient": [0.12, 0.35], "ground_ratio": [0.3, 0.8],
                 "sky_kelvin": [5000.0, 7500.0], "kelvin": [2800.0, 7500.0], "wrap": [0.0, 0.3],
                 "specular": [0.03, 0.15], "shadow": [0.3, 0.7]},
    "camera pipeline": {"white_balance": 0.15, "exposure": [0.75, 1.25], "vignette": [0.1, 0.45], "blur": [0.3, 1.5],
                        "noise": [0.015, 0.05], "shot_noise": [0.0, 0.01], "jpeg_quality": [20, 75]},
    "clutter": {"clutter": [2, 6]},
}


def probes(synthetic: list, real: list, size: int, seed: int, synthetic_features: np.ndarray) -> dict[str, float]:
    f_real = crop_features(real, size, desc="real crops")
    test = np.array([s.split == "test" for s in real])
    train = np.array([s.split == "train" for s in real])
    folds = np.array_split(np.random.default_rng(seed).permutation(len(real)), 4)
    out = {}
    for level in ("coarse", "fine"):
        y_syn = np.array([getattr(s, f"{level}_id") for s in synthetic])
        y_real = np.array([getattr(s, f"{level}_id") for s in real])
        pred = np.empty(len(real), dtype=np.int64)
        for fold in folds:
            rest = np.setdiff1d(np.arange(len(real)), fold)
            pred[fold] = linear_probe(f_real[rest], y_real[rest], f_real[fold], seed)
        out[f"T->T {level}"] = float((pred == y_real).mean() * 100)
        out[f"S->T {level}"] = float((linear_probe(synthetic_features, y_syn, f_real[test], seed) == y_real[test]).mean() * 100)
        both = linear_probe(np.concatenate([synthetic_features, f_real[train]]), np.concatenate([y_syn, y_real[train]]),
                            f_real[test], seed)
        out[f"S+T->T {level}"] = float((both == y_real[test]).mean() * 100)
    return out


def synthetic_reference(out: Path, size: int, seed: int) -> tuple[list, np.ndarray]:
    """The synthetic set every variant is compared with (1200 images, rendered once under
    ``out``) and its card features."""
    syn_dir = out / f"synthetic_{size}_{seed}"
    generate(GeneratorConfig(1200, 0, size, seed, 1), syn_dir)
    synthetic = list(load_dataset(syn_dir).samples)
    return synthetic, crop_features(synthetic, size, desc="synthetic crops")


def print_header(what: str, size: int, seed: int) -> None:
    print(f"| {what} ({size} px, seed {seed}) | T->T coarse | S->T coarse | S+T->T coarse "
          "| T->T fine | S->T fine | S+T->T fine |")
    print("|---|---|---|---|---|---|---|")


def print_row(name: str, key: str, out: Path, size: int, seed: int, reference: tuple[list, np.ndarray]) -> None:
    """Render the real domain (750 images, in this process) into ``out/real_<key>_...`` (reused
    when there) with whatever settings are patched in now, and print its probes as one row."""
    out_dir = out / f"real_{key}_{size}_{seed}"
    generate(GeneratorConfig(0, 750, size, seed, 1), out_dir)
    synthetic, f_syn = reference
    r = probes(synthetic, list(load_dataset(out_dir).samples), size, seed, f_syn)
    print(f"| {name} | " + " | ".join(f"{r[f'{p} {lv}']:.1f}" for lv in ("coarse", "fine") for p in ("T->T", "S->T", "S+T->T"))
          + " |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the rendered sets (reused)")
    parser.add_argument("--size", type=int, default=224, help="render and crop size, pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--style", default="", help="JSON of real-style fields to try instead of the levers")
    args = parser.parse_args()
    base = appearance.STYLES["real"]
    plain = asdict(appearance.STYLES["synthetic"])
    real = asdict(base)
    variants = {"synthetic style (plain)": {}, **LEVERS, "real style (today)": real}
    if args.style:
        variants = {"given style": json.loads(args.style)}

    reference = synthetic_reference(args.out, args.size, args.seed)
    print_header("real-domain style", args.size, args.seed)
    for name, fields in variants.items():
        style = {**plain, **fields} if not args.style else {**real, **fields}
        appearance.STYLES["real"] = replace(base, **{k: tuple(v) if isinstance(v, list) else v for k, v in style.items()})
        key = hashlib.sha1(json.dumps(style, sort_keys=True).encode()).hexdigest()[:10]  # one folder per style
        print_row(name, key, args.out, args.size, args.seed, reference)
    appearance.STYLES["real"] = base


if __name__ == "__main__":
    main()
