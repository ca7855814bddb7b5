"""The names of an image-branch run, from its setting: what it learns (level), from which source,
by which method (and weight), with which training seed.

A run has two names, both made here and nowhere else:

* :func:`run_name` -- its directory under ``runs/``:
  ``image_<level>_<source>_<method>[_lambda<weight>][_seed<k>]``; the weight only when it is not
  the method's default, the seed only when it is not the data's (the headline run's). Notebooks
  02, 04 and 05 and :mod:`aims_lib.image_branch.comparison` find each other's runs by it.
* :func:`run_key` -- its key in notebook 02's record: ``<level>/<source>/<method>`` for the
  headline run of a setting (``runs_by_setting``), ``<level>/<source>/<method>/<seed>`` for the run
  of one training seed (``runs_by_seed``), which maps a key to the run's directory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aims_lib.adaptation import get_method

if TYPE_CHECKING:
    from aims_lib.image_branch.trainer import Level, Source


def run_name(
    level: Level, source: Source, method: str, weight: float | None = None, train_seed: int | None = None
) -> str:
    """Directory name of a run under ``runs/``; a weight other than the method's default
    (``_lambda<w>``) and a training seed other than the data's (``train_seed``) are part of it."""
    spec = get_method(method)
    name = f"image_{level}_{source}_{method}"
    if spec.uses_target and weight is not None and weight != spec.default_weight:
        name += f"_lambda{weight:g}"
    return name if train_seed is None else f"{name}_seed{train_seed}"


def run_key(level: Level, source: Source, method: str, seed: int | None = None) -> str:
    """Key of a setting's headline run in the records, or with ``seed`` of that training seed's run."""
    return "/".join([level, source, method] + ([] if seed is None else [str(seed)]))
