"""Run profiles as data: one table of settings, read by every notebook.

``smoke`` exercises every code path in seconds (what the tests run), ``quick`` gives meaningful
numbers on a 2-core CPU, ``paper`` is the paper's scale (4000 synthetic + 750 real images at
256 px, ResNet-50 at 224 px, HRNet-W32) and is meant for a GPU.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

REPO: Final[Path] = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Profile:
    name: str
    n_synthetic: int  # synthetic-domain images (all training)
    n_real: int  # real-domain images (train / val / test)
    render_size: int  # rendered image side, pixels
    image_arch: str  # image-branch ResNet
    image_size: int  # image-branch input side, pixels
    image_epochs: int
    image_iters: int  # iterations per epoch (each: one source and one target batch)
    image_batch: int  # per domain


PROFILES: Final[dict[str, Profile]] = {
    p.name: p
    for p in (
        Profile("smoke", n_synthetic=48, n_real=48, render_size=96,
                image_arch="resnet18", image_size=32, image_epochs=1, image_iters=2, image_batch=8),
        Profile("quick", n_synthetic=1200, n_real=750, render_size=160,
                image_arch="resnet18", image_size=64, image_epochs=5, image_iters=20, image_batch=32),
        Profile("paper", n_synthetic=4000, n_real=750, render_size=256,
                image_arch="resnet50", image_size=224, image_epochs=20, image_iters=500, image_batch=32),
    )
}


def get_profile(name: str, **overrides: Any) -> Profile:
    """The named profile, with any non-``None`` overrides applied."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}")
    known = {f.name for f in fields(Profile)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown profile settings {sorted(unknown)}; valid: {sorted(known - {'name'})}")
    base = PROFILES[name]
    return Profile(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})


def embedded_data_dir(profile: str, seed: int) -> Path:
    """Where the generator writes the embedded dataset of a profile and seed."""
    return REPO / "data" / "embedded" / f"{profile}-seed{seed}"


def reports_path(profile: str) -> Path:
    """Where a profile's executed notebooks, figures and results go."""
    return REPO / "reports" / profile

