"""Training engine of the image branch: any domain-adaptation method, coarse or fine labels.

Loss per iteration: ``CE(source) + weight * ramp(p) * L(batch)``, with ``L`` the loss of the
configured method (:mod:`aims_lib.adaptation`: source-only, LMMD, DAN, DANN, CDAN+E, MCC, by
name; the trainer knows none of them) and ``p`` the training progress in [0, 1]. Weight and ramp
default to the method's (LMMD: the paper's Eq. 4, lambda = 0.5). LMMD's ramp is selectable because
the public implementations disagree (:mod:`aims_lib.adaptation.schedule`): ``none``, ``dsan``
(the author's code) and ``deepda`` (the toolkit the paper's lab used).

LMMD's default is ``deepda``: the DSAN ramp reaches the full weight within a short schedule (the
quick profile's 300 iterations), and with 12 fine classes in a batch of 32 LMMD's estimate is
dominated by each source sample's similarity to itself, which every feature collapsing onto one
point removes (``docs/decisions.md``, "LMMD's ramp is DeepDA's").

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

A run is a directory (:mod:`aims_lib.run_directory`): ``config.json``, ``checkpoints/last.pt``
(every epoch, for resuming), ``checkpoints/best.pt``, ``metrics.json`` and ``outputs.npz`` (logits
and bottleneck features of every image of every split, which HIPC and the plots read). Each epoch draws its data order and
augmentation from ``(seed, epoch)``, so a resumed run ends with the same weights as an
uninterrupted one on the CPU.

Sources: ``docs/references.md#lmmd``, ``docs/references.md#paper``.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler
from tqdm.auto import tqdm

from aims_lib import taxonomy
from aims_lib.adaptation import METHODS, AdaptationBatch, DomainAdaptation, build_method, get_method
from aims_lib.adaptation.schedule import RAMPS, Ramp, ramp_factor
from aims_lib.data.format import AimsDataset, Sample, load_dataset
from aims_lib.data.torch_datasets import ImageDataset
from aims_lib.files import write_json, write_npz, write_torch
from aims_lib.image_branch import distributed
from aims_lib.image_branch.backbones import get_backbone
from aims_lib.image_branch.model import ImageBranch
from aims_lib.image_branch.trunk_cache import TrunkFeatureDataset, load_or_build_trunk_cache
from aims_lib.mixed_precision import PRECISIONS, MixedPrecision
from aims_lib.profiles import Profile
from aims_lib.run_directory import claim_run_directory, per_group
from aims_lib.safe_pickle import load_weights_file
from aims_lib.statistics import top1
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
#: Settings that say where and how fast a run computes, not what: they may change on a resume.
MACHINE_SETTINGS: tuple[str, ...] = ("device", "num_workers", "processes")


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
    and its inputs to oneDNN's and cuDNN's preferred layout (faster, the same logits to float32
    rounding: ``docs/decisions.md``, "a dry run of the paper profile on the CPU"): once training
    is over, as the layout would change a training run's numerics."""
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
        return ImageDataset(self.ds, image_size=self.cfg.image_size, train=train, samples=samples,
                            normalization=self.normalization)


@dataclass
class _Run:
    """One run in training: its settings, this process, what it trains and where it stands."""

    cfg: ImageTrainConfig
    run_dir: Path
    procs: distributed.Processes
    device: torch.device
    model: ImageBranch
    method: DomainAdaptation
    network: nn.Module  # the model, or its DistributedDataParallel wrapper
    optimizer: torch.optim.Optimizer
    amp: MixedPrecision
    start_epoch: int = 0
    best_acc: float = -1.0
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def checkpoints(self) -> Path:
        return self.run_dir / "checkpoints"


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
    run_dir, device = Path(run_dir), torch.device(cfg.device)
    claim_run_directory(run_dir, "config.json", {**asdict(cfg), "dataset": str(ds.path)}, MACHINE_SETTINGS, procs.main)
    samples = _training_samples(ds, cfg)
    model, method = _build_model(cfg, device, run_dir)
    inputs = _shared_inputs(ds, model, cfg, Path(cache_dir) if cache_dir else run_dir.parent / "trunk_cache", device, procs)
    source_ds, target_ds = inputs(samples["source"], train=True), inputs(samples["target"], train=True)
    val_ds = inputs(samples["val"], train=False)
    run = _build_run(cfg, run_dir, procs, device, model, method)
    _resume(run)
    if run.start_epoch >= cfg.epochs and (run_dir / "metrics.json").exists() and (run_dir / "outputs.npz").exists():
        log.info("%s: finished run, reusing its metrics and outputs", run_dir)
        return json.loads((run_dir / "metrics.json").read_text())
    val_labels = np.array([s.coarse_id if cfg.level == "coarse" else s.fine_id for s in val_ds.samples])
    for epoch in range(run.start_epoch, cfg.epochs):
        t0 = time.perf_counter()
        sums = _train_epoch(run, epoch, source_ds, target_ds, inputs.start)
        _validate_and_save(run, epoch, sums, val_ds, val_labels, inputs.start, t0)
    metrics = finalize_run(ds, run_dir, cfg, model, run.history, device, inputs) if procs.main else None
    procs.barrier()
    return metrics if metrics is not None else json.loads((run_dir / "metrics.json").read_text())


