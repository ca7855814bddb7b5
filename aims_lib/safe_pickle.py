"""Reading pickles that users hand us without letting them run code.

A pickle names the callables that rebuild its objects, and unpickling calls them: a crafted file
can name ``os.system``. Files we read as pickles (SMPL/SMIL body models, SMPLify's GMM prior)
only need NumPy arrays, SciPy sparse matrices and plain containers, so :class:`RestrictedUnpickler`
admits exactly those classes (plus stand-ins a caller maps, e.g. chumpy's) and refuses everything
else with an error that names the file, the class and the explicit opt-in for a file one trusts
(``trusted=True``), which unpickles without restriction.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Final

#: (module, name) pairs a data pickle may name; modules as Python 2 or 3 spell them.
ALLOWED: Final[frozenset[tuple[str, str]]] = frozenset({
    *((m, n) for m in ("numpy.core.multiarray", "numpy._core.multiarray") for n in ("_reconstruct", "scalar")),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    *(("numpy", t) for t in ("float64", "float32", "int64", "int32", "uint8", "bool_")),
    *((m, n) for m in ("copy_reg", "copyreg") for n in ("_reconstructor",)),
    *((m, n) for m in ("__builtin__", "builtins") for n in ("object", "set", "frozenset", "slice")),
    ("_codecs", "encode"),  # bytes in protocol-2 pickles written by Python 3
    *((m, c) for m in ("scipy.sparse.csc", "scipy.sparse._csc", "scipy.sparse.csr", "scipy.sparse._csr")
      for c in ("csc_matrix", "csr_matrix")),
})


class UnsafePickleError(pickle.UnpicklingError):
    """A pickle names a class outside the allow-list: loading it could run code."""


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED` classes; ``stand_ins(module, name)`` may
    return a harmless replacement for other names (or None to refuse them). ``restricted=False``
    resolves every other name as plain pickle does (the trusted opt-in)."""

    def __init__(self, file: IO[bytes], source: str, stand_ins: Callable[[str, str], type | None] | None = None,
                 restricted: bool = True, **kwargs: Any) -> None:
        super().__init__(file, **kwargs)
        self.source = source
        self.stand_ins = stand_ins
        self.restricted = restricted

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in ALLOWED:
            return super().find_class(module, name)
        stand_in = self.stand_ins(module, name) if self.stand_ins else None
        if stand_in is not None:
            return stand_in
        if not self.restricted:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self.source}: refuses to load {module}.{name}: this pickle names a class that a data file does not "
            f"need, and unpickling it could run code. If you trust the file and where it came from, load it with "
            f"trusted=True"
        )


def load_pickle(path: Path, trusted: bool = False, stand_ins: Callable[[str, str], type | None] | None = None,
                encoding: str = "latin1") -> Any:
    """Unpickle ``path`` restricted to data classes; ``trusted=True`` lifts the restriction (a
    named opt-in for a file whose origin the caller vouches for)."""
    with Path(path).open("rb") as fh:
        return RestrictedUnpickler(fh, str(path), stand_ins, restricted=not trusted, encoding=encoding).load()


def refused_global(err: BaseException) -> str | None:
    """The class that ``torch.load(weights_only=True)`` refused, as its error states it (the
    ``GLOBAL`` line); None when the error is of another kind: a damaged or foreign file."""
    found = [line.strip() for line in str(err).splitlines() if "GLOBAL" in line]
    return found[0] if found else None


def unreadable_weights(path: str | Path, err: BaseException) -> ValueError:
    """The error for a weights file that is damaged or not a checkpoint at all (not a refusal)."""
    reason = str(err).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
    return ValueError(f"{path}: not a readable weights file ({type(err).__name__}: {reason})")


def load_weights_file(path: str | Path, map_location: Any = "cpu") -> Any:
    """A weights file (our checkpoints, a backbone's state dict) read with
    ``torch.load(weights_only=True)``: tensors, plain containers, strings and numbers.

    There is no trusted opt-in here on purpose: weights never need more, and what this project
    writes never holds more; the error says how to re-save the tensors of a file one trusts.
    """
    import torch

    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        if (refused := refused_global(err)) is None:
            raise unreadable_weights(path, err) from None
        raise UnsafePickleError(
            f"{path}: refuses to load: it holds objects beyond tensors and plain containers, and unpickling them "
            f"could run code ({refused}). Weights never need them, so there is "
            f"no opt-in here; if you trust the file, load it once yourself (torch.load(..., weights_only=False)) "
            f"and torch.save only its tensors and plain values"
        ) from err
