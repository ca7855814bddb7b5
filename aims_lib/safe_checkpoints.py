"""mmengine/mmpose checkpoints read weights-only, without letting them run code.

A checkpoint is a pickle (:mod:`aims_lib.safe_pickle` says why that is dangerous). One that
mmengine writes holds, besides tensors, NumPy arrays (dataset metadata) and the logging buffers
a run resumes (``HistoryBuffer`` and its statistics methods, pickled by ``getattr``), so
``torch.load(weights_only=True)`` admits exactly those (:func:`mmengine_safe_globals`) and
refuses anything else; ``trusted=True`` is the named opt-in for a legacy file that needs more.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

from aims_lib.safe_pickle import refused_global, unreadable_weights


def _history_buffer_method(obj: Any, name: str) -> Any:
    """The one ``getattr`` an mmengine checkpoint needs: a statistics method of its logging
    buffers (``HistoryBuffer.min``, ``.mean``, ..., pickled by name). Anything else is refused."""
    from mmengine.logging.history_buffer import HistoryBuffer

    if (obj is HistoryBuffer or isinstance(obj, HistoryBuffer)) and name in ("min", "max", "mean", "current"):
        return getattr(obj, name)
    raise pickle.UnpicklingError(f"checkpoint asks for getattr({type(obj).__name__}, {name!r}): refused")


def mmengine_safe_globals() -> list[Any]:
    """What ``torch.load(weights_only=True)`` must admit for an mmengine checkpoint besides
    tensors: NumPy arrays and dtypes (dataset metadata), mmengine's logging buffers and their
    statistics methods (the message hub a run resumes), nothing that can run code."""
    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer

    dtypes = [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return [np._core.multiarray._reconstruct, np._core.multiarray.scalar, np.ndarray, np.dtype, *dtypes,
            HistoryBuffer, (_history_buffer_method, "builtins.getattr")]


def read_checkpoint(path: Path, trusted: bool = False) -> Any:
    """An mmengine/mmpose checkpoint read weights-only (tensors, containers and
    :func:`mmengine_safe_globals`); ``trusted=True`` unpickles it fully, the named opt-in for a
    file that needs more and whose origin the caller vouches for."""
    import torch

    if trusted:
        return torch.load(path, map_location="cpu", weights_only=False)  # the caller's explicit opt-in
    try:
        with torch.serialization.safe_globals(mmengine_safe_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as exc:
        if (refused := refused_global(exc)) is None:
            raise unreadable_weights(path, exc) from None
        raise pickle.UnpicklingError(
            f"{path}: refused, it holds objects beyond weights and data ({refused}); unpickling it could run code. "
            "If you trust the file, load it with trusted=True (Pose2DEstimator.load(..., trusted=True), "
            "Pose2DTrainConfig(trust_checkpoint=True), make reproduce TRUST_POSE2D_CHECKPOINT=1)"
        ) from None
