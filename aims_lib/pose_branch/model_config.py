"""The 2D estimator's mmengine config: code when it is one of ours, data everywhere else.

An mmengine config file is Python that ``Config.fromfile`` executes, together with its
``_base_`` files and the modules its ``custom_imports`` name. Even a config *dict* reaches code:
mmengine resolves a ``type`` it does not find in its registries by importing the dotted name
(``type="os.system"`` builds by calling ``os.system``), a scoped ``type`` or ``default_scope``
imports ``<scope>.registry``, ``metainfo.from_file`` is read with ``Config.fromfile``, and a URL
(``https://``, ``torchvision://``, ...) makes mmengine fetch it. So:

* a ``.py`` config is read only from this repository's ``configs/pose2d/`` (trusted as code, as
  the rest of the repository); any other ``.py`` needs the named opt-in ``trusted=True``;
* a run directory stores its merged config as JSON (:data:`RUN_CONFIG_FILE`), and a JSON config
  is read as data: :func:`check_config_data` admits ``type`` names registered in mmengine's or
  mmpose's registries (no dotted paths), ``custom_imports`` of this package's registration
  modules only (:data:`OWN_REGISTRATIONS`, imported here), scopes ``mmpose``/``mmengine``, no
  ``_base_``, no ``from_file`` outside mmpose's own package data, no ``scheme://`` string, local
  file backends and local visualisation backends only. ``trusted=True`` skips the check (and
  imports what ``custom_imports`` names), for a run whose origin the user vouches for;
* a run directory written before configs were stored as data holds only ``config.py``: it is
  refused unless trusted (:func:`read_run_config`).

SECURITY.md lists every file a user hands us and how it is read.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from aims_lib.files import REPO, write_json
from aims_lib.pose_branch.mmcv_shim import import_mmpose

if TYPE_CHECKING:
    from mmengine.config import Config

#: The repository's mmpose configs: trusted as code.
CONFIG_DIR: Final[Path] = REPO / "configs" / "pose2d"
#: A run directory's config, as data.
RUN_CONFIG_FILE: Final[str] = "config.json"
#: What run directories held before: the merged config as Python (refused unless trusted).
LEGACY_RUN_CONFIG_FILE: Final[str] = "config.py"
#: Modules of ours that register mmpose components; the only ``custom_imports`` a JSON config may name.
OWN_REGISTRATIONS: Final[tuple[str, ...]] = (
    "aims_lib.pose_branch.mmpose_backbone", "aims_lib.pose_branch.mmpose_neck", "aims_lib.pose_branch.cpu_amp",
)
#: Visualisation backends that write local files; the others (W&B, MLflow, ClearML, Neptune, ...) reach the network.
LOCAL_VIS_BACKENDS: Final[frozenset[str]] = frozenset({"LocalVisBackend", "TensorboardVisBackend"})
SCOPES: Final[frozenset[str]] = frozenset({"mmpose", "mmengine"})
_URL: Final[re.Pattern[str]] = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")
OPT_IN: Final[str] = (
    "Pose2DEstimator.load(..., trusted_config=True), Pose2DTrainConfig(trust_config=True), "
    "AIMSPosePredictor.load(dir, trust=('pose2d_config',)), python -m aims_lib.predict --trust pose2d_config, "
    "make reproduce TRUST_POSE2D_CONFIG=1"
)


class UntrustedConfigError(ValueError):
    """A config that could run code or reach the network, refused; the message names the file,
    the field and the opt-in."""


def is_repository_config(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` resolves to a file under :data:`CONFIG_DIR` (symbolic links followed)."""
    return Path(path).resolve().is_relative_to(CONFIG_DIR)


