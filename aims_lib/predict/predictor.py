r"""The full model end to end: images in, coarse and fine AIMS labels and keypoints out.

Pipeline per image (paper Fig. 2), batched over the images of a call:

1. image branch (ResNet + LMMD, coarse level) on the square crop around the box -> coarse
   probabilities ``p(c)``;
2. pose branch: 2D keypoints in the box (the manifest's registered estimator,
   :mod:`aims_lib.pose_branch.estimator`) -> one batched SMPLify fit for all images (the
   default intrinsics of the image size: focal = longer side, centre principal point) ->
   normalised camera-frame 3D keypoints;
3. HIPC on the 3D keypoints and ``p(c)`` -> fine logits ``z`` and the product of the two
   experts ``p(f) ∝ p(c(f)) / n(c(f)) · exp(z_f)`` (:mod:`aims_lib.hipc`; ``n(c)``: the number
   of children of ``c``).

The fine label is the argmax of ``p(f)``; the coarse label and ``coarse_probs`` are the marginal
of the same distribution (``p(f)`` summed over each parent's children), so they combine the
image's and the pose's evidence: confident 3D keypoints can overrule a weak image branch, whose
own probabilities are kept in ``image_coarse_probs``. Coming from one distribution, the two
labels agree whenever the fine label's parent holds most of the mass, but they can still differ
when a parent's probability is spread over several children: children at 0.2, 0.2 and 0.15 (a
parent at 0.55) give the coarse label, a lone likelier child at 0.4 of another parent the fine
one (``fine_probs`` shows it). A failed fit (too few confident keypoints, a non-finite or
diverged fit) gives NaN 3D keypoints and ``smplify_failed``; HIPC's logits are then zero, so
``p(f) = p(c(f)) / n(c(f))``: the coarse probabilities are the image branch's and the fine
label is the first child of its coarse label (the full model falls back to the image branch; the
argmax of ``p(f)`` alone could pick a child of another parent with fewer children).
A fit counts as diverged as in :func:`aims_lib.pose_branch.lifting.fit_failures`: mean
reprojection error above ``max_reprojection`` times the box's longer side.

Without a box the predictor finds the infant (:mod:`aims_lib.auto_box`: 2D keypoints on the
whole image, a box around the confident ones); an image without one (blank, noise, a thumbnail)
is answered "no infant found". Images are read upright (EXIF orientation) by
:func:`aims_lib.image_io.read_image`, the reader of training and evaluation too.

With a ``calibration.json`` beside the manifest (notebook 06 fits it on real val,
:class:`aims_lib.calibration.Calibration`) the probabilities are calibrated (the two experts
pooled with fitted weights), each image gets conformal prediction sets and a hierarchical answer
("sitting, fine pose uncertain"), and ``needs_review`` flags the images the model abstains on
(no infant, a failed 3D fit, or a coarse set of several postures).

A predictor is a directory holding ``predictor.json`` (written by :func:`write_manifest`,
notebook 04 writes ``<reports_dir>/runs/full_model/``); its paths are relative to it, so the
directory can be moved with its components. ``fallback_paths`` keeps where each component was
when the manifest was written, used only when the relative path finds nothing (a component that
stayed in place, such as a config of this repository, while the run moved to another depth). A
component found only there, other than a config under this repository's ``configs/``, loads with
a warning naming it: a predictor copied without its sibling runs still reads the original tree::

    {"format": "aims-predictor/1",
     "image_branch": "../image_coarse_synthetic+real_lmmd",   # run dir: config.json, checkpoints/best.pt
     "pose2d": "../pose2d", "pose2d_checkpoint": null,        # keypoints2d run dir (or config file + checkpoint)
     "pose2d_estimator": "mmpose",                            # its entry in pose_branch.estimator.ESTIMATORS
     "hipc": "hipc_full.pt",                                  # hierarchical HIPC (aims_lib.hipc.save_hipc)
     "body_model": null, "pose_prior": null,                  # SMPL-format pickle / GMM .npz; null: the project's
     "smplify": {...SMPLifyConfig fields...}, "max_reprojection": 0.25,
     "fallback_paths": {"image_branch": "/abs/.../image_coarse_synthetic+real_lmmd", ...}}
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import warnings
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from aims_lib import taxonomy
from aims_lib.boxes import check_boxes
from aims_lib.files import REPO, write_json
from aims_lib.image_io import read_image
from aims_lib.safe_pickle import UnsafePickleError, load_weights_file

if TYPE_CHECKING:
    from aims_lib.calibration import Calibration
    from aims_lib.conformal import Answer
    from aims_lib.pose_branch.estimator import KeypointEstimator

log = logging.getLogger(__name__)

MANIFEST: Final[str] = "predictor.json"
#: Written beside the manifest by notebook 06 (temperatures, pooling weights, conformal thresholds
#: fitted on real val); removed by :func:`write_manifest`, since it belongs to the old components.
CALIBRATION: Final[str] = "calibration.json"
FORMAT: Final[str] = "aims-predictor/1"
#: Components that may be legacy pickles or configs that are code; ``trust`` names those a caller
#: vouches for (SECURITY.md).
TRUSTABLE: Final[tuple[str, ...]] = ("body_model", "pose_prior", "pose2d_checkpoint", "pose2d_config")
IMAGE_SUFFIXES: Final[tuple[str, ...]] = (".png", ".jpg", ".jpeg", ".bmp")
#: Heatmap scores at or above this are drawn as confident keypoints in overlays (mmpose's 0.2).
OVERLAY_SCORE: Final[float] = 0.2


@dataclass
class Predictions:
    """Per-image outputs of :meth:`AIMSPosePredictor.predict`, first dimension N."""

    coarse: list[str]
    coarse_id: np.ndarray  # (N,)
    coarse_prob: np.ndarray  # (N,) probability of the coarse label
    coarse_probs: np.ndarray  # (N, 4) full model: the marginal of fine_probs over each parent
    image_coarse_probs: np.ndarray  # (N, 4) the image branch's alone (HIPC's coarse input)
    fine: list[str]
    fine_id: np.ndarray  # (N,)
    fine_prob: np.ndarray  # (N,) probability of the fine label
    fine_probs: np.ndarray  # (N, 12) full model
    keypoints_2d: np.ndarray  # (N, 17, 2) image pixels
    keypoint_scores: np.ndarray  # (N, 17) heatmap scores
    keypoints_3d: np.ndarray  # (N, 17, 3) normalised camera frame, NaN where the fit failed
    smplify_failed: np.ndarray  # (N,) bool
    reprojection_error: np.ndarray  # (N,) pixels, NaN where the fit failed
    boxes: np.ndarray  # (N, 4) x, y, w, h the image was read in
    box_source: list[str]  # "given", "automatic" or "whole image" (no infant found)
    no_infant: np.ndarray  # (N,) bool: no infant found (aims_lib.auto_box); the labels mean nothing
    calibrated: bool  # probabilities calibrated on real val (the run's calibration.json)
    coarse_set: list[list[str]]  # conformal prediction set at the calibration's level ([] uncalibrated)
    fine_set: list[list[str]]
    answer: list[str]  # plain-language answer: the fine pose, "Sitting, fine pose uncertain", ...
    answer_coarse: list[str | None]  # the posture the answer commits to (None: uncertain, no infant)
    answer_fine: list[str | None]  # the fine pose it commits to (None: only the posture, or none)
    needs_review: np.ndarray  # (N,) bool: the model abstains (review_reason says why)
    review_reason: list[str]

    def __len__(self) -> int:
        return len(self.coarse)

    def take(self, rows: Sequence[int] | np.ndarray) -> Predictions:
        """The outputs of the images ``rows``, in that order (e.g. one part of a batched call)."""
        index = np.asarray(rows, dtype=np.int64)
        if index.ndim != 1 or ((index < 0) | (index >= len(self))).any():
            raise IndexError(f"rows must be a list of indices in 0..{len(self) - 1}, got {rows!r}")
        values = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = value[index]
            elif isinstance(value, list):
                value = [value[i] for i in index]
            values[f.name] = value
        return Predictions(**values)

    def row(self, i: int) -> dict[str, Any]:
        """One image's outputs as flat CSV fields (arrays as JSON lists)."""

        def js(a: np.ndarray, digits: int) -> str:
            return json.dumps(np.round(np.asarray(a, dtype=np.float64), digits).tolist()).replace("NaN", "null")

        return {
            "answer": self.answer[i],
            "needs_review": bool(self.needs_review[i]),
            "review_reason": self.review_reason[i],
            "coarse": self.coarse[i],
            "coarse_prob": round(float(self.coarse_prob[i]), 4),
            "fine": self.fine[i],
            "fine_prob": round(float(self.fine_prob[i]), 4),
            "smplify_failed": bool(self.smplify_failed[i]),
            "reprojection_error": round(float(self.reprojection_error[i]), 2),
            "coarse_probs": js(self.coarse_probs[i], 4),
            "image_coarse_probs": js(self.image_coarse_probs[i], 4),
            "fine_probs": js(self.fine_probs[i], 4),
            "keypoints_2d": js(self.keypoints_2d[i], 1),
            "keypoint_scores": js(self.keypoint_scores[i], 3),
            "keypoints_3d": js(self.keypoints_3d[i], 4),
            "box": js(self.boxes[i], 1),
            "box_source": self.box_source[i],
            "calibrated": self.calibrated,
            "coarse_set": json.dumps(self.coarse_set[i]),
            "fine_set": json.dumps(self.fine_set[i]),
        }


