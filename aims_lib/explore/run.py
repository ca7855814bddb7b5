"""Everything a finished run saved about every image, loaded in seconds and training nothing.

:func:`load_run` reads, for every image of the run's dataset, the image branch's coarse logits
(notebook 02's synthetic+real LMMD run), the estimated 2D keypoints and their SMPLify fit
(notebook 03), the pose branch's and the full model's fine log-probabilities (notebook 04's HIPC
checkpoints, scored here on the fits: the only model evaluated, a small PointNet, in a second)
and, where notebook 06 wrote one, the calibration. A piece that is missing is a
:class:`MissingRunError` naming the file and the notebook that writes it.

:class:`ExplorerRun` holds them row-aligned with the dataset's samples; its
:meth:`~ExplorerRun.probabilities` and :meth:`~ExplorerRun.predicted` give every model's output
at each level, raw or calibrated, the way notebooks 04 and 06 score them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
from scipy.special import softmax

from aims_lib import taxonomy
from aims_lib.calibration import Calibration
from aims_lib.data.format import AimsDataset, Sample
from aims_lib.data.merge import data_kind
from aims_lib.deployment import RawScores, model_probabilities
from aims_lib.hipc import coarse_marginal, coarse_of_fine, load_hipc, predict_hipc
from aims_lib.image_branch import predictions_of_run
from aims_lib.pose_branch.estimator import PREDICTIONS_FILE, load_predictions
from aims_lib.pose_branch.lifting import Pose3DSet

#: The image-branch run whose coarse probabilities HIPC's full model reads (``runs_by_setting`` of
#: notebook 02's record), as in notebook 04.
IMAGE_RUN: Final[str] = "coarse/synthetic+real/lmmd"
#: The three classifiers, and those that give a label at each level: the image branch run read
#: here is coarse only; the pose branch's coarse label is the parent of its fine one, the full
#: model's the marginal of its fine probabilities.
MODELS: Final[tuple[str, ...]] = ("image branch", "pose branch", "full model")
MODELS_AT: Final[dict[str, tuple[str, ...]]] = {"coarse": MODELS, "fine": ("pose branch", "full model")}
LABELS: Final[dict[str, tuple[str, ...]]] = {"coarse": taxonomy.COARSE, "fine": taxonomy.FINE}
#: The notebook that writes each piece of a run, for the error that says which one to run.
WRITERS: Final[dict[str, str]] = {
    "image": "02_image_branch_lmmd.ipynb", "pose": "03_pose_branch.ipynb", "hipc": "04_hipc_full_model.ipynb",
}


class MissingRunError(FileNotFoundError):
    """A piece of a finished run is missing; the message names the file and the notebook that writes it."""


def _require(path: Path, writer: str) -> Path:
    if not path.is_file():
        raise MissingRunError(f"{path} not found: run notebook {WRITERS[writer]} first (it writes it); "
                              "the explorer reads a finished run and trains nothing")
    return path


@dataclass(frozen=True)
class ExplorerRun:
    """A finished run's outputs for every image of its dataset, row ``r`` being ``dataset.samples[r]``.

    ``image_logits`` (N, 4) the image branch's coarse logits; ``keypoints_2d`` (N, 17, 2) and
    ``keypoint_scores`` (N, 17) the estimated 2D keypoints; ``keypoints_3d`` (N, 17, 3) the
    SMPLify fits (normalised camera frame, NaN where ``fit_failed``), ``keypoints_2d_fit``
    (N, 17, 2) the fits projected into the image;
    ``pose_log`` and ``full_log`` (N, 12) the pose branch's and the full model's fine
    log-probabilities; ``calibration`` notebook 06's, None when it has not run.
    """

    dataset: AimsDataset
    image_logits: np.ndarray
    keypoints_2d: np.ndarray
    keypoint_scores: np.ndarray
    keypoints_3d: np.ndarray
    fit_failed: np.ndarray
    keypoints_2d_fit: np.ndarray
    pose_log: np.ndarray
    full_log: np.ndarray
    calibration: Calibration | None = None
    #: :meth:`probabilities` per ``calibrated`` flag, computed once (every view asks several times).
    _probabilities: dict[bool, dict[str, np.ndarray]] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.dataset.samples)
        shapes = {"image_logits": (n, taxonomy.NUM_COARSE), "keypoints_2d": (n, taxonomy.NUM_KEYPOINTS, 2),
                  "keypoint_scores": (n, taxonomy.NUM_KEYPOINTS), "keypoints_3d": (n, taxonomy.NUM_KEYPOINTS, 3),
                  "fit_failed": (n,), "keypoints_2d_fit": (n, taxonomy.NUM_KEYPOINTS, 2),
                  "pose_log": (n, taxonomy.NUM_FINE), "full_log": (n, taxonomy.NUM_FINE)}
        for name, shape in shapes.items():
            value = getattr(self, name)
            if np.shape(value) != shape:
                raise ValueError(f"ExplorerRun.{name} must be {shape} for {n} images, got {np.shape(value)}")

    @property
    def samples(self) -> tuple[Sample, ...]:
        return self.dataset.samples

    @property
    def real_name(self) -> str:
        """What the real domain is: real images, or the embedded benchmark's rendered stand-in for them."""
        return "real proxy" if data_kind(self.dataset.info) == "embedded" else "real"

    def truth(self, level: str) -> np.ndarray:
        """True class ids (N,) at ``level``."""
        check_level(level)
        return np.array([s.coarse_id if level == "coarse" else s.fine_id for s in self.samples], dtype=np.int64)

    def probabilities(self, calibrated: bool = False) -> dict[str, np.ndarray]:
        """Per ``"<model>/<level>"`` of :data:`MODELS_AT` the probabilities of every image, raw or
        with notebook 06's calibration (:func:`aims_lib.deployment.model_probabilities`); the
        pose branch's coarse ones are the marginal of its fine ones."""
        if calibrated and self.calibration is None:
            raise ValueError("this run has no calibration (runs/full_model/calibration.json): run notebook "
                             "06_deployment.ipynb first, or look at the raw probabilities")
        if calibrated in self._probabilities:
            return self._probabilities[calibrated]
        scores = RawScores(softmax(np.asarray(self.image_logits, np.float64), axis=1), self.pose_log, self.full_log,
                           self.truth("coarse"), self.truth("fine"))
        p = model_probabilities(scores, self.calibration if calibrated else None)
        return self._probabilities.setdefault(calibrated, {
            "image branch/coarse": p["image_branch"], "pose branch/fine": p["pose_branch"],
            "pose branch/coarse": coarse_marginal(np.log(np.maximum(p["pose_branch"], 1e-300))),
            "full model/fine": p["full_model"], "full model/coarse": p["full_model_coarse"]})

    def predicted(self, model: str, level: str, calibrated: bool = False) -> np.ndarray:
        """Predicted class ids (N,) of ``model`` at ``level`` (:data:`MODELS_AT`)."""
        check_model(model, level)
        p = self.probabilities(calibrated)
        if model == "pose branch" and level == "coarse":
            return coarse_of_fine(p["pose branch/fine"].argmax(1))
        return p[f"{model}/{level}"].argmax(1)

    def answer(self, row: int, model: str, level: str, calibrated: bool = False) -> tuple[str, float]:
        """The label ``model`` gives image ``row`` at ``level`` and the probability it gives that label."""
        label = int(self.predicted(model, level, calibrated)[row])
        return LABELS[level][label], float(self.probabilities(calibrated)[f"{model}/{level}"][row, label])


