"""The one place that works around mmcv-lite's missing compiled ops, so mmpose imports.

``mmpose.apis`` imports ``mmcv.ops``, which loads the compiled extension ``mmcv._ext`` and checks
that it has every op. mmcv-lite (what installs without a 20+ minute source build) ships no
``_ext``, so the import fails although top-down heatmap models (HRNet, ResNet, LiteHRNet) use
none of those ops. :func:`install` registers a placeholder ``mmcv._ext`` whose attributes exist
(the import-time check passes) but raise :class:`MissingCompiledOpError` when called, so a model
that really needs a compiled op fails with a message that says why and how to fix it, instead of
with a wrong result. With a full mmcv (``mmcv._ext`` importable) nothing is changed.

Call :func:`import_mmpose` (or :func:`install` before any ``mmpose``/``mmcv.ops`` import).

Sources: ``docs/references.md#mmpose``.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import sys
import types
import warnings
from collections.abc import Callable
from typing import Any, Final

EXT_NAME: Final[str] = "mmcv._ext"
INSTALL_HINT: Final[str] = (
    "install the pinned environment with `make venv` (mmpose 1.3.2 --no-deps, mmengine 0.10.7, "
    "mmcv-lite 2.1.0, mmdet 3.2.0; see requirements-post.txt)"
)


class MissingCompiledOpError(RuntimeError):
    """A compiled mmcv op was called, but only mmcv-lite's placeholder is installed."""


def _missing_op(name: str) -> Callable[..., Any]:
    def op(*args: Any, **kwargs: Any) -> Any:
        raise MissingCompiledOpError(
            f"mmcv compiled op {name!r} is not available: mmcv-lite has no compiled ops and "
            f"{EXT_NAME} is a placeholder registered by {__name__}. Top-down heatmap pose models "
            "do not need compiled ops; for a model that does, install a full mmcv 2.1.0 built "
            "from source (about 20-26 minutes on 2 cores, needs C++20 with torch 2.14)."
        )

    op.__name__ = op.__qualname__ = name
    return op


def _placeholder_getattr(name: str) -> Callable[..., Any]:
    if name.startswith("__"):  # importlib probes dunders (__path__, __file__): stay a plain module
        raise AttributeError(f"module {EXT_NAME!r} has no attribute {name!r}")
    return _missing_op(name)


def is_placeholder_installed() -> bool:
    return getattr(sys.modules.get(EXT_NAME), "__aims_placeholder__", False)


def install() -> bool:
    """Register the placeholder unless a real ``mmcv._ext`` exists; returns whether it did.

    Idempotent. Raises ImportError (with the install route) when mmcv itself is missing.
    """
    if EXT_NAME in sys.modules:
        return is_placeholder_installed()
    try:
        real = importlib.util.find_spec(EXT_NAME)
    except ModuleNotFoundError:
        raise ImportError(f"mmcv is not installed: {INSTALL_HINT}") from None
    if real is not None:
        return False
    module = types.ModuleType(EXT_NAME, "Placeholder for mmcv's compiled ops (see aims_lib.pose_branch.mmcv_shim).")
    module.__spec__ = importlib.machinery.ModuleSpec(EXT_NAME, loader=None)
    module.__aims_placeholder__ = True  # type: ignore[attr-defined]
    module.__getattr__ = _placeholder_getattr  # type: ignore[method-assign]  # PEP 562
    sys.modules[EXT_NAME] = module
    return True


def import_mmpose() -> types.ModuleType:
    """Import ``mmpose`` (and its ``apis``) behind the shim, with an error that says how to get it."""
    install()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="pkg_resources is deprecated")  # mmengine's import
            import mmpose
            import mmpose.apis  # noqa: F401  (pulls in mmcv.ops: the check that the shim works)
    except ImportError as exc:
        raise ImportError(f"mmpose could not be imported ({exc}): {INSTALL_HINT}") from exc
    return mmpose
