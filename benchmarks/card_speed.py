"""How fast the benchmark card's instrument computes crop features, plain and with BatchNorm folded.

Runs :func:`aims_lib.card.crop_features` (frozen ImageNet EfficientNet-Lite0, channels-last) over
the first ``--images`` real crops of a dataset, once with the plain network and once with the
card's own (:func:`aims_lib.batchnorm_folding.fold_batchnorm`), and prints the CPU, crops per
second and the largest feature difference; measured figures only.

    python benchmarks/card_speed.py data/embedded/quick-seed0 [--images 256] [--size 224] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

import aims_lib.card as card
from aims_lib.data.format import load_dataset
from aims_lib.image_branch.backbones import StagedBackbone, get_backbone
from aims_lib.machine import cpu_isa_level, cpu_name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset", help="dataset directory (e.g. data/embedded/quick-seed0)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=224, help="crop side, pixels (the quick card's 224)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    crops = load_dataset(args.dataset).select(domain="real")[: args.images]
    print(f"CPU: {cpu_name()}; instruction-set level: {cpu_isa_level()}; torch {torch.__version__}, "
          f"{args.threads} threads; {len(crops)} real crops at {args.size} px")
    spec = get_backbone(card.CARD_BACKBONE)
    plain = StagedBackbone(spec, spec.packaged_weights()).eval().to(memory_format=torch.channels_last)
    folded = card._card_network()
    features = {}
    for name, net in (("plain", plain), ("BatchNorm folded", folded)):
        original = card._card_network
        card._card_network = lambda net=net: net
        try:
            card.crop_features(crops[:8], args.size)  # warm-up: oneDNN picks its kernels
            start = time.perf_counter()
            features[name] = card.crop_features(crops, args.size)
            seconds = time.perf_counter() - start
        finally:
            card._card_network = original
        print(f"{name}: {len(crops) / seconds:.1f} crops/s ({seconds:.1f} s)")
    diff = np.abs(features["plain"] - features["BatchNorm folded"])
    print(f"largest feature difference {diff.max():.2g} (largest feature {np.abs(features['plain']).max():.3g})")


if __name__ == "__main__":
    main()
