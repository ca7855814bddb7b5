"""Notebook 04's study of HIPC: which classifiers are trained on which 3D keypoints and seeds, how
each is scored, and where the full model gains or loses against the pose branch.

Two classifiers share HIPC's network (:mod:`aims_lib.hipc`): the **pose branch** (3D keypoints
only) and the **full model** (3D keypoints and the image branch's coarse probabilities). The
paper does not say which 3D keypoints HIPC learns from, so the pose branch is trained on every
source (:data:`SOURCES`), the full model on the ground truth and on the source the Table 2 rows
use; further training seeds repeat those two rows. Every model is selected on real val with the
deployable input (:data:`DEPLOYED`: SMPLify fitted to the estimated 2D keypoints), the full
model with the image branch's coarse probabilities of its own training seed, and scored on real
test with each source as input.

Records are keyed by source and model (:data:`MODELS`' snake_case keys), never by display
headers: notebook 05 reads them (:func:`keypoint_quality`); display rows are built from them.

Sources: ``docs/references.md#paper``, ``docs/references.md#hipc``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from aims_lib import taxonomy
from aims_lib.data.format import Sample
from aims_lib.hipc import HIPCTrainConfig, HIPCTrainResult, coarse_marginal, coarse_of_fine, predict_hipc, train_hipc
from aims_lib.image_branch.run_names import run_key
from aims_lib.pose_branch.lifting import Pose3DSet, ground_truth_3d_camera
from aims_lib.statistics import (
    Accuracy,
    Comparison,
    SeedSummary,
    accuracy,
    classification_report,
    paired_comparison,
    summarise_seeds,
)

log = logging.getLogger(__name__)

#: Sources of 3D keypoints: the dataset's ground truth in the camera frame, SMPLify fitted to the
#: annotated 2D keypoints, SMPLify fitted to the estimated ones.
SOURCES: Final[tuple[str, ...]] = ("gt3d", "smplify_gt2d", "smplify_estimated")
#: The 3D input of the deployable pipeline: model selection, Table 2 and the error analysis use it.
DEPLOYED: Final[str] = "smplify_estimated"
#: The two classifiers, by record key, with their display names.
MODELS: Final[dict[str, str]] = {"pose_branch": "pose branch", "full_model": "full model"}
#: The inputs of notebook 05's keypoint-quality comparison, with their display names.
KEYPOINT_INPUTS: Final[dict[str, str]] = {"smplify_gt2d": "ground-truth 2D", "smplify_estimated": "estimated 2D"}
#: A trained classifier: (training keypoints, model, training seed).
RunKey = tuple[str, str, int]


def image_branch_runs(image_record: Mapping[str, Any], run_root: str | Path, seeds: Sequence[int]) -> dict[int, Path]:
    """The synthetic+real LMMD coarse run of each training seed, as notebook 02's record names it:
    its probabilities are HIPC's coarse input. A seed notebook 02 did not train is an error."""
    runs = image_record.get("runs_by_seed", {})
    keys = {k: run_key("coarse", "synthetic+real", "lmmd", k) for k in seeds}
    missing = [k for k, key in keys.items() if key not in runs]
    if missing:
        raise ValueError(f"02_image_branch.json has no image-branch runs of training seed(s) {missing}: run notebook 02 "
                         f"with the same train_seeds first")
    return {k: Path(run_root) / runs[key] for k, key in keys.items()}


@dataclass(frozen=True)
class HipcData:
    """HIPC's inputs per split (``train``, ``val``, ``test``): ``keypoints[source][split]`` (N, 17, 3),
    NaN rows where a fit failed; ``coarse_probs[seed][split]`` (N, 4), the image branch's of that
    training seed; ``fine[split]`` (N,) the true fine ids."""

    keypoints: Mapping[str, Mapping[str, np.ndarray]]
    coarse_probs: Mapping[int, Mapping[str, np.ndarray]]
    fine: Mapping[str, np.ndarray]

    def failed_share(self) -> dict[str, dict[str, float]]:
        """Per source and split: the share (%) of images without 3D keypoints (failed fits)."""
        return {src: {split: float(np.isnan(kp).any((1, 2)).mean() * 100) for split, kp in by_split.items()}
                for src, by_split in self.keypoints.items()}


