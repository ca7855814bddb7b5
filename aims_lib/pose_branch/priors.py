"""Priors of the SMPLify fit: Gaussian-mixture pose prior, knee/elbow bending prior, shape prior.

Why a home-made pose prior: SMPLify's ``gmm_08.pkl`` was fitted to adult CMU motion capture and
is licence-bound; no infant pose prior can be downloaded. So the mixture is fitted here, with
scikit-learn, to the project's own pose library (``body_pose`` of the AIMS pose sampler over all
12 classes). A user who has SMPLify's prior file can load it with :meth:`GMMPosePrior.load`.
All energies are per image, shape (B,), batched torch on the parameters' device.

Sources: ``docs/references.md#smplify``.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import torch

from aims_lib.files import REPO, write_npz
from aims_lib.safe_pickle import load_pickle
from aims_lib.taxonomy import FINE

#: SMPL ``body_pose`` size: 23 joints x 3 axis-angle components (the global orientation excluded).
BODY_POSE_DIM: Final[int] = 69

#: Default library: poses per AIMS class, sampling seed, mixture components (SMPLify's gmm_08).
LIBRARY_PER_CLASS: Final[int] = 100
LIBRARY_SEED: Final[int] = 0
NUM_COMPONENTS: Final[int] = 8
#: Variance floor (rad^2) added to every covariance: joints the sampler never moves (fingers,
#: toes) would otherwise get a zero variance, which no real infant photo would respect.
REG_COVAR: Final[float] = 1e-2

#: Cache of fitted priors; ``AIMS_CACHE_DIR`` overrides it (``data/`` is git-ignored).
DEFAULT_CACHE_DIR: Final[Path] = REPO / "data" / "cache"

# Bending prior: (body_pose index, sign) of the hinge component of each elbow and knee. A
# positive ``sign * angle`` is a hyper-extension: left elbow about +y, right elbow about -y,
# knees about -x (SMPL axes; the procedural infant and the pose sampler share them).
_BEND_INDEX: Final[tuple[int, ...]] = (3 * 17 + 1, 3 * 18 + 1, 3 * 3 + 0, 3 * 4 + 0)
_BEND_SIGN: Final[tuple[float, ...]] = (1.0, -1.0, -1.0, -1.0)


class GMMPosePrior(torch.nn.Module):
    """Max-mixture Gaussian pose prior (SMPLify's ``MaxMixturePrior``).

    ``E(theta) = min_k [ 0.5 (theta - mu_k)^T Sigma_k^-1 (theta - mu_k) - log w_k
    + 0.5 log det Sigma_k ]`` over the K components, i.e. the negative log-likelihood of the
    single most likely component (up to the constant ``0.5 D log 2 pi``). The minimum instead of
    the log-sum keeps the energy a plain quadratic near each mode, as in SMPLify.
    A prior of D = 63 (SMPLify-X, 21 body joints) applies to the first 21 joints of ``body_pose``.
    """

    means: torch.Tensor
    whitening: torch.Tensor
    offsets: torch.Tensor
    constants: torch.Tensor

    def __init__(self, means: np.ndarray, covars: np.ndarray, weights: np.ndarray) -> None:
        super().__init__()
        means = np.asarray(means, dtype=np.float64)
        covars = np.asarray(covars, dtype=np.float64)
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        k, d = means.shape
        if covars.shape != (k, d, d) or weights.shape != (k,) or d not in (63, BODY_POSE_DIM):
            raise ValueError(
                f"GMM prior: expected means (K, 69 or 63), covars (K, D, D), weights (K,); "
                f"got {means.shape}, {covars.shape}, {weights.shape}"
            )
        chol = np.linalg.cholesky(covars)  # Sigma = L L^T, so Sigma^-1 = L^-T L^-1
        whitening = np.linalg.inv(chol).swapaxes(-1, -2)  # W_k with W_k W_k^T = Sigma_k^-1
        log_det = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(-1)
        self.weights = weights / weights.sum()
        self.covars = covars
        self.register_buffer("means", torch.from_numpy(means))
        # All components whitened by one matmul: z = theta [W_1 .. W_K] - [mu_1 W_1 .. mu_K W_K].
        self.register_buffer("whitening", torch.from_numpy(whitening.transpose(1, 0, 2).reshape(d, k * d)))
        self.register_buffer("offsets", torch.from_numpy(np.einsum("kd,kde->ke", means, whitening).reshape(-1)))
        self.register_buffer("constants", torch.from_numpy(-np.log(self.weights) + 0.5 * log_det))

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def forward(self, body_pose: torch.Tensor) -> torch.Tensor:
        """Energy (B,) of body poses (B, 69). The winning component is chosen without autograd
        and only its whitened residual carries gradients (the minimum's gradient is that
        component's anyway), which keeps the backward pass at one matmul."""
        batch, k = body_pose.shape[0], self.constants.shape[0]
        whitened = torch.addmm(self.offsets, body_pose[:, : self.dim], self.whitening, alpha=1.0, beta=-1.0)
        whitened = whitened.view(batch, k, self.dim)
        with torch.no_grad():
            winner = (0.5 * torch.linalg.vector_norm(whitened, dim=-1) ** 2 + self.constants).argmin(dim=1)
        chosen = whitened.gather(1, winner[:, None, None].expand(batch, 1, self.dim))[:, 0]
        return 0.5 * (chosen**2).sum(-1) + self.constants[winner]

    def arrays(self) -> dict[str, np.ndarray]:
        """``means``, ``covars``, ``weights``: SMPLify's file layout."""
        return {"means": self.means.cpu().numpy(), "covars": self.covars, "weights": self.weights}

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` that :meth:`load` reads, atomically (parallel processes that share
        the cache never read half of one)."""
        return write_npz(path, **self.arrays())

    @classmethod
    def load(cls, path: str | Path, trusted: bool = False) -> GMMPosePrior:
        """Read an ``.npz`` written by :meth:`save` (no pickled objects allowed) or SMPLify's
        pickle (``gmm_08.pkl``: a dict with ``means``, ``covars``, ``weights``; Python-2 pickles
        are read as latin-1) through the restricted unpickler of :mod:`aims_lib.safe_pickle`
        (``trusted=True``: the opt-in for a file that needs more than arrays)."""
        path = Path(path)
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                return cls(data["means"], data["covars"], data["weights"])
        data: dict[str, Any] = load_pickle(path, trusted=trusted)
        missing = [k for k in ("means", "covars", "weights") if not isinstance(data, dict) or k not in data]
        if missing:
            raise ValueError(f"{path}: not a GMM prior file, missing {missing}")
        return cls(data["means"], data["covars"], data["weights"])


def fit_pose_prior(poses: np.ndarray, n_components: int = NUM_COMPONENTS, seed: int = 0) -> GMMPosePrior:
    """Fit a full-covariance mixture to body poses (N, 69) with scikit-learn (k-means start,
    fixed seed: deterministic). BLAS runs single-threaded: the problem is small, and on a busy
    machine more BLAS threads make the fit many times slower (docs/decisions.md, "measurements moved from docstrings, second part")."""
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits

    gmm = GaussianMixture(
        n_components=n_components, covariance_type="full", reg_covar=REG_COVAR, random_state=seed, max_iter=200
    )
    with threadpool_limits(1):
        gmm.fit(np.asarray(poses, dtype=np.float64))
    return GMMPosePrior(gmm.means_, gmm.covariances_, gmm.weights_)


def pose_library(model: Any, per_class: int = LIBRARY_PER_CLASS, seed: int = LIBRARY_SEED) -> np.ndarray:
    """``body_pose`` (12 * per_class, 69) sampled by the AIMS pose sampler, all 12 classes, with
    shapes drawn as the generator draws them (standard normal clipped to +-2)."""
    from aims_lib.synth.poses import sample_poses

    rng = np.random.default_rng(seed)
    labels = [label for label in FINE for _ in range(per_class)]
    betas = np.clip(rng.normal(0.0, 1.0, size=(len(labels), model.num_betas)), -2.0, 2.0)
    return sample_poses(labels, rng, model, betas).body_pose


def _library_key(model: Any, per_class: int, seed: int, n_components: int) -> str:
    """Cache key: the source of every module of the sampler's packages (``aims_lib.synth`` and
    ``aims_lib.body``, whatever modules they are split into), the body model's arrays and the
    settings, so a changed sampler or body never reuses a stale prior."""
    import aims_lib.body
    import aims_lib.synth

    h = hashlib.sha256()
    for package in (aims_lib.synth, aims_lib.body):
        for source in sorted(Path(package.__file__).parent.glob("*.py")):
            h.update(source.name.encode() + source.read_bytes())
    for name in ("v_template", "shapedirs", "J_regressor", "lbs_weights"):
        h.update(getattr(model, name).detach().cpu().numpy().tobytes())
    h.update(f"{model.num_betas}/{per_class}/{seed}/{n_components}/{REG_COVAR}".encode())
    return h.hexdigest()[:16]


def default_pose_prior(
    model: Any | None = None,
    cache_dir: str | Path | None = None,
    per_class: int = LIBRARY_PER_CLASS,
    seed: int = LIBRARY_SEED,
) -> GMMPosePrior:
    """The project's pose prior: an 8-component mixture fitted to the pose library of ``model``
    (the procedural infant by default), read from the cache when it was fitted before.

    Sampling the library takes tens of seconds, the fit itself about a second; the result is
    cached as ``pose_prior_<key>.npz`` under ``cache_dir`` (default ``AIMS_CACHE_DIR`` or
    ``data/cache``) and kept in memory for the process.
    """
    if model is None:
        from aims_lib.body import DEFAULT_BETAS, load_body_model

        model = load_body_model(num_betas=DEFAULT_BETAS)
    directory = Path(cache_dir or os.environ.get("AIMS_CACHE_DIR") or DEFAULT_CACHE_DIR)
    return _cached_prior(str(directory), _library_key(model, per_class, seed, NUM_COMPONENTS), model, per_class, seed)


@lru_cache(maxsize=4)
def _cached_prior(directory: str, key: str, model: Any, per_class: int, seed: int) -> GMMPosePrior:
    path = Path(directory) / f"pose_prior_{key}.npz"
    if path.exists():
        return GMMPosePrior.load(path)
    prior = fit_pose_prior(pose_library(model, per_class, seed))
    prior.save(path)
    return prior


def bending_prior(body_pose: torch.Tensor) -> torch.Tensor:
    """Elbow and knee hyper-extension energy (B,) (SMPLify's angle prior).

    ``E = sum_i exp(s_i theta_i)^2`` over the hinge angle ``theta_i`` of both elbows and knees,
    with ``s_i`` the sign that makes ``s_i theta_i > 0`` a bend the wrong way: it grows
    exponentially with hyper-extension and fades for normal flexion.
    """
    sign = torch.tensor(_BEND_SIGN, dtype=body_pose.dtype, device=body_pose.device)
    return torch.exp(2.0 * sign * body_pose[:, list(_BEND_INDEX)]).sum(-1)


def shape_prior(betas: torch.Tensor) -> torch.Tensor:
    """``E = ||beta||^2`` (B,): shape coefficients are in units of one standard deviation."""
    return (betas**2).sum(-1)


__all__ = [
    "BODY_POSE_DIM",
    "GMMPosePrior",
    "bending_prior",
    "default_pose_prior",
    "fit_pose_prior",
    "pose_library",
    "shape_prior",
]
