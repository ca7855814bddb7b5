"""Run profiles as data: one table of settings, read by every notebook.

``smoke`` exercises every code path in seconds (what the tests run), ``quick`` gives meaningful
numbers on a 2-core CPU, ``paper`` is the paper's scale (4000 synthetic + 750 real images at
256 px, ResNet-50 at 224 px, HRNet-W32) and is meant for a GPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Final

from aims_lib.files import REPO


@dataclass(frozen=True)
class Profile:
    name: str
    n_synthetic: int  # synthetic-domain images (all training)
    n_real: int  # real-domain images (train / val / test)
    render_size: int  # rendered image side, pixels (quick: 224: smaller renders cost the card's target ceiling)
    image_arch: str  # image-branch backbone (aims_lib.image_branch.backbones registry)
    image_size: int  # image-branch input side, pixels
    image_epochs: int
    image_iters: int  # iterations per epoch (each: one source and one target batch)
    image_batch: int  # per domain
    #: Without ImageNet weights (a user's file or a pinned package's) the backbone is first
    #: pretrained on the synthetic images' fine labels for pretrain_epochs x pretrain_iters (0:
    #: from scratch).
    pretrain_epochs: int
    pretrain_iters: int
    #: Pose branch: 2D keypoint config (under configs/pose2d), epochs and batch (the quick choice:
    #: docs/decisions.md, "Measurements moved from docstrings"; notebook 03 shows the learning curve).
    pose2d_config: str  # mmpose config file under configs/pose2d (pose branch)
    pose2d_epochs: int
    pose2d_batch: int
    #: Also train the 2D estimator on synthetic images only, for the card's 2D row
    #: (aims_lib.pose_card.pose2d_transfer): one more 2D training. Off in quick, where it would
    #: leave the time budget (docs/decisions.md; notebook 03's pose2d_synthetic_only turns it on).
    pose2d_synthetic_only: bool = True
    hipc_epochs: int = 60  # HIPC and pose-branch classifier (the reference's 60; lr step at half)
    hipc_batch: int = 128
    #: Leading backbone stages frozen and cached (0: DSAN's full fine-tuning; the paper profile).
    #: Quick: seven of Lite0's nine, at 160 px (the measurements: docs/decisions.md,
    #: "Measurements moved from docstrings").
    image_freeze_stages: int = 0
    #: Sources on which notebook 05 runs the adaptation methods beyond the paper's (DAN, DANN,
    #: CDAN+E, MCC; source-only and LMMD run on every source in notebook 02). Quick: the synthetic
    #: source only (the largest domain gap): both sources would double the four runs' time and
    #: leave the quick budget (their time: docs/decisions.md, "measurements moved from docstrings, second part").
    uda_sources: tuple[str, ...] = ("synthetic", "synthetic+real")
    #: The 3D keypoints HIPC and the pose branch train on (notebook 04): gt3d | smplify_gt2d |
    #: smplify_estimated (the deployable input: SMPLify fitted to the estimated 2D keypoints).
    hipc_keypoints: str = "smplify_estimated"
    #: LMMD weights of notebook 05's sweep (0: the source-only run).
    lmmd_sweep: tuple[float, ...] = (0.0, 0.1, 0.3, 0.5, 1.0)
    #: Frames of notebook 06's demo session (one rendered infant through a sequence of poses).
    session_frames: int = 24
    #: Real test images notebook 06 stores turned with an EXIF orientation tag (3, 6 and 8 each):
    #: seven predictions per image, about 2 s each with the paper profile's networks on a CPU.
    orientation_images: int = 12
    #: A dry run (:func:`dry_run`): this profile's code path on a handful of images and a few
    #: iterations per stage; its numbers mean nothing.
    dry_run: bool = False


PROFILES: Final[dict[str, Profile]] = {
    p.name: p
    for p in (
        Profile("smoke", n_synthetic=48, n_real=48, render_size=96,
                image_arch="efficientnet_lite0", image_size=64, image_epochs=1, image_iters=2, image_batch=8,
                pretrain_epochs=1, pretrain_iters=2, image_freeze_stages=4, uda_sources=("synthetic",),
                pose2d_config="lite0_160x160.py", pose2d_epochs=1, pose2d_batch=16,
                hipc_epochs=2, session_frames=8),
        Profile("quick", n_synthetic=1200, n_real=750, render_size=224,
                image_arch="efficientnet_lite0", image_size=160, image_epochs=12, image_iters=25, image_batch=32,
                pretrain_epochs=12, pretrain_iters=40, image_freeze_stages=7, uda_sources=("synthetic",),
                pose2d_config="lite0_160x160.py", pose2d_epochs=8, pose2d_batch=32, pose2d_synthetic_only=False,
                hipc_epochs=30),
        Profile("paper", n_synthetic=4000, n_real=750, render_size=256,
                image_arch="resnet50", image_size=224, image_epochs=20, image_iters=500, image_batch=32,
                pretrain_epochs=30, pretrain_iters=125,
                pose2d_config="hrnet_w32_256x192.py", pose2d_epochs=210, pose2d_batch=64),
    )
}


#: What a dry run shrinks: image counts, epochs, iterations, batches and the LMMD sweep (two
#: weights). Everything else (the networks, input and render sizes, frozen stages, pretraining
#: fallback, sources, methods) stays the profile's, so the dry run walks the profile's code path,
#: with two exceptions that smoke runs instead: the second, synthetic-only 2D training, and HIPC
#: on the estimated keypoints' fits (a 2D model trained for one epoch fails every fit, so HIPC
#: trains on the fits to the annotated 2D; the estimated ones are still scored).
DRY_RUN_SETTINGS: Final[dict[str, Any]] = {
    "n_synthetic": 12, "n_real": 20, "image_epochs": 1, "image_iters": 2, "image_batch": 2, "pretrain_epochs": 1,
    "pretrain_iters": 2, "pose2d_epochs": 1, "pose2d_batch": 4, "hipc_epochs": 2, "hipc_batch": 16,
    "lmmd_sweep": (0.0, 0.5), "pose2d_synthetic_only": False, "hipc_keypoints": "smplify_gt2d", "session_frames": 6,
    "orientation_images": 2,
}


def dry_run(profile: Profile) -> Profile:
    """``profile`` cut to :data:`DRY_RUN_SETTINGS`, named ``<name>-dry-run`` (its reports and
    embedded data get their own folders): e.g. the paper profile's ResNet-50, HRNet-W32, 256 px
    renders and both adaptation sources on the CPU in minutes, before a GPU's hours are spent."""
    if profile.dry_run:
        return profile
    return Profile(**{**profile.__dict__, **DRY_RUN_SETTINGS, "name": f"{profile.name}-dry-run", "dry_run": True})


