"""What the pose branch needs from a 2D keypoint estimator, and the registry of estimators.

The lifting (:mod:`aims_lib.pose_branch.lifting`) and the predictor (:mod:`aims_lib.predict`)
depend on this module only, never on mmpose's classes. An estimator

* is loaded from a *source* (a run directory or a config file) and an optional checkpoint file
  on a device: ``cls.load(source, checkpoint=None, device="cpu")``, reading both as data unless
  the caller opts in (``trusted``, ``trusted_config``; SECURITY.md);
* predicts the 17 COCO keypoints of one person per image: ``predict(images, bboxes, batch_size)``
  with images as uint8 RGB arrays or image files and one ``x, y, w, h`` box per image
  (:mod:`aims_lib.boxes`; None: the whole image), returning keypoints (N, 17, 2) in image pixels and scores (N, 17) in [0, 1];
* names the checkpoint it loaded (``checkpoint``, None for random weights).

Adding an estimator is one module with such a class and one entry in :data:`ESTIMATORS`
(``"name": "package.module:ClassName"``, imported only when used, so a heavy framework costs
nothing until it is chosen). The mmpose top-down heatmap models are the one implemented
(:mod:`aims_lib.pose_branch.mmpose_estimator`). Every estimator's keypoints are scored by the
same functions (:mod:`aims_lib.pose_branch.metrics_2d`: PCK, COCO AP).

Predictions of a whole dataset are exchanged as one ``.npz`` (:data:`PREDICTIONS_FILE` in a run
directory): ``image_id`` (N,), ``keypoints`` (N, 17, 2), ``scores`` (N, 17).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Final, Protocol, runtime_checkable

import numpy as np

from aims_lib.data.format import Sample
from aims_lib.files import write_npz

PREDICTIONS_FILE: Final[str] = "keypoints2d.npz"
DEFAULT_ESTIMATOR: Final[str] = "mmpose"


@runtime_checkable
class KeypointEstimator(Protocol):
    """A 2D keypoint estimator (see the module docstring)."""

    checkpoint: Path | None

    @classmethod
    def load(
        cls, source: str | Path, checkpoint: str | Path | None = None, device: str = "cpu", *,
        trusted: bool = False, trusted_config: bool = False,
    ) -> KeypointEstimator:
        """``trusted=True``: the named opt-in to unpickle ``checkpoint`` fully; ``trusted_config=True``:
        to read a config that is code (SECURITY.md). Without them nothing loaded may run code."""
        ...

    def predict(
        self,
        images: Sequence[np.ndarray | str | Path],
        bboxes: np.ndarray | Sequence[Sequence[float]] | None = None,
        batch_size: int = 8,
    ) -> tuple[np.ndarray, np.ndarray]: ...


#: name -> "module:Class" of a :class:`KeypointEstimator`.
ESTIMATORS: Final[dict[str, str]] = {
    "mmpose": "aims_lib.pose_branch.mmpose_estimator:Pose2DEstimator",
}


def estimator_class(name: str = DEFAULT_ESTIMATOR) -> type[KeypointEstimator]:
    """The registered estimator class ``name`` (its module is imported now)."""
    if name not in ESTIMATORS:
        raise ValueError(f"unknown 2D keypoint estimator {name!r}; registered: {', '.join(sorted(ESTIMATORS))}")
    module, _, attribute = ESTIMATORS[name].partition(":")
    cls = getattr(importlib.import_module(module), attribute)
    if not (callable(getattr(cls, "load", None)) and callable(getattr(cls, "predict", None))):
        raise TypeError(f"{ESTIMATORS[name]} (estimator {name!r}) has no load() and predict(): not a KeypointEstimator")
    return cls


def load_estimator(
    source: str | Path, checkpoint: str | Path | None = None, device: str = "cpu", name: str = DEFAULT_ESTIMATOR,
    *, trusted: bool = False, trusted_config: bool = False,
) -> KeypointEstimator:
    """Load the registered estimator ``name`` from ``source`` (and ``checkpoint``) on ``device``;
    ``trusted`` is the opt-in for a checkpoint that needs full unpickling, ``trusted_config`` for
    a config that is code."""
    return estimator_class(name).load(source, checkpoint=checkpoint, device=device, trusted=trusted,
                                      trusted_config=trusted_config)


def save_predictions(path: Path, image_ids: Sequence[int], keypoints: np.ndarray, scores: np.ndarray) -> None:
    """Write a dataset's predictions (module docstring: the layout), atomically."""
    n = len(image_ids)
    if keypoints.shape != (n, 17, 2) or scores.shape != (n, 17):
        raise ValueError(f"{n} image ids need keypoints (N, 17, 2) and scores (N, 17); got {keypoints.shape}, {scores.shape}")
    write_npz(path, image_id=np.asarray(image_ids), keypoints=keypoints, scores=scores)


def load_predictions(source: str | Path, samples: Sequence[Sample]) -> tuple[np.ndarray, np.ndarray]:
    """Predicted keypoints (N, 17, 2) and scores (N, 17) of ``samples``, in their order, from a
    run directory (its :data:`PREDICTIONS_FILE`) or such a file."""
    path = Path(source)
    path = path / PREDICTIONS_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(f"2D keypoint predictions not found: {path} (train_keypoints_2d writes them)")
    with np.load(path, allow_pickle=False) as z:
        missing_fields = {"image_id", "keypoints", "scores"} - set(z.files)
        if missing_fields:
            raise ValueError(f"{path}: no field(s) {sorted(missing_fields)}; a predictions file has image_id, keypoints, scores")
        ids, keypoints, scores = z["image_id"], z["keypoints"], z["scores"]
    row = {int(i): r for r, i in enumerate(ids)}
    missing = [s.image_id for s in samples if s.image_id not in row]
    if missing:
        raise KeyError(f"{path} has no prediction for {len(missing)} image id(s): {missing[:10]}")
    rows = [row[s.image_id] for s in samples]
    return keypoints[rows].astype(np.float64), scores[rows].astype(np.float64)
