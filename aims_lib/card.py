"""The benchmark card: is a dataset a valid domain-adaptation benchmark, and how hard is it?

A domain-adaptation benchmark is valid only if its target domain carries the label (a classifier
trained on target labels does well there), the source-trained classifier does clearly worse on
the target (there is a gap to close), and the label lives in the infant's body rather than in
backgrounds, colours or camera settings. The card measures all three with one fixed, cheap
instrument: frozen ImageNet EfficientNet-Lite0 features (global average pool, 1280-d) of the
square crops around the infant, and a linear classifier (multinomial logistic regression on
standardised features, its regularisation chosen by 3-fold cross-validation on the training
part only). Probes, for coarse and fine labels:

- ``S->S``: synthetic to held-out synthetic (how learnable the source is);
- ``T->T``: target cross-validation over every real-domain image (the ceiling with target labels);
- ``S->T``: synthetic to the real test split (what the image branch is scored on);
- ``S->T all``: synthetic to every real image, paired with ``T->T`` on the same images: the
  gap domain adaptation has to close, ``T->T`` minus ``S->T all`` (the synthetic probe never
  sees a real image, so all 750 can be its test set; on the 198 test images alone the gap swung
  by 15 points between seeds, ``docs/decisions.md``);
- ``S+T->T``: synthetic plus real train to the real test split (what target labels add);
- ``context``: ``T->T`` with the square around the infant's box filled with grey (what the
  background alone gives away; it should be near the majority-class rate).

Each accuracy carries a 95 % percentile-bootstrap interval over its test images. Where the
generator recorded how each real image was photographed (its shot and whether an occluder covers
part of the body), ``T->T`` and ``S->T all`` are also broken down by those subsets: where the
ceiling is lost.

Sources: ``docs/references.md#statistics``.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Final

import numpy as np
import torch
from PIL import Image, ImageDraw
from tqdm.auto import tqdm

from aims_lib.batchnorm_folding import fold_batchnorm
from aims_lib.data.format import AimsDataset, Sample
from aims_lib.data.torch_datasets import crop_to_box, image_transform, read_image
from aims_lib.image_branch.backbones import StagedBackbone, get_backbone
from aims_lib.statistics import bootstrap_interval

if TYPE_CHECKING:
    from aims_lib.pose_card import PoseCard

CARD_BACKBONE: Final = "efficientnet_lite0"
PROBES: Final = ("S->S", "T->T", "S->T", "S->T all", "S+T->T", "context")
LEVELS: Final = ("coarse", "fine")
#: Grey that fills the infant's box in the context-only probe (TF-Lite's zero input).
CONTEXT_GREY: Final = (127, 127, 127)
#: Inverse regularisation strengths the linear probe chooses from (on the training part only).
PROBE_CS: Final = (0.003, 0.03, 0.3)


#: When a dataset is a valid adaptation benchmark (percent, points): the target carries the
#: label, the source is learnable, there is a gap to close and target labels help, and the
#: background alone gives nothing away. The embedded benchmark is built to pass them.
VALIDITY: Final[dict[str, tuple[str, float]]] = {
    "T->T coarse": (">=", 75.0),
    "T->T fine": (">=", 50.0),
    "S->S coarse": (">=", 80.0),
    "T->T minus S->T all, coarse": (">=", 15.0),
    "S+T->T minus S->T, coarse": (">", 0.0),
    "context above majority, coarse": ("<=", 10.0),
    "context above majority, fine": ("<=", 10.0),
}


@dataclass(frozen=True)
class ProbeResult:
    probe: str
    level: str
    accuracy: float  # top-1 %
    ci_low: float
    ci_high: float
    majority: float  # % of the most frequent class among the test images
    n_train: int
    n_test: int


def validity_rows(values: Mapping[str, float], thresholds: Mapping[str, tuple[str, float]], digits: int = 1) -> list[dict[str, Any]]:
    """One row per check of ``thresholds`` (name -> (``>=``, ``>`` or ``<=``, threshold)) on
    ``values``: name, value, threshold, passed."""
    rows = []
    for check, (op, threshold) in thresholds.items():
        v = values[check]
        passed = v >= threshold if op == ">=" else v > threshold if op == ">" else v <= threshold
        rows.append({"check": check, "value": round(v, digits), "threshold": f"{op} {threshold:g}", "passed": bool(passed)})
    return rows


@dataclass(frozen=True)
class SubsetResult:
    """``T->T`` and ``S->T all`` on the real images of one photo subset (e.g. ``close, occluded``)."""

    subset: str
    level: str
    n: int
    t_to_t: float  # top-1 %
    t_to_t_ci: tuple[float, float]
    s_to_t: float
    s_to_t_ci: tuple[float, float]


@dataclass(frozen=True)
class BenchmarkCard:
    """The image probes, and the pose rows (:mod:`aims_lib.pose_card`) when they were measured."""

    results: tuple[ProbeResult, ...]
    image_size: int
    backbone: str
    pose: PoseCard | None = None
    subsets: tuple[SubsetResult, ...] = ()

    def get(self, probe: str, level: str) -> ProbeResult:
        return next(r for r in self.results if r.probe == probe and r.level == level)

    def to_dict(self) -> dict:
        return {"backbone": self.backbone, "image_size": self.image_size,
                "probes": {f"{r.probe}/{r.level}": asdict(r) for r in self.results},
                "pose": self.pose.to_dict() if self.pose is not None else None,
                "subsets": [asdict(r) for r in self.subsets],
                "validity": self.validity()}

    def validity(self) -> list[dict]:
        """The checks of :data:`VALIDITY` on this card, then the pose checks when there are pose
        rows: name, value, threshold, passed."""
        acc = {(r.probe, r.level): r.accuracy for r in self.results}
        values = {
            "T->T coarse": acc["T->T", "coarse"],
            "T->T fine": acc["T->T", "fine"],
            "S->S coarse": acc["S->S", "coarse"],
            "T->T minus S->T all, coarse": acc["T->T", "coarse"] - acc["S->T all", "coarse"],
            "S+T->T minus S->T, coarse": acc["S+T->T", "coarse"] - acc["S->T", "coarse"],
            "context above majority, coarse": acc["context", "coarse"] - self.get("context", "coarse").majority,
            "context above majority, fine": acc["context", "fine"] - self.get("context", "fine").majority,
        }
        return validity_rows(values, VALIDITY) + (self.pose.validity() if self.pose is not None else [])

    def rows(self) -> list[dict]:
        """One row per probe: accuracy and interval per level, as a reader compares them."""
        rows = []
        for probe in PROBES:
            row: dict[str, object] = {"probe": probe}
            for level in LEVELS:
                r = self.get(probe, level)
                row[f"{level} %"] = round(r.accuracy, 1)
                row[f"{level} 95% CI"] = f"[{r.ci_low:.1f}, {r.ci_high:.1f}]"
                row[f"{level} majority %"] = round(r.majority, 1)
            row["train / test images"] = f"{r.n_train} / {r.n_test}"
            rows.append(row)
        return rows

    def subset_rows(self) -> list[dict]:
        """One row per photo subset: its size and ``T->T`` / ``S->T all`` per level with intervals."""
        rows: dict[str, dict[str, object]] = {}
        for r in self.subsets:
            row = rows.setdefault(r.subset, {"photo subset": r.subset, "real images": r.n})
            row[f"T->T {r.level} %"] = f"{r.t_to_t:.1f} [{r.t_to_t_ci[0]:.1f}, {r.t_to_t_ci[1]:.1f}]"
            row[f"S->T {r.level} %"] = f"{r.s_to_t:.1f} [{r.s_to_t_ci[0]:.1f}, {r.s_to_t_ci[1]:.1f}]"
        return list(rows.values())


def photo_subsets(dataset: AimsDataset, samples: Sequence[Sample]) -> list[str] | None:
    """Each sample's photo subset, ``"<shot>, occluded"`` or ``"<shot>, clear"``, from the
    ``photo`` record the generator writes into a real-proxy annotation; ``None`` when any sample
    lacks one (real photographs, older datasets)."""
    photo = {a["image_id"]: a.get("photo") for a in dataset.raw.get("annotations", [])}
    out = []
    for s in samples:
        p = photo.get(s.image_id)
        if not isinstance(p, dict) or "shot" not in p:
            return None
        out.append(f"{p['shot']}, {'occluded' if p.get('occluder') else 'clear'}")
    return out


def grey_out_box(image: Image.Image, bbox: np.ndarray) -> Image.Image:
    """A copy of ``image`` with the square around the box ``x, y, w, h`` (side the longer one,
    same centre) filled with :data:`CONTEXT_GREY`.

    A square, not the box itself: the grey rectangle's aspect ratio would tell a standing infant
    from a lying one (measured on the quick data: a fine context probe 12 points above the
    majority rate with the box, from the shape alone), which is the body, not its context."""
    out = image.copy()
    x, y, w, h = (float(v) for v in bbox)
    side = max(w, h)
    cx, cy = x + w / 2.0, y + h / 2.0
    ImageDraw.Draw(out).rectangle((cx - side / 2, cy - side / 2, cx + side / 2, cy + side / 2), fill=CONTEXT_GREY)
    return out


@functools.cache
def _card_network() -> StagedBackbone:
    """The card's instrument, built and loaded once per process: its BatchNorms folded into the
    convolutions (:mod:`aims_lib.batchnorm_folding`) and channels-last (oneDNN's preferred layout:
    1.5-2x the crops per second on 2 CPU cores); features equal to the plain network's to 1e-5."""
    spec = get_backbone(CARD_BACKBONE)
    net = StagedBackbone(spec, spec.packaged_weights())
    example = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(0))
    return fold_batchnorm(net, example).to(memory_format=torch.channels_last)


