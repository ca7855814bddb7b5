"""An explorer of every image of a finished run through both branches (notebook 07).

A reader who wonders why an image was misread picks it by split, domain, true and predicted
class or a confusion-matrix cell and sees what each stage made of it: the 2D keypoints, the
SMPLify fit in the image and in 3D, every model's probabilities, and the same class in the other
domain. Loading reads what notebooks 02-04 (and 06) saved and trains nothing
(:mod:`~aims_lib.explore.run`); selection (:mod:`~aims_lib.explore.selection`) and figures
(:mod:`~aims_lib.explore.figures`) are plain functions; the widget app
(:mod:`~aims_lib.explore.app`) only wires them to controls, in JupyterLab or under Voila.
"""

from aims_lib.explore.app import Explorer, explorer
from aims_lib.explore.figures import (
    DEFAULT_VIEW, figure_png, plot_domain_pair, plot_image_view, plot_probabilities, plot_skeleton, save_montage,
    view_figures,
)
from aims_lib.explore.run import LABELS, MODELS, MODELS_AT, ExplorerRun, MissingRunError, load_run
from aims_lib.explore.selection import ALL, Filters, confusion, select

__all__ = [
    "ALL", "DEFAULT_VIEW", "LABELS", "MODELS", "MODELS_AT", "Explorer", "ExplorerRun", "Filters", "MissingRunError",
    "confusion", "explorer", "figure_png", "load_run", "plot_domain_pair", "plot_image_view", "plot_probabilities",
    "plot_skeleton", "save_montage", "select", "view_figures",
]