def check_config_path(path: str | os.PathLike[str], trusted: bool = False) -> None:
    """Refuse a ``.py`` config outside the repository unless ``trusted``, before anything reads
    it; a ``.json`` config is data (checked when read)."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"pose2d config not found: {p}")
    if p.suffix == ".json":
        return
    if p.suffix != ".py":
        raise ValueError(f"{p}: a pose2d config is a .py file under {CONFIG_DIR} or a .json file, not {p.suffix!r}")
    if not trusted and not is_repository_config(p):
        raise UntrustedConfigError(
            f"{p}: refused: a .py config is Python that mmengine executes when it reads it, and only the configs "
            f"under {CONFIG_DIR} are trusted. Save it as JSON (mmengine's Config.dump to a .json file) to use it "
            f"as data, or, if you vouch for its origin, opt in: {OPT_IN}"
        )


def read_config(path: str | os.PathLike[str], trusted: bool = False) -> Config:
    """A config file: a repository ``.py`` (or a trusted one) executed by mmengine, a ``.json`` read
    as data (:func:`read_config_data`)."""
    check_config_path(path, trusted)
    if Path(path).suffix == ".json":
        return read_config_data(path, trusted)
    import_mmpose()
    from mmengine.config import Config

    return Config.fromfile(str(path))


def read_run_config(run_dir: str | os.PathLike[str], trusted: bool = False) -> Config:
    """The config a run directory stores: :data:`RUN_CONFIG_FILE` as data; a directory with only
    the legacy :data:`LEGACY_RUN_CONFIG_FILE` is refused unless ``trusted``."""
    run_dir = Path(run_dir)
    if (run_dir / RUN_CONFIG_FILE).is_file():
        return read_config_data(run_dir / RUN_CONFIG_FILE, trusted)
    legacy = run_dir / LEGACY_RUN_CONFIG_FILE
    if legacy.is_file():
        if not trusted:
            raise UntrustedConfigError(
                f"{legacy}: refused: this run directory stores its 2D model config as Python (written before runs "
                f"stored it as {RUN_CONFIG_FILE}), and mmengine would execute it when loading the run. If you vouch "
                f"for the folder's origin, opt in: {OPT_IN}"
            )
        import_mmpose()
        from mmengine.config import Config

        return Config.fromfile(str(legacy))
    raise FileNotFoundError(f"{run_dir} has no {RUN_CONFIG_FILE}: not a keypoints2d run directory")


def write_config_data(config: Config, path: str | os.PathLike[str]) -> None:
    """Store a merged config as JSON (atomically): what a run directory keeps."""
    write_json(path, config.to_dict())


def read_config_data(path: str | os.PathLike[str], trusted: bool = False) -> Config:
    """A JSON config, checked by :func:`check_config_data` unless ``trusted`` (then its
    ``custom_imports`` are imported, as mmengine would)."""
    import_mmpose()
    from mmengine.config import Config

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not a JSON config ({exc})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config is a JSON object, got {type(data).__name__}")
    for module in OWN_REGISTRATIONS:
        importlib.import_module(module)
    imports = data.pop("custom_imports", None)
    if trusted:
        for module in (imports or {}).get("imports", []):
            importlib.import_module(module)  # the caller's explicit opt-in
    else:
        check_config_data({"custom_imports": imports, **data} if imports is not None else data, path)
    return Config(data, filename=str(path))


def check_config_data(data: dict[str, Any], source: str | os.PathLike[str]) -> None:
    """Refuse what could make mmengine run code or reach the network (module docstring); the
    error names ``source``, the field and its value."""
    registered = registered_types()
    for where, key, value in _items(data):
        problem = None
        if key == "_base_":
            problem = "inherits from other config files, which mmengine executes"
        elif key == "custom_imports":
            modules = value.get("imports", []) if isinstance(value, dict) else value
            if not (isinstance(modules, list) and set(modules) <= set(OWN_REGISTRATIONS)):
                problem = f"imports modules, which runs their code (admitted: {', '.join(OWN_REGISTRATIONS)})"
        elif key == "type" and not (isinstance(value, str) and value in registered):
            problem = "is not a name registered in mmengine's or mmpose's registries (mmengine would import it)"
        elif key == "type" and value.endswith("VisBackend") and value not in LOCAL_VIS_BACKENDS:
            problem = f"reaches the network (admitted: {', '.join(sorted(LOCAL_VIS_BACKENDS))})"
        elif key in ("default_scope", "_scope_") and value not in SCOPES:
            problem = f"is not one of {', '.join(sorted(SCOPES))} (mmengine imports a scope's registry)"
        elif key == "from_file" and not _mmpose_data_file(value):
            problem = "is read as Python by mmpose; only mmpose's own dataset files are admitted"
        elif key == "backend" and where.endswith("backend_args") and value not in (None, "local"):
            problem = "is not the local file backend"
        elif isinstance(value, str) and _URL.match(value):
            problem = "is a URL, which mmengine would fetch"
        if problem:
            raise UntrustedConfigError(
                f"{source}: refused: {where}{'' if key.startswith('[') or not where else '.'}{key} = {value!r} {problem}. "
                f"If you vouch for the file's origin, opt in: {OPT_IN}"
            )


def _items(node: Any, where: str = "") -> Iterator[tuple[str, str, Any]]:
    """Every ``(path of the parent, key, value)`` of a nested config, lists included."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield where, str(key), value
            yield from _items(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            if isinstance(value, str) and _URL.match(value):
                yield where, f"[{i}]", value
            yield from _items(value, f"{where}[{i}]")


def _mmpose_data_file(value: Any) -> bool:
    """Whether ``from_file`` names a dataset file inside the installed mmpose package (how
    mmpose's own datasets name their metadata), not a file of the working directory."""
    if not isinstance(value, str) or Path(value).is_file():  # mmpose reads a file that exists as given first
        return False
    import mmpose

    packaged = Path(mmpose.__file__).parent / ".mim" / "configs" / "_base_" / "datasets" / Path(value).name
    return packaged.is_file()


@functools.cache
def registered_types() -> frozenset[str]:
    """Every name in mmengine's and mmpose's registries and their children (ours among them),
    after registering mmpose's modules: the ``type`` values a config may use."""
    import_mmpose()
    for module in OWN_REGISTRATIONS:
        importlib.import_module(module)
    from mmengine.registry import Registry, root
    from mmpose import registry as mmpose_registries
    from mmpose.utils import register_all_modules

    register_all_modules(init_default_scope=False)
    names: set[str] = set()
    stack = [r for m in (root, mmpose_registries) for r in vars(m).values() if isinstance(r, Registry)]
    while stack:
        registry = stack.pop()
        registry.import_from_location()
        names.update(registry.module_dict)
        stack.extend(registry.children.values())
    return frozenset(names)
