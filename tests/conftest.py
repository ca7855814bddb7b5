"""Shared fixtures: paths of the committed data fixtures, a SMIL-format body file."""

from __future__ import annotations

import pickle
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

REPO = Path(__file__).resolve().parents[1]
FIXTURES = REPO / "data" / "fixtures"


@pytest.fixture
def aims_tiny() -> Path:
    return FIXTURES / "aims_tiny" / "annotations.json"


@pytest.fixture
def syrip_tiny() -> Path:
    return FIXTURES / "syrip_tiny"


def _fake_chumpy_modules() -> dict[str, types.ModuleType]:
    """Minimal stand-ins for chumpy's pickled classes, only to write a SMIL-like fixture."""
    root, ch, reordering = (types.ModuleType(n) for n in ("chumpy", "chumpy.ch", "chumpy.reordering"))

    class Ch:  # chumpy pickles the instance dict: the array ``x`` plus bookkeeping
        def __init__(self, x):
            self.x, self._dirty_vars, self._itr = x, set(), None

    class Select:
        def __init__(self, a, idxs, preferred_shape):
            self.a, self.idxs, self.preferred_shape = a, idxs, preferred_shape

    Ch.__module__, Ch.__qualname__ = "chumpy.ch", "Ch"
    Select.__module__, Select.__qualname__ = "chumpy.reordering", "Select"
    ch.Ch, reordering.Select = Ch, Select
    root.ch, root.reordering = ch, reordering
    return {"chumpy": root, "chumpy.ch": ch, "chumpy.reordering": reordering}


@pytest.fixture
def smil_like(tmp_path: Path) -> tuple[Path, np.ndarray]:
    """A SMIL-like pickle: chumpy objects, a sparse regressor, 20 shape components (the procedural
    infant's 14 and six small ones), as the official ``smil_web.pkl`` is laid out."""
    from aims_lib.body import procedural_arrays

    arrays = procedural_arrays()
    rng = np.random.default_rng(1)
    shapedirs = np.concatenate([arrays["shapedirs"], 1e-3 * rng.normal(size=(6890, 3, 20 - arrays["shapedirs"].shape[2]))], axis=2)
    modules = _fake_chumpy_modules()
    with pytest.MonkeyPatch.context() as mp:
        for name, module in modules.items():
            mp.setitem(sys.modules, name, module)
        Ch, Select = modules["chumpy.ch"].Ch, modules["chumpy.reordering"].Select
        posedirs = arrays["posedirs"].astype(np.float64)
        data = {
            "v_template": Ch(arrays["v_template"].copy()),
            "shapedirs": Ch(shapedirs),
            "posedirs": Select(Ch(posedirs.ravel()), np.arange(posedirs.size), posedirs.shape),
            "J_regressor": scipy.sparse.csc_matrix(arrays["J_regressor"]),
            "weights": Ch(arrays["weights"].copy()),
            "kintree_table": arrays["kintree_table"].astype(np.uint32),
            "f": arrays["f"].astype(np.uint32),
            "bs_style": "lbs",
        }
        path = tmp_path / "smil_web.pkl"
        path.write_bytes(pickle.dumps(data, protocol=2))
    assert "chumpy" not in sys.modules
    assert b"chumpy.ch" in path.read_bytes()
    return path, shapedirs
