"""2D keypoints of the pose branch: top-down heatmap estimators through mmpose.

The paper detects the 17 COCO keypoints with HRNet and takes the argmax of each heatmap; SMPLify
then fits the body model to them. Any mmpose top-down config under ``configs/pose2d`` works here:
the paper profile's HRNet-W32, and the CPU profiles' EfficientNet-Lite0 that starts from the
ImageNet weights of a pinned package (``lite0_160x160.py``, its backbone registered in mmpose by
:mod:`aims_lib.pose_branch.mmpose_backbone`). :class:`Pose2DEstimator` is the ``mmpose`` entry of
the estimator registry (:mod:`aims_lib.pose_branch.estimator`). Here:

* :func:`train_keypoints_2d` trains an mmpose config (``configs/pose2d``) with mmengine's Runner
  on per-split COCO files written from our dataset (train = synthetic train + real train, or
  one domain's: ``Pose2DTrainConfig.train_domains``; validation = real val, test = real test), validates every epoch with mmpose's CocoMetric and
  PCKAccuracy, keeps the best checkpoint by val PCK@0.05 (the config says why), resumes after an interruption
  (with ``processes > 1``: under torchrun, :mod:`aims_lib.pose_branch.distributed_2d`), then predicts every image and
  evaluates the real test split. A run is a directory: ``coco/*.json``, mmengine's checkpoints
  and logs (``<timestamp>/``, ``stdout.log``), ``config.json`` (the merged config, as data:
  :mod:`aims_lib.pose_branch.model_config`), ``history.jsonl``
  (training and validation records per epoch), ``metrics.json`` and ``keypoints2d.npz`` (``image_id``, ``keypoints`` (N, 17, 2) in
  image pixels, ``scores`` (N, 17)) for every image of every split, which SMPLify reads.
* :class:`Pose2DEstimator` / :func:`estimate_keypoints_2d` run a trained model (or a user's local
  checkpoint, e.g. an official COCO HRNet-W32) on batches of images with one box each.
* :func:`evaluate_keypoints_2d`: COCO OKS AP (xtcocotools) and PCK@0.05 / 0.1;
  :func:`pck_per_keypoint` and :func:`learning_curve` say what limits a run.

Decoding is mmpose's MSRA heatmap decoder: the argmax of each heatmap, moved a quarter heatmap
pixel towards the higher neighbour (the usual sub-pixel refinement), mapped from heatmap to crop
to image through the box's centre and scale (the box is padded by 1.25 and widened to the input's
aspect ratio). Boxes are the annotated ones (one infant per image), or the whole image when none
is given (the predictor then finds the infant's box from that pass, :mod:`aims_lib.auto_box`).
Test-time flip averaging follows the config (on).

Runs are seeded: two CPU runs with the same seed give identical keypoints. A resumed run shuffles
its epochs as an uninterrupted one would (mmengine's sampler seeds by epoch), but its
augmentation draws restart from the seed, so it ends close to, not bit-identical with, an
uninterrupted run. Training runs where mmengine puts it: the GPU when there is one.

Assumptions of ours (the paper is silent): HRNet trains from scratch unless a checkpoint is given
(no ImageNet weights can be downloaded here; the Lite0 config has them from a package); PCK@0.05 counts a labelled keypoint as
correct within 0.05 x max(box width, box height) of the annotation, mmpose's ``bbox`` normaliser;
an image's detection score for AP is the mean of its keypoint scores above 0.2, as mmpose's
CocoMetric rescoring.

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
import io
import json
import logging
import math
import time
import uuid
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from aims_lib import taxonomy
from aims_lib.data.format import DOMAINS, AimsDataset, Sample, atomic_write_bytes, load_dataset, person_category
from aims_lib.image_io import read_image
from aims_lib.pose_branch.estimator import PREDICTIONS_FILE, save_predictions
from aims_lib.pose_branch.model_config import (
    CONFIG_DIR,
    RUN_CONFIG_FILE,
    check_config_path,
    read_config,
    read_run_config,
    write_config_data,
)
from aims_lib.safe_pickle import refused_global, unreadable_weights
from aims_lib.statistics import pooled_rate_interval
from aims_lib.torchrun import run_module, split_batch

if TYPE_CHECKING:
    import torch
    from mmengine.config import Config

log = logging.getLogger(__name__)

PAPER_CONFIG: Final[Path] = CONFIG_DIR / "hrnet_w32_256x192.py"
CPU_CONFIG: Final[Path] = CONFIG_DIR / "hrnet_w16s_96x96.py"
METRICS_FILE: Final[str] = "metrics.json"
HISTORY_FILE: Final[str] = "history.jsonl"
#: COCO's per-keypoint OKS constants (the COCO keypoint evaluation), in the COCO-17 order.
COCO_SIGMAS: Final[np.ndarray] = np.array(
    [0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89]
) / 10.0
PCK_THRESHOLD: Final[float] = 0.05
#: Keypoint scores below this do not count towards an image's detection score (mmpose's default).
SCORE_THRESHOLD: Final[float] = 0.2
#: mmpose and mmengine messages that say nothing actionable here.
_NOISE: Final[tuple[str, ...]] = (
    r"pkg_resources is deprecated",
    r"The metainfo config file",
)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    with warnings.catch_warnings():
        for message in _NOISE:
            warnings.filterwarnings("ignore", message=message)
        yield


def _history_buffer_method(obj: Any, name: str) -> Any:
    """The one ``getattr`` an mmengine checkpoint needs: a statistics method of its logging
    buffers (``HistoryBuffer.min``, ``.mean``, ..., pickled by name). Anything else is refused."""
    import pickle

    from mmengine.logging.history_buffer import HistoryBuffer

    if (obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) and name in ("min", "max", "mean", "current"):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"checkpoint asks for getattr({type(obj).__name__}, {name!r}): refused")


def mmengine_safe_globals() -> list[Any]:
    """What ``torch.load(weights_only=True)`` must admit for an mmengine checkpoint besides
    tensors: NumPy arrays and dtypes (dataset metadata), mmengine's logging buffers and their
    statistics methods (the message hub a run resumes), nothing that can run code."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return [np._core.multiarray._reconstruct, np._core.multiarray.scalar, np.ndarray, np.dtype, *dtypes,
            HistoryBuffer, (_history_buffer_method, "builtins.getattr")]


