"""The ``mmpose`` 2D keypoint estimator: top-down heatmap models of any mmpose config.

The paper detects the 17 COCO keypoints with HRNet and takes the argmax of each heatmap; SMPLify
then fits the body model to them. Any mmpose top-down config under ``configs/pose2d`` works here:
the paper profile's HRNet-W32, and the CPU profiles' EfficientNet-Lite0 that starts from the
ImageNet weights of a pinned package (``lite0_160x160.py``, its backbone registered in mmpose by
:mod:`aims_lib.pose_branch.mmpose_backbone`). :class:`Pose2DEstimator` is the ``mmpose`` entry of
the estimator registry (:mod:`aims_lib.pose_branch.estimator`); it runs a trained model
(:mod:`aims_lib.pose_branch.keypoints2d`) or a user's local checkpoint (e.g. an official COCO
HRNet-W32) on batches of images with one box each.

Decoding is mmpose's MSRA heatmap decoder: the argmax of each heatmap, moved a quarter heatmap
pixel towards the higher neighbour (the usual sub-pixel refinement), mapped from heatmap to crop
to image through the box's centre and scale (the box is padded by 1.25 and widened to the input's
aspect ratio). Boxes are the annotated ones (one infant per image), or the whole image when none
is given (the predictor then finds the infant's box from that pass, :mod:`aims_lib.auto_box`).
Test-time flip averaging follows the config (on). Inference runs the backbone and neck as a copy
with each BatchNorm folded into its convolution (:class:`~aims_lib.batchnorm_folding.FoldedCopy`,
the same function up to rounding, rebuilt when the weights change); ``self.model`` stays as
trained, for checkpoints.

Sources: ``docs/references.md#mmpose``.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from aims_lib import taxonomy
from aims_lib.boxes import check_boxes
from aims_lib.image_io import read_image
from aims_lib.pose_branch.model_config import read_config, read_run_config
from aims_lib.pose_branch.run_checkpoints import best_checkpoint
from aims_lib.safe_checkpoints import read_checkpoint

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

#: mmpose and mmengine messages that say nothing actionable here.
_NOISE: Final[tuple[str, ...]] = (
    r"pkg_resources is deprecated",
    r"The metainfo config file",
)


@contextlib.contextmanager
def quiet_mmpose() -> Iterator[None]:
    """mmpose and mmengine without their warnings that say nothing actionable here."""
    with warnings.catch_warnings():
        for message in _NOISE:
            warnings.filterwarnings("ignore", message=message)
        yield


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

        from aims_lib.batchnorm_folding import FoldedCopy

        if next(model.parameters()).device.type == "cpu":
            # oneDNN's preferred layout: 1.2-2x the images per second of both CPU configs here
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.config = config
        self.checkpoint = checkpoint
        self.pipeline = Compose(model.cfg.test_dataloader.dataset.pipeline)
        self._folded = FoldedCopy(lambda features, x: features.neck(features.backbone(x)))

    @classmethod
    def load(
        cls, source: str | Path, checkpoint: str | Path | None = None, device: str = "cpu", *,
        trusted: bool = False, trusted_config: bool = False,
    ) -> Pose2DEstimator:
        """Build the model of a run directory (its config and best checkpoint) or of a config file.

        ``checkpoint`` (a local file: a run's checkpoint, an official mmpose COCO HRNet, an
        infant HRNet) overrides the run's; it must hold every weight of the config's model. A
        config file without a checkpoint gives random weights (logged as a warning). Checkpoints
        are read weights-only (:func:`~aims_lib.safe_checkpoints.read_checkpoint`); ``trusted=True``
        is the opt-in for one that needs full unpickling. Configs are read as :mod:`~aims_lib.pose_branch.model_config`
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

        with quiet_mmpose():
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
        boxes = None if bboxes is None else check_boxes(bboxes, n)
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
                data = self.model.data_preprocessor(pseudo_collate(items), False)
                with self._folded_features(data["inputs"]):
                    results = self.model(**data, mode="predict")  # what test_step runs after the preprocessor
            for j, r in enumerate(results, start):
                keypoints[j] = r.pred_instances.keypoints[0]
                scores[j] = r.pred_instances.keypoint_scores[0]
        return keypoints, scores

    @contextlib.contextmanager
    def _folded_features(self, example: torch.Tensor) -> Iterator[None]:
        """``self.model`` with its backbone and neck swapped for their folded copy while inside."""
        from torch import nn

        model = self.model
        original = {name: module for name in ("backbone", "neck") if isinstance(module := getattr(model, name, None), nn.Module)}
        features = nn.ModuleDict({"backbone": original["backbone"], "neck": original.get("neck", nn.Identity())})
        folded = self._folded.of(features, example[:2])
        try:
            for name in original:
                setattr(model, name, folded[name])
            yield
        finally:
            for name, module in original.items():
                setattr(model, name, module)


def load_weights(model: torch.nn.Module, checkpoint: Path, trusted: bool = False) -> None:
    """Load a checkpoint that must fit ``model`` entirely: mmengine's (ours, mmpose 1.x model
    zoo), mmpose 0.x's (``keypoint_head``, converted by mmpose) or a bare state dict, read by
    :func:`~aims_lib.safe_checkpoints.read_checkpoint` (weights-only unless ``trusted``).

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
