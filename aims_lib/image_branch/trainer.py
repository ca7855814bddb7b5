"""Training engine of the image branch: any domain-adaptation method, coarse or fine labels.

Loss per iteration: ``CE(source) + weight * ramp(p) * L(batch)``, with ``L`` the loss of the
configured method (:mod:`aims_lib.adaptation`: source-only, LMMD, DAN, DANN, CDAN+E, MCC, by
name; the trainer knows none of them) and ``p`` the training progress in [0, 1]. Weight and ramp
default to the method's (LMMD: the paper's Eq. 4, lambda = 0.5). LMMD's ramp is selectable because
the public implementations disagree (:mod:`aims_lib.adaptation.schedule`): ``none``, ``dsan``
(the author's code) and ``deepda`` (the toolkit the paper's lab used).

LMMD's default is ``deepda``. On the quick data (seed 0, real-val top-1, the only split that
selects anything) the DSAN ramp reaches the full weight within the quick profile's 300
iterations, and with 12 fine classes in a batch of 32 LMMD's estimate is dominated by each
source sample's similarity to itself, which every feature collapsing onto one point removes:
the fine run's cross-entropy went back to ln 12 and real val fell to 12 % (deepda: 30.7 %); on
coarse labels deepda also did better on val (synthetic source 40.0 -> 46.7 %, synthetic+real
49.3 -> 50.7 %).

Data: the source is the synthetic images, or synthetic plus the labelled real training images,
or (``source="real"``, source-only: the *target oracle*, the ceiling that adaptation works
towards) the labelled real training images alone; the target is the real training images without
their labels. Validation on real-val after every
epoch selects the checkpoint; the test split is only ever predicted, never used for selection.

With ``freeze_stages > 0`` the backbone's first stages are frozen and their output is read from
a cache shared by all runs (:mod:`aims_lib.image_branch.trunk_cache`); augmentation is then the
horizontal flip alone.

On a GPU the forward pass runs under bfloat16 or float16 autocast (``precision``,
:mod:`aims_lib.mixed_precision`; float32 on the CPU); with ``processes > 1`` the run trains
under torchrun with the global batch split over the processes
(:mod:`aims_lib.image_branch.distributed`), the same run as one process's.

A run is a directory: ``config.json``, ``checkpoints/last.pt`` (every epoch, for resuming),
``checkpoints/best.pt``, ``metrics.json`` and ``outputs.npz`` (logits and bottleneck features of
every image of every split, which HIPC and the plots read). Each epoch draws its data order and
augmentation from ``(seed, epoch)``, so a resumed run ends with the same weights as an
uninterrupted one on the CPU.

Sources: ``docs/references.md#lmmd``, ``docs/references.md#paper``.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm.auto import tqdm

from aims_lib import taxonomy
from aims_lib.adaptation import METHODS, AdaptationBatch, build_method, get_method
from aims_lib.adaptation.schedule import RAMPS, Ramp, ramp_factor
from aims_lib.data.format import AimsDataset, Sample, atomic_write_bytes, load_dataset
from aims_lib.data.torch_datasets import ImageDataset
from aims_lib.image_branch import distributed
from aims_lib.image_branch.backbones import get_backbone
from aims_lib.image_branch.model import ImageBranch
from aims_lib.image_branch.trunk_cache import TrunkFeatureDataset, load_or_build_trunk_cache
from aims_lib.mixed_precision import PRECISIONS, MixedPrecision
from aims_lib.profiles import Profile
from aims_lib.safe_pickle import load_weights_file
from aims_lib.torchrun import split_batch

log = logging.getLogger(__name__)

Level = Literal["coarse", "fine"]
Source = Literal["synthetic", "synthetic+real", "real"]
#: The labelled training images of each source.
SOURCE_SPLITS: dict[str, tuple[tuple[str, str], ...]] = {
    "synthetic": (("synthetic", "train"),),
    "synthetic+real": (("synthetic", "train"), ("real", "train")),
    "real": (("real", "train"),),
}
TargetLabels = Literal["predicted", "oracle"]
#: Fields of config.json renamed since runs were first written: old name -> new name.
RENAMED_FIELDS: dict[str, str] = {"lmmd_weight": "adaptation_weight"}


@dataclass(frozen=True)
class ImageTrainConfig:
    level: Level = "coarse"
    method: str = "lmmd"  # a name of aims_lib.adaptation.METHODS
    source: Source = "synthetic+real"
    arch: str = "resnet50"
    image_size: int = 224
    batch_size: int = 32  # per domain
    epochs: int = 20
    iters_per_epoch: int = 500
    lr: float = 0.01  # heads; DSAN's SGD settings
    backbone_lr_mult: float | None = None  # None: 0.1 with pretrained weights, 1.0 from scratch
    momentum: float = 0.9
    weight_decay: float = 5e-4
    #: Weight and ramp of the method's loss; None: the method's defaults. A method that never
    #: looks at the target (source-only) has neither: they are set to 0 and "none".
    adaptation_weight: float | None = None
    ramp: Ramp | None = None
    #: The target class probabilities a method reads (LMMD's class weights, CDAN's conditioning):
    #: the network's softmax on the unlabelled target ("predicted", the method) or the target's
    #: true labels ("oracle": a diagnostic upper bound of class-wise alignment with perfect
    #: pseudo-labels, never a reported result).
    target_labels: TargetLabels = "predicted"
    pretrained: str | None = None  # weights file the backbone starts from (see backbone_start)
    pretrained_source: str = ""  # where those weights come from, in words (config.json, logs)
    #: Leading backbone stages kept frozen (0: DSAN's full fine-tuning); their output is cached.
    freeze_stages: int = 0
    seed: int = 0
    device: str = "cpu"
    #: Forward-pass precision (:mod:`aims_lib.mixed_precision`): auto is bfloat16 or float16
    #: autocast on a GPU, float32 on the CPU.
    precision: str = "auto"
    num_workers: int = 0
    #: Processes (one per GPU) that train the run under torchrun, with the global batch
    #: ``batch_size`` split over them (:mod:`aims_lib.image_branch.distributed`); 1: this process.
    processes: int = 1

    def __post_init__(self) -> None:
        """Resolve the weight and ramp to the method's, so that config.json holds what ran."""
        if self.method not in METHODS:
            return  # validate() names the bad value
        method = get_method(self.method)
        weight, ramp = (self.adaptation_weight, self.ramp) if method.uses_target else (0.0, "none")
        object.__setattr__(self, "adaptation_weight", method.default_weight if weight is None else weight)
        object.__setattr__(self, "ramp", method.default_ramp if ramp is None else ramp)

    def validate(self) -> None:
        checks = {
            "level": (self.level, ("coarse", "fine")),
            "method": (self.method, tuple(METHODS)),
            "source": (self.source, tuple(SOURCE_SPLITS)),
            "ramp": (self.ramp, RAMPS),
            "target_labels": (self.target_labels, ("predicted", "oracle")),
            "precision": (self.precision, PRECISIONS),
        }
        for name, (value, valid) in checks.items():
            if value not in valid:
                raise ValueError(f"{name} must be one of {', '.join(valid)}, got {value!r}")
        for name in ("image_size", "batch_size", "epochs", "iters_per_epoch", "processes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.freeze_stages < 0:
            raise ValueError(f"freeze_stages must be >= 0, got {self.freeze_stages}")
        get_backbone(self.arch)
        if self.adaptation_weight < 0:
            raise ValueError(f"adaptation_weight must be >= 0, got {self.adaptation_weight}")
        if self.source == "real" and get_method(self.method).uses_target:
            raise ValueError("source 'real' is the target oracle (trained on the real training labels): method must be "
                             f"one that reads no target (source_only), got {self.method!r}")

    @property
    def num_classes(self) -> int:
        return taxonomy.NUM_COARSE if self.level == "coarse" else taxonomy.NUM_FINE


def stored_config(stored: dict[str, Any]) -> dict[str, Any]:
    """A run's config.json as today's settings: renamed fields under their new names, settings
    added since at their defaults, resolved and normalised as a new config is (so a source-only
    run written with an LMMD weight still matches)."""
    names = {f.name for f in fields(ImageTrainConfig)}
    values = {RENAMED_FIELDS.get(k, k): v for k, v in stored.items()}
    return {**asdict(ImageTrainConfig(**{k: v for k, v in values.items() if k in names})), "dataset": values.get("dataset")}


def profile_config(profile: Profile, level: Level, source: Source, method: str, **overrides: Any) -> ImageTrainConfig:
    """The run settings of a profile (architecture, input size, schedule) for one setting."""
    sizes = dict(arch=profile.image_arch, image_size=profile.image_size, epochs=profile.image_epochs,
                 iters_per_epoch=profile.image_iters, batch_size=profile.image_batch,
                 freeze_stages=profile.image_freeze_stages)
    return ImageTrainConfig(level=level, source=source, method=method, **{**sizes, **overrides})


#: Run directory (under ``runs/``) of the synthetic pretraining of the backbone.
PRETRAIN_RUN: str = "image_pretrain_synthetic_fine"


@dataclass(frozen=True)
class BackboneStart:
    """The weights every image-branch run of a profile starts from, and where they come from."""

    weights: str | None
    source: str


def backbone_start(
    dataset: AimsDataset, run_root: Path, profile: Profile, pretrained: str | None = None, **overrides: Any
) -> BackboneStart:
    """The backbone weights every image-branch run of a profile starts from.

    In order: a user's file (``pretrained``, e.g. torchvision's ImageNet ResNet-50); the ImageNet
    weights that a pinned package ships for the profile's backbone (EfficientNet-Lite0); and,
    only when neither is at hand, a stand-in for ImageNet trained here, once: a source-only run
    on the synthetic images' fine labels (no real image is trained on; real val selects the
    epoch), resumed if interrupted. With ``pretrain_epochs == 0`` the fallback is from scratch.
    Every run starting from pretrained weights trains its backbone at DSAN's 0.1 x lr.
    """
    if pretrained:
        return BackboneStart(pretrained, f"file {pretrained}")
    spec = get_backbone(profile.image_arch)
    if spec.packaged_weights is not None:
        try:
            return BackboneStart(str(spec.packaged_weights()), spec.weights_note)
        except ImportError as exc:
            log.warning("%s; falling back to pretraining on the synthetic images", exc)
    if profile.pretrain_epochs == 0:
        return BackboneStart(None, "none (from scratch)")
    cfg = profile_config(profile, "fine", "synthetic", "source_only", epochs=profile.pretrain_epochs,
                         iters_per_epoch=profile.pretrain_iters, freeze_stages=0, **overrides)
    train_image_branch(dataset, run_root / PRETRAIN_RUN, cfg)
    return BackboneStart(str(run_root / PRETRAIN_RUN / "checkpoints" / "best.pt"),
                         f"pretrained here on the synthetic images' fine labels ({PRETRAIN_RUN}): a stand-in for ImageNet")


def run_name(
    level: Level, source: Source, method: str, weight: float | None = None, train_seed: int | None = None
) -> str:
    """Directory name of a run under ``runs/`` (notebooks 02, 04 and 05 share them); a weight
    other than the method's default (``_lambda<w>``) and a training seed other than the data's
    (``train_seed``) are part of the name."""
    spec = get_method(method)
    name = f"image_{level}_{source}_{method}"
    if spec.uses_target and weight is not None and weight != spec.default_weight:
        name += f"_lambda{weight:g}"
    return name if train_seed is None else f"{name}_seed{train_seed}"


def predictions_of_run(run_dir: Path, samples: Sequence[Sample]) -> np.ndarray:
    """Logits (N, C) of a finished run (its ``outputs.npz``) for ``samples``, in their order."""
    path = Path(run_dir) / "outputs.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: train the run first (train_image_branch writes it)")
    with np.load(path, allow_pickle=False) as z:
        row = {int(i): r for r, i in enumerate(z["image_id"])}
        missing = [s.image_id for s in samples if s.image_id not in row]
        if missing:
            raise KeyError(f"{path} has no output for {len(missing)} image id(s): {missing[:10]}")
        return z["logits"][[row[s.image_id] for s in samples]]