def read_checkpoint(path: Path, trusted: bool = False) -> Any:
    """An mmengine/mmpose checkpoint read weights-only (tensors, containers and
    :func:`mmengine_safe_globals`); ``trusted=True`` unpickles it fully, the named opt-in for a
    file that needs more and whose origin the caller vouches for."""
    import pickle

    import torch

    if trusted:
        return torch.load(path, map_location="cpu", weights_only=False)  # the caller's explicit opt-in
    try:
        with torch.serialization.safe_globals(mmengine_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        if (refused := refused_global(exc)) is None:
            raise unreadable_weights(path, exc) from None
        raise pickle.UnpicklingError(
            f"{path}: refused, it holds objects beyond weights and data ({refused}); unpickling it could run code. "
            "If you trust the file, load it with trusted=True (Pose2DEstimator.load(..., trusted=True), "
            "Pose2DTrainConfig(trust_checkpoint=True), make reproduce TRUST_POSE2D_CHECKPOINT=1)"
        ) from None


# ----------------------------------------------------------------------------- COCO files


def coco_dict(ds: AimsDataset, samples: Sequence[Sample]) -> dict[str, Any]:
    """A plain COCO keypoint dict of ``samples`` (paths relative to the dataset root).

    ``area`` (the OKS scale) is the file's when it has one, else the box area.
    """
    areas = {a["image_id"]: a.get("area") for a in ds.raw["annotations"]}
    return {
        "info": {"description": "written by aims_lib.pose_branch.keypoints2d"},
        "images": [
            {"id": s.image_id, "file_name": s.file_name, "width": s.width, "height": s.height} for s in samples
        ],
        "annotations": [
            {
                "id": s.image_id,
                "image_id": s.image_id,
                "category_id": 1,
                "keypoints": np.column_stack([s.keypoints_2d, s.visibility]).ravel().tolist(),
                "num_keypoints": int((s.visibility > 0).sum()),
                "bbox": s.bbox.tolist(),
                "area": float(areas.get(s.image_id) or s.bbox[2] * s.bbox[3]),
                "iscrowd": 0,
            }
            for s in samples
        ],
        "categories": [person_category()],
    }


def split_sets(ds: AimsDataset, train_domains: Sequence[str] = DOMAINS) -> dict[str, list[Sample]]:
    """The estimator's sets: train = the training images of ``train_domains`` (synthetic and
    real by default); val, test = real."""
    unknown = set(train_domains) - set(DOMAINS)
    if unknown or not train_domains:
        raise ValueError(f"train_domains must be a non-empty subset of {DOMAINS}, got {tuple(train_domains)}")
    return {
        "train": [s for s in ds.select("train") if s.domain in train_domains],
        "val": ds.select("val", "real"),
        "test": ds.select("test", "real"),
    }


def write_coco_splits(ds: AimsDataset, out_dir: Path, train_domains: Sequence[str] = DOMAINS) -> dict[str, Path]:
    """Write one COCO file per set (mmpose's CocoDataset and CocoMetric read files)."""
    paths = {}
    for name, samples in split_sets(ds, train_domains).items():
        paths[name] = out_dir / f"{name}.json"
        atomic_write_bytes(paths[name], json.dumps(coco_dict(ds, samples)).encode())
    return paths


# ----------------------------------------------------------------------------- inference


def _as_boxes(bboxes: np.ndarray | Sequence[Sequence[float]] | None, n: int) -> np.ndarray | None:
    """Validated (n, 4) ``x, y, w, h`` boxes, or None (whole images)."""
    if bboxes is None:
        return None
    boxes = np.asarray(bboxes, dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"bboxes must have shape (N, 4) as x, y, w, h; got {boxes.shape}")
    if len(boxes) != n:
        raise ValueError(f"got {n} images but {len(boxes)} bboxes: one box per image is needed")
    bad = ~np.isfinite(boxes).all(1) | (boxes[:, 2] <= 0) | (boxes[:, 3] <= 0)
    if bad.any():
        raise ValueError(f"bboxes {np.flatnonzero(bad)[:5].tolist()} are not finite or have no area: {boxes[bad][:2].tolist()}")
    return boxes


def _as_bgr(image: np.ndarray | str | Path) -> np.ndarray:
    """An image as mmpose's pipelines expect it (uint8 BGR, like cv2.imread): a file or an RGB
    array read by :func:`aims_lib.image_io.read_image`, as everywhere else."""
    return np.ascontiguousarray(read_image(image)[..., ::-1])


class Pose2DEstimator:
    """A top-down heatmap model (any mmpose config) ready for batched inference."""

    def __init__(self, model: torch.nn.Module, config: Path, checkpoint: Path | None) -> None:
        """``config``: the file the model's config was read from (a run's ``config.json`` or a
        config file)."""
        import torch
        from mmengine.dataset import Compose

        if next(model.parameters()).device.type == "cpu":
            # oneDNN's preferred layout: 1.2-2x the images per second of both CPU configs here
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.config = config
        self.checkpoint = checkpoint
        self.pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)

    @classmethod
    def load(
        cls, source: str | Path, checkpoint: str | Path | None = None, device: str = "cpu", *,
        trusted: bool = False, trusted_config: bool = False,
    ) -> Pose2DEstimator:
        """Build the model of a run directory (its config and best checkpoint) or of a config file.

        ``checkpoint`` (a local file: a run's checkpoint, an official mmpose COCO HRNet, an
        infant HRNet) overrides the run's; it must hold every weight of the config's model. A
        config file without a checkpoint gives random weights (logged as a warning). Checkpoints
        are read weights-only (:func:`read_checkpoint`); ``trusted=True`` is the opt-in for one
        that needs full unpickling. Configs are read as :mod:`~aims_lib.pose_branch.model_config`
        says (a run's JSON as data, a ``.py`` only from the repository); ``trusted_config=True``
        is the opt-in for a legacy run's ``config.py`` or another ``.py`` config.
        """
        source = Path(source)
        if source.is_dir():
            config = read_run_config(source, trusted_config)
            checkpoint = checkpoint if checkpoint is not None else best_checkpoint(source)
        elif source.is_file():
            config = read_config(source, trusted_config)
        else:
            raise FileNotFoundError(f"pose2d config or run directory not found: {source}")
        if checkpoint is not None and not Path(checkpoint).is_file():
            raise FileNotFoundError(f"checkpoint not found: {checkpoint}")
        from mmpose.apis import init_model

        with _quiet():
            model = init_model(config, None, device=device)
        if checkpoint is None:
            log.warning("pose2d: no checkpoint given: %s has random weights", Path(config.filename).name)
        else:
            load_weights(model, Path(checkpoint), trusted)
        return cls(model, Path(config.filename), None if checkpoint is None else Path(checkpoint))

    def predict(
        self,
        images: Sequence[np.ndarray | str | Path],
        bboxes: np.ndarray | Sequence[Sequence[float]] | None = None,
        batch_size: int = 8,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Keypoints (N, 17, 2) in image pixels and their heatmap scores (N, 17).

        ``images``: uint8 RGB arrays or image files; ``bboxes``: one ``x, y, w, h`` box per image
        (None: the whole image).
        """
        import torch
        from mmengine.dataset import pseudo_collate

        n = len(images)
        boxes = _as_boxes(bboxes, n)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        keypoints = np.zeros((n, taxonomy.NUM_KEYPOINTS, 2), np.float32)
        scores = np.zeros((n, taxonomy.NUM_KEYPOINTS), np.float32)
        self.model.eval()
        for start in range(0, n, batch_size):
            items = []
            for i in range(start, min(n, start + batch_size)):
                img = _as_bgr(images[i])
                x, y, w, h = boxes[i] if boxes is not None else (0.0, 0.0, img.shape[1], img.shape[0])
                info = dict(img=img, bbox=np.array([[x, y, x + w, y + h]], np.float32), bbox_score=np.ones(1, np.float32))
                items.append(self.pipeline({**info, **self.model.dataset_meta}))
            with torch.no_grad():
                results = self.model.test_step(pseudo_collate(items))
            for j, r in enumerate(results, start):
                keypoints[j] = r.pred_instances.keypoints[0]
                scores[j] = r.pred_instances.keypoint_scores[0]
        return keypoints, scores


def load_weights(model: torch.nn.Module, checkpoint: Path, trusted: bool = False) -> None:
    """Load a checkpoint that must fit ``model`` entirely: mmengine's (ours, mmpose 1.x model
    zoo), mmpose 0.x's (``keypoint_head``, converted by mmpose) or a bare state dict, read by
    :func:`read_checkpoint` (weights-only unless ``trusted``).

    mmengine's own loader only warns about missing weights, which would leave a silently random
    model; here a checkpoint of another architecture is an error. Unused extra weights are logged.
    """
    import torch

    ckpt = read_checkpoint(checkpoint, trusted)
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{checkpoint}: not a model checkpoint (no state_dict of tensors)")
    state = {k.removeprefix("module."): v for k, v in state.items()}
    if not any(k.startswith(("backbone.", "head.", "keypoint_head.")) for k in state):
        # the original HRNet code (deep-high-resolution-net.pytorch, the base of infant HRNets
        # such as FiDIP) names the backbone's modules as mmpose does, without its prefixes
        state = {("head." if k.startswith("final_layer.") else "backbone.") + k: v for k, v in state.items()}
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:
        raise ValueError(f"{checkpoint} does not fit the model of {model.cfg.filename}: {exc}") from None
    if result.missing_keys:
        raise ValueError(
            f"{checkpoint} does not fit the model of {model.cfg.filename}: {len(result.missing_keys)} weights "
            f"missing, e.g. {result.missing_keys[:3]}"
        )
    if result.unexpected_keys:
        log.warning("pose2d: %s: %d unused weights, e.g. %s", checkpoint, len(result.unexpected_keys), result.unexpected_keys[:3])


def estimate_keypoints_2d(
    images: Sequence[np.ndarray | str | Path],
    bboxes: np.ndarray | Sequence[Sequence[float]] | None,
    estimator: Pose2DEstimator | str | Path,
    *,
    checkpoint: str | Path | None = None,
    device: str = "cpu",
    batch_size: int = 8,
) -> tuple[np.ndarray, np.ndarray]:
    """Keypoints (N, 17, 2) in image pixels and scores (N, 17) of one infant per image.

    ``estimator``: a loaded :class:`Pose2DEstimator`, or a run directory / config file to load
    (with ``checkpoint`` and ``device``, see :meth:`Pose2DEstimator.load`).
    """
    if not isinstance(estimator, Pose2DEstimator):
        estimator = Pose2DEstimator.load(estimator, checkpoint, device)
    return estimator.predict(images, bboxes, batch_size)


# ----------------------------------------------------------------------------- evaluation


def _hits(samples: Sequence[Sample], keypoints: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """(N, 17) correct within ``threshold * max(box w, box h)``, and (N, 17) labelled."""
    gt = np.stack([s.keypoints_2d for s in samples])
    labelled = np.stack([s.visibility > 0 for s in samples])
    size = np.array([max(s.bbox[2], s.bbox[3]) for s in samples])
    return np.linalg.norm(keypoints - gt, axis=2) <= threshold * size[:, None], labelled


def pck(samples: Sequence[Sample], keypoints: np.ndarray, threshold: float = PCK_THRESHOLD) -> float:
    """Share of labelled keypoints within ``threshold * max(box w, box h)`` of the annotation."""
    hit, labelled = _hits(samples, keypoints, threshold)
    return float(hit[labelled].mean()) if labelled.any() else float("nan")


def pck_counts(samples: Sequence[Sample], keypoints: np.ndarray, threshold: float = PCK_THRESHOLD) -> tuple[np.ndarray, np.ndarray]:
    """Per image: correct and labelled keypoints, (N,) each; PCK is ``sum(correct) / sum(labelled)``
    (the per-image counts that intervals and paired comparisons resample)."""
    hit, labelled = _hits(samples, keypoints, threshold)
    return (hit & labelled).sum(1), labelled.sum(1)


def pck_per_keypoint(samples: Sequence[Sample], keypoints: np.ndarray, threshold: float = PCK_THRESHOLD) -> np.ndarray:
    """PCK of each of the 17 keypoints (NaN where none is labelled): which joints limit a model."""
    hit, labelled = _hits(samples, keypoints, threshold)
    counts = labelled.sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, (hit & labelled).sum(0) / counts, np.nan)


def learning_curve(history: Sequence[dict[str, Any]]) -> list[dict[str, float]]:
    """Per epoch of a run's history: cumulative training minutes, validation AP and PCK@0.05, and
    what the epoch's minute bought (PCK points per training minute): when to stop paying."""
    rows: list[dict[str, float]] = []
    minutes, previous = 0.0, None  # previous point: (minutes, PCK)
    for h in history:
        minutes += h.get("seconds", 0.0) / 60
        if "PCK" not in h:
            continue
        gain = float("nan") if previous is None else 100 * (h["PCK"] - previous[1]) / (minutes - previous[0])
        rows.append({"epoch": h["epoch"], "train minutes": minutes, "val AP": h.get("coco/AP", float("nan")),
                     "val PCK@0.05": h["PCK"], "PCK points per minute": gain})
        previous = (minutes, h["PCK"])
    return rows