def hipc_data(
    splits: Mapping[str, Sequence[Sample]], fits: Mapping[str, Pose3DSet], image_logits: Mapping[int, np.ndarray],
    samples: Sequence[Sample],
) -> HipcData:
    """Gather :class:`HipcData`: ``fits`` are the SMPLify sources' 3D keypoints (by image id),
    ``image_logits[seed]`` the image branch's coarse logits of ``samples`` (in their order)."""
    row = {s.image_id: r for r, s in enumerate(samples)}
    probs = {k: torch.softmax(torch.from_numpy(logits).double(), dim=1).numpy() for k, logits in image_logits.items()}

    def keypoints(source: str, sub: Sequence[Sample]) -> np.ndarray:
        if source == "gt3d":
            return ground_truth_3d_camera(sub).astype(np.float32)
        return fits[source].by_id([s.image_id for s in sub])

    return HipcData(
        keypoints={src: {split: keypoints(src, sub) for split, sub in splits.items()} for src in SOURCES},
        coarse_probs={k: {split: p[[row[s.image_id] for s in sub]] for split, sub in splits.items()} for k, p in probs.items()},
        fine={split: np.array([s.fine_id for s in sub]) for split, sub in splits.items()},
    )


def training_plan(train_keypoints: str, seeds: Sequence[int]) -> list[RunKey]:
    """The classifiers to train: with the headline seed (the first), the pose branch on every
    source and the full model on the ground truth and on ``train_keypoints`` (the source of
    Table 2 and the predictor); with every further seed, both on ``train_keypoints`` again."""
    if train_keypoints not in SOURCES:
        raise ValueError(f"train_keypoints must be one of {SOURCES}, got {train_keypoints!r}")
    if not seeds:
        raise ValueError("seeds: need at least one training seed (the headline first)")
    headline, *more = seeds
    plan = [(src, model, headline) for src in SOURCES for model in MODELS
            if model == "pose_branch" or src in ("gt3d", train_keypoints)]
    return plan + [(train_keypoints, model, k) for k in more for model in MODELS]


def trainable_rows(data: HipcData, source: str) -> int:
    """Training images of ``source`` whose 3D keypoints exist (SMPLify did not fail)."""
    keypoints = data.keypoints[source]["train"]
    return int(np.isfinite(keypoints).reshape(len(keypoints), -1).all(1).sum())


def train_plan(data: HipcData, plan: Sequence[RunKey], **settings: Any) -> dict[RunKey, HIPCTrainResult]:
    """Train every classifier of ``plan`` (:class:`~aims_lib.hipc.HIPCTrainConfig` ``settings``
    with the run's seed) and select it on real val with the deployable input (module docstring).
    A source with fewer than 2 trainable rows (every fit failed, e.g. from a 2D model trained for
    one epoch) is left out with a warning rather than stopping the others."""
    out = {}
    for source, model, k in plan:
        if (rows := trainable_rows(data, source)) < 2:
            log.warning("HIPC %s on %s, seed %d: not trained, %d training images have 3D keypoints (the others' fits "
                        "failed)", model, source, k, rows)
            continue
        full = model == "full_model"
        out[source, model, k] = train_hipc(
            data.keypoints[source]["train"], data.fine["train"], HIPCTrainConfig(hierarchical=full, **{**settings, "seed": k}),
            coarse_probs=data.coarse_probs[k]["train"] if full else None,
            val_keypoints=data.keypoints[DEPLOYED]["val"], val_labels=data.fine["val"],
            val_coarse_probs=data.coarse_probs[k]["val"] if full else None,
        )
    return out


def predict(result: HIPCTrainResult, data: HipcData, source: str = DEPLOYED, coarse_probs: np.ndarray | None = None) -> np.ndarray:
    """Fine log-probabilities on real test from ``source``'s 3D keypoints; the full model takes the
    image branch's coarse probabilities of its own training seed unless ``coarse_probs`` replaces them."""
    if not result.config.hierarchical:
        coarse_probs = None
    elif coarse_probs is None:
        coarse_probs = data.coarse_probs[result.config.seed]["test"]
    return predict_hipc(result.model, data.keypoints[source]["test"], coarse_probs)


def true_coarse_probs(fine: np.ndarray) -> np.ndarray:
    """One-hot coarse probabilities of the true parents: the image branch replaced by an oracle."""
    return np.eye(taxonomy.NUM_COARSE)[coarse_of_fine(fine)]


def score_sources(models: Mapping[RunKey, HIPCTrainResult], data: HipcData, headline: int) -> dict[str, dict[str, dict[str, Any]]]:
    """``[source][model]`` of the headline seed's classifiers: training facts, the real-val accuracy
    that selected them (``val_top1``), fine accuracy on real test with each source as input
    (``test_input[source]``) and, for the full model, with the deployable input and the true coarse
    label (``true_coarse``: its ceiling). Accuracies are :class:`~aims_lib.statistics.Accuracy` fields."""
    truth = data.fine["test"]

    def score(logp: np.ndarray) -> dict[str, Any]:
        return asdict(accuracy(logp, truth, taxonomy.NUM_FINE, seed=headline))

    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (source, model, k), res in models.items():
        if k != headline:
            continue
        entry = {"seconds": res.seconds, "excluded": res.n_excluded, "best_epoch": res.best_epoch, "val_top1": res.best_val_acc,
                 "test_input": {src: score(predict(res, data, src)) for src in SOURCES}}
        if res.config.hierarchical:
            entry["true_coarse"] = score(predict(res, data, DEPLOYED, true_coarse_probs(truth)))
        out.setdefault(source, {})[model] = entry
    return out