@torch.no_grad()
def crop_features(
    samples: Sequence[Sample], image_size: int, grey_box: bool = False, batch_size: int = 64, desc: str = "features"
) -> np.ndarray:
    """Frozen ImageNet Lite0 features (N, 1280) of the square crops around each infant."""
    net = _card_network()
    transform = image_transform(image_size, train=False, normalization=net.spec.normalization)
    out = []
    for b in tqdm(range(0, len(samples), batch_size), desc=desc, unit="batch", leave=False):
        images = []
        for s in samples[b : b + batch_size]:
            image = read_image(s)
            images.append(transform(crop_to_box(grey_out_box(image, s.bbox) if grey_box else image, s.bbox)))
        out.append(net(torch.stack(images).contiguous(memory_format=torch.channels_last)).numpy())
    return np.concatenate(out) if out else np.zeros((0, net.feature_dim), np.float32)


def linear_probe(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Predicted classes of ``test_x`` from a logistic regression fitted on the training part
    (standardised features; C from :data:`PROBE_CS` by 3-fold CV on the training part)."""
    from sklearn.linear_model import LogisticRegression, LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classes, counts = np.unique(train_y, return_counts=True)
    if len(classes) == 1:  # tiny data: nothing to learn but the one class
        return np.full(len(test_x), classes[0])
    if counts.min() >= 3:
        model = LogisticRegressionCV(Cs=list(PROBE_CS), cv=3, max_iter=2000, tol=1e-3, random_state=seed)
    else:  # a class too rare for 3-fold selection (tiny data): the middle value
        model = LogisticRegression(C=PROBE_CS[1], max_iter=2000, tol=1e-3, random_state=seed)
    return make_pipeline(StandardScaler(), model).fit(train_x, train_y).predict(test_x)


def ceiling_learning_curve(
    features: np.ndarray, labels: np.ndarray, fractions: Sequence[float] = (0.25, 0.5, 0.75, 1.0), folds: int = 4,
    seed: int = 0,
) -> list[tuple[int, float]]:
    """``T->T`` as a function of the target training set: per fraction, the mean cross-validated
    top-1 % when each fold's classifier sees only that share of its training part (the same
    folds as the card). A curve still rising at 1.0 says the ceiling is limited by the number of
    real images; a flat one, by what the features carry. Returns ``(training images, top-1 %)``."""
    out = []
    for fraction in fractions:
        if not 0 < fraction <= 1:
            raise ValueError(f"learning-curve fractions must lie in (0, 1], got {fraction}")
        hits, n_train = 0, 0
        for fold in _folds(len(labels), folds, seed):
            train = np.setdiff1d(np.arange(len(labels)), fold)
            train = np.random.default_rng(seed).permutation(train)[: max(1, int(len(train) * fraction))]
            hits += int((linear_probe(features[train], labels[train], features[fold], seed) == labels[fold]).sum())
            n_train = len(train)
        out.append((n_train, hits / len(labels) * 100))
    return out


def _labels(samples: Sequence[Sample], level: str) -> np.ndarray:
    return np.array([s.coarse_id if level == "coarse" else s.fine_id for s in samples], dtype=np.int64)


def _folds(n: int, k: int, seed: int) -> list[np.ndarray]:
    return np.array_split(np.random.default_rng(seed).permutation(n), k)


def benchmark_card(
    dataset: AimsDataset, image_size: int = 160, seed: int = 0, folds: int = 4, holdout: float = 0.2
) -> BenchmarkCard:
    """Run the five probes of the module docstring for coarse and fine labels."""
    synthetic = dataset.select(domain="synthetic")
    real = dataset.select(domain="real")
    real_train = [s for s in real if s.split == "train"]
    real_test = [s for s in real if s.split == "test"]
    if len(synthetic) < 10 or len(real) < 2 * folds or not real_test:
        raise ValueError(
            f"{dataset.path}: the card needs at least 10 synthetic images, {2 * folds} real ones and a real test split; "
            f"got {len(synthetic)}, {len(real)} and {len(real_test)}"
        )
    order = np.random.default_rng(seed).permutation(len(synthetic))
    n_hold = max(1, int(round(holdout * len(synthetic))))
    syn_train, syn_test = order[n_hold:], order[:n_hold]
    f_syn = crop_features(synthetic, image_size, desc="card: synthetic crops")
    f_real = crop_features(real, image_size, desc="card: real crops")
    f_ctx = crop_features(real, image_size, grey_box=True, desc="card: context only")
    real_index = {s.image_id: i for i, s in enumerate(real)}
    tr_rows = np.array([real_index[s.image_id] for s in real_train], dtype=np.int64)
    te_rows = np.array([real_index[s.image_id] for s in real_test], dtype=np.int64)

    results, subsets = [], []
    subset_of = np.array(photo_subsets(dataset, real) or [], dtype=object)
    for level in LEVELS:
        y_syn, y_real = _labels(synthetic, level), _labels(real, level)

        def scored(probe: str, pred: np.ndarray, truth: np.ndarray, n_train: int) -> ProbeResult:
            correct = pred == truth
            lo, hi = bootstrap_interval(correct, seed=seed)
            majority = float(np.bincount(truth).max() / len(truth) * 100)
            return ProbeResult(probe, level, float(correct.mean() * 100), lo, hi, majority, n_train, len(truth))

        def cross_validated(features: np.ndarray) -> np.ndarray:
            pred = np.empty(len(real), dtype=np.int64)
            for fold in _folds(len(real), folds, seed):
                train = np.setdiff1d(np.arange(len(real)), fold)
                pred[fold] = linear_probe(features[train], y_real[train], features[fold], seed)
            return pred

        results.append(scored("S->S", linear_probe(f_syn[syn_train], y_syn[syn_train], f_syn[syn_test], seed),
                              y_syn[syn_test], len(syn_train)))
        syn_to_real = linear_probe(f_syn, y_syn, f_real, seed)
        results.append(scored("S->T", syn_to_real[te_rows], y_real[te_rows], len(synthetic)))
        results.append(scored("S->T all", syn_to_real, y_real, len(synthetic)))
        ceiling = cross_validated(f_real)
        results.append(scored("T->T", ceiling, y_real, len(real) * (folds - 1) // folds))
        for name in sorted(set(subset_of)):
            rows = subset_of == name
            hit_t, hit_s = ceiling[rows] == y_real[rows], syn_to_real[rows] == y_real[rows]
            subsets.append(SubsetResult(name, level, int(rows.sum()), float(hit_t.mean() * 100),
                                        bootstrap_interval(hit_t, seed=seed), float(hit_s.mean() * 100),
                                        bootstrap_interval(hit_s, seed=seed)))
        both_x = np.concatenate([f_syn, f_real[tr_rows]])
        both_y = np.concatenate([y_syn, y_real[tr_rows]])
        results.append(scored("S+T->T", linear_probe(both_x, both_y, f_real[te_rows], seed), y_real[te_rows], len(both_y)))
        results.append(scored("context", cross_validated(f_ctx), y_real, len(real) * (folds - 1) // folds))
    return BenchmarkCard(tuple(results), image_size, CARD_BACKBONE, subsets=tuple(subsets))

