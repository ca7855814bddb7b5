"""Batched SMPLify: the SMPL-format infant fitted to 2D COCO-17 keypoints, every image at once.

The pose branch of the paper (Sec. 3.3) lifts HRNet's 2D keypoints to 3D by fitting SMIL with
SMPLify. Here one fit takes all images of a split as one batch (B images, torch, on the inputs'
device), in the camera frame (R = I, T = 0): per image the global orientation, body pose, shape
and camera translation are optimised against that image's intrinsics K.

Why it is fast: the fit never evaluates the 6890-vertex mesh. :class:`KeypointLayer` runs the
kinematic chain from the shaped rest joints and skins only the five face vertices that COCO-17
needs (with their pose blend shapes, :class:`aims_lib.body.kinematics.PartialForward`), which
equals smplx to float precision.

Stages (SMPLify, SMPLify-X, SPIN), all with Adam on every hypothesis of every image at once:

1. camera translation and global orientation on the torso keypoints (shoulders, hips), depth
   initialised from ``focal * torso_3d / torso_2d``. The body starts upright in the image plane
   along the 2D torso axis, facing the camera or turned away from it as the left/right order of
   shoulders and hips in 2D says, and tilted by each of ``tilts`` about its left-right axis (a
   torso outline fits a body leaning towards or away from the camera about equally well). When
   the shoulders nearly overlap in 2D (a side view) the left/right order says nothing, so the
   body turned by 180 degrees about its vertical is fitted as well (SMPLify-X's flip).
2. body pose, shape, orientation and translation on all keypoints with the priors: every
   stage-1 hypothesis from each of the pose prior's ``pose_starts`` component means for
   ``explore_iters``, then the lowest-energy hypothesis of each image for ``stage2_iters``.

Why so many hypotheses: from one start, many fits end in a wrong local minimum (the body
tilted or turned the wrong way, a limb mirrored in depth), which the energy itself tells apart:
the fits of all hypotheses together are as accurate as fits started from the true orientation
(``benchmarks/smplify_benchmark.py``; the numbers: ``docs/decisions.md``, "measurements moved from docstrings, second part").

Energy per image (:meth:`SMPLify.energy`)::

    E = sum_j c_j^2 sum_{x,y} rho(r_j / s) + w_pose^2 E_gmm + w_bend^2 E_bend + w_shape^2 |beta|^2

with ``rho(r) = sigma^2 r^2 / (sigma^2 + r^2)`` (Geman-McClure, sigma = 100 as in SMPLify),
``c_j`` the 2D confidence and ``r_j`` the reprojection residual in pixels. Our images are
96-256 px while SPIN's sigma and prior weights refer to 224-px crops around the person, so the
residuals are divided by ``s = person size / 200``, the person size being the larger side of
the box of the confident keypoints: residuals are in "pixels of a 200-px person" whatever the
image or person size, and SPIN's sigma and weights keep their meaning (the benchmark's split
rendered at 96 px gives the same fits as at 256 px).

Sources: ``docs/references.md#smplify``.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, fields
from typing import Any, Final

import numpy as np
import torch

from aims_lib.body.keypoints import COCO17_JOINT_IDS, COCO17_VERTEX_IDS
from aims_lib.body.kinematics import PartialForward
from aims_lib.body.rotations import axis_angle_to_matrix, matrix_to_axis_angle
from aims_lib.pose_branch.priors import GMMPosePrior, bending_prior, default_pose_prior, shape_prior
from aims_lib.taxonomy import KEYPOINTS, LEFT_HIP, NOSE, NUM_KEYPOINTS, RIGHT_HIP, normalise_keypoints_3d
from aims_lib.threads import cpu_threads

_SHOULDERS: Final[tuple[int, int]] = (KEYPOINTS.index("left_shoulder"), KEYPOINTS.index("right_shoulder"))
_HIPS: Final[tuple[int, int]] = (KEYPOINTS.index("left_hip"), KEYPOINTS.index("right_hip"))
#: Smallest depth (metres) a keypoint may have; the projection of nearer points is meaningless.
_MIN_DEPTH: Final[float] = 1e-3


def default_intrinsics(width: np.ndarray | float, height: np.ndarray | float) -> np.ndarray:
    """Intrinsics (..., 3, 3) for images without a calibrated camera.

    Assumption: focal length = the larger image side (a 53-degree field of view, the middle of
    the synthetic cameras' 35-65 degrees and typical of phone photos), principal point at the
    image centre ``((W - 1) / 2, (H - 1) / 2)`` (the project's pixel-centre convention).
    """
    w, h = np.broadcast_arrays(np.asarray(width, dtype=np.float64), np.asarray(height, dtype=np.float64))
    K = np.zeros(w.shape + (3, 3))
    K[..., 0, 0] = K[..., 1, 1] = np.maximum(w, h)
    K[..., 0, 2], K[..., 1, 2], K[..., 2, 2] = (w - 1.0) / 2.0, (h - 1.0) / 2.0, 1.0
    return K


class KeypointLayer(PartialForward):
    """COCO-17 keypoints of an SMPL-format body without the mesh: ``layer(betas, global_orient,
    body_pose, transl) -> (B, 17, 3)``, equal to ``body_forward(model, ...).keypoints``: the
    shared torch forward on the five face vertices and the twelve body joints COCO-17 needs."""

    def __init__(self, model: Any) -> None:
        super().__init__(model, COCO17_VERTEX_IDS, COCO17_JOINT_IDS)

    def forward(  # type: ignore[override]
        self, betas: torch.Tensor, global_orient: torch.Tensor, body_pose: torch.Tensor, transl: torch.Tensor
    ) -> torch.Tensor:
        face, joints = super().forward(betas, global_orient, body_pose)
        return torch.cat([face, joints], 1) + transl[:, None]


@dataclass(frozen=True)
class SMPLifyConfig:
    """Settings of the fit. Prior weights and sigma are SPIN's (weights multiply squared, as
    there); iteration counts, step size and hypotheses were chosen by measurement on sampler
    poses seen by random cameras (``benchmarks/smplify_benchmark.py``)."""

    stage1_iters: int = 50
    #: Stage-1 tilts (degrees) of the body about its left-right axis: leaning towards or away
    #: from the camera fits a torso outline equally well, so stage 1 starts from each.
    tilts: tuple[float, ...] = (0.0, 60.0, -60.0)
    #: Side view: 2D shoulder distance below this fraction of the 2D torso length; both facings
    #: are then tried (SMPLify-X's 180-degree flip).
    side_view_ratio: float = 0.3
    #: Stage-2 starting poses (the prior's heaviest component means) and the iterations every
    #: hypothesis runs before the best of each image is kept and refined for `stage2_iters`.
    pose_starts: int = 8
    explore_iters: int = 40
    stage2_iters: int = 200
    #: Adam's step size. SPIN's 1e-2 refines a regressed start; from a prior mean it leaves the
    #: fit far from converged, 5e-2 does not (docs/decisions.md, "measurements moved from docstrings, second part").
    lr: float = 5e-2
    sigma: float = 100.0  # Geman-McClure scale, in pixels of a `person_size`-px person
    person_size: float = 200.0
    pose_prior_weight: float = 4.78
    bending_prior_weight: float = 15.2
    shape_prior_weight: float = 5.0
    #: Fewer confident keypoints than this cannot constrain a 3D body: the fit is flagged failed.
    min_keypoints: int = 4
    #: Converged: relative change of the loss over the last tenth of stage 2 below this.
    converge_tol: float = 1e-3
    dtype: torch.dtype = torch.float32
    #: torch threads during a fit on the CPU (restored afterwards). None: torch's process-wide count
    #: (all cores, or OMP_NUM_THREADS), as every other stage; 1 on cores other jobs load, where
    #: more threads cost a lot (docs/decisions.md, "threads of SMPLify and HIPC").
    cpu_threads: int | None = None


@dataclass
class SMPLifyResult:
    """Per-image output of a batched fit (tensors on the inputs' device, first dimension B).

    ``keypoints_3d``: COCO-17, camera frame, pelvis-centred and divided by the nose-to-pelvis
    distance (:func:`aims_lib.taxonomy.normalise_keypoints_3d`), NaN where ``failed``.
    ``keypoints_cam``: the same keypoints in metres before normalisation. ``loss``: final energy;
    ``reprojection_error``: mean pixel distance over the confident keypoints; ``flipped``: the
    body turned by 180 degrees about its vertical won; ``converged``: the loss had settled;
    ``failed``: too few keypoints, a non-finite fit, or keypoints behind the camera.
    """

    keypoints_3d: torch.Tensor
    keypoints_cam: torch.Tensor
    global_orient: torch.Tensor
    body_pose: torch.Tensor
    betas: torch.Tensor
    transl: torch.Tensor
    K: torch.Tensor
    loss: torch.Tensor
    reprojection_error: torch.Tensor
    flipped: torch.Tensor
    converged: torch.Tensor
    failed: torch.Tensor

    def __len__(self) -> int:
        return int(self.loss.shape[0])

    def numpy(self) -> dict[str, np.ndarray]:
        """Every field as a NumPy array (on the host)."""
        return {f.name: getattr(self, f.name).detach().cpu().numpy() for f in fields(self)}


def project_camera(points: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """Pixels (B, N, 2) of camera-frame points (B, N, 3) with intrinsics (B, 3, 3).

    :func:`aims_lib.camera.project` with R = I, T = 0, except that the depth is clamped to
    ``_MIN_DEPTH``: an iterate that swings a point behind the camera gets a large finite
    residual instead of a sign-flipped or infinite one.
    """
    homogeneous = points @ K.transpose(-1, -2)
    return homogeneous[..., :2] / homogeneous[..., 2:3].clamp(min=_MIN_DEPTH)


def geman_mcclure(residual: torch.Tensor, sigma: float) -> torch.Tensor:
    """``rho(r) = sigma^2 r^2 / (sigma^2 + r^2)``: quadratic for small r, saturating at sigma^2
    for outliers (a wrong HRNet detection costs at most sigma^2)."""
    squared = residual**2
    return sigma**2 * squared / (sigma**2 + squared)


@dataclass
class _Targets:
    """Sanitised 2D targets, one row per hypothesis: NaN keypoints zeroed with confidence 0."""

    keypoints: torch.Tensor  # (H, 17, 2)
    weight: torch.Tensor  # (H, 17) squared confidence
    K: torch.Tensor  # (H, 3, 3)
    scale: torch.Tensor  # (H,) pixels per reference pixel

    def take(self, index: torch.Tensor) -> _Targets:
        return _Targets(self.keypoints[index], self.weight[index], self.K[index], self.scale[index])


def best_per_image(loss: torch.Tensor, owner: torch.Tensor, batch: int) -> torch.Tensor:
    """Index (B,) of the lowest-loss hypothesis of every image (the first one on ties);
    ``owner`` (H,) is the image of each hypothesis, every image owns at least one."""
    index = torch.arange(loss.shape[0], device=loss.device)
    lowest = torch.full((batch,), math.inf, dtype=loss.dtype, device=loss.device).scatter_reduce(0, owner, loss, "amin")
    candidate = torch.where(loss == lowest[owner], index, loss.shape[0])
    return torch.full((batch,), loss.shape[0], device=loss.device).scatter_reduce(0, owner, candidate, "amin")


class SMPLify:
    """Batched SMPLify on a body model (the procedural infant by default, or SMIL).

    ``pose_prior``: a :class:`GMMPosePrior`; by default the project's prior fitted to the pose
    sampler's library (:func:`aims_lib.pose_branch.priors.default_pose_prior`). Its component
    means are the starting poses of stage 2 (:meth:`fit`).
    """

    def __init__(
        self,
        model: Any | None = None,
        pose_prior: GMMPosePrior | None = None,
        config: SMPLifyConfig = SMPLifyConfig(),
        device: torch.device | str | None = None,
    ) -> None:
        if model is None:
            from aims_lib.body import DEFAULT_BETAS, load_body_model

            model = load_body_model(num_betas=DEFAULT_BETAS)
        self.config = config
        self.device = torch.device(device) if device is not None else model.v_template.device
        self.num_betas = int(model.num_betas)
        self.layer = KeypointLayer(model).to(self.device, config.dtype)
        prior = pose_prior if pose_prior is not None else default_pose_prior(model)
        self.pose_prior = copy.deepcopy(prior).to(self.device, config.dtype)  # the caller's stays as it is
        order = np.argsort(-prior.weights, kind="stable")[: config.pose_starts]
        self.starts = torch.zeros(len(order), 3 * (self.layer.num_joints - 1), dtype=config.dtype, device=self.device)
        self.starts[:, : prior.dim] = self.pose_prior.means[torch.as_tensor(order, device=self.device)]

    # --- energy -------------------------------------------------------------------------------

    def data_term(self, params: dict[str, torch.Tensor], targets: _Targets, joint_weight: torch.Tensor) -> torch.Tensor:
        """Weighted Geman-McClure reprojection energy (H,) in reference pixels."""
        keypoints = self.layer(params["betas"], params["global_orient"], params["body_pose"], params["transl"])
        residual = (project_camera(keypoints, targets.K) - targets.keypoints) / targets.scale[:, None, None]
        return (joint_weight * geman_mcclure(residual, self.config.sigma).sum(-1)).sum(-1)

    def energy(self, params: dict[str, torch.Tensor], targets: _Targets) -> torch.Tensor:
        """Full stage-2 energy (H,): data term plus pose, bending and shape priors."""
        c = self.config
        return (
            self.data_term(params, targets, targets.weight)
            + c.pose_prior_weight**2 * self.pose_prior(params["body_pose"])
            + c.bending_prior_weight**2 * bending_prior(params["body_pose"])
            + c.shape_prior_weight**2 * shape_prior(params["betas"])
        )

    # --- fit ----------------------------------------------------------------------------------

    def fit(
        self,
        keypoints_2d: np.ndarray | torch.Tensor,
        confidence: np.ndarray | torch.Tensor,
        K: np.ndarray | torch.Tensor | None = None,
        image_size: np.ndarray | torch.Tensor | None = None,
    ) -> SMPLifyResult:
        """Fit B images at once.

        ``keypoints_2d`` (B, 17, 2) pixels; ``confidence`` (B, 17): HRNet scores in [0, 1] or
        visibility as weights (COCO flags: pass ``flags > 0``); NaN keypoints and non-positive
        confidences are ignored. ``K`` (B, 3, 3), else :func:`default_intrinsics` of
        ``image_size`` (B, 2) as (width, height). Deterministic.

        Every image gets ``len(tilts)`` stage-1 hypotheses (twice as many for side views),
        each expanded to ``pose_starts`` stage-2 starts; see the module docstring.
        """
        with cpu_threads(self.config.cpu_threads, self.device):
            return self._fit(keypoints_2d, confidence, K, image_size)

    def _fit(
        self,
        keypoints_2d: np.ndarray | torch.Tensor,
        confidence: np.ndarray | torch.Tensor,
        K: np.ndarray | torch.Tensor | None,
        image_size: np.ndarray | torch.Tensor | None,
    ) -> SMPLifyResult:
        c = self.config
        kw = {"dtype": c.dtype, "device": self.device}
        kp = torch.as_tensor(keypoints_2d, **kw)
        conf = torch.as_tensor(confidence, **kw)
        if kp.ndim != 3 or kp.shape[1:] != (NUM_KEYPOINTS, 2) or conf.shape != kp.shape[:2]:
            raise ValueError(
                f"keypoints_2d must be (B, 17, 2) and confidence (B, 17); got {tuple(kp.shape)}, {tuple(conf.shape)}"
            )
        if K is None:
            if image_size is None:
                raise ValueError("SMPLify.fit needs K or image_size")
            size = np.asarray(torch.as_tensor(image_size).cpu(), dtype=np.float64)
            K = default_intrinsics(size[..., 0], size[..., 1])
        batch = kp.shape[0]
        valid = torch.isfinite(kp).all(-1) & torch.isfinite(conf) & (conf > 0)
        kp = torch.where(valid[..., None], kp, torch.zeros_like(kp))
        conf = torch.where(valid, conf, torch.zeros_like(conf))
        images = _Targets(kp, conf**2, torch.as_tensor(K, **kw).expand(batch, 3, 3), self._scale(kp, valid))

        # Stage 1: camera translation and global orientation on the torso, per hypothesis:
        # every tilt, facing the camera as the 2D left/right order says, and turned for side views.
        phi, facing, ambiguous = self._facings(kp, conf)
        tilts = torch.tensor([math.radians(t) for t in c.tilts], **kw)
        owner = torch.cat([torch.arange(batch, device=self.device), torch.nonzero(ambiguous).flatten()])
        turned = torch.arange(owner.shape[0], device=self.device) >= batch
        owner, turned = owner.repeat_interleave(len(tilts)), turned.repeat_interleave(len(tilts))
        tilt = tilts.repeat(owner.shape[0] // len(tilts))
        targets = images.take(owner)
        params = self._initial_params(self._orientation(phi[owner], facing[owner] ^ turned, tilt), targets)
        torso = torch.zeros(NUM_KEYPOINTS, **kw)
        torso[list(_SHOULDERS + _HIPS)] = 1.0
        torso_weight = targets.weight * torso
        stage1_weight = torch.where((torso_weight > 0).sum(-1, keepdim=True) >= 2, torso_weight, targets.weight)
        self._optimise(
            params, ("global_orient", "transl"), c.stage1_iters, lambda p: self.data_term(p, targets, stage1_weight)
        )

        # Stage 2: every hypothesis from every starting pose, then the best one per image.
        starts = self.starts.shape[0]
        expand = torch.arange(owner.shape[0], device=self.device).repeat_interleave(starts)
        owner, turned, targets = owner[expand], turned[expand], targets.take(expand)
        params = {k: v[expand] for k, v in params.items()}
        params["body_pose"] = self.starts.repeat(owner.shape[0] // starts, 1)
        everything = ("global_orient", "body_pose", "betas", "transl")
        self._optimise(params, everything, c.explore_iters, lambda p: self.energy(p, targets))
        with torch.no_grad():
            keep = best_per_image(self._finite(self.energy(params, targets)), owner, batch)
        params = {k: v[keep] for k, v in params.items()}
        targets = images
        history = self._optimise(params, everything, c.stage2_iters, lambda p: self.energy(p, targets))
        with torch.no_grad():
            loss = self._finite(self.energy(params, targets))
        return self._result(params, targets, loss, history, turned[keep], valid)

    @staticmethod
    def _finite(loss: torch.Tensor) -> torch.Tensor:
        """Non-finite losses as +inf: a diverged hypothesis never wins a comparison."""
        return torch.where(torch.isfinite(loss), loss, torch.full_like(loss, math.inf))

    def _optimise(
        self, params: dict[str, torch.Tensor], names: tuple[str, ...], iters: int, objective: Any
    ) -> torch.Tensor:
        """Adam on the summed per-hypothesis energies, in place (Adam is elementwise, so the
        hypotheses stay independent); returns the loss history (iters, H)."""
        free = [params[n].requires_grad_(True) for n in names]
        optimiser = torch.optim.Adam(free, lr=self.config.lr)
        history = []
        for _ in range(iters):
            optimiser.zero_grad(set_to_none=True)
            loss = objective(params)
            loss.sum().backward()
            optimiser.step()
            history.append(loss.detach())
        for p in free:
            p.requires_grad_(False)
        return torch.stack(history) if history else torch.zeros(0, params["transl"].shape[0], device=self.device)

    # --- initialisation -----------------------------------------------------------------------

    def _facings(self, kp: torch.Tensor, conf: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """In-plane angle ``phi`` (B,) of the 2D torso axis (hips to shoulders), whether the
        body faces the camera (B,), and whether that is ambiguous (B,).

        It faces the camera when its left side (shoulders and hips, left minus right) points to
        the image right of the torso axis. Side views (shoulders closer than ``side_view_ratio``
        torso lengths) and images without both shoulders are ambiguous.
        """
        has = conf > 0
        up = self._mid(kp, has, _SHOULDERS) - self._mid(kp, has, _HIPS)
        lateral = sum(
            torch.where((has[:, a] & has[:, b])[:, None], kp[:, a] - kp[:, b], torch.zeros_like(kp[:, a]))
            for a, b in (_SHOULDERS, _HIPS)
        )
        right = torch.stack([-up[:, 1], up[:, 0]], -1)  # the torso axis turned +90 degrees (y down)
        both_shoulders = has[:, _SHOULDERS[0]] & has[:, _SHOULDERS[1]]
        shoulder_gap = (kp[:, _SHOULDERS[0]] - kp[:, _SHOULDERS[1]]).norm(dim=-1)
        side = shoulder_gap < self.config.side_view_ratio * up.norm(dim=-1)
        return torch.atan2(up[:, 0], -up[:, 1]), (lateral * right).sum(-1) >= 0, side | ~both_shoulders

    @staticmethod
    def _orientation(phi: torch.Tensor, facing: torch.Tensor, tilt: torch.Tensor) -> torch.Tensor:
        """Axis-angle (H, 3) of the body upright in the image plane with its head towards
        in-plane angle ``phi``, facing the camera or turned away, then tilted about its own
        left-right axis: ``R_z(phi) R_x(pi) [R_y(pi)] R_x(tilt)`` (``R_x(pi)`` turns SMPL's
        y-up, facing +z body into the y-down camera, facing it)."""
        zero = torch.zeros_like(phi)

        def about(axis: int, angle: torch.Tensor) -> torch.Tensor:
            return axis_angle_to_matrix(torch.stack([angle if i == axis else zero for i in range(3)], -1))
        rotation = about(2, phi) @ about(0, zero + math.pi) @ about(1, torch.where(facing, zero, zero + math.pi))
        return matrix_to_axis_angle(rotation @ about(0, tilt))

    @staticmethod
    def _mid(points: torch.Tensor, has: torch.Tensor, pair: tuple[int, int]) -> torch.Tensor:
        """Mean of the confident points of a left/right pair (B, D); zero when neither is."""
        w = has[:, list(pair)].to(points.dtype)
        return (w[..., None] * points[:, list(pair)]).sum(1) / w.sum(1, keepdim=True).clamp(min=1.0)

    def _scale(self, kp: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Pixels per reference pixel (B,): larger side of the confident keypoints' box over
        ``person_size`` (at least 1/100, so degenerate inputs stay finite)."""
        big = torch.finfo(kp.dtype).max
        lo = torch.where(valid[..., None], kp, torch.full_like(kp, big)).amin(1)
        hi = torch.where(valid[..., None], kp, torch.full_like(kp, -big)).amax(1)
        size = torch.where(valid.sum(-1) >= 2, (hi - lo).amax(-1), torch.zeros_like(lo[:, 0]))
        return (size / self.config.person_size).clamp(min=1e-2)

    def _initial_params(self, orient: torch.Tensor, targets: _Targets) -> dict[str, torch.Tensor]:
        """Mean shape, the heaviest prior component's pose, the given orientation, and the
        translation that puts the centre of the confident keypoints on its 2D ray at depth
        ``focal * torso_3d / torso_2d`` (the keypoints' spread instead of the torso length when
        no shoulder or no hip is confident)."""
        h = orient.shape[0]
        kw = {"dtype": self.config.dtype, "device": self.device}
        params = {
            "global_orient": orient.clone(),
            "body_pose": self.starts[0].expand(h, -1).clone(),
            "betas": torch.zeros(h, self.num_betas, **kw),
            "transl": torch.zeros(h, 3, **kw),
        }
        with torch.no_grad():
            body = self.layer(**params)
        has = targets.weight > 0
        kp = targets.keypoints
        torso_2d = (self._mid(kp, has, _SHOULDERS) - self._mid(kp, has, _HIPS)).norm(dim=-1)
        torso_3d = (self._mid(body, has, _SHOULDERS) - self._mid(body, has, _HIPS)).norm(dim=-1)
        w = has.to(body.dtype)[..., None]
        count = w.sum(1).clamp(min=1.0)
        centre_2d, centre_3d = (w * kp).sum(1) / count, (w * body).sum(1) / count
        spread_2d = ((w * (kp - centre_2d[:, None]) ** 2).sum((1, 2)) / count[:, 0]).sqrt()
        spread_3d = ((w * (body - centre_3d[:, None]) ** 2).sum((1, 2)) / count[:, 0]).sqrt()
        use_torso = has[:, list(_SHOULDERS)].any(-1) & has[:, list(_HIPS)].any(-1) & (torso_2d > 1.0)
        length_2d = torch.where(use_torso, torso_2d, spread_2d).clamp(min=1.0)
        length_3d = torch.where(use_torso, torso_3d, spread_3d)
        focal = 0.5 * (targets.K[:, 0, 0] + targets.K[:, 1, 1])
        depth = focal * length_3d / length_2d
        homogeneous = torch.cat([centre_2d, torch.ones_like(centre_2d[:, :1])], -1)
        ray = torch.linalg.solve(targets.K, homogeneous[..., None])[..., 0]
        params["transl"] = depth[:, None] * ray - centre_3d
        return params

    # --- output -------------------------------------------------------------------------------

    def _result(
        self,
        params: dict[str, torch.Tensor],
        targets: _Targets,
        loss: torch.Tensor,
        history: torch.Tensor,
        flipped: torch.Tensor,
        valid: torch.Tensor,
    ) -> SMPLifyResult:
        """Keypoints and diagnostics of the chosen hypotheses; failed fits get NaN keypoints."""
        with torch.no_grad():
            p = {k: v.detach() for k, v in params.items()}
            keypoints = self.layer(p["betas"], p["global_orient"], p["body_pose"], p["transl"])
            error = (project_camera(keypoints, targets.K) - targets.keypoints).norm(dim=-1)
            counted = valid.to(error.dtype)
            reprojection = (counted * error).sum(-1) / counted.sum(-1).clamp(min=1.0)
            tail = max(1, history.shape[0] // 10)
            if history.shape[0] > tail:
                settled = (history[-tail - 1] - history[-1]).abs()
            else:
                settled = torch.full_like(loss, math.inf)
            converged = settled <= self.config.converge_tol * loss.abs().clamp(min=1.0)
            finite = torch.isfinite(loss) & torch.isfinite(keypoints).flatten(1).all(-1)
            finite &= torch.stack([torch.isfinite(v).all(-1) for v in p.values()]).all(0)
            nose_pelvis = (keypoints[:, NOSE] - 0.5 * (keypoints[:, LEFT_HIP] + keypoints[:, RIGHT_HIP])).norm(dim=-1)
            failed = ~finite | (valid.sum(-1) < self.config.min_keypoints) | ~(nose_pelvis > 1e-9)
            failed |= (keypoints[..., 2] <= _MIN_DEPTH).any(-1)
            nan = torch.full_like(keypoints, math.nan)
            keypoints = torch.where(failed[:, None, None], nan, keypoints)
        return SMPLifyResult(
            keypoints_3d=normalise_keypoints_3d(keypoints),  # NaN rows stay NaN
            keypoints_cam=keypoints,
            global_orient=p["global_orient"],
            body_pose=p["body_pose"],
            betas=p["betas"],
            transl=p["transl"],
            K=targets.K,
            loss=loss,
            reprojection_error=torch.where(failed, torch.full_like(reprojection, math.nan), reprojection),
            flipped=flipped,
            converged=converged & ~failed,
            failed=failed,
        )


def fit_smplify(
    keypoints_2d: np.ndarray | torch.Tensor,
    confidence: np.ndarray | torch.Tensor,
    K: np.ndarray | torch.Tensor | None = None,
    image_size: np.ndarray | torch.Tensor | None = None,
    *,
    model: Any | None = None,
    pose_prior: GMMPosePrior | None = None,
    config: SMPLifyConfig = SMPLifyConfig(),
    device: torch.device | str | None = None,
) -> SMPLifyResult:
    """One-call batched fit: :class:`SMPLify` built and run on the given images."""
    if device is None and isinstance(keypoints_2d, torch.Tensor):
        device = keypoints_2d.device
    return SMPLify(model, pose_prior, config, device).fit(keypoints_2d, confidence, K, image_size)
