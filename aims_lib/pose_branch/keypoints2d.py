"""Training a 2D keypoint estimator (an mmpose top-down config) on our dataset: a run directory.

:func:`train_keypoints_2d` trains an mmpose config (``configs/pose2d``) with mmengine's Runner
on per-split COCO files (:mod:`aims_lib.pose_branch.coco_files`; train = synthetic train + real
train, or one domain's: ``Pose2DTrainConfig.train_domains``; validation = real val, test = real
test), validates every epoch with mmpose's CocoMetric and PCKAccuracy, keeps the best checkpoint
by val PCK@0.05 (the config says why), resumes after an interruption (with ``processes > 1``:
under torchrun, :mod:`aims_lib.pose_branch.distributed_2d`), then predicts every image with the
best checkpoint (:mod:`aims_lib.pose_branch.mmpose_estimator`) and evaluates each (domain, split)
group (:mod:`aims_lib.pose_branch.metrics_2d`). A run is a directory: ``coco/*.json``,
mmengine's checkpoints and logs (``<timestamp>/``, ``stdout.log``), ``config.json`` (the merged
config, as data: :mod:`aims_lib.pose_branch.model_config`), ``history.jsonl`` (training and
validation records per epoch), ``metrics.json`` and ``keypoints2d.npz`` (``image_id``,
``keypoints`` (N, 17, 2) in image pixels, ``scores`` (N, 17)) for every image of every split,
which SMPLify reads. :func:`~aims_lib.pose_branch.metrics_2d.learning_curve`
says what each epoch's training minutes bought.

Runs are seeded: two CPU runs with the same seed give identical keypoints. A resumed run shuffles
its epochs as an uninterrupted one would (mmengine's sampler seeds by epoch), but its
augmentation draws restart from the seed, so it ends close to, not bit-identical with, an
uninterrupted run. Training runs where mmengine puts it: the GPU when there is one. HRNet trains
from scratch unless a checkpoint is given (an assumption of ours, the paper is silent: no
ImageNet weights can be downloaded here; the Lite0 config has them from a package).

Configs (``configs/pose2d``): ``lite0_160x160.py`` (the quick and smoke profiles: ImageNet
EfficientNet-Lite0 fine-tuned, 3.5 M parameters, bfloat16 on CPUs that have it),
``hrnet_w16s_96x96.py`` (a CPU-sized HRNet from scratch, the baseline it replaced) and
``hrnet_w32_256x192.py`` (the paper's, a GPU config). Their speeds and accuracies:
``docs/decisions.md`` ("Measurements moved from docstrings") and
``benchmarks/pose2d_training_speed.py``, ``benchmarks/pose_branch_benchmark.py``.

Sources: ``docs/references.md#mmpose``, ``docs/references.md#syrip``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from aims_lib.data.format import DOMAINS, AimsDataset, load_dataset
from aims_lib.files import write_json, write_torch
from aims_lib.machine import resolve_device
from aims_lib.pose_branch.coco_files import split_sets, write_coco_splits
from aims_lib.pose_branch.estimator import PREDICTIONS_FILE, save_predictions
from aims_lib.pose_branch.metrics_2d import evaluate_keypoints_2d
from aims_lib.pose_branch.mmpose_estimator import Pose2DEstimator, load_weights, quiet_mmpose
from aims_lib.pose_branch.model_config import (
    CONFIG_DIR,
    RUN_CONFIG_FILE,
    check_config_path,
    read_config,
    write_config_data,
)
from aims_lib.pose_branch.run_checkpoints import latest_checkpoint
from aims_lib.run_directory import claim_run_directory, per_group
from aims_lib.safe_checkpoints import mmengine_safe_globals
from aims_lib.torchrun import run_module, split_batch

if TYPE_CHECKING:
    from mmengine.config import Config

log = logging.getLogger(__name__)

PAPER_CONFIG: Final[Path] = CONFIG_DIR / "hrnet_w32_256x192.py"
CPU_CONFIG: Final[Path] = CONFIG_DIR / "hrnet_w16s_96x96.py"
METRICS_FILE: Final[str] = "metrics.json"
HISTORY_FILE: Final[str] = "history.jsonl"
#: Settings that say how fast a run computes, not what: they may change on a resume.
MACHINE_SETTINGS: Final[tuple[str, ...]] = ("num_workers", "predict_batch_size", "processes")


@dataclass(frozen=True)
class Pose2DTrainConfig:
    """What a run sets on top of its mmpose config; None keeps the config's value."""

    config: str = str(CPU_CONFIG)  # mmpose config: a .py under configs/pose2d, or a .json (data)
    epochs: int | None = None
    batch_size: int | None = None
    checkpoint: str | None = None  # initial weights (a local file); None: from scratch
    trust_checkpoint: bool = False  # opt-in: unpickle `checkpoint` fully (a legacy file whose origin you vouch for)
    trust_config: bool = False  # opt-in: execute a .py `config` from outside configs/pose2d (a file you vouch for)
    seed: int = 0
    #: Domains whose training images train the model ("synthetic" alone: the card's 2D row
    #: without target labels, :mod:`aims_lib.pose_card`); validation is always real val.
    train_domains: tuple[str, ...] = DOMAINS
    #: Processes (one per GPU) under torchrun with mmengine's ``pytorch`` launcher, the batch
    #: split over them (:mod:`aims_lib.pose_branch.distributed_2d`); 1: this process.
    processes: int = 1
    num_workers: int = 0
    predict_batch_size: int = 8  # inference batch (docs/decisions.md: "2D configs' speeds and accuracies")

    def validate(self) -> None:
        check_config_path(self.config, self.trust_config)
        if self.checkpoint is not None and not Path(self.checkpoint).is_file():
            raise FileNotFoundError(f"checkpoint not found: {self.checkpoint}")
        for name in ("epochs", "batch_size", "processes"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if self.num_workers < 0 or self.predict_batch_size < 1:
            raise ValueError(f"num_workers must be >= 0 and predict_batch_size >= 1: {self}")


def rescale_schedule(
    schedulers: list[dict[str, Any]], base_epochs: int, epochs: int, total_iters: int
) -> list[dict[str, Any]]:
    """Fit a config's LR schedule to a run of another length, so one config serves all profiles:
    epoch milestones scale with ``epochs / base_epochs``; an iteration warm-up is capped at a
    tenth of the run (at least 2: mmengine's LinearLR with ``end=1`` never leaves its start)."""
    out = copy.deepcopy(schedulers)
    for s in out:
        if s.get("by_epoch", True):
            f = epochs / base_epochs
            if "milestones" in s:
                s["milestones"] = [max(1, round(m * f)) for m in s["milestones"]]
            if "end" in s:
                s["end"] = max(1, round(s["end"] * f))
        elif "end" in s:
            s["end"] = max(2, min(s["end"], total_iters // 10))
    return out


def build_run_config(cfg: Pose2DTrainConfig, coco: dict[str, Path], image_root: Path, run_dir: Path, n_train: int) -> Config:
    """The mmpose config with this run's data, length, batch, seed and work dir filled in."""
    c = read_config(cfg.config, cfg.trust_config)
    base_epochs = int(c.train_cfg.max_epochs)
    epochs = cfg.epochs or base_epochs
    batch = cfg.batch_size or int(c.train_dataloader.batch_size)
    iters = epochs * math.ceil(n_train / batch)
    loader = {"num_workers": cfg.num_workers, "persistent_workers": cfg.num_workers > 0}
    options: dict[str, Any] = {
        "work_dir": str(run_dir),
        "experiment_name": f"pose2d_{uuid.uuid4().hex[:8]}",  # mmengine's logger/visualiser names are global
        "randomness": {"seed": cfg.seed, "deterministic": False},
        "train_cfg.max_epochs": epochs,
        "param_scheduler": rescale_schedule(list(c.param_scheduler), base_epochs, epochs, iters),
        "train_dataloader.batch_size": batch,
        "val_evaluator": _with_ann_file(c.val_evaluator, coco["val"]),
        "test_evaluator": _with_ann_file(c.test_evaluator, coco["test"]),
    }
    for name, split in (("train_dataloader", "train"), ("val_dataloader", "val"), ("test_dataloader", "test")):
        options.update({f"{name}.{k}": v for k, v in loader.items()})
        options[f"{name}.dataset.ann_file"] = str(coco[split])
        options[f"{name}.dataset.data_root"] = ""
        options[f"{name}.dataset.data_prefix"] = {"img": str(image_root)}
    c.merge_from_dict(options)
    return c


def _with_ann_file(evaluators: Any, path: Path) -> list[dict[str, Any]]:
    """The config's evaluator(s), with CocoMetric reading this run's ground truth."""
    listed = evaluators if isinstance(evaluators, list) else [evaluators]
    return [{**e, "ann_file": str(path)} if e["type"] == "CocoMetric" else dict(e) for e in listed]


def _progress_hook(run_dir: Path) -> Any:
    """A hook that keeps the console to one progress bar and one line per epoch (mmengine's own
    log goes to the run directory) and appends each epoch to ``history.jsonl``."""
    from mmengine.hooks import Hook
    from tqdm.auto import tqdm

    class Progress(Hook):
        # before the checkpoint hook (VERY_LOW): an epoch is recorded, then saved; one lost in
        # between is trained again after a resume and its record replaced
        priority = "LOW"

        def _record(self, record: dict[str, Any]) -> None:
            with (run_dir / HISTORY_FILE).open("a") as f:
                f.write(json.dumps(record) + "\n")

        def before_train_epoch(self, runner: Any) -> None:
            self.bar = tqdm(total=len(runner.train_dataloader), desc=f"pose2d epoch {runner.epoch + 1}/{runner.max_epochs}",
                            leave=False, unit="it")
            self.t0, self.losses, self.images = time.perf_counter(), [], 0

        def after_train_iter(self, runner: Any, batch_idx: int, data_batch: Any = None, outputs: Any = None) -> None:
            self.bar.update()
            self.losses.append(float(outputs["loss"].detach()))
            self.images += len(data_batch["inputs"])

        def after_train_epoch(self, runner: Any) -> None:
            self.bar.close()
            seconds = time.perf_counter() - self.t0
            record = {"epoch": runner.epoch + 1, "loss": float(np.mean(self.losses)), "seconds": round(seconds, 2),
                      "train_images_per_s": round(self.images / seconds, 2)}
            log.info("pose2d epoch %d/%d: loss %.3g, %.1f img/s", record["epoch"], runner.max_epochs, record["loss"],
                     record["train_images_per_s"])
            self._record(record)

        def after_val_epoch(self, runner: Any, metrics: dict[str, float] | None = None) -> None:
            record = {"epoch": runner.epoch, **{k: float(v) for k, v in (metrics or {}).items()}}
            log.info("pose2d epoch %d: val AP %.3f, PCK@0.05 %.3f", runner.epoch, record.get("coco/AP", float("nan")),
                     record.get("PCK", float("nan")))
            self._record(record)

    return Progress()


def _runner(cfg: Config) -> Any:
    """mmengine's Runner with its console output limited to errors (its full log is a file in
    the run directory)."""
    from mmengine.runner import Runner

    class QuietRunner(Runner):  # type: ignore[misc]
        def build_logger(self, log_level: int | str = "INFO", log_file: str | None = None, **kwargs: Any) -> Any:
            logger = super().build_logger(log_level, log_file, **kwargs)
            for handler in logger.handlers:
                if not isinstance(handler, logging.FileHandler):
                    handler.setLevel(logging.ERROR)
            return logger

    return QuietRunner.from_cfg(cfg)


def train_keypoints_2d(
    dataset: AimsDataset | str | Path, run_dir: str | Path, cfg: Pose2DTrainConfig = Pose2DTrainConfig()
) -> dict[str, Any]:
    """Train (or resume) a 2D keypoint run, then predict every image and evaluate; returns the
    metrics (also in ``metrics.json``). Module docstring: what the run directory holds."""
    cfg.validate()
    run_dir = Path(run_dir).resolve()
    ds = dataset if isinstance(dataset, AimsDataset) else load_dataset(dataset)
    sets = split_sets(ds, cfg.train_domains)
    if not sets["train"] or not sets["val"]:
        raise ValueError(f"{ds.path}: {len(sets['train'])} training and {len(sets['val'])} real validation images: both are needed")
    claim_run_directory(run_dir, "settings.json", {**asdict(cfg), "dataset": str(ds.path)}, MACHINE_SETTINGS)

    coco = write_coco_splits(ds, run_dir / "coco", cfg.train_domains)
    config = build_run_config(cfg, coco, ds.root, run_dir, len(sets["train"]))
    # the batch is the global one: each process gets its share
    config.train_dataloader.batch_size = split_batch(int(config.train_dataloader.batch_size), cfg.processes)
    resume_from = latest_checkpoint(run_dir)
    config.resume = resume_from is not None
    config.load_from = None
    if resume_from is not None:
        log.info("pose2d: resuming %s from %s", run_dir, resume_from.name)
    elif cfg.checkpoint is not None:
        config.load_from = str(_initial_weights(config, Path(cfg.checkpoint), cfg.trust_checkpoint, run_dir))
        log.info("pose2d: initial weights from %s", cfg.checkpoint)
    else:
        log.info("pose2d: no checkpoint given: training %s from scratch", Path(cfg.config).name)
    write_config_data(config, run_dir / RUN_CONFIG_FILE)
    start = time.perf_counter()
    if cfg.processes > 1:
        run_module("aims_lib.pose_branch.distributed_2d", ["--run-dir", str(run_dir), "--device", resolve_device("auto")],
                   cfg.processes, run_dir / "torchrun.log")
    else:
        run_training(config, run_dir)
    return finalize_run(ds, run_dir, cfg, resumed=resume_from is not None, train_seconds=time.perf_counter() - start)


def run_training(config: Config, run_dir: Path, main_process: bool = True) -> None:
    """mmengine's Runner on a run's merged config, its console quiet (pycocotools and CocoMetric
    print to stdout: that goes to ``stdout.log``); the main process records the epochs."""
    import torch

    with (quiet_mmpose(), torch.serialization.safe_globals(mmengine_safe_globals()),  # mmengine's resume reads weights-only
          (run_dir / "stdout.log").open("a") as out, contextlib.redirect_stdout(out)):
        runner = _runner(config)
        if main_process:
            runner.register_hook(_progress_hook(run_dir))
        runner.train()


def _initial_weights(config: Config, checkpoint: Path, trusted: bool, run_dir: Path) -> Path:
    """The initial checkpoint checked against the run's model (another architecture fails here,
    before training), its names converted, saved as tensors only for mmengine to load: the one
    full unpickling a trusted legacy file needs happens here, never inside mmengine."""
    from mmpose.apis import init_model

    with quiet_mmpose():
        model = init_model(config, None, device="cpu")
    load_weights(model, checkpoint, trusted)
    return write_torch(run_dir / "initial_weights.pth", {"state_dict": model.state_dict(), "meta": {"source": str(checkpoint)}})


def finalize_run(ds: AimsDataset, run_dir: Path, cfg: Pose2DTrainConfig, resumed: bool,
                 train_seconds: float) -> dict[str, Any]:
    """Predict every image with the best checkpoint, save ``keypoints2d.npz`` and evaluate each
    (domain, split) group; the real test split is the headline. ``train_seconds``: this call's
    wall time in mmengine's Runner (training and validation, after a resume only the rest)."""
    estimator = Pose2DEstimator.load(run_dir, device=resolve_device("auto"))
    samples = list(ds.samples)
    t0 = time.perf_counter()
    keypoints, scores = estimator.predict([s.path for s in samples], np.stack([s.bbox for s in samples]),
                                          cfg.predict_batch_size)
    seconds = time.perf_counter() - t0
    save_predictions(run_dir / PREDICTIONS_FILE, [s.image_id for s in samples], keypoints, scores)

    groups = per_group(samples, lambda idx: evaluate_keypoints_2d(ds, [samples[i] for i in idx], keypoints[idx], scores[idx]))
    history: dict[int, dict[str, Any]] = {}
    if (run_dir / HISTORY_FILE).exists():
        for line in (run_dir / HISTORY_FILE).read_text().splitlines():
            record = json.loads(line)
            history.setdefault(record["epoch"], {}).update(record)  # a re-run epoch replaces its first attempt
    metrics = {
        "config": asdict(cfg),
        "checkpoint": estimator.checkpoint.name if estimator.checkpoint else None,
        "resumed": resumed,
        "test": groups.get("real/test", {}),
        "groups": groups,
        "pck_normaliser": "max(bbox width, bbox height) of the annotated box",
        "inference_images_per_s": round(len(samples) / seconds, 2),
        "seconds": {"training": round(train_seconds, 1), "prediction": round(seconds, 1)},
        "history": [history[e] for e in sorted(history)],
    }
    write_json(run_dir / METRICS_FILE, metrics)
    return metrics
