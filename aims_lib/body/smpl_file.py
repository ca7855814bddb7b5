"""Reading and writing SMPL-format pickles without chumpy.

Why: the official SMPL/SMIL pickles (``smil_web.pkl``) hold ``chumpy`` objects, and chumpy does
not install on Python 3.11 / NumPy 2. The unpickler here maps every ``chumpy.*`` class to a
stand-in that only keeps the pickled state, and the loader turns those into plain NumPy arrays,
so neither chumpy nor its import is ever needed. A body model is a file users exchange: it is
read with :mod:`aims_lib.safe_pickle`'s restricted unpickler (NumPy arrays, SciPy sparse
matrices, chumpy stand-ins), so a crafted file cannot run code; ``trusted=True`` is the named
opt-in for a file that needs more.

Sources: ``docs/references.md#smil``.
"""

from __future__ import annotations

import pickle
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

import numpy as np

from aims_lib.files import atomic_write_bytes
from aims_lib.safe_pickle import UnsafePickleError, load_pickle

#: Keys ``smplx.SMPL`` reads from a model pickle.
REQUIRED_KEYS: Final[tuple[str, ...]] = (
    "v_template", "shapedirs", "posedirs", "J_regressor", "weights", "kintree_table", "f",
)  # fmt: skip


class BodyModelFileError(ValueError):
    """A body model file that is not a usable SMPL-format pickle."""


class _ChumpyStandIn:
    """Stand-in for a chumpy class: restores the pickled attributes and nothing else."""

    chumpy_class: str = ""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple):  # (dict, slots) from objects with __slots__
            state = state[0]
        self.__dict__.update(state or {})


@lru_cache(maxsize=None)
def _stand_in(module: str, name: str) -> type[_ChumpyStandIn]:
    return type(name, (_ChumpyStandIn,), {"chumpy_class": f"{module}.{name}"})


def _chumpy_stand_in(module: str, name: str) -> type[_ChumpyStandIn] | None:
    return _stand_in(module, name) if module == "chumpy" or module.startswith("chumpy.") else None


def _plain(value: Any) -> Any:
    """A chumpy stand-in or a scipy sparse matrix as a dense ndarray; anything else unchanged.

    Chumpy values seen in SMPL-family pickles: ``Ch`` (its array is ``x``) and
    ``reordering.Select`` (``a.ravel()[idxs]`` reshaped to ``preferred_shape``).
    """
    if isinstance(value, _ChumpyStandIn):
        state = value.__dict__
        if "x" in state:
            return np.asarray(_plain(state["x"]))
        if value.chumpy_class.endswith(".Select") and {"a", "idxs"} <= state.keys():
            picked = np.asarray(_plain(state["a"])).ravel()[np.asarray(state["idxs"])]
            shape = state.get("preferred_shape")
            return picked.reshape(shape) if shape is not None else picked
        raise BodyModelFileError(f"cannot convert chumpy object {value.chumpy_class} to an array")
    if hasattr(value, "toarray") and "scipy.sparse" in type(value).__module__:
        return value.toarray()
    return value


def read_smpl_pickle(path: str | Path, trusted: bool = False) -> dict[str, np.ndarray]:
    """Arrays of an SMPL-format pickle (SMPL, SMIL, or this project's procedural body).

    Raises ``FileNotFoundError`` naming the file, :class:`~aims_lib.safe_pickle.UnsafePickleError`
    when the pickle names a class a body model does not need (``trusted=True`` loads it anyway),
    and :class:`BodyModelFileError` naming the missing keys when the pickle is not an SMPL model,
    or the array and the first entry when a float array holds NaN or infinite values (they
    would otherwise surface as NaN vertices deep inside a fit or a render).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"body model file not found: {path}")
    try:
        data = load_pickle(path, trusted=trusted, stand_ins=_chumpy_stand_in)
    except UnsafePickleError:
        raise
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise BodyModelFileError(f"{path} is not a readable SMPL-format pickle: {exc}") from exc
    if not isinstance(data, dict):
        raise BodyModelFileError(f"{path} holds a {type(data).__name__}, not an SMPL model dict")
    missing = [k for k in REQUIRED_KEYS if k not in data]
    if missing:
        raise BodyModelFileError(f"{path} lacks required SMPL keys: {', '.join(missing)}")
    arrays = {k: np.asarray(_plain(data[k])) for k in REQUIRED_KEYS}
    arrays["f"] = arrays["f"].astype(np.int64)
    arrays["kintree_table"] = arrays["kintree_table"].astype(np.int64)
    for key, a in arrays.items():
        _check_finite(path, key, a)
    return arrays


def _check_finite(path: Path, key: str, a: np.ndarray) -> None:
    """Refuse NaN or infinite values in a numeric array, naming the file, the array and where."""
    if not np.issubdtype(a.dtype, np.number):
        raise BodyModelFileError(f"{path}: {key} holds {a.dtype} values, not numbers")
    bad = ~np.isfinite(a)
    if bad.any():
        first = [int(i) for i in np.argwhere(bad)[0]]
        raise BodyModelFileError(
            f"{path}: {key} has {int(bad.sum())} non-finite value(s) (NaN or infinite), "
            f"the first at {first}: {a[tuple(first)]}"
        )


def write_smpl_pickle(arrays: dict[str, np.ndarray], path: str | Path) -> Path:
    """Write plain arrays as a pickle that ``smplx.SMPL(model_path=path)`` loads unchanged.

    Written atomically: an interrupted write leaves the old file (or none), never a truncated
    pickle that a later run would fail to read.
    """
    missing = [k for k in REQUIRED_KEYS if k not in arrays]
    if missing:
        raise BodyModelFileError(f"cannot write an SMPL pickle without: {', '.join(missing)}")
    path = Path(path)
    payload = pickle.dumps({k: np.ascontiguousarray(arrays[k]) for k in REQUIRED_KEYS}, protocol=4)
    atomic_write_bytes(path, payload)
    return path
