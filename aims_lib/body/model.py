"""The body model object: smplx's SMPL on the procedural infant or on a real SMIL file."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np
import smplx
import torch
from smplx.utils import Struct

from aims_lib.body.keypoints import coco17_keypoints
from aims_lib.body.procedural import smpl_arrays
from aims_lib.body.skeleton import JOINT_NAMES, NUM_JOINTS
from aims_lib.body.smpl_file import read_smpl_pickle

#: Shape components that the generator samples and that SMPLify fits on the default body: SMPL's
#: usual 10 (the procedural body has 14; fixed, so that a seed's samples and fits never change).
DEFAULT_BETAS: Final[int] = 10


class BodyModel(smplx.SMPL):
    """smplx's SMPL that keeps every shape component of its data.

    smplx keeps at most 10 betas of a model with fewer than 300 components (SMIL has 20, the
    procedural body 14); here ``num_betas=None`` keeps them all, an int keeps the first ones.
    """

    def __init__(self, arrays: dict[str, np.ndarray], num_betas: int | None = None, **smplx_kwargs: Any) -> None:
        shapedirs = arrays["shapedirs"]
        if shapedirs.ndim != 3 or shapedirs.shape[-1] < 1:
            raise ValueError(f"shapedirs must have shape (V, 3, K) with K >= 1, got {shapedirs.shape}")
        available = int(shapedirs.shape[-1])
        if num_betas is None:
            num_betas = available
        if not 1 <= num_betas <= available:
            raise ValueError(f"num_betas must be in 1..{available} for this body model, got {num_betas}")
        self.SHAPE_SPACE_DIM = available  # read by smplx.SMPL.__init__; depends on the data
        super().__init__(model_path="", data_struct=Struct(**arrays), num_betas=num_betas, **smplx_kwargs)


@lru_cache(maxsize=1)
def procedural_arrays() -> dict[str, np.ndarray]:
    """The procedural infant's SMPL arrays, built once per process (about half a second)."""
    arrays = smpl_arrays()
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


def load_body_model(
    path: str | Path | None = None, num_betas: int | None = None, trusted: bool = False, **smplx_kwargs: Any
) -> BodyModel:
    """The body model: the procedural infant by default, or an SMPL-format pickle (e.g. SMIL's
    ``smil_web.pkl``, read without chumpy) when ``path`` is given. The pickle is read with a
    restricted unpickler (it cannot run code); ``trusted=True`` is the opt-in for a file that
    needs more than arrays.

    ``num_betas=None`` keeps every shape component the body has (14 procedural, 20 for SMIL);
    callers whose parameter vectors or saved betas have a fixed length pass it explicitly.

    ``smplx_kwargs`` go to ``smplx.SMPL`` (``batch_size``, ``dtype``, ...).
    """
    arrays = procedural_arrays() if path is None else read_smpl_pickle(path, trusted=trusted)
    return BodyModel(arrays, num_betas=num_betas, **smplx_kwargs)


@dataclass(frozen=True)
class BodyPose:
    """Posed body: vertices (B, 6890, 3), SMPL joints (B, 24, 3), COCO-17 keypoints (B, 17, 3)."""

    vertices: torch.Tensor
    joints: torch.Tensor
    keypoints: torch.Tensor


def body_forward(
    model: smplx.SMPL,
    betas: torch.Tensor | None = None,
    body_pose: torch.Tensor | None = None,
    global_orient: torch.Tensor | None = None,
    transl: torch.Tensor | None = None,
) -> BodyPose:
    """Pose the body; parameters left out take the model's own (zero by default), repeated to
    the batch size of those given (smplx itself only repeats ``betas``)."""
    given = {"betas": betas, "body_pose": body_pose, "global_orient": global_orient, "transl": transl}
    batch = max((t.shape[0] for t in given.values() if t is not None), default=model.batch_size)
    params = {k: v if v is not None else getattr(model, k).expand(batch, -1) for k, v in given.items()}
    out = model(**params)
    joints = out.joints[:, :NUM_JOINTS]
    return BodyPose(out.vertices, joints, coco17_keypoints(out.vertices, joints))


def vertex_parts(model_or_weights: smplx.SMPL | np.ndarray | torch.Tensor) -> np.ndarray:
    """Body part (SMPL joint id with the largest skinning weight) of every vertex, shape (V,).

    The renderer dresses vertices by part (e.g. a diaper on pelvis and hips).
    """
    weights = getattr(model_or_weights, "lbs_weights", model_or_weights)
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().cpu().numpy()
    # Rounding makes float32 (a model) and float64 (a file) agree where two weights tie at 0.5.
    return np.round(np.asarray(weights, dtype=np.float64), 5).argmax(axis=1)


def body_measurements(model: smplx.SMPL, betas: torch.Tensor) -> dict[str, np.ndarray]:
    """Crown-to-heel ``stature`` (metres, rest pose) and ``head_ratio`` (head height / stature)
    per row of ``betas``: the two proportions that tell an infant from a small adult."""
    with torch.no_grad():
        v = body_forward(model, betas=betas).vertices.cpu().numpy()
    head = vertex_parts(model) == JOINT_NAMES.index("head")
    stature = v[..., 1].max(1) - v[..., 1].min(1)
    head_height = v[:, head, 1].max(1) - v[:, head, 1].min(1)
    return {"stature": stature, "head_ratio": head_height / stature}