def dsan_lr(base_lr: float, iteration: int) -> float:
    """DSAN/DeepDA's annealing: ``lr * (1 + 0.0003 it) ** -0.75``."""
    return base_lr * (1.0 + 0.0003 * iteration) ** -0.75


def _epoch_loader(ds: Dataset, cfg: ImageTrainConfig, epoch: int, stream: int) -> DataLoader:
    """Exactly ``iters_per_epoch`` batches in an order fixed by ``(seed, epoch, stream)``."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch * 101 + stream)
    sampler = RandomSampler(ds, replacement=False, num_samples=cfg.iters_per_epoch * cfg.batch_size, generator=g)
    return DataLoader(
        ds, batch_size=cfg.batch_size, sampler=sampler, num_workers=cfg.num_workers, drop_last=True,
        generator=g, persistent_workers=False, pin_memory=torch.device(cfg.device).type == "cuda",
    )


@torch.no_grad()
def predict(
    model: ImageBranch, ds: Dataset, device: torch.device, batch_size: int = 128, num_workers: int = 0, start: int = 0,
    channels_last: bool = False, precision: str = "auto",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits, bottleneck features and image ids of every item of ``ds`` (images, or the output
    of backbone stage ``start - 1`` when ``start > 0``). ``channels_last`` converts the model
    and its inputs to oneDNN's and cuDNN's preferred layout (ResNet-50 at 224 px on 2 CPU cores:
    14.5 instead of 8.5 images/s, logits equal to about 1e-5): once training is over, as the
    layout would change a training run's numerics."""
    model.eval()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=num_workers,
                        pin_memory=torch.device(device).type == "cuda")
    logits, feats, ids = [], [], []
    layout = torch.channels_last if channels_last else torch.contiguous_format
    amp = MixedPrecision(device, precision)
    for batch in loader:
        with amp.autocast():
            out, f = model(batch["image"].to(device, non_blocking=True).contiguous(memory_format=layout), start)
        logits.append(out.float().cpu())
        feats.append(f.float().cpu())
        ids.append(batch["image_id"])
    return torch.cat(logits).numpy(), torch.cat(feats).numpy(), torch.cat(ids).numpy()