def get_profile(name: str, dry: bool = False, **overrides: Any) -> Profile:
    """The named profile, with any non-``None`` overrides applied; ``dry``: its :func:`dry_run`."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)}")
    known = {f.name for f in fields(Profile)}
    unknown = set(overrides) - known
    if unknown:
        raise ValueError(f"unknown profile settings {sorted(unknown)}; valid: {sorted(known - {'name'})}")
    base = dry_run(PROFILES[name]) if dry else PROFILES[name]
    return Profile(**{**base.__dict__, **{k: v for k, v in overrides.items() if v is not None}})


def switch(name: str, value: str) -> bool | None:
    """A notebook's on/off parameter as a profile override: ``""`` keeps the profile's choice
    (None), ``"on"`` / ``"off"`` set it."""
    choices = {"": None, "on": True, "off": False}
    if value not in choices:
        raise ValueError(f"{name} must be '' (the profile's choice), 'on' or 'off', got {value!r}")
    return choices[value]


def embedded_data_dir(profile: str, seed: int) -> Path:
    """Where the generator writes the embedded dataset of a profile and seed."""
    return REPO / "data" / "embedded" / f"{profile}-seed{seed}"


def reports_path(profile: str, seed: int, data_dir: str | Path = "", root: Path = REPO / "reports",
                 smil_model: str | Path = "") -> Path:
    """Where a run's executed notebooks, figures and results go: ``reports/<profile>/seed<k>``
    for the embedded data of seed ``k``, ``reports/<profile>/<data folder>-seed<k>`` for a
    dataset directory, with ``<SMIL file stem>-`` before ``seed`` when a SMIL body is used, so
    runs of other seeds, data and bodies live side by side."""
    tag = (f"{Path(data_dir).resolve().name}-" if data_dir else "") + (f"{Path(smil_model).stem}-" if smil_model else "")
    return root / profile / f"{tag}seed{seed}"


def training_seeds(seed: int, extra: str | Sequence[int] = "") -> list[int]:
    """The training seeds of a run: ``seed`` (the data's, the headline) first, then the others of
    ``extra`` (space-separated text, as notebooks and ``make reproduce SEEDS=...`` pass them), once each."""
    items = extra.split() if isinstance(extra, str) else list(extra)
    seeds = [seed]
    for item in items:
        try:
            k = int(item)
        except (TypeError, ValueError):
            raise ValueError(f"train_seeds: {item!r} is not an integer seed (got {extra!r})") from None
        if k not in seeds:
            seeds.append(k)
    return seeds