def coco_ap(ds: AimsDataset, samples: Sequence[Sample], keypoints: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    """COCO keypoint AP, AP50, AP75 and AR by OKS (xtcocotools), one detection per image."""
    try:
        from xtcocotools.coco import COCO
        from xtcocotools.cocoeval import COCOeval
    except ImportError as exc:
        raise ImportError(f"xtcocotools is needed for COCO AP ({exc}): install the environment with `make venv`") from exc
    gt = COCO()
    gt.dataset = coco_dict(ds, samples)
    detections = []
    for s, k, sc in zip(samples, keypoints, scores, strict=True):
        confident = sc[sc > SCORE_THRESHOLD]
        detections.append({
            "image_id": s.image_id,
            "category_id": 1,
            "keypoints": np.column_stack([k, sc]).ravel().tolist(),
            "score": float(confident.mean()) if confident.size else 0.0,
        })
    with contextlib.redirect_stdout(io.StringIO()):
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(detections), "keypoints", COCO_SIGMAS, use_area=True)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {"AP": float(ev.stats[0]), "AP50": float(ev.stats[1]), "AP75": float(ev.stats[2]), "AR": float(ev.stats[5])}


def evaluate_keypoints_2d(
    ds: AimsDataset, samples: Sequence[Sample], keypoints: np.ndarray, scores: np.ndarray
) -> dict[str, float]:
    """COCO OKS AP/AP50/AP75/AR and PCK@0.05, @0.1 (normaliser: the longer side of the box), each
    PCK with its 95 % bootstrap interval over the images (``PCK@0.05 low`` / ``high``)."""
    if len(samples) != len(keypoints) or len(samples) != len(scores):
        raise ValueError(f"{len(samples)} samples but {len(keypoints)} keypoint and {len(scores)} score rows")
    if not samples:
        return {}
    out = {**coco_ap(ds, samples, keypoints, scores), "n": len(samples)}
    for threshold in (0.05, 0.1):  # 0.1: still informative for weak (short-run) models
        hits, counts = pck_counts(samples, keypoints, threshold)
        out[f"PCK@{threshold:g}"] = pck(samples, keypoints, threshold)
        low, high = pooled_rate_interval(hits, counts) if counts.any() else (float("nan"),) * 2
        out[f"PCK@{threshold:g} low"], out[f"PCK@{threshold:g} high"] = low, high
    return out


