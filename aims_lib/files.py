"""Files the library writes: atomically, as JSON that every reader accepts, and where they live.

Every output is written atomically (a temporary file beside the target, flushed, then renamed):
a reader, a parallel process or a run killed half-way sees the old file or the new one, never
half of one. JSON is written through :func:`json_ready`, so numpy values become plain numbers
and a missing number (NaN, infinity) becomes ``null``, which every JSON reader accepts.
"""

from __future__ import annotations

import io
import json
import math
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import numpy as np

#: The repository's root: where ``data/``, ``reports/`` and ``configs/`` live.
REPO: Final[Path] = Path(__file__).resolve().parents[1]

PathLike = str | os.PathLike[str]


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: Read once at import: os.umask can only be read by setting it, which is not thread-safe.
_UMASK = _read_umask()


def atomic_write_bytes(path: PathLike, payload: bytes) -> Path:
    """Write ``payload`` to ``path`` so that readers see the old file or the new one, never a
    half-written one: write a temporary file beside it, flush it to disk, then rename. The file
    gets the permissions of a plainly created one (0666 minus the umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def copy_file_atomic(src: PathLike, dst: PathLike) -> None:
    """Copy ``src`` to ``dst`` atomically unless ``dst`` already holds the same bytes: importers
    and merges rerun over an older output, whose stale copies may have the same size."""
    payload = Path(src).read_bytes()
    dst = Path(dst)
    if not dst.is_file() or dst.read_bytes() != payload:
        atomic_write_bytes(dst, payload)


def json_ready(value: Any) -> Any:
    """``value`` with numpy scalars and arrays as Python numbers and lists, and every non-finite
    float as None: JSON has no NaN or infinity (Python would write ``NaN``, which other readers
    reject), and a missing number (a failed fit, no 3D ground truth) is null in every record."""
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist())
    if isinstance(value, np.generic):
        return json_ready(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {json_ready(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    return value


def json_bytes(value: Any, indent: int | None = 2, compact: bool = False) -> bytes:
    """``value`` as UTF-8 JSON after :func:`json_ready`; ``compact``: no spaces (large files)."""
    separators = (",", ":") if compact else None
    text = json.dumps(json_ready(value), indent=indent, separators=separators, allow_nan=False, ensure_ascii=False)
    return (text + ("\n" if indent is not None else "")).encode("utf-8")


def write_json(path: PathLike, value: Any, indent: int | None = 2, compact: bool = False) -> Path:
    """Write ``value`` as JSON (:func:`json_bytes`) atomically; returns the path."""
    return atomic_write_bytes(path, json_bytes(value, indent, compact))


def write_torch(path: PathLike, obj: Any) -> Path:
    """``torch.save`` of ``obj`` (tensors and plain containers: what weights-only loading reads
    back), written atomically."""
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def write_npz(path: PathLike, **arrays: Any) -> Path:
    """Compressed ``.npz`` of ``arrays``, written atomically (read with ``allow_pickle=False``)."""
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    return atomic_write_bytes(path, buf.getvalue())