def _accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean() * 100) if len(labels) else float("nan")


def _save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


class _Inputs:
    """What the network reads, per list of samples: images through the training or evaluation
    transform, or (with frozen stages) their cached output, from stage ``start`` on."""

    def __init__(self, ds: AimsDataset, model: ImageBranch, cfg: ImageTrainConfig, cache_dir: Path, device: torch.device) -> None:
        self.ds, self.cfg = ds, cfg
        self.start = cfg.freeze_stages
        self.cache = None
        if self.start:
            self.cache = load_or_build_trunk_cache(model, ds, cfg.image_size, cfg.pretrained, cache_dir, device, cfg.num_workers)
        self.normalization = model.normalization

    def __call__(self, samples: list[Sample], train: bool) -> Dataset:
        if self.cache is not None:
            return TrunkFeatureDataset(self.cache, samples, train=train)
        return ImageDataset(self.ds, image_size=self.cfg.image_size, train=train, samples=samples, normalization=self.normalization)


def train_image_branch(
    dataset: AimsDataset | str | Path, run_dir: str | Path, cfg: ImageTrainConfig, cache_dir: str | Path | None = None
) -> dict[str, Any]:
    """Train (or resume) one image-branch run; returns its metrics (also in ``metrics.json``).

    ``cache_dir`` holds the frozen stages' cached output, shared by runs (default: a
    ``trunk_cache`` folder beside ``run_dir``)."""
    cfg.validate()
    procs = distributed.current()  # several under torchrun (aims_lib.image_branch.distributed)
    ds = dataset if isinstance(dataset, AimsDataset) else load_dataset(dataset)
    split_batch(cfg.batch_size, procs.size if procs.size > 1 else cfg.processes)  # inside the group, or before it starts
    if cfg.processes > 1 and procs.size == 1:  # start them; each comes back here inside the group
        return distributed.train_distributed(ds.path, run_dir, cfg, cfg.processes)
    run_dir = Path(run_dir)
    device = torch.device(cfg.device)
    config_path = run_dir / "config.json"
    config = {**asdict(cfg), "dataset": str(ds.path)}
    if config_path.exists():
        previous = stored_config(json.loads(config_path.read_text()))
        changed = {k: (previous.get(k), v) for k, v in config.items()
                   if k not in ("device", "num_workers", "processes") and previous.get(k) != v}
        if changed:
            raise ValueError(f"{run_dir} holds a run with other settings {changed} (old, new): use another run directory")
    if procs.main:
        atomic_write_bytes(config_path, json.dumps(config, indent=2).encode())

    source_samples = [s for d, sp in SOURCE_SPLITS[cfg.source] for s in ds.select(sp, d)]
    target_samples = ds.select("train", "real")
    if not source_samples or not target_samples:
        raise ValueError(f"{ds.path}: empty source ({len(source_samples)}) or target ({len(target_samples)}) training set")
    if not ds.select("val", "real"):
        raise ValueError(f"{ds.path}: no real validation images: model selection needs them")

    torch.manual_seed(cfg.seed)
    model = ImageBranch(cfg.arch, cfg.num_classes, cfg.pretrained, cfg.freeze_stages).to(device)
    method = build_method(cfg.method, cfg.num_classes, model.classifier.in_features).to(device)
    log.info("%s: %s backbone, weights: %s, %d of %d stages frozen", run_dir, cfg.arch,
             cfg.pretrained_source or cfg.pretrained or "none (from scratch)", cfg.freeze_stages, model.backbone.num_stages)
    cache = Path(cache_dir) if cache_dir else run_dir.parent / "trunk_cache"
    if not procs.main:  # process 0 builds the shared cache, the others read it
        procs.barrier()
    inputs = _Inputs(ds, model, cfg, cache, device)
    if procs.main:
        procs.barrier()
    source_ds, target_ds = inputs(source_samples, train=True), inputs(target_samples, train=True)
    val_ds = inputs(ds.select("val", "real"), train=False)
    mult = cfg.backbone_lr_mult if cfg.backbone_lr_mult is not None else (0.1 if model.pretrained else 1.0)
    groups = model.parameter_groups(cfg.lr, mult)
    if extra := [p for p in method.parameters() if p.requires_grad]:  # a discriminator learns at the heads' rate (TLlib)
        groups.append({"params": extra, "lr": cfg.lr, "base_lr": cfg.lr})
    optimizer = torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    amp = MixedPrecision(device, cfg.precision)
    network: nn.Module = model
    if procs.size > 1:  # gradients averaged over processes, BatchNorm over the global batch
        network = nn.parallel.DistributedDataParallel(
            distributed.to_global_batchnorm(model), device_ids=[device.index] if device.type == "cuda" else None)

    ckpt_dir = run_dir / "checkpoints"
    history: list[dict[str, Any]] = []
    start_epoch, best_acc = 0, -1.0
    last = ckpt_dir / "last.pt"
    if last.exists():
        state = load_weights_file(last, map_location=device)
        model.load_state_dict(state["model"])
        method.load_state_dict(state.get("adaptation", {}))  # runs from before the interface: methods without state
        optimizer.load_state_dict(state["optimizer"])
        amp.load_state_dict(state.get("scaler", {}))  # runs from before mixed precision: none
        start_epoch, best_acc, history = state["epoch"] + 1, state["best_val_acc"], state["history"]
        log.info("resuming %s at epoch %d", run_dir, start_epoch)

    if start_epoch >= cfg.epochs and (run_dir / "metrics.json").exists() and (run_dir / "outputs.npz").exists():
        log.info("%s: finished run, reusing its metrics and outputs", run_dir)
        return json.loads((run_dir / "metrics.json").read_text())
    total_iters = cfg.epochs * cfg.iters_per_epoch
    val_labels = np.array([s.coarse_id if cfg.level == "coarse" else s.fine_id for s in val_ds.samples])
    for epoch in range(start_epoch, cfg.epochs):
        torch.manual_seed(cfg.seed * 7919 + epoch)  # augmentation randomness of this epoch
        model.train()
        method.train()
        t0 = time.perf_counter()
        sums = {"ce": 0.0, cfg.method: 0.0}
        # Source-only training never looks at the target: its BatchNorm statistics are the
        # source's, as in a plain source-trained baseline (and each step costs half as much).
        targets = _epoch_loader(target_ds, cfg, epoch, 1) if method.uses_target else itertools.repeat(None)
        pairs = zip(_epoch_loader(source_ds, cfg, epoch, 0), targets)
        bar = tqdm(pairs, total=cfg.iters_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, unit="it")
        for i, (src, tgt) in enumerate(bar):
            it = epoch * cfg.iters_per_epoch + i
            for group in optimizer.param_groups:
                group["lr"] = dsan_lr(group["base_lr"], it)
            # this process's slice of the global batch (all of it in one process)
            images = [procs.slice(src["image"])] + ([] if tgt is None else [procs.slice(tgt["image"])])
            with amp.autocast():  # one pass: BatchNorm sees both domains, as in DSAN
                logits, feats = network(torch.cat(images).to(device, non_blocking=True), inputs.start)
            logits, feats = amp.outputs(logits, feats)
            n_s = len(images[0])
            labels = procs.slice(src[cfg.level]).to(device)
            ce = nn.functional.cross_entropy(logits[:n_s], labels)
            loss = ce
            if tgt is not None:
                if cfg.target_labels == "oracle":
                    probs = nn.functional.one_hot(procs.slice(tgt[cfg.level]).to(device), cfg.num_classes).to(logits.dtype)
                else:
                    probs = torch.softmax(logits[n_s:], dim=1).detach()
                g = distributed.gather  # the loss of the whole global batch, in every process
                transfer = method.adaptation_loss(AdaptationBatch(
                    g(feats[:n_s]), g(feats[n_s:]), g(logits[:n_s]), g(logits[n_s:]), g(labels), g(probs), it / total_iters))
                loss = ce + cfg.adaptation_weight * ramp_factor(cfg.ramp, it / total_iters, it) * transfer
                sums[cfg.method] += transfer.detach()
            sums["ce"] += ce.detach()
            amp.step(loss, optimizer)
        val_logits, _, _ = predict(model, val_ds, device, num_workers=cfg.num_workers, start=inputs.start,
                                   precision=cfg.precision)
        val_acc = _accuracy(val_logits, val_labels)
        means = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32, device=device) for k in sums]) / cfg.iters_per_epoch
        if procs.size > 1:  # the global batch's losses: the mean of the processes' (equal slices)
            torch.distributed.all_reduce(means)
            means /= procs.size
        record = {"epoch": epoch + 1, "ce": float(means[0])}
        if method.uses_target:  # the method's loss under its name
            record[cfg.method] = float(means[1])
        record |= {
            "val_acc": val_acc,
            "lr": optimizer.param_groups[1]["lr"],
            "seconds": round(time.perf_counter() - t0, 2),
        }
        history.append(record)
        log.info("epoch %d: %s", epoch + 1, record)
        if val_acc > best_acc:
            best_acc = val_acc
            if procs.main:
                _save_checkpoint(ckpt_dir / "best.pt", {"model": model.state_dict(), "epoch": epoch, "val_acc": val_acc})
        if procs.main:
            _save_checkpoint(
                last, {"model": model.state_dict(), "adaptation": method.state_dict(), "optimizer": optimizer.state_dict(),
                       "scaler": amp.state_dict(),
                       "epoch": epoch, "best_val_acc": best_acc, "history": history},
            )
    metrics = finalize_run(ds, run_dir, cfg, model, history, device, inputs) if procs.main else None
    procs.barrier()
    return metrics if metrics is not None else json.loads((run_dir / "metrics.json").read_text())