def _training_samples(ds: AimsDataset, cfg: ImageTrainConfig) -> dict[str, list[Sample]]:
    """The source, target and validation samples of a run, each checked to be non-empty."""
    source = [s for d, sp in SOURCE_SPLITS[cfg.source] for s in ds.select(sp, d)]
    target = ds.select("train", "real")
    if not source or not target:
        raise ValueError(f"{ds.path}: empty source ({len(source)}) or target ({len(target)}) training set")
    val = ds.select("val", "real")
    if not val:
        raise ValueError(f"{ds.path}: no real validation images: model selection needs them")
    return {"source": source, "target": target, "val": val}


def _build_model(cfg: ImageTrainConfig, device: torch.device, run_dir: Path) -> tuple[ImageBranch, DomainAdaptation]:
    """The network and the adaptation method, their initial weights drawn from ``cfg.seed`` in that order."""
    torch.manual_seed(cfg.seed)
    model = ImageBranch(cfg.arch, cfg.num_classes, cfg.pretrained, cfg.freeze_stages).to(device)
    method = build_method(cfg.method, cfg.num_classes, model.classifier.in_features).to(device)
    log.info("%s: %s backbone, weights: %s, %d of %d stages frozen", run_dir, cfg.arch,
             cfg.pretrained_source or cfg.pretrained or "none (from scratch)", cfg.freeze_stages, model.backbone.num_stages)
    return model, method


def _shared_inputs(
    ds: AimsDataset, model: ImageBranch, cfg: ImageTrainConfig, cache: Path, device: torch.device,
    procs: distributed.Processes,
) -> _Inputs:
    """The network's inputs: process 0 builds the shared cache of frozen stages, the others then read it."""
    if not procs.main:
        procs.barrier()
    inputs = _Inputs(ds, model, cfg, cache, device)
    if procs.main:
        procs.barrier()
    return inputs


def _build_run(
    cfg: ImageTrainConfig, run_dir: Path, procs: distributed.Processes, device: torch.device, model: ImageBranch,
    method: DomainAdaptation,
) -> _Run:
    """A new run: DSAN's SGD over the network's and the method's weights, the precision, and DDP over several processes."""
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
    return _Run(cfg, run_dir, procs, device, model, method, network, optimizer, amp)


