"""The explorer as a widget app (ipywidgets 8), in JupyterLab or served by Voila.

:class:`Explorer` wires widgets to the library's functions and holds no logic of its own: the
filters (split, domain, level, model, true and predicted class, only errors, calibrated) make a
:class:`~aims_lib.explore.selection.Filters`, :func:`~aims_lib.explore.selection.select` gives
the images a slider runs over, the figures of :mod:`aims_lib.explore.figures` show the one
chosen, and a grid of buttons is the confusion matrix of the model at the level, each button
selecting its cell's images. Widgets carry CSS classes ``explore-*`` so that a browser test can
find them. :func:`explorer` is what a notebook cell shows.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import ipywidgets as w
import numpy as np

from aims_lib.data.format import SPLITS
from aims_lib.explore.figures import (
    DEFAULT_VIEW, TRUE_COLOUR, WRONG_COLOUR, describe, figure_png, plot_domain_pair, plot_image_view, plot_probabilities,
    plot_skeleton,
)
from aims_lib.explore.run import LABELS, MODELS, MODELS_AT, ExplorerRun
from aims_lib.explore.selection import ALL, Filters, confusion, select


#: The class dropdowns' value that filters nothing (a Dropdown shows None as no choice at all).
ANY = "any"


def _class_options(level: str) -> list[str]:
    return [ANY, *LABELS[level]]


class Explorer:
    """The widget app over one run (module docstring), starting at ``filters``, the ``start``-th
    image of their selection and 3D ``view``; ``widget`` is what a cell displays, the controls
    are attributes so that tests can turn them."""

    def __init__(self, run: ExplorerRun, filters: Filters = Filters(), view: tuple[float, float] = DEFAULT_VIEW,
                 start: int = 0) -> None:
        self.run = run
        self._quiet = False
        self.rows = np.zeros(0, dtype=np.int64)
        self.split = w.Dropdown(options=[("all", ALL), *((s, s) for s in SPLITS)], value=filters.split, description="split")
        self.domain = w.Dropdown(options=[("all", ALL), ("synthetic", "synthetic"), (run.real_name, "real")],
                                 value=filters.domain, description="domain")
        self.level = w.ToggleButtons(options=list(LABELS), value=filters.level, description="level")
        self.model = w.ToggleButtons(options=MODELS_AT[filters.level], value=filters.model, description="model")
        self.true_class = w.Dropdown(options=_class_options(filters.level), value=filters.true_class or ANY,
                                     description="true")
        self.predicted_class = w.Dropdown(options=_class_options(filters.level), value=filters.predicted_class or ANY,
                                          description="predicted")
        self.only_errors = w.Checkbox(value=filters.only_errors, description="only errors")
        self.calibrated = w.Checkbox(value=filters.calibrated and run.calibration is not None, disabled=run.calibration is None,
                                     description="calibrated" if run.calibration else "calibrated (run notebook 06)")
        self.index = w.IntSlider(min=0, max=0, description="image", continuous_update=False, readout=False)
        self.previous = w.Button(description="◀ previous", layout=w.Layout(width="110px"))
        self.next = w.Button(description="next ▶", layout=w.Layout(width="110px"))
        self.count = w.HTML()
        self.labels = w.HTML()
        self.elevation = w.IntSlider(value=round(view[0]), min=-90, max=90, description="elevation", continuous_update=False)
        self.azimuth = w.IntSlider(value=round(view[1]), min=-180, max=180, description="azimuth", continuous_update=False)
        self.image, self.skeleton, self.bars, self.domains = (w.Image(format="png") for _ in range(4))
        self.cells = {level: [[w.Button(layout=w.Layout(width="38px", height="26px", padding="0")) for _ in names] for _ in names]
                      for level, names in LABELS.items()}
        self._grids = {level: _grid(LABELS[level], self.cells[level]) for level in LABELS}
        self._matrix_title = w.HTML()
        self.matrix = w.VBox()
        for name in ("split", "domain", "level", "model", "true_class", "predicted_class", "only_errors", "calibrated",
                     "index", "previous", "next", "count", "labels", "image", "skeleton", "bars", "domains", "matrix"):
            getattr(self, name).add_class(f"explore-{name.replace('_', '-')}")
        self.widget = w.VBox([
            w.HBox([self.split, self.domain, self.calibrated, self.only_errors]),
            w.HBox([self.level, self.model]),
            w.HBox([self.true_class, self.predicted_class]),
            w.HBox([self.previous, self.index, self.next, self.count]),
            self.labels,
            w.HBox([self.image, w.VBox([self.skeleton, self.elevation, self.azimuth]), self.domains]),
            self.bars,
            self.matrix,
        ])
        self.widget.add_class("explore-app")
        self._wire()
        self.refresh()
        self.index.value = min(start, self.index.max)

    def _wire(self) -> None:
        for control in (self.split, self.domain, self.model, self.calibrated, self.true_class, self.predicted_class,
                        self.only_errors):
            control.observe(self._on_filters, names="value")
        self.level.observe(self._on_level, names="value")
        self.index.observe(lambda _: self._quiet or self.show(), names="value")
        for angle in (self.elevation, self.azimuth):
            angle.observe(lambda _: self._draw_skeleton(), names="value")
        self.previous.on_click(lambda _: self.step(-1))
        self.next.on_click(lambda _: self.step(1))
        for level, grid in self.cells.items():
            for i, row in enumerate(grid):
                for j, button in enumerate(row):
                    button.add_class(f"explore-cell-{level}-{i}-{j}")
                    button.on_click(lambda _, i=i, j=j: self.pick_cell(i, j))

    @contextmanager
    def _quietly(self) -> Iterator[None]:
        """Change controls without their observers redrawing."""
        self._quiet = True
        try:
            yield
        finally:
            self._quiet = False

    @contextmanager
    def _batch(self) -> Iterator[None]:
        """Change several controls with one refresh at the end."""
        with self._quietly():
            yield
        self.refresh()

    @property
    def filters(self) -> Filters:
        return Filters(self.split.value, self.domain.value, self.model.value, self.level.value,
                       None if self.true_class.value == ANY else self.true_class.value,
                       None if self.predicted_class.value == ANY else self.predicted_class.value,
                       self.only_errors.value, self.calibrated.value)

    @property
    def row(self) -> int | None:
        """The shown image's row in ``run.samples``; None when the selection is empty."""
        return int(self.rows[self.index.value]) if len(self.rows) else None

    def _on_filters(self, _: Any) -> None:
        if not self._quiet:
            self.refresh()

    def _on_level(self, change: dict[str, Any]) -> None:
        with self._batch():
            level = change["new"]
            model = self.model.value if self.model.value in MODELS_AT[level] else MODELS[-1]
            self.model.options, self.model.value = MODELS_AT[level], model
            for control in (self.true_class, self.predicted_class):
                control.options, control.value = _class_options(level), ANY

    def pick_cell(self, true_id: int, predicted_id: int) -> None:
        """Select the images of confusion-matrix cell (true, predicted)."""
        cell = self.filters.cell(true_id, predicted_id)
        with self._batch():
            self.true_class.value, self.predicted_class.value, self.only_errors.value = (
                cell.true_class, cell.predicted_class, cell.only_errors)

    def step(self, by: int) -> None:
        """Show the image ``by`` places further in the selection (clamped)."""
        self.index.value = int(np.clip(self.index.value + by, 0, self.index.max))

    def refresh(self) -> None:
        """Select anew from the controls, redraw the confusion matrix and show the first image."""
        filters = self.filters
        self.rows = select(self.run, filters)
        self._draw_matrix(filters)
        with self._quietly():
            self.index.value = 0
            self.index.max = max(0, len(self.rows) - 1)
        self.show()

    def show(self) -> None:
        """Draw the image at the slider, then its labels; an empty selection hides the figures."""
        row = self.row
        self.count.value = f"{self.index.value + 1 if len(self.rows) else 0} of {len(self.rows)} images"
        figures = (self.image, self.skeleton, self.bars, self.domains)
        for figure in figures:
            figure.layout.display = "none" if row is None else None
        if row is None:
            self.labels.value = "<div>No image matches these filters.</div>"
            return
        calibrated = self.calibrated.value
        self.image.value = figure_png(plot_image_view(self.run, row))
        self.bars.value = figure_png(plot_probabilities(self.run, row, calibrated))
        self.domains.value = figure_png(plot_domain_pair(self.run, row))
        self._draw_skeleton()
        self.labels.value = self._labels_html(row, calibrated)  # last: new labels mean every figure is drawn

    def _draw_skeleton(self) -> None:
        if self.row is not None:
            self.skeleton.value = figure_png(plot_skeleton(self.run, self.row, self.elevation.value, self.azimuth.value))

    def _labels_html(self, row: int, calibrated: bool) -> str:
        """The shown image and every model's answer at both levels, wrong answers in red."""
        truth = {level: LABELS[level][int(self.run.truth(level)[row])] for level in LABELS}
        lines = ["<tr><th></th><th>coarse</th><th>fine</th></tr>",
                 f"<tr><td>true</td><td>{html.escape(truth['coarse'])}</td><td>{html.escape(truth['fine'])}</td></tr>"]
        for model in MODELS:
            cells = []
            for level in LABELS:
                if model not in MODELS_AT[level]:
                    cells.append("<td>–</td>")
                    continue
                label, prob = self.run.answer(row, model, level, calibrated)
                colour = TRUE_COLOUR if label == truth[level] else WRONG_COLOUR
                cells.append(f'<td style="color:{colour}">{html.escape(label)} ({prob:.2f})</td>')
            lines.append(f"<tr><td>{model}</td>{''.join(cells)}</tr>")
        fit = ("failed: the pose branch answers uniformly, the full model with the image branch's coarse decision"
               if self.run.fit_failed[row] else "used")
        return (f'<div><b>{html.escape(describe(self.run, row))}</b><br><table style="border-spacing:12px 2px">'
                f"{''.join(lines)}</table>SMPLify fit {fit}; {'calibrated' if calibrated else 'raw'} probabilities</div>")

    def _draw_matrix(self, filters: Filters) -> None:
        """The confusion matrix of the model at the level as buttons: counts, the diagonal green,
        errors orange, the selected cell blue."""
        names = LABELS[filters.level]
        counts = confusion(self.run, filters)
        chosen = (names.index(filters.true_class) if filters.true_class else None,
                  names.index(filters.predicted_class) if filters.predicted_class else None)
        grid = self.cells[filters.level]
        for i, row in enumerate(grid):
            for j, button in enumerate(row):
                n = int(counts[i, j])
                button.description = str(n)
                button.tooltip = f"true {names[i]}, {filters.model} predicts {names[j]}: {n} images"
                button.button_style = ("info" if (i, j) == chosen else "success" if i == j and n
                                       else "warning" if n else "")
        split = "all splits" if filters.split == ALL else filters.split
        domain = "both domains" if filters.domain == ALL else self.run.real_name if filters.domain == "real" else filters.domain
        self._matrix_title.value = (f"<b>Confusion matrix, {filters.model}, {filters.level}</b> ({split}, {domain}; rows "
                                    "true, columns predicted): click a cell to see its images")
        self.matrix.children = [self._matrix_title, self._grids[filters.level]]


def _grid(names: tuple[str, ...], cells: list[list[w.Button]]) -> w.GridBox:
    """A confusion matrix's buttons with the class names down the side and their numbers on top."""
    header = [w.HTML("<b>true ↓ predicted →</b>")] + [w.HTML(f"<b>{j + 1}</b>", tooltip=names[j]) for j in range(len(names))]
    body = [item for i, row in enumerate(cells) for item in (w.HTML(f"{i + 1} {html.escape(names[i])}"), *row)]
    return w.GridBox(header + body, layout=w.Layout(grid_template_columns=f"190px repeat({len(names)}, 40px)", grid_gap="2px"))


def explorer(run: ExplorerRun, filters: Filters = Filters(), view: tuple[float, float] = DEFAULT_VIEW,
             start: int = 0) -> w.Widget:
    """The explorer of ``run`` (:class:`Explorer`), starting at ``filters``, the ``start``-th
    image of their selection and 3D ``view`` (elevation, azimuth): the widget a notebook cell shows."""
    return Explorer(run, filters, view, start).widget