# ----------------------------------------------------------------------------- training


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
    predict_batch_size: int = 8  # inference batch (on 2 CPU cores, Lite0 with flip test: 68 img/s at 8, 45 at 32)

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


def best_checkpoint(run_dir: Path) -> Path:
    """The run's best checkpoint by validation (mmengine keeps one), else its last one."""
    best = sorted(run_dir.glob("best_*.pth"))
    if best:
        return best[-1]
    latest = latest_checkpoint(run_dir)
    if latest is None:
        raise FileNotFoundError(f"{run_dir} holds no checkpoint: train it first")
    return latest


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint an interrupted run resumes from (mmengine's ``last_checkpoint`` record)."""
    record = run_dir / "last_checkpoint"
    if not record.is_file():
        return None
    path = Path(record.read_text().strip())
    return path if path.is_file() else None


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
    settings_path = run_dir / "settings.json"
    settings = json.loads(json.dumps({**asdict(cfg), "dataset": str(ds.path)}))  # as stored: tuples as lists
    if settings_path.exists():
        previous = json.loads(settings_path.read_text())
        changed = {k: (previous.get(k), v) for k, v in settings.items()
                   if k not in ("num_workers", "predict_batch_size", "processes") and previous.get(k) != v}
        if changed:
            raise ValueError(f"{run_dir} holds a run with other settings {changed} (old, new): use another run directory")
    atomic_write_bytes(settings_path, json.dumps(settings, indent=2).encode())

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
        run_module("aims_lib.pose_branch.distributed_2d", ["--run-dir", str(run_dir), "--device", _device()],
                   cfg.processes, run_dir / "torchrun.log")
    else:
        run_training(config, run_dir)
    return finalize_run(ds, run_dir, cfg, resumed=resume_from is not None, train_seconds=time.perf_counter() - start)


def run_training(config: Config, run_dir: Path, main_process: bool = True) -> None:
    """mmengine's Runner on a run's merged config, its console quiet (pycocotools and CocoMetric
    print to stdout: that goes to ``stdout.log``); the main process records the epochs."""
    import torch

    with (_quiet(), torch.serialization.safe_globals(mmengine_safe_globals()),  # mmengine's resume reads weights-only
          (run_dir / "stdout.log").open("a") as out, contextlib.redirect_stdout(out)):
        runner = _runner(config)
        if main_process:
            runner.register_hook(_progress_hook(run_dir))
        runner.train()


def _initial_weights(config: Config, checkpoint: Path, trusted: bool, run_dir: Path) -> Path:
    """The initial checkpoint checked against the run's model (another architecture fails here,
    before training), its names converted, saved as tensors only for mmengine to load: the one
    full unpickling a trusted legacy file needs happens here, never inside mmengine."""
    import io

    import torch
    from mmpose.apis import init_model

    with _quiet():
        model = init_model(config, None, device="cpu")
    load_weights(model, checkpoint, trusted)
    buf = io.BytesIO()
    torch.save({"state_dict": model.state_dict(), "meta": {"source": str(checkpoint)}}, buf)
    path = run_dir / "initial_weights.pth"
    atomic_write_bytes(path, buf.getvalue())
    return path


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def finalize_run(ds: AimsDataset, run_dir: Path, cfg: Pose2DTrainConfig, resumed: bool,
                 train_seconds: float) -> dict[str, Any]:
    """Predict every image with the best checkpoint, save ``keypoints2d.npz`` and evaluate each
    (domain, split) group; the real test split is the headline. ``train_seconds``: this call's
    wall time in mmengine's Runner (training and validation, after a resume only the rest)."""
    estimator = Pose2DEstimator.load(run_dir, device=_device())
    samples = list(ds.samples)
    t0 = time.perf_counter()
    keypoints, scores = estimator.predict([s.path for s in samples], np.stack([s.bbox for s in samples]),
                                          cfg.predict_batch_size)
    seconds = time.perf_counter() - t0
    save_predictions(run_dir / PREDICTIONS_FILE, [s.image_id for s in samples], keypoints, scores)

    groups: dict[str, dict[str, float]] = {}
    for domain in ("synthetic", "real"):
        for split in ("train", "val", "test"):
            idx = [i for i, s in enumerate(samples) if s.domain == domain and s.split == split]
            if idx:
                groups[f"{domain}/{split}"] = evaluate_keypoints_2d(ds, [samples[i] for i in idx], keypoints[idx], scores[idx])
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
    atomic_write_bytes(run_dir / METRICS_FILE, json.dumps(metrics, indent=2).encode())
    return metrics