def source_rows(by_source: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Display rows of :func:`score_sources`: one per classifier, each test accuracy with its interval."""
    rows = []
    for source, by_model in by_source.items():
        for model, e in by_model.items():
            row = {"train keypoints": source, "model": MODELS[model], "seconds": e["seconds"], "excluded": e["excluded"],
                   "best epoch": e["best_epoch"], "real val (selection)": e["val_top1"]}
            row |= {f"test ({src} input)": str(Accuracy(**a)) for src, a in e["test_input"].items()}
            if "true_coarse" in e:
                row[f"test ({DEPLOYED} input, true coarse)"] = str(Accuracy(**e["true_coarse"]))
            rows.append(row)
    return rows


def keypoint_quality(record: Mapping[str, Any]) -> dict[str, dict[str, Accuracy]]:
    """From notebook 04's record: the fine accuracy of each classifier trained on its
    ``train_keypoints``, by the 2D keypoints SMPLify fitted at test time (display names)."""
    trained = record["hipc_by_source"][record["train_keypoints"]]
    return {MODELS[model]: {title: Accuracy(**e["test_input"][src]) for src, title in KEYPOINT_INPUTS.items()}
            for model, e in trained.items()}


@dataclass(frozen=True)
class Corrections:
    """Real test images (indices) the pose branch gets wrong and the full model right (``corrected``),
    those of them whose pose-branch error crossed coarse labels (``across_coarse``), and how many
    images the full model got wrong that the pose branch got right (``made_wrong``)."""

    corrected: np.ndarray
    across_coarse: np.ndarray
    made_wrong: int

    def shown(self, n: int = 12) -> list[int]:
        """Up to ``n`` corrected images to show, those corrected across coarse labels first."""
        crossing = set(self.across_coarse.tolist())
        rest = [i for i in self.corrected.tolist() if i not in crossing]
        return (self.across_coarse.tolist() + rest)[:n]


@dataclass(frozen=True)
class DeployedPredictions:
    """A training seed's pose branch and full model on real test with the deployable 3D input:
    the truth, the pose branch's fine ids and the full model's fine log-probabilities."""

    fine_true: np.ndarray
    pose_fine: np.ndarray
    full_log_probs: np.ndarray

    @property
    def coarse_true(self) -> np.ndarray:
        return coarse_of_fine(self.fine_true)

    @property
    def pose_coarse(self) -> np.ndarray:
        """The parent of the pose branch's fine label."""
        return coarse_of_fine(self.pose_fine)

    @property
    def full_fine(self) -> np.ndarray:
        return self.full_log_probs.argmax(1)

    @property
    def full_coarse(self) -> np.ndarray:
        """The marginal of the full model's fine probabilities: both experts' coarse decision."""
        return coarse_marginal(self.full_log_probs).argmax(1)

    def reports(self) -> dict[str, dict[str, Any]]:
        """:func:`~aims_lib.statistics.classification_report` of each model (record keys)."""
        return {"pose_branch": classification_report(self.pose_coarse, self.pose_fine, self.coarse_true, self.fine_true),
                "full_model": classification_report(self.full_coarse, self.full_fine, self.coarse_true, self.fine_true)}

    def corrections(self) -> Corrections:
        pose_right, full_right = self.pose_fine == self.fine_true, self.full_fine == self.fine_true
        corrected = np.flatnonzero(~pose_right & full_right)
        crossing = corrected[self.pose_coarse[corrected] != self.coarse_true[corrected]]
        return Corrections(corrected, crossing, int((pose_right & ~full_right).sum()))


def deployed_predictions(models: Mapping[RunKey, HIPCTrainResult], data: HipcData, train_keypoints: str, seed: int) -> DeployedPredictions:
    """The Table 2 classifiers (trained on ``train_keypoints``) of training seed ``seed`` on real test."""
    missing = [model for model in MODELS if (train_keypoints, model, seed) not in models]
    if missing:
        raise ValueError(f"no {' and '.join(missing)} trained on {train_keypoints} (seed {seed}): too few of its fits "
                         "succeeded (train_plan's warning); train on another source (train_keypoints)")
    pose, full = models[train_keypoints, "pose_branch", seed], models[train_keypoints, "full_model", seed]
    return DeployedPredictions(data.fine["test"], predict(pose, data).argmax(1), predict(full, data))


def table2_rows(
    predictions: Mapping[int, DeployedPredictions], headline: int
) -> tuple[dict[str, dict[str, float]], dict[str, dict[str, SeedSummary]]]:
    """Table 2's pose-branch and full-model numbers: the headline seed's top-1 (%) and, per
    number, its :class:`~aims_lib.statistics.SeedSummary` over the training seeds."""
    per_seed: dict[tuple[str, str], dict[int, Accuracy]] = {("coarse", "pose"): {}, ("fine", "pose"): {}, ("fine", "full"): {}}
    for k, p in predictions.items():
        per_seed["coarse", "pose"][k] = accuracy(p.pose_coarse, p.coarse_true, taxonomy.NUM_COARSE, seed=headline)
        per_seed["fine", "pose"][k] = accuracy(p.pose_fine, p.fine_true, taxonomy.NUM_FINE, seed=headline)
        per_seed["fine", "full"][k] = accuracy(p.full_fine, p.fine_true, taxonomy.NUM_FINE, seed=headline)
    ours: dict[str, dict[str, float]] = {}
    detail: dict[str, dict[str, SeedSummary]] = {}
    for (level, name), by_seed in per_seed.items():
        ours.setdefault(level, {})[name] = by_seed[headline].top1
        detail.setdefault(level, {})[name] = summarise_seeds(by_seed, headline)
    return ours, detail


def paper_comparisons(pred: DeployedPredictions, image_coarse: np.ndarray, image_fine: np.ndarray, seed: int) -> list[Comparison]:
    """The paper's comparisons of Table 2 (names of :data:`aims_lib.paper_tables.PAPER_COMPARISONS`),
    paired on the same test images: the full model against the pose branch (fine), the pose
    branch against the LMMD image branch (coarse and fine; ``image_*``: its predicted ids)."""
    pose_fine, pose_coarse = pred.pose_fine == pred.fine_true, pred.pose_coarse == pred.coarse_true
    return [
        paired_comparison("full model vs pose branch, fine", "pose branch", pose_fine,
                          "full model", pred.full_fine == pred.fine_true, seed=seed),
        paired_comparison("pose branch vs image branch (LMMD), coarse", "image branch (LMMD)", image_coarse == pred.coarse_true,
                          "pose branch", pose_coarse, seed=seed),
        paired_comparison("pose branch vs image branch (LMMD), fine", "image branch (LMMD)", image_fine == pred.fine_true,
                          "pose branch", pose_fine, seed=seed),
    ]


def diagnosis(
    pred: DeployedPredictions, image_coarse_probs: np.ndarray, by_source: Mapping[str, Mapping[str, Mapping[str, Any]]],
    train_keypoints: str, seed: int,
) -> dict[str, Accuracy]:
    """What limits the full model, on real test: the coarse top-1 of the image branch, the pose
    branch and the full model; the full model's fine top-1, with the image branch and with the
    true coarse label in its place; and the pose branch on SMPLify fits of the annotated 2D
    keypoints (perfect 2D), the last two from :func:`score_sources`' record."""
    coarse, fine = (pred.coarse_true, taxonomy.NUM_COARSE), (pred.fine_true, taxonomy.NUM_FINE)
    return {
        "image_coarse_top1": accuracy(image_coarse_probs, *coarse, seed=seed),
        "pose_coarse_top1": accuracy(pred.pose_coarse, *coarse, seed=seed),
        "full_coarse_top1": accuracy(pred.full_coarse, *coarse, seed=seed),
        "full_fine_top1": accuracy(pred.full_fine, *fine, seed=seed),
        "full_fine_top1_true_coarse": Accuracy(**by_source[train_keypoints]["full_model"]["true_coarse"]),
        "pose_fine_top1_gt2d_fits": Accuracy(**by_source["smplify_gt2d"]["pose_branch"]["test_input"]["smplify_gt2d"]),
    }


def per_class_table(reports: Mapping[str, Mapping[str, Any]], level: str) -> dict[str, dict[str, float | None]]:
    """Per model (display name): recall per class (%, None for a class absent from the test split)
    at ``level``, then the macro accuracy (the mean over the classes present) and top-1."""
    return {MODELS[model]: {**r[level]["per_class"], "macro (class mean)": r[level]["macro"], "top-1": r[level]["top1"]}
            for model, r in reports.items()}


def errors_across_coarse(confusion: np.ndarray | Sequence[Sequence[int]]) -> int:
    """Images of a fine confusion matrix ``M[true, predicted]`` predicted outside their true coarse
    label: the mistakes the image branch's coarse probabilities can correct (or cause)."""
    parent = np.asarray(taxonomy.FINE_TO_COARSE_ID)
    return int(np.asarray(confusion)[parent[:, None] != parent[None, :]].sum())
