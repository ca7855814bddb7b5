"""How much of the real proxy's shift (bodies, poses, occlusion, framing) can the card's target ceiling bear?

Renders the real domain (750 images, the quick profile's count) once per variant of its
``DomainSettings`` (``aims_lib.synth.domains``): none of the shifts, each shift alone, today's
settings, and milder ones given as JSON overrides, and prints the card's probes for each
(``real_domain_levers.print_row``: T->T by 4-fold cross-validation inside the real domain, S->T and
S+T->T on its test split; frozen ImageNet Lite0 features, linear classifier). Rendering runs in
this process (one core) because the variants patch the settings table. About 2 minutes a
variant on 2 cores, after a one-off synthetic set.

    python benchmarks/real_proxy_strength.py --out /tmp/strength [--seed 0]
    python benchmarks/real_proxy_strength.py --out /tmp/strength \
        --variant '{"photo.occlusion.share": 0.2, "pose.blend_share": 0.05}'
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from real_domain_levers import print_header, print_row, synthetic_reference

from aims_lib.synth import body_shift, domains, occlusion, pose_shift

#: Each shift alone on top of the synthetic domain's settings, then all of them (today).
VARIANTS: dict[str, dict[str, Any]] = {
    "no shift (generator v1)": {"body": body_shift.SYNTHETIC, "photo": occlusion.SYNTHETIC, "pose": pose_shift.SYNTHETIC},
    "bodies only": {"photo": occlusion.SYNTHETIC, "pose": pose_shift.SYNTHETIC},
    "occlusion and framing only": {"body": body_shift.SYNTHETIC, "pose": pose_shift.SYNTHETIC},
    "poses only": {"body": body_shift.SYNTHETIC, "photo": occlusion.SYNTHETIC},
    "all (today)": {},
}


def with_overrides(settings: Any, overrides: dict[str, Any]) -> Any:
    """``settings`` with dotted fields replaced, e.g. ``{"photo.occlusion.share": 0.2}``; a
    ``shots`` entry is a list of ``Shot`` keyword dicts."""
    for dotted, value in overrides.items():
        head, _, rest = dotted.partition(".")
        if rest:
            value = with_overrides(getattr(settings, head), {rest: value})
        elif head == "shots":
            value = tuple(occlusion.Shot(**s) for s in value)
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        settings = dataclasses.replace(settings, **{head: value})
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the rendered sets (reused)")
    parser.add_argument("--size", type=int, default=224, help="render and crop size, pixels")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", action="append", default=[],
                        help="JSON of dotted real-domain overrides to try instead of the built-in variants")
    args = parser.parse_args()
    base = domains.DOMAIN_SETTINGS["real"]
    variants = {v: json.loads(v) for v in args.variant} if args.variant else VARIANTS

    reference = synthetic_reference(args.out, args.size, args.seed)
    print_header("real-proxy settings", args.size, args.seed)
    for name, overrides in variants.items():
        settings = with_overrides(base, overrides)
        domains.DOMAIN_SETTINGS["real"] = settings
        key = hashlib.sha1(repr(settings).encode()).hexdigest()[:10]  # one folder per variant
        print_row(name, key, args.out, args.size, args.seed, reference)
    domains.DOMAIN_SETTINGS["real"] = base


if __name__ == "__main__":
    main()
