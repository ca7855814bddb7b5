"""Generator CLI: ``python -m aims_lib.synth --out DIR --n-synthetic N --n-real M [--body smil_web.pkl]``.

Writes ``DIR/annotations.json`` (the AIMS dataset format) and the images under ``DIR/images``;
shows a progress bar, resumes an interrupted run without redoing finished images (a finished
image that is missing or corrupt is made again), and prints the throughput. The same seed
gives byte-identical files.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from aims_lib.synth.generator import GeneratorConfig, default_workers, generate


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m aims_lib.synth", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="output dataset directory")
    parser.add_argument("--n-synthetic", type=int, default=4000, help="synthetic-domain images (paper: ~4000)")
    parser.add_argument("--n-real", type=int, default=750, help="real-proxy-domain images (paper: 750)")
    parser.add_argument("--image-size", type=int, default=256, help="square image side in pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=default_workers(), help="parallel processes")
    parser.add_argument("--body", type=Path, default=None,
                        help="SMPL-format body file to render (e.g. SMIL's smil_web.pkl); default: the procedural infant")
    parser.add_argument("--trust-body", action="store_true",
                        help="unpickle --body fully (it may run code; SECURITY.md): only for a file you vouch for")
    args = parser.parse_args(argv)
    if args.trust_body and args.body is None:
        parser.error("--trust-body names no file: give --body too")
    config = GeneratorConfig(args.n_synthetic, args.n_real, args.image_size, args.seed, args.workers,
                             body=None if args.body is None else str(args.body.resolve()), trust_body=args.trust_body)
    try:
        config.validate()
    except ValueError as exc:
        parser.error(str(exc))
    if args.out.exists() and not args.out.is_dir():
        parser.error(f"--out: {args.out} exists and is not a directory")
    try:
        summary = generate(config, args.out)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rate = summary["images_per_second"]
    if summary["redone_images"]:
        print(f"remade {len(summary['redone_images'])} missing or corrupt finished images: "
              + ", ".join(summary["redone_images"][:5]) + (" ..." if len(summary["redone_images"]) > 5 else ""))
    print(
        f"wrote {summary['path']}: {summary['images']} images "
        f"({summary['made_now']} made now, {summary['resumed_from']} already there) in "
        f"{summary['seconds']:.1f} s" + (f", {rate:.1f} images/s with {args.workers} workers" if rate else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