def finalize_run(
    ds: AimsDataset, run_dir: Path, cfg: ImageTrainConfig, model: ImageBranch, history: list[dict[str, Any]],
    device: torch.device, inputs: _Inputs,
) -> dict[str, Any]:
    """Reload the best checkpoint, predict every image, write ``outputs.npz`` and ``metrics.json``."""
    best = load_weights_file(run_dir / "checkpoints" / "best.pt", map_location=device)
    model.load_state_dict(best["model"])
    # channels-last for the whole network (the paper profile's ResNet-50: 1.7x on the CPU); runs on
    # cached frozen stages keep the default layout, and with it their outputs to the last bit
    # (the full model's HIPC, trained on them, moved by 1.5 points fine when they moved by 1e-5)
    logits, feats, ids = predict(model, inputs(ds.samples, train=False), device, num_workers=cfg.num_workers,
                                 start=inputs.start, channels_last=inputs.start == 0, precision=cfg.precision)
    buf = io.BytesIO()
    np.savez_compressed(buf, image_id=ids, logits=logits, features=feats.astype(np.float16))
    atomic_write_bytes(run_dir / "outputs.npz", buf.getvalue())
    by_id = {s.image_id: s for s in ds.samples}
    accuracy: dict[str, float] = {}
    for domain in ("synthetic", "real"):
        for split in ("train", "val", "test"):
            sel = np.array([by_id[i].domain == domain and by_id[i].split == split for i in ids])
            if sel.any():
                labels = np.array([getattr(by_id[i], f"{cfg.level}_id") for i in ids[sel]])
                accuracy[f"{domain}/{split}"] = _accuracy(logits[sel], labels)
    metrics = {
        "config": asdict(cfg),
        "precision": MixedPrecision(device, cfg.precision).name,
        "best_epoch": int(best["epoch"]) + 1,
        "best_val_acc": float(best["val_acc"]),
        "accuracy": accuracy,
        "test_acc": accuracy.get("real/test", float("nan")),
        "history": history,
    }
    atomic_write_bytes(run_dir / "metrics.json", json.dumps(metrics, indent=2).encode())
    return metrics