def write_manifest(
    run_dir: str | os.PathLike[str],
    *,
    image_branch: str | os.PathLike[str],
    pose2d: str | os.PathLike[str],
    hipc: str | os.PathLike[str],
    pose2d_checkpoint: str | os.PathLike[str] | None = None,
    pose2d_estimator: str = "mmpose",
    body_model: str | os.PathLike[str] | None = None,
    pose_prior: str | os.PathLike[str] | None = None,
    smplify: Any | None = None,
    max_reprojection: float | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``predictor.json`` into ``run_dir`` with the paths relative to it.

    ``smplify``: an :class:`~aims_lib.pose_branch.smplify.SMPLifyConfig` or a dict of its
    fields (None: the defaults); ``extra``: free-form provenance (data, metrics)."""
    from aims_lib.pose_branch.lifting import MAX_REPROJECTION

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    def rel(p: str | os.PathLike[str] | None) -> str | None:
        if p is None:
            return None
        if not Path(p).exists():
            raise FileNotFoundError(f"predictor component not found: {p}")
        return os.path.relpath(Path(p).resolve(), run_dir.resolve())

    if smplify is None:
        settings: dict[str, Any] = {}
    elif isinstance(smplify, dict):
        settings = dict(smplify)
    else:
        settings = {f.name: getattr(smplify, f.name) for f in fields(smplify)}
    settings.pop("dtype", None)
    settings = {k: list(v) if isinstance(v, tuple) else v for k, v in settings.items()}
    components = {"image_branch": image_branch, "pose2d": pose2d, "pose2d_checkpoint": pose2d_checkpoint,
                  "hipc": hipc, "body_model": body_model, "pose_prior": pose_prior}
    manifest = {
        "format": FORMAT,
        **{key: rel(p) for key, p in components.items()},
        "pose2d_estimator": pose2d_estimator,
        "smplify": settings,
        "max_reprojection": MAX_REPROJECTION if max_reprojection is None else float(max_reprojection),
        "fallback_paths": {key: str(Path(p).resolve()) for key, p in components.items() if p is not None},
        "extra": extra or {},
    }
    path = run_dir / MANIFEST
    write_json(path, manifest)
    (run_dir / CALIBRATION).unlink(missing_ok=True)
    return path


def _checkpoint_model(weights: dict[str, Any]) -> tuple[str, int | str]:
    """The backbone (a :data:`~aims_lib.image_branch.backbones.BACKBONES` entry whose tensor
    names and shapes it holds) and class count of an image-branch state dict."""
    import torch

    from aims_lib.image_branch.backbones import BACKBONES

    head = weights.get("classifier.weight")
    classes: int | str = int(head.shape[0]) if head is not None else "?"
    ours = {k: tuple(v.shape) for k, v in weights.items() if k.startswith("backbone.")}
    for name, spec in BACKBONES.items():
        try:
            with torch.device("meta"):  # shapes only: nothing allocated
                net = spec.build()
        except Exception:  # noqa: BLE001 - e.g. timm missing: not this one
            continue
        theirs = {f"backbone.net.{k}": tuple(v.shape) for k, v in net.state_dict().items()
                  if k.split(".")[0] not in ("fc", "classifier")}  # the ImageNet classifier is not kept
        if theirs == ours:
            return name, classes
    return "an unknown architecture", classes


def _load_image_weights(model: Any, state: Any, checkpoint: Path, config_file: Path) -> None:
    """Load the image branch's weights. A checkpoint of another backbone or class count is one
    line naming both: load_state_dict's own error lists every mismatched tensor."""
    weights = state.get("model") if isinstance(state, dict) else None
    if not isinstance(weights, dict):
        raise ValueError(f"{checkpoint}: not an image-branch checkpoint (no 'model' state dict)")
    try:
        model.load_state_dict(weights)
    except RuntimeError:
        arch, classes = _checkpoint_model(weights)
        raise ValueError(
            f"{checkpoint}: weights of {arch} with {classes} classes, but {config_file} expects "
            f"{model.arch} with {model.classifier.out_features} classes (coarse): the checkpoint belongs to another run"
        ) from None


class AIMSPosePredictor:
    """Image branch + pose branch + HIPC, loaded from a predictor directory (module docstring)."""

    def __init__(
        self,
        image_branch: Any,
        image_size: int,
        pose2d: KeypointEstimator,
        hipc: Any,
        smplify: Any,
        max_reprojection: float,
        device: str = "cpu",
        calibration: Calibration | None = None,
    ) -> None:
        if not hipc.hierarchical:
            raise ValueError("the full model needs the hierarchical HIPC (the pose-branch classifier has no coarse input)")
        self.image_branch = image_branch.eval()
        self.image_size = image_size
        self.pose2d = pose2d
        self.hipc = hipc.eval()
        self.smplify = smplify
        self.max_reprojection = max_reprojection
        self.device = device
        self.calibration = calibration

    @classmethod
    def load(
        cls, run_dir: str | os.PathLike[str], device: str = "cpu", trust: Collection[str] = (), calibrated: bool = True,
    ) -> AIMSPosePredictor:
        """Build the predictor that ``run_dir/predictor.json`` describes, with the run's
        ``calibration.json`` when there is one and ``calibrated`` (False: the raw outputs, which
        notebook 06 fits a calibration to).

        Every file is read as data only (SECURITY.md); ``trust`` names the components among
        :data:`TRUSTABLE` that the caller vouches for, to unpickle fully or execute (legacy files)."""
        if unknown := set(trust) - set(TRUSTABLE):
            raise ValueError(f"trust: unknown component(s) {sorted(unknown)}; one of {', '.join(TRUSTABLE)}")

        from aims_lib.calibration import Calibration
        from aims_lib.hipc import load_hipc
        from aims_lib.image_branch.model import ImageBranch
        from aims_lib.pose_branch.estimator import DEFAULT_ESTIMATOR, ESTIMATORS, load_estimator
        from aims_lib.pose_branch.model_config import UntrustedConfigError
        from aims_lib.pose_branch.smplify import SMPLify, SMPLifyConfig

        run_dir = Path(run_dir)
        path = run_dir / MANIFEST
        if not path.is_file():
            raise FileNotFoundError(f"{run_dir} has no {MANIFEST}: not a predictor directory (notebook 04 writes runs/full_model/)")
        manifest = json.loads(path.read_text())
        if manifest.get("format") != FORMAT:
            raise ValueError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")

        def resolve(key: str) -> Path | None:
            value = manifest.get(key)
            if value is None:
                return None
            p = (run_dir / value).resolve()
            if p.exists():
                return p
            fallback = manifest.get("fallback_paths", {}).get(key)
            if fallback is not None and Path(fallback).exists():
                if Path(fallback).resolve().is_relative_to(REPO / "configs"):
                    log.info("%s: %s %r not found relative to the run (%s); using %s", path, key, value, p, fallback)
                else:  # not a config of this code: another tree's run, which may change or vanish
                    warnings.warn(
                        f"{path}: {key} {value!r} is not beside the predictor ({p}); loading {fallback} instead, "
                        "where it was when the manifest was written (the predictor was copied without its "
                        "siblings?): copy it beside the predictor to make the directory self-contained",
                        stacklevel=3,
                    )
                return Path(fallback)
            also = f" nor at its fallback path {fallback}" if fallback is not None else ""
            raise FileNotFoundError(f"{path}: {key} {value!r} not found ({p}){also}")

        image_dir = resolve("image_branch")
        if image_dir is None:
            raise ValueError(f"{path}: image_branch is required")
        config = json.loads((image_dir / "config.json").read_text())
        if config.get("level") != "coarse":
            raise ValueError(f"{image_dir}: the full model needs a coarse image branch, got level {config.get('level')!r}")
        image_branch = ImageBranch(config["arch"], taxonomy.NUM_COARSE)
        state = load_weights_file(image_dir / "checkpoints" / "best.pt")
        _load_image_weights(image_branch, state, image_dir / "checkpoints" / "best.pt", image_dir / "config.json")

        def trusted_load(key: str, load: Callable[[bool], Any]) -> Any:
            """``load(trusted)``; a refused pickle's or config's error names this run's opt-in."""
            try:
                return load(key in trust)
            except UntrustedConfigError as exc:
                raise UntrustedConfigError(f"{exc} {opt_in('pose2d_config')}") from None
            except pickle.UnpicklingError as exc:
                raise UnsafePickleError(f"{exc} {opt_in(key)}") from None

        def opt_in(key: str) -> str:
            return f"(for this run: trust=({key!r},), on the command line --trust {key})"

        estimator = manifest.get("pose2d_estimator", DEFAULT_ESTIMATOR)
        if estimator not in ESTIMATORS:  # a name, never a module path: nothing of the manifest is imported
            raise ValueError(f"{path}: pose2d_estimator {estimator!r} is not a registered 2D estimator "
                             f"(registered: {', '.join(sorted(ESTIMATORS))})")
        pose2d = trusted_load("pose2d_checkpoint", lambda t: load_estimator(
            resolve("pose2d"), resolve("pose2d_checkpoint"), device, estimator, trusted=t,
            trusted_config="pose2d_config" in trust))
        hipc_path = resolve("hipc")
        if hipc_path is None:
            raise ValueError(f"{path}: hipc is required")
        hipc = load_hipc(hipc_path, device=device)

        body = None
        if (body_path := resolve("body_model")) is not None:
            from aims_lib.body import load_body_model

            body = trusted_load("body_model", lambda t: load_body_model(body_path, trusted=t))
        prior = None
        if (prior_path := resolve("pose_prior")) is not None:
            from aims_lib.pose_branch.priors import GMMPosePrior

            prior = trusted_load("pose_prior", lambda t: GMMPosePrior.load(prior_path, trusted=t))
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in manifest.get("smplify", {}).items()}
        smplify = SMPLify(body, prior, SMPLifyConfig(**settings), device)
        calibration = Calibration.load(run_dir / CALIBRATION) if calibrated and (run_dir / CALIBRATION).is_file() else None
        return cls(image_branch.to(device), int(config["image_size"]), pose2d, hipc, smplify,
                   float(manifest.get("max_reprojection", 0.25)), device, calibration)

    def _coarse_probs(self, images: list[np.ndarray], boxes: np.ndarray, batch_size: int) -> np.ndarray:
        import torch
        from PIL import Image

        from aims_lib.data.torch_datasets import crop_to_box, image_transform

        transform = image_transform(self.image_size, train=False, normalization=self.image_branch.normalization)
        out = []
        with torch.no_grad():
            for b in range(0, len(images), batch_size):
                batch = torch.stack([
                    transform(crop_to_box(Image.fromarray(img), box)) for img, box in zip(images[b : b + batch_size], boxes[b : b + batch_size])
                ]).to(self.device)
                logits, _ = self.image_branch(batch)
                out.append(torch.softmax(logits.float(), dim=1).cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def _boxes(
        self, arrays: list[np.ndarray], bboxes: np.ndarray | Sequence[Sequence[float]] | None, batch_size: int
    ) -> tuple[np.ndarray, list[str], np.ndarray, list[str]]:
        """Each image's box, where it came from, whether no infant was found and why: given boxes
        are checked; missing ones (None, or a row of NaN) are found (:mod:`aims_lib.auto_box`)."""
        from aims_lib.auto_box import find_infants

        n = len(arrays)
        boxes = np.full((n, 4), np.nan) if bboxes is None else check_boxes(bboxes, n, allow_missing=True)
        given = ~np.isnan(boxes).all(axis=1)
        source = ["given"] * n
        no_infant = np.zeros(n, dtype=bool)
        reasons = [""] * n
        if (~given).any():
            missing = np.flatnonzero(~given)
            found = find_infants(self.pose2d, [arrays[i] for i in missing], batch_size=batch_size)
            boxes[missing] = found.boxes
            for k, i in enumerate(missing):
                source[i] = "automatic" if found.found[k] else "whole image"
                no_infant[i] = not found.found[k]
                reasons[i] = found.reason[k]
        return boxes, source, no_infant, reasons

    def predict(
        self,
        images: Sequence[np.ndarray | str | os.PathLike[str]],
        bboxes: np.ndarray | Sequence[Sequence[float]] | None = None,
        batch_size: int = 32,
    ) -> Predictions:
        """Labels, probabilities, answers and keypoints of every image (files or uint8 RGB arrays,
        read upright by :func:`aims_lib.image_io.read_image`), with one ``x, y, w, h`` box each;
        None, or a row of NaN, lets the predictor find the infant (:mod:`aims_lib.auto_box`; an
        image with none gets ``no_infant`` and the answer "no infant found"). An unreadable image
        raises :class:`ImageReadError` naming it (the CLI reads files one by one first)."""
        from aims_lib.hipc import coarse_marginal, predict_hipc
        from aims_lib.pose_branch.lifting import fit_failures
        from aims_lib.pose_branch.smplify import default_intrinsics

        arrays = [read_image(im) for im in images]
        n = len(arrays)
        if n == 0:
            raise ValueError("no images to predict")
        boxes, box_source, no_infant, reasons = self._boxes(arrays, bboxes, batch_size)
        image_coarse = self._coarse_probs(arrays, boxes, batch_size)
        keypoints_2d, scores = self.pose2d.predict(arrays, boxes, batch_size=batch_size)
        K = default_intrinsics(np.array([a.shape[1] for a in arrays]), np.array([a.shape[0] for a in arrays]))
        fit = self.smplify.fit(keypoints_2d.astype(np.float64), scores.astype(np.float64), K).numpy()
        failed = fit_failures(fit, boxes[:, 2:].max(1), self.max_reprojection)
        keypoints_3d = np.where(failed[:, None, None], np.nan, fit["keypoints_3d"]).astype(np.float32)
        log_probs = predict_hipc(self.hipc, keypoints_3d, image_coarse, device=self.device)
        if self.calibration is None:
            fine_probs = np.exp(log_probs.astype(np.float64))
            coarse_probs = coarse_marginal(log_probs)  # the full model's coarse decision
        else:
            coarse_probs, fine_probs = self.calibration.calibrated(image_coarse, log_probs)
        coarse_id = coarse_probs.argmax(1)
        fine_id = fine_probs.argmax(1)
        # A failed fit: p(f) is flat within each parent, so its argmax can be a child of another
        # parent with fewer children; the fine label is the first child of the coarse one.
        children = np.eye(taxonomy.NUM_COARSE, dtype=bool)[list(taxonomy.FINE_TO_COARSE_ID)].T  # (4, 12)
        fine_id[failed] = np.where(children[coarse_id[failed]], fine_probs[failed], -np.inf).argmax(1)
        rows = np.arange(n)
        coarse_set, fine_set, answers, needs_review, review_reason = self._answers(
            coarse_probs, fine_probs, coarse_id, fine_id, failed, no_infant, reasons)
        return Predictions(
            coarse=[taxonomy.COARSE[i] for i in coarse_id],
            coarse_id=coarse_id,
            coarse_prob=coarse_probs[rows, coarse_id],
            coarse_probs=coarse_probs,
            image_coarse_probs=image_coarse,
            fine=[taxonomy.FINE[i] for i in fine_id],
            fine_id=fine_id,
            fine_prob=fine_probs[rows, fine_id],
            fine_probs=fine_probs,
            keypoints_2d=keypoints_2d,
            keypoint_scores=scores,
            keypoints_3d=keypoints_3d,
            smplify_failed=failed,
            reprojection_error=np.where(failed, np.nan, fit["reprojection_error"]),
            boxes=boxes,
            box_source=box_source,
            no_infant=no_infant,
            calibrated=self.calibration is not None,
            coarse_set=coarse_set,
            fine_set=fine_set,
            answer=[a.text for a in answers],
            answer_coarse=[a.coarse for a in answers],
            answer_fine=[a.fine for a in answers],
            needs_review=needs_review,
            review_reason=review_reason,
        )

    def _answers(
        self, coarse_probs: np.ndarray, fine_probs: np.ndarray, coarse_id: np.ndarray, fine_id: np.ndarray,
        failed: np.ndarray, no_infant: np.ndarray, reasons: list[str],
    ) -> tuple[list[list[str]], list[list[str]], list[Answer], np.ndarray, list[str]]:
        """Prediction sets, the answer and the abstention of each image.

        Calibrated: the conformal sets at the calibration's level and the hierarchical answer of
        :func:`aims_lib.conformal.hierarchical_answers` ("uncertain: Prone or Supine" abstains).
        Uncalibrated: no sets, the fine label as the answer. Either way an image without an
        infant, or whose 3D fit failed (the fine label then only follows the coarse one), abstains
        on what it cannot tell."""
        from aims_lib.conformal import Answer, hierarchical_answers, prediction_sets

        n = len(coarse_id)
        if self.calibration is None:
            coarse_set: list[list[str]] = [[] for _ in range(n)]
            fine_set: list[list[str]] = [[] for _ in range(n)]
            answers = [Answer("fine", taxonomy.COARSE[c], taxonomy.FINE[f], f"{taxonomy.FINE[f]} ({taxonomy.COARSE[c]})")
                       for f, c in zip(fine_id, coarse_id)]
        else:
            coarse_sets = prediction_sets(coarse_probs, self.calibration.coarse_threshold)
            fine_sets = prediction_sets(fine_probs, self.calibration.fine_threshold)
            coarse_set = [[taxonomy.COARSE[j] for j in np.flatnonzero(row)] for row in coarse_sets]
            fine_set = [[taxonomy.FINE[j] for j in np.flatnonzero(row)] for row in fine_sets]
            answers = hierarchical_answers(coarse_sets, fine_sets, coarse_probs, fine_probs)
        review = [a.text if a.kind == "uncertain" else "" for a in answers]
        for i in np.flatnonzero(failed & ~no_infant):
            if answers[i].kind != "uncertain":
                coarse = answers[i].coarse
                answers[i] = Answer("coarse_only", coarse, None, f"{coarse}, fine pose uncertain")
            review[i] = "3D fit failed: the fine pose follows the image branch's coarse label only"
        for i in np.flatnonzero(no_infant):
            answers[i], review[i] = Answer("uncertain", None, None, "no infant found"), reasons[i]
            coarse_set[i], fine_set[i] = [], []
        return coarse_set, fine_set, answers, np.array([bool(r) for r in review]), review