def _resume(run: _Run) -> None:
    """Continue from ``checkpoints/last.pt`` when there is one: weights, optimiser, scaler and progress."""
    last = run.checkpoints / "last.pt"
    if not last.exists():
        return
    state = load_weights_file(last, map_location=run.device)
    run.model.load_state_dict(state["model"])
    run.method.load_state_dict(state["adaptation"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.amp.load_state_dict(state["scaler"])
    run.start_epoch, run.best_acc, run.history = state["epoch"] + 1, state["best_val_acc"], state["history"]
    log.info("resuming %s at epoch %d", run.run_dir, run.start_epoch)


def _train_epoch(run: _Run, epoch: int, source_ds: Dataset, target_ds: Dataset, start: int) -> dict[str, Any]:
    """Train one epoch; returns the sums of its losses: cross-entropy and the method's."""
    cfg, procs, device = run.cfg, run.procs, run.device
    torch.manual_seed(cfg.seed * 7919 + epoch)  # augmentation randomness of this epoch
    run.model.train()
    run.method.train()
    sums: dict[str, Any] = {"ce": 0.0, cfg.method: 0.0}
    total_iters = cfg.epochs * cfg.iters_per_epoch
    # Source-only training never looks at the target: its BatchNorm statistics are the
    # source's, as in a plain source-trained baseline (and each step costs half as much).
    targets = _epoch_loader(target_ds, cfg, epoch, 1) if run.method.uses_target else itertools.repeat(None)
    pairs = zip(_epoch_loader(source_ds, cfg, epoch, 0), targets)
    bar = tqdm(pairs, total=cfg.iters_per_epoch, desc=f"epoch {epoch + 1}/{cfg.epochs}", leave=False, unit="it")
    for i, (src, tgt) in enumerate(bar):
        it = epoch * cfg.iters_per_epoch + i
        for group in run.optimizer.param_groups:
            group["lr"] = dsan_lr(group["base_lr"], it)
        # this process's slice of the global batch (all of it in one process)
        images = [procs.slice(src["image"])] + ([] if tgt is None else [procs.slice(tgt["image"])])
        with run.amp.autocast():  # one pass: BatchNorm sees both domains, as in DSAN
            logits, feats = run.network(torch.cat(images).to(device, non_blocking=True), start)
        logits, feats = run.amp.outputs(logits, feats)
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
            transfer = run.method.adaptation_loss(AdaptationBatch(
                g(feats[:n_s]), g(feats[n_s:]), g(logits[:n_s]), g(logits[n_s:]), g(labels), g(probs), it / total_iters))
            loss = ce + cfg.adaptation_weight * ramp_factor(cfg.ramp, it / total_iters, it) * transfer
            sums[cfg.method] += transfer.detach()
        sums["ce"] += ce.detach()
        run.amp.step(loss, run.optimizer)
    return sums


def _validate_and_save(
    run: _Run, epoch: int, sums: dict[str, Any], val_ds: Dataset, val_labels: np.ndarray, start: int, t0: float
) -> None:
    """Score real val, record the epoch, and save ``best.pt`` when val improved and ``last.pt`` always."""
    cfg, procs, device = run.cfg, run.procs, run.device
    val_logits, _, _ = predict(run.model, val_ds, device, num_workers=cfg.num_workers, start=start,
                               precision=cfg.precision)
    val_acc = top1(val_logits, val_labels)
    means = torch.stack([torch.as_tensor(sums[k], dtype=torch.float32, device=device) for k in sums]) / cfg.iters_per_epoch
    if procs.size > 1:  # the global batch's losses: the mean of the processes' (equal slices)
        torch.distributed.all_reduce(means)
        means /= procs.size
    record = {"epoch": epoch + 1, "ce": float(means[0])}
    if run.method.uses_target:  # the method's loss under its name
        record[cfg.method] = float(means[1])
    record |= {
        "val_acc": val_acc,
        "lr": run.optimizer.param_groups[1]["lr"],
        "seconds": round(time.perf_counter() - t0, 2),
    }
    run.history.append(record)
    log.info("epoch %d: %s", epoch + 1, record)
    if val_acc > run.best_acc:
        run.best_acc = val_acc
        if procs.main:
            write_torch(run.checkpoints / "best.pt", {"model": run.model.state_dict(), "epoch": epoch, "val_acc": val_acc})
    if procs.main:
        write_torch(
            run.checkpoints / "last.pt",
            {"model": run.model.state_dict(), "adaptation": run.method.state_dict(), "optimizer": run.optimizer.state_dict(),
             "scaler": run.amp.state_dict(), "epoch": epoch, "best_val_acc": run.best_acc, "history": run.history},
        )


def finalize_run(
    ds: AimsDataset, run_dir: Path, cfg: ImageTrainConfig, model: ImageBranch, history: list[dict[str, Any]],
    device: torch.device, inputs: _Inputs,
) -> dict[str, Any]:
    """Reload the best checkpoint, predict every image, write ``outputs.npz`` and ``metrics.json``."""
    best = load_weights_file(run_dir / "checkpoints" / "best.pt", map_location=device)
    model.load_state_dict(best["model"])
    # channels-last for the whole network (faster on the CPU); runs on cached frozen stages keep the
    # default layout, and with it their outputs to the last bit, which HIPC's training is sensitive
    # to (docs/decisions.md, "a dry run of the paper profile on the CPU")
    logits, feats, ids = predict(model, inputs(ds.samples, train=False), device, num_workers=cfg.num_workers,
                                 start=inputs.start, channels_last=inputs.start == 0, precision=cfg.precision)
    write_npz(run_dir / "outputs.npz", image_id=ids, logits=logits, features=feats.astype(np.float16))
    by_id = {s.image_id: s for s in ds.samples}
    samples = [by_id[i] for i in ids]
    labels = np.array([getattr(s, f"{cfg.level}_id") for s in samples])
    accuracy = per_group(samples, lambda idx: top1(logits[idx], labels[idx]))
    metrics = {
        "config": asdict(cfg),
        "precision": MixedPrecision(device, cfg.precision).name,
        "best_epoch": int(best["epoch"]) + 1,
        "best_val_acc": float(best["val_acc"]),
        "accuracy": accuracy,
        "test_acc": accuracy.get("real/test", float("nan")),
        "history": history,
    }
    write_json(run_dir / "metrics.json", metrics)
    return metrics