def check_level(level: str) -> None:
    """A ValueError unless ``level`` is coarse or fine."""
    if level not in LABELS:
        raise ValueError(f"unknown level {level!r}: coarse or fine")


def check_model(model: str, level: str) -> None:
    """A ValueError unless ``model`` gives a label at ``level`` (:data:`MODELS_AT`)."""
    check_level(level)
    if model not in MODELS_AT[level]:
        raise ValueError(f"{model!r} gives no {level} label here: choose one of {', '.join(MODELS_AT[level])}")


def load_run(reports_dir: str | Path, dataset: AimsDataset, device: str = "cpu") -> ExplorerRun:
    """The outputs a finished run saved in ``reports_dir`` for every image of ``dataset`` (the
    run's own: :meth:`aims_lib.workspace.NotebookContext.dataset`); HIPC scores the saved fits
    on ``device``. Every file is checked before any is read, so a missing one is reported
    first, with the notebook that writes it (:class:`MissingRunError`)."""
    out_dir = Path(reports_dir)
    runs = out_dir / "runs"
    record = _require(out_dir / "02_image_branch.json", "image")
    setting = json.loads(record.read_text(encoding="utf-8")).get("runs_by_setting", {})
    if IMAGE_RUN not in setting:
        raise MissingRunError(f"{record} names no {IMAGE_RUN!r} run: run notebook {WRITERS['image']} first")
    image_run = _require(runs / setting[IMAGE_RUN] / "outputs.npz", "image").parent
    pose2d = _require(runs / "pose2d" / PREDICTIONS_FILE, "pose")
    fits_file = _require(runs / "pose3d_estimated.npz", "pose")
    pose_file = _require(runs / "full_model" / "hipc_pose.pt", "hipc")
    full_file = _require(runs / "full_model" / "hipc_full.pt", "hipc")
    calibration_file = runs / "full_model" / "calibration.json"

    samples = dataset.samples
    image_logits = predictions_of_run(image_run, samples)
    keypoints_2d, scores = load_predictions(pose2d, samples)
    fits = Pose3DSet.load(fits_file)
    rows = fits.index([s.image_id for s in samples])
    keypoints_3d = fits.keypoints_3d[rows]
    coarse_probs = softmax(np.asarray(image_logits, np.float64), axis=1)
    return ExplorerRun(
        dataset=dataset,
        image_logits=image_logits,
        keypoints_2d=keypoints_2d,
        keypoint_scores=scores,
        keypoints_3d=keypoints_3d,
        fit_failed=fits.failed[rows],
        keypoints_2d_fit=fits.keypoints_2d_fit[rows],
        pose_log=predict_hipc(load_hipc(pose_file, device), keypoints_3d).astype(np.float64),
        full_log=predict_hipc(load_hipc(full_file, device), keypoints_3d, coarse_probs).astype(np.float64),
        calibration=Calibration.load(calibration_file) if calibration_file.is_file() else None,
    )
