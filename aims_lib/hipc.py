r"""HIPC, the hierarchical infant pose classifier (paper Sec. 4.3; Zhou et al.'s design).

Input: normalised COCO-17 3D keypoints (B, 17, 3) and, for the full model, the image branch's
coarse probabilities (B, 4). A PointNet-style T-Net predicts a 3x3 matrix that aligns the
skeleton; per-joint 1x1 convolutions lift every joint to 1024 channels; a max over joints and an
MLP 1024-512-256 (BatchNorm, PReLU, dropout 0.3) give fine logits :math:`z_f`.

Hierarchy: a product of two experts over the 12 fine classes. The reference multiplies the fine
logits by the coarse score of their parent, which is not monotone (a negative logit grows when
its parent's score shrinks); we multiply in probability space instead:

.. math::

    p(f) \propto \frac{p(c(f))}{n(c(f))} \exp(z_f), \qquad
    \log p(f) = \operatorname{log\,softmax}_f \bigl(z_f + \log p(c(f)) - \log n(c(f))\bigr),

over all fine classes, with :math:`p(c)` the image branch's coarse probabilities (clamped at
1e-12) and :math:`n(c)` the number of children of :math:`c`: the image expert, as a distribution
over fine classes, spreads each coarse probability evenly over its children. (Without the
:math:`n(c)` term the formula differs by a constant per class, which a trained classifier's bias
absorbs; with it, zero logits give back the image branch exactly: see failed fits.) Every fine
class follows its parent: raising :math:`p(c)` raises all of :math:`c`'s children, whatever the
sign of their logits, and lowers all other classes. Unlike a factorisation
:math:`p(c(f)) \cdot \operatorname{softmax}_{f' \in c(f)} z_{f'}`, the coarse decision is not the image branch's alone: the full model's coarse probabilities are
the marginal of :math:`p(f)` over each parent (:func:`coarse_marginal`), the product of the
image's and the pose's coarse evidence, so strong pose evidence overrides a weak image branch
(a confident one still wins over weak pose evidence). Without coarse input (the "pose branch"
classifier), :math:`p(f) = \operatorname{softmax}(z)_f`; its coarse prediction is the parent of
its fine one.

Training follows from the product: the gradient of the negative log-likelihood depends on the
coarse input, so :func:`train_hipc` needs the image branch's coarse probabilities of the
training images (a one-hot true parent would drive every other parent to 1e-12 and HIPC would
never learn the pose's own coarse evidence), and selects the epoch by the full model's fine
accuracy on real val, with the image branch's val probabilities. Caveat: the image branch was
trained on the same training images, so its training probabilities can be more confident than
its test ones, and HIPC may lean on them more than it should.

Failed fits (non-finite keypoints) are handled in :meth:`HIPC.forward`: their logits are zero,
so :math:`p(f) = p(c(f)) / n(c(f))`: the pose branch then predicts fine id 0 (uniform), the full
model falls back to the image branch (its coarse marginal is the image branch's probabilities,
its fine label the first child of the image branch's coarse label). Training leaves such rows
out (:attr:`HIPCTrainResult.n_excluded`).

Training (:class:`HIPCTrainConfig`): cross-entropy, Adam (lr 1e-3, where the reference's 1e-4
underfits our few thousand skeletons), batch 128, the learning rate x0.1 at half the epochs,
random rotations of up to 30 degrees about each camera axis (not uniform 3D rotations: cameras
of infant photos are roughly upright, so "down" in the camera frame carries gravity, which
separates lying, sitting and standing). The measurements behind these choices
and the product's design are in ``docs/decisions.md`` ("HIPC: the product of experts and its
training", 2026-12-07, with the commands).

Sources: ``docs/references.md#hipc``.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch
from torch import Tensor, nn

from aims_lib import taxonomy
from aims_lib.body.rotations import coordinate_rotation
from aims_lib.files import write_torch
from aims_lib.safe_pickle import load_weights_file
from aims_lib.threads import cpu_threads

log = logging.getLogger(__name__)

_GROUPS = torch.tensor(taxonomy.FINE_TO_COARSE_ID)


def _mlp(sizes: list[int], dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.PReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


def _point_features(channels: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for a, b in zip(channels, channels[1:]):
        layers += [nn.Conv1d(a, b, 1), nn.BatchNorm1d(b), nn.PReLU()]
    return nn.Sequential(*layers)


class TNet(nn.Module):
    """Predicts a 3x3 alignment of the skeleton, initialised at the identity."""

    def __init__(self) -> None:
        super().__init__()
        self.features = _point_features([3, 64, 128, 256])
        self.head = nn.Sequential(_mlp([256, 128, 64], 0.0), nn.Linear(64, 9))
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def forward(self, points: Tensor) -> Tensor:  # (B, 3, J) -> (B, 3, 3)
        x = self.features(points).amax(dim=2)
        return self.head(x).view(-1, 3, 3) + torch.eye(3, device=points.device, dtype=points.dtype)


class HIPC(nn.Module):
    """``forward(keypoints_3d, coarse_probs=None) -> log p(fine)`` (B, 12)."""

    def __init__(self, hierarchical: bool = True, dropout: float = 0.3) -> None:
        super().__init__()
        self.hierarchical = hierarchical
        self.tnet = TNet()
        self.features = _point_features([3, 64, 128, 1024])
        self.classifier = nn.Sequential(_mlp([1024, 512, 256], dropout), nn.Linear(256, taxonomy.NUM_FINE))
        self.register_buffer("groups", _GROUPS.clone(), persistent=False)

    def forward(self, keypoints_3d: Tensor, coarse_probs: Tensor | None = None) -> Tensor:
        if keypoints_3d.ndim != 3 or keypoints_3d.shape[1:] != (taxonomy.NUM_KEYPOINTS, 3):
            raise ValueError(f"keypoints_3d must be (B, 17, 3), got {tuple(keypoints_3d.shape)}")
        # A failed 3D fit (any non-finite keypoint) gets all-zero logits: p(f) = p(c(f)) / n(c(f)),
        # the full model falls back to the image branch (module docstring).
        failed = ~torch.isfinite(keypoints_3d).flatten(1).all(dim=1)
        if bool(failed.any()):
            keypoints_3d = torch.where(failed[:, None, None], torch.zeros_like(keypoints_3d), keypoints_3d)
        points = keypoints_3d.transpose(1, 2)  # (B, 3, J)
        aligned = torch.bmm(self.tnet(points), points)
        logits = self.classifier(self.features(aligned).amax(dim=2))
        logits = logits.masked_fill(failed[:, None], 0.0)
        if not self.hierarchical:
            return torch.log_softmax(logits, dim=1)
        if coarse_probs is None:
            raise ValueError("the hierarchical HIPC needs coarse_probs (B, 4) from the image branch")
        return hierarchical_log_probs(logits, coarse_probs, self.groups)


def hierarchical_log_probs(fine_logits: Tensor, coarse_probs: Tensor, groups: Tensor) -> Tensor:
    """The product of the two experts (module docstring): ``log p(f) = log_softmax_f(z_f +
    log p(c(f)) - log n(c(f)))``, ``n(c)`` the number of children of ``c``, over all fine
    classes; ``coarse_probs`` are clamped at 1e-12 before the log."""
    num_coarse = coarse_probs.shape[1]
    children = torch.bincount(groups, minlength=num_coarse).to(fine_logits.dtype)  # (C,)
    log_prior = torch.log(coarse_probs.to(fine_logits.dtype).clamp_min(1e-12)) - torch.log(children)
    return torch.log_softmax(fine_logits + log_prior[:, groups], dim=1)


# ----------------------------------------------------------------------------- training


@dataclass(frozen=True)
class HIPCTrainConfig:
    """Settings of :func:`train_hipc`. Defaults: the reference's recipe (Adam, batch 128, step
    decay x0.1) with the learning rate, epochs and augmentation chosen by measurement (module
    docstring)."""

    hierarchical: bool = True  # False: the pose-branch classifier (no coarse input)
    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.0
    #: the learning rate is multiplied by lr_gamma every lr_step_epochs; None: half the epochs
    #: (the reference: 30 of 60)
    lr_step_epochs: int | None = None
    lr_gamma: float = 0.1
    dropout: float = 0.3
    #: Rotation augmentation: a rotation about each listed camera axis ("x" right, "y" down,
    #: "z" forward), angles uniform in +-rotation_max_deg, composed z . y . x; "" for none.
    rotation_axes: str = "xyz"
    rotation_max_deg: float = 30.0
    seed: int = 0
    device: str = "cpu"
    #: torch threads while training on the CPU (restored afterwards). None: torch's process-wide
    #: count (all cores, or OMP_NUM_THREADS), as every other stage; 1 on cores other jobs load,
    #: where more threads make an epoch far slower (docs/decisions.md, "threads of SMPLify and HIPC").
    cpu_threads: int | None = None

    def validate(self) -> None:
        for name in ("epochs", "batch_size", "lr_step_epochs"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if set(self.rotation_axes) - set("xyz") or len(set(self.rotation_axes)) != len(self.rotation_axes):
            raise ValueError(f"rotation_axes must be distinct letters of 'xyz' (or ''), got {self.rotation_axes!r}")
        if not 0.0 <= self.rotation_max_deg <= 180.0:
            raise ValueError(f"rotation_max_deg must be in [0, 180], got {self.rotation_max_deg}")


@dataclass
class HIPCTrainResult:
    """The selected model (eval mode, on the CPU) and the record of its training."""

    model: HIPC
    config: HIPCTrainConfig
    history: list[dict[str, Any]]  # per epoch: loss, train_acc, val_acc, lr, seconds
    best_epoch: int  # 1-based; the last epoch when there is no validation set
    best_val_acc: float  # NaN without a validation set
    n_train: int  # training rows used
    n_excluded: int  # training rows left out because their 3D fit failed (non-finite keypoints)
    seconds: float


def random_rotations(n: int, axes: str, max_deg: float, generator: torch.Generator | None = None) -> Tensor:
    """``n`` random rotation matrices (n, 3, 3): about each axis in ``axes`` ("xyz" subset) by
    an angle uniform in +-``max_deg``, composed z . y . x (the identity for ``axes=""``)."""
    out = torch.eye(3).expand(n, 3, 3).clone()
    for letter in "xyz":
        if letter in axes:
            angle = (torch.rand(n, generator=generator) * 2.0 - 1.0) * math.radians(max_deg)
            # About y by -angle: the same distribution (the range is symmetric), and the draws every
            # trained HIPC was trained with; +angle would change every model and number.
            out = coordinate_rotation("xyz".index(letter), -angle if letter == "y" else angle) @ out
    return out


def _check_arrays(keypoints: np.ndarray, labels: np.ndarray, coarse: np.ndarray | None, what: str) -> None:
    if keypoints.ndim != 3 or keypoints.shape[1:] != (taxonomy.NUM_KEYPOINTS, 3):
        raise ValueError(f"{what} keypoints must be (N, 17, 3), got {keypoints.shape}")
    if labels.shape != (len(keypoints),):
        raise ValueError(f"{what} labels must be ({len(keypoints)},), got {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= taxonomy.NUM_FINE):
        raise ValueError(f"{what} labels must be fine ids in 0..{taxonomy.NUM_FINE - 1}")
    if coarse is not None and coarse.shape != (len(keypoints), taxonomy.NUM_COARSE):
        raise ValueError(f"{what} coarse_probs must be ({len(keypoints)}, {taxonomy.NUM_COARSE}), got {coarse.shape}")


def train_hipc(
    keypoints: np.ndarray,
    labels: np.ndarray,
    cfg: HIPCTrainConfig = HIPCTrainConfig(),
    coarse_probs: np.ndarray | None = None,
    val_keypoints: np.ndarray | None = None,
    val_labels: np.ndarray | None = None,
    val_coarse_probs: np.ndarray | None = None,
) -> HIPCTrainResult:
    """Train HIPC (``cfg.hierarchical``) or the pose-branch classifier on 3D keypoints.

    ``keypoints`` (N, 17, 3) normalised, camera frame; ``labels`` (N,) fine ids. Rows whose
    keypoints are not all finite (failed fits) are left out and counted in ``n_excluded``.
    ``coarse_probs`` (N, 4): the image branch's coarse probabilities of the same training
    images, required by the hierarchical model (its gradient depends on them: module
    docstring) and ignored by the pose branch. Do not pass the true parent: one-hot coarse
    input silences every other parent, so HIPC would never learn the pose's own coarse evidence.

    Model selection: after every epoch, top-1 fine accuracy on the validation arrays (real
    val, never test): the hierarchical model is scored as the full model, with
    ``val_coarse_probs`` (the image branch's, required with validation arrays). The best
    epoch's weights are returned (the last epoch's when no validation arrays are given).
    Deterministic on the CPU for a given ``cfg.seed``.
    """
    cfg.validate()
    with cpu_threads(cfg.cpu_threads, cfg.device):
        return _train(keypoints, labels, cfg, coarse_probs, val_keypoints, val_labels, val_coarse_probs)


def _train(
    keypoints: np.ndarray,
    labels: np.ndarray,
    cfg: HIPCTrainConfig,
    coarse_probs: np.ndarray | None,
    val_keypoints: np.ndarray | None,
    val_labels: np.ndarray | None,
    val_coarse_probs: np.ndarray | None,
) -> HIPCTrainResult:
    start = time.perf_counter()
    keypoints = np.asarray(keypoints, dtype=np.float32)
    labels = np.asarray(labels, dtype=np.int64)
    coarse = None if coarse_probs is None else np.asarray(coarse_probs, dtype=np.float32)
    _check_arrays(keypoints, labels, coarse, "training")
    if cfg.hierarchical and coarse is None:
        raise ValueError("the hierarchical HIPC trains with coarse_probs (N, 4): the image branch's "
                         "probabilities of the training images")
    ok = np.isfinite(keypoints).reshape(len(keypoints), -1).all(1)
    if ok.sum() < 2:
        raise ValueError(f"HIPC needs at least 2 training rows with finite keypoints, got {int(ok.sum())}")
    kp_t, y_t = torch.from_numpy(keypoints[ok]), torch.from_numpy(labels[ok])
    c_t = torch.from_numpy(coarse[ok]) if coarse is not None else None
    has_val = val_keypoints is not None and val_labels is not None and len(val_labels) > 0
    if has_val:
        val_keypoints = np.asarray(val_keypoints, dtype=np.float32)
        val_labels = np.asarray(val_labels, dtype=np.int64)
        val_coarse = None if val_coarse_probs is None else np.asarray(val_coarse_probs, dtype=np.float32)
        _check_arrays(val_keypoints, val_labels, val_coarse, "validation")
        if cfg.hierarchical and val_coarse is None:
            raise ValueError("the hierarchical HIPC is selected as the full model: pass val_coarse_probs (the "
                             "image branch's probabilities of the validation images)")

    device = torch.device(cfg.device)
    torch.manual_seed(cfg.seed)
    model = HIPC(hierarchical=cfg.hierarchical, dropout=cfg.dropout).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.lr_step_epochs or max(1, cfg.epochs // 2), gamma=cfg.lr_gamma)
    n = len(y_t)
    history: list[dict[str, Any]] = []
    best_state, best_epoch, best_acc = None, cfg.epochs, -math.inf
    for epoch in range(cfg.epochs):
        t0 = time.perf_counter()
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + epoch)
        torch.manual_seed(cfg.seed * 7919 + epoch)  # dropout of this epoch
        order = torch.randperm(n, generator=g)
        rot = random_rotations(n, cfg.rotation_axes, cfg.rotation_max_deg, g)
        model.train()
        loss_sum, correct, seen = 0.0, 0, 0
        for b in range(0, n, cfg.batch_size):
            idx = order[b : b + cfg.batch_size]
            if len(idx) < 2:  # BatchNorm needs two rows
                continue
            kp = (kp_t[idx] @ rot[idx].transpose(1, 2)).to(device)
            y = y_t[idx].to(device)
            logp = model(kp, c_t[idx].to(device) if cfg.hierarchical else None)
            loss = nn.functional.nll_loss(logp, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logp.detach().argmax(1) == y).sum())
            seen += len(idx)
        record: dict[str, Any] = {
            "epoch": epoch + 1,
            "loss": loss_sum / max(seen, 1),
            "train_acc": 100.0 * correct / max(seen, 1),
            "lr": optimizer.param_groups[0]["lr"],
        }
        scheduler.step()
        if has_val:
            logp_val = predict_hipc(model, val_keypoints, val_coarse if cfg.hierarchical else None, device=device)
            record["val_acc"] = float((logp_val.argmax(1) == val_labels).mean() * 100.0)
            if record["val_acc"] > best_acc:
                best_acc, best_epoch = record["val_acc"], epoch + 1
                best_state = copy.deepcopy(model.state_dict())
        record["seconds"] = round(time.perf_counter() - t0, 3)
        history.append(record)
        log.debug("hipc epoch %d: %s", epoch + 1, record)
    if best_state is not None:
        model.load_state_dict(best_state)
    model = model.cpu().eval()
    return HIPCTrainResult(
        model=model, config=cfg, history=history, best_epoch=best_epoch,
        best_val_acc=best_acc if has_val else math.nan, n_train=int(ok.sum()), n_excluded=int((~ok).sum()),
        seconds=round(time.perf_counter() - start, 2),
    )


@torch.no_grad()
def predict_hipc(
    model: HIPC,
    keypoints: np.ndarray,
    coarse_probs: np.ndarray | None = None,
    batch_size: int = 1024,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """Fine log-probabilities (N, 12) of 3D keypoints (N, 17, 3), in eval mode and batched.

    ``coarse_probs`` (N, 4) are required by the hierarchical model and ignored by the pose
    branch. Rows with non-finite keypoints (failed fits) get zero logits: the pose branch then
    scores all fine classes uniformly (fine id 0), the full model gives each child of a parent
    ``p(c) / n(c)`` (the image branch's coarse decision, with its first child).
    """
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if model.hierarchical and coarse_probs is None:
        raise ValueError("the hierarchical HIPC needs coarse_probs (N, 4) from the image branch")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    was_training = model.training
    model.eval()
    out = []
    for b in range(0, len(keypoints), batch_size):
        kp = torch.from_numpy(keypoints[b : b + batch_size]).to(device)
        cp = None
        if model.hierarchical:
            cp = torch.as_tensor(np.asarray(coarse_probs[b : b + batch_size], dtype=np.float32), device=device)
        out.append(model(kp, cp).float().cpu())
    model.train(was_training)
    if not out:
        return np.zeros((0, taxonomy.NUM_FINE), np.float32)
    return torch.cat(out).numpy()


def coarse_of_fine(fine_ids: np.ndarray) -> np.ndarray:
    """Coarse ids of fine ids: the pose branch's coarse prediction is the parent of its fine one."""
    return np.asarray(taxonomy.FINE_TO_COARSE_ID)[np.asarray(fine_ids, dtype=np.int64)]


def coarse_marginal(fine_log_probs: np.ndarray) -> np.ndarray:
    """Coarse probabilities (N, 4): the fine probabilities summed within each parent. For the
    full model this is its coarse decision (the product of the image and pose experts, module
    docstring); for a failed fit it gives back the image branch's coarse probabilities."""
    member = np.eye(taxonomy.NUM_COARSE)[list(taxonomy.FINE_TO_COARSE_ID)]  # (12, 4)
    return np.exp(np.asarray(fine_log_probs, dtype=np.float64)) @ member


HIPC_FORMAT: Final[str] = "aims-hipc/1"


def save_hipc(path: str | Path, result: HIPCTrainResult, extra: dict[str, Any] | None = None) -> Path:
    """Write a trained model with its settings and history atomically (a torch file)."""
    state = {
        "format": HIPC_FORMAT,
        "hierarchical": result.model.hierarchical,
        "dropout": result.config.dropout,
        "state_dict": {k: v.detach().cpu() for k, v in result.model.state_dict().items()},
        "config": asdict(result.config),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "best_val_acc": result.best_val_acc,
        "n_train": result.n_train,
        "n_excluded": result.n_excluded,
        "extra": extra or {},
    }
    return write_torch(path, state)


def load_hipc(path: str | Path, device: str | torch.device = "cpu") -> HIPC:
    """A model written by :func:`save_hipc`, in eval mode; ``model.checkpoint_info`` holds the
    rest of the file (settings, history, extra)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"HIPC checkpoint not found: {path}")
    state = load_weights_file(path)
    if not isinstance(state, dict) or state.get("format") != HIPC_FORMAT:
        raise ValueError(f"{path}: not a HIPC checkpoint (format {HIPC_FORMAT!r})")
    model = HIPC(hierarchical=state["hierarchical"], dropout=state["dropout"])
    model.load_state_dict(state["state_dict"])
    model.checkpoint_info = {k: v for k, v in state.items() if k != "state_dict"}
    return model.to(device).eval()
