"""Which images the explorer shows: filters on a run's images and its confusion matrices.

:class:`Filters` names a selection (split, domain, true and predicted class of one model at one
level, only its errors, raw or calibrated outputs); :func:`select` gives its images, in dataset
order. :func:`confusion` counts the images of the split and domain by true and predicted class,
and :meth:`Filters.cell` is the selection of one cell, so that cell ``(i, j)`` holds exactly the
images ``select(run, filters.cell(i, j))`` returns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Final

import numpy as np

from aims_lib.data.format import DOMAINS, SPLITS
from aims_lib.explore.run import LABELS, ExplorerRun, check_model
from aims_lib.statistics import confusion_matrix

#: The split or domain value that filters nothing.
ALL: Final[str] = "all"


@dataclass(frozen=True)
class Filters:
    """A selection of a run's images. ``split`` and ``domain``: a value or :data:`ALL`;
    ``true_class`` and ``predicted_class``: a label name at ``level`` or None for any, the
    prediction being ``model``'s; ``only_errors``: images ``model`` gets wrong at ``level``;
    ``calibrated``: predictions from the calibrated probabilities (notebook 06)."""

    split: str = "test"
    domain: str = "real"
    model: str = "full model"
    level: str = "fine"
    true_class: str | None = None
    predicted_class: str | None = None
    only_errors: bool = False
    calibrated: bool = False

    def __post_init__(self) -> None:
        for name, valid in (("split", SPLITS), ("domain", DOMAINS)):
            if getattr(self, name) not in (*valid, ALL):
                raise ValueError(f"unknown {name} {getattr(self, name)!r}: one of {', '.join((*valid, ALL))}")
        check_model(self.model, self.level)
        for name in ("true_class", "predicted_class"):
            label = getattr(self, name)
            if label is not None and label not in LABELS[self.level]:
                raise ValueError(f"{name} {label!r} is no {self.level} label: one of {', '.join(LABELS[self.level])}")

    def cell(self, true_id: int, predicted_id: int) -> Filters:
        """The selection of confusion-matrix cell (true ``true_id``, predicted ``predicted_id``)
        of these filters' model and level, within their split and domain."""
        labels = LABELS[self.level]
        return dataclasses.replace(self, true_class=labels[true_id], predicted_class=labels[predicted_id],
                                   only_errors=False)


def _in_split_and_domain(run: ExplorerRun, filters: Filters) -> np.ndarray:
    return np.array([filters.split in (ALL, s.split) and filters.domain in (ALL, s.domain) for s in run.samples],
                    dtype=bool)


def select(run: ExplorerRun, filters: Filters) -> np.ndarray:
    """Rows (into ``run.samples``, ascending) of the images that pass every filter."""
    keep = _in_split_and_domain(run, filters)
    truth = run.truth(filters.level)
    predicted = run.predicted(filters.model, filters.level, filters.calibrated)
    labels = LABELS[filters.level]
    if filters.true_class is not None:
        keep &= truth == labels.index(filters.true_class)
    if filters.predicted_class is not None:
        keep &= predicted == labels.index(filters.predicted_class)
    if filters.only_errors:
        keep &= predicted != truth
    return np.flatnonzero(keep)


def confusion(run: ExplorerRun, filters: Filters) -> np.ndarray:
    """Counts (K, K) of the images of ``filters``' split and domain by true class (rows) and the
    class ``filters.model`` predicts (columns) at ``filters.level``; the class and error
    filters are ignored, as the matrix is what one picks them from."""
    rows = _in_split_and_domain(run, filters)
    predicted = run.predicted(filters.model, filters.level, filters.calibrated)[rows]
    return confusion_matrix(predicted, run.truth(filters.level)[rows], len(LABELS[filters.level]))
