"""The Inspect dock widget: pictures and figures that let a person judge a registration.

Each toggle adds (or removes) one layer computed by :mod:`~napari_ccf_align.core.results.qc` on a worker:
the warped sample over the atlas, a checkerboard, the difference, atlas region
boundaries in atlas space and on the sample (hovering names the region), the
deformation grid, the Jacobian determinant (log2, diverging colours centred at 1,
fixed limits, colour bar), folding voxels and the displacement size. A table gives
similarity figures before and after the run; a histogram shows log2 Jacobian.
"""

from __future__ import annotations

from dataclasses import replace

import matplotlib
import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    PushButton,
    SpinBox,
    Table,
)
from napari.layers import Labels
from napari.utils.notifications import show_error
from qtpy.QtCore import Qt
from qtpy.QtWidgets import QFileDialog, QHeaderView, QVBoxLayout, QWidget

from napari_ccf_align.core.errors import CcfAlignError
from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.results import qc, report
from napari_ccf_align.core.volume import Volume, robust_range
from napari_ccf_align.plugin.layer_data import (
    STRUCTURES_KEY,
    annotation_layer_data,
    image_layer_data,
    labels_layer_data,
    volume_of_layer,
)
from napari_ccf_align.plugin.model import model_for
from napari_ccf_align.plugin.widgets import _worker
from napari_ccf_align.plugin.widgets._layers import (
    add_layer_data,
    atlas_layer,
    offer_results,
    pick_newest,
    result_choices,
    result_inputs,
    warm_labels_in_background,
)
from napari_ccf_align.plugin.widgets._mpl import ThemedCanvas
from napari_ccf_align.plugin.widgets._view import (
    StepWidget,
    follow_anatomy,
    row,
    scrollable,
    wrapping,
)
from napari_ccf_align.plugin.widgets.register import MOVING_KEY, RESULT_KEY

#: Metadata key of the contrast limits a view computed for itself.
LIMITS_KEY = "ccf_align_display_limits"
#: Depth of the Allen ontology the region outlines are drawn at (6: cortical areas, not
#: their layers; 344 regions in the 100 µm annotation against 670 leaves).
OUTLINE_DEPTH = 6
#: The Jacobian's colours (napari and matplotlib know it by this name): pink shrunk, green
#: stretched.
JACOBIAN_COLORMAP = "PiYG"
#: log2 Jacobian shown from -1 to 1: the volume halved to doubled, 1 (no change) in the middle.
LOG2_JACOBIAN_LIMITS = (-1.0, 1.0)

_VIEWS = (
    ("overlay", "warped sample over the atlas"),
    ("checkerboard", "checkerboard"),
    ("difference", "difference (atlas − sample)"),
    ("boundaries", "region boundaries on the atlas"),
    ("sample_boundaries", "region boundaries on the sample"),
    ("grid", "deformation grid"),
    ("jacobian", "Jacobian determinant (log2)"),
    ("folding", "folding voxels"),
    ("magnitude", "displacement size (mm)"),
)


class InspectWidget(StepWidget):
    """Toggles for QC layers of one result, a figures table and a log2 Jacobian histogram."""

    step_title = "Inspect"

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        warm_labels_in_background()  # napari's label colouring, compiled off the GUI thread
        self.viewer = napari_viewer
        self.model = model_for(napari_viewer)
        self.workers: dict[str, object] = {}
        self.result = ComboBox(label="result", choices=self._results)
        pick_newest(self.result, napari_viewer, RESULT_KEY)
        self.toggles = {key: CheckBox(text=text, value=False) for key, text in _VIEWS}
        self.colour = ComboBox(label="overlay colour", choices=["magenta", "green", "cyan"])
        # two colours: where both agree the overlay is grey-white, where one alone is bright
        # it shows that one's colour (the atlas's layer is ours; its data never changes)
        self.atlas_colour = ComboBox(
            label="atlas colour (overlay)", choices=["green", "gray", "magenta"], value="green"
        )
        self.blend = ComboBox(
            label="overlay blending",
            choices=["additive", "translucent", "opaque"],
            value="additive",
        )
        self.tiles = SpinBox(label="checkerboard tiles per axis", min=2, max=64, value=8)
        self.grid_mm = FloatSpinBox(label="grid every (mm)", min=0.1, max=5.0, step=0.1, value=1.0)
        self.status = Label(value="")
        wrapping(self.status)
        self.table = Table(value={"data": [], "index": [], "columns": []})
        _fit_to_dock(self.table.native)
        self.export = PushButton(text="Export QC report (PNG + HTML)")
        self.histogram = ThemedCanvas(self.viewer.theme, width=3.6, height=1.6)
        self.histogram.setFixedHeight(150)
        form = Container(
            widgets=[
                self.result,
                *self.toggles.values(),
                self.colour,
                self.atlas_colour,
                self.blend,
                self.tiles,
                self.grid_mm,
            ]
        )
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(form.native)
        layout.addWidget(row(Label(value="Similarity to the atlas")).native)
        layout.addWidget(self.table.native)
        layout.addWidget(self.histogram)
        layout.addWidget(self.export.native)
        layout.addWidget(self.status.native)
        layout.addStretch(1)
        scrollable(self, body)
        for key, box in self.toggles.items():
            box.changed.connect(lambda on, key=key: self.toggle(key, on))
        self.result.changed.connect(self._on_result)
        self.export.changed.connect(self._ask_export)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self._refresh_results)
        self.model.result_finished.connect(
            lambda name: offer_results(self.result, self.viewer, RESULT_KEY, newest=name)
        )
        self._refresh_results()
        follow_anatomy(self.viewer)

    # ------------------------------------------------------------------ inputs

    def _results(self, _widget=None) -> list[tuple[str, str]]:
        return result_choices(self.viewer, RESULT_KEY)

    def _refresh_results(self, _event=None) -> None:
        """Offer every result layer; a new result becomes the one inspected."""
        offer_results(self.result, self.viewer, RESULT_KEY)

    def inputs(self) -> tuple[object, Volume, Volume, str]:
        """(result, atlas Volume, sample Volume, result layer name), or a CcfAlignError."""
        layer, fixed, moving = result_inputs(
            self.viewer,
            self.result.value,
            MOVING_KEY,
            "There is no result to inspect yet: run a registration first.",
            "open it again or run the registration again.",
        )
        return layer.metadata[RESULT_KEY], fixed, moving, layer.name

    def _hand_alignment(self, moving: Volume):
        """The Align state when it aligns this volume (the "before" of the figures), else None."""
        return self.model.state if self.model.moving_layer == moving.name else None

    def _atlas_labels(self) -> Volume | None:
        """The atlas annotation as shown (renumbered labels), if it is loaded."""
        annotation = atlas_layer(self.viewer, Labels)
        return volume_of_layer(annotation) if annotation is not None else None

    def _on_result(self, _value=None) -> None:
        for key, box in self.toggles.items():
            if box.value:
                self.toggle(key, True)
        self.update_figures()

    # ------------------------------------------------------------------ layers

    def layer_name(self, key: str) -> str:
        """The name of a QC layer of the current result."""
        return f"{self.result.value} · {dict(_VIEWS)[key]}"

    def toggle(self, key: str, on: bool) -> None:
        """Add (computed on a worker) or remove one QC layer."""
        try:
            result, fixed, moving, _ = self.inputs()
        except CcfAlignError as exc:
            self.status.value = str(exc)
            show_error(str(exc))
            self.toggles[key].value = False
            return
        name = self.layer_name(key)
        if not on:
            if name in self.viewer.layers:
                self.viewer.layers.remove(name)
            return
        annotation = atlas_layer(self.viewer, Labels)
        if key in ("boundaries", "sample_boundaries") and annotation is None:
            self.status.value = "Load the atlas with its annotation to see region boundaries."
            show_error(self.status.value)
            self.toggles[key].value = False
            return
        self.status.value = f"Computing the {dict(_VIEWS)[key]}..."
        labels = self._atlas_labels()
        self.workers[key] = _worker.start(
            _compute,
            key=key,
            result=result,
            fixed=fixed,
            moving=moving,
            labels=labels,
            tiles=int(self.tiles.value),
            every_mm=float(self.grid_mm.value),
            structures=annotation.metadata.get(STRUCTURES_KEY) if annotation is not None else None,
            on_done=lambda out, key=key: self._show(key, out),
            on_error=self._on_error,
        )

    def _show(self, key: str, out: tuple) -> None:
        volume, kind, note = out
        if not self.toggles[key].value:
            return  # switched off while it was computed
        name = self.layer_name(key)
        if kind != "layer":
            volume = replace(volume, name=name)
        annotation = atlas_layer(self.viewer, Labels)
        if key == "overlay":
            self._show_atlas_as(self.atlas_colour.value)
            shown = self.result.value  # the same image: both at once would saturate
            if shown in self.viewer.layers:
                self.viewer.layers[shown].visible = False
            if annotation is not None:
                annotation.visible = False  # its colours would mix into the two
        if kind == "layer":  # layer data made on the worker (region outlines by area)
            data = (volume[0], {**volume[1], "name": name, "opacity": 0.9}, volume[2])
        elif kind == "labels" and key in ("boundaries", "sample_boundaries"):
            data = labels_layer_data(
                volume, colormap=annotation.colormap, features=annotation.features, opacity=0.9
            )
        elif kind == "labels":
            data = labels_layer_data(volume, opacity=0.8)
        else:
            blending = {"overlay": self.blend.value, "grid": "additive"}.get(key, "translucent")
            style = _IMAGE_STYLE[key](self)
            if (
                LIMITS_KEY in volume.metadata
                and volume.metadata[LIMITS_KEY][1] > volume.metadata[LIMITS_KEY][0]
            ):
                style["contrast_limits"] = volume.metadata[LIMITS_KEY]
            data = image_layer_data(volume, blending=blending, **style)
        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        layer = add_layer_data(self.viewer, data)
        if key in ("jacobian", "magnitude"):
            layer.colorbar.visible = True
        if key in ("boundaries", "sample_boundaries", "grid"):
            layer.contour = 1  # outlines one voxel wide in the displayed plane
            if annotation is not None:
                annotation.visible = False  # the filled regions would hide their own outlines
        if key == "jacobian":
            self._draw_histogram(volume.data)
        self.status.value = note

    def _show_atlas_as(self, colour: str) -> None:
        """The atlas template in ``colour`` with robust contrast, for a two-colour overlay."""
        template = atlas_layer(self.viewer)
        if template is None:
            return
        template.colormap = colour
        template.blending = "additive"
        template.visible = True

    def _on_error(self, exc: BaseException) -> None:
        message = _worker.error_sentence(exc)
        self.status.value = message
        show_error(message)

    # ------------------------------------------------------------------ figures

    def update_figures(self) -> None:
        """Fill the table: similarity to the atlas before (hand alignment) and after the run."""
        try:
            result, fixed, moving, _ = self.inputs()
        except CcfAlignError:
            return
        self.workers["figures"] = _worker.start(
            report.stage_figures,
            result=result,
            fixed=fixed,
            moving=moving,
            state=self._hand_alignment(moving),
            annotation=self._atlas_labels(),
            on_done=self._show_figures,
            on_error=self._on_error,
        )

    def _show_figures(self, rows: dict) -> None:
        columns = list(rows)
        names = list(next(iter(rows.values())))
        self.table.value = {
            "data": [[f"{rows[c][n]:.4f}" for c in columns] for n in names],
            "index": names,
            "columns": columns,
        }

    def _ask_export(self, _value=None) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Folder for the QC report")
        if folder:
            self.export_report(folder)

    def export_report(self, folder: str):
        """Write ``qc_report.png`` and ``qc_report.html`` into ``folder`` on a worker."""
        try:
            result, fixed, moving, _ = self.inputs()
        except CcfAlignError as exc:
            self._on_error(exc)
            return None
        labels = self._atlas_labels()
        self.status.value = "Writing the QC report..."
        self.workers["report"] = _worker.start(
            _write_report,
            folder=folder,
            result=result,
            fixed=fixed,
            moving=moving,
            labels=labels,
            state=self._hand_alignment(moving),
            on_done=lambda paths: setattr(
                self.status, "value", f"QC report written: {paths[0]} and {paths[1]}."
            ),
            on_error=self._on_error,
        )
        return self.workers["report"]

    def _draw_histogram(self, log2_jac: np.ndarray) -> None:
        fig = self.histogram.figure
        fig.clear()
        ax = fig.add_subplot(111)
        self.histogram.style_axes(ax)
        values = log2_jac[np.isfinite(log2_jac)]
        # the histogram is also the view's titled colour bar: each bar in the layer's colour,
        # ticks at the determinant values a person reads (napari's own bar shows log2 only)
        _, edges, bars = ax.hist(values, bins=60, range=LOG2_JACOBIAN_LIMITS)
        lo, hi = LOG2_JACOBIAN_LIMITS
        cmap = matplotlib.colormaps[JACOBIAN_COLORMAP]
        for patch, left, right in zip(bars, edges[:-1], edges[1:], strict=True):
            patch.set_facecolor(cmap(((left + right) / 2 - lo) / (hi - lo)))
        ticks = [0.5, 0.71, 1.0, 1.41, 2.0]
        ax.set_xticks(np.log2(ticks), [f"{t:g}" for t in ticks], fontsize=6)
        ax.set_xlabel(
            "Jacobian determinant (log scale): <1 shrunk, 1 unchanged, >1 stretched", fontsize=7
        )
        ax.set_ylabel("voxels", fontsize=7)
        ax.tick_params(axis="y", labelsize=6)
        ax.set_title(
            "Jacobian over the brain (colours as in the layer)",
            fontsize=7,
            color=self.histogram.colors["text"],
        )
        # fixed margins (tight_layout renders the figure once more, on the GUI thread)
        fig.subplots_adjust(left=0.13, right=0.97, bottom=0.3, top=0.86)
        self.histogram.draw_idle()


def _fit_to_dock(table) -> None:
    """The figures table as wide as the dock, no wider: columns share the width and the
    stage and figure names wrap (at 1280 x 800 the last column was off to the right)."""
    wrap = Qt.AlignmentFlag(Qt.TextFlag.TextWordWrap.value)
    lines = table.fontMetrics().lineSpacing()
    top = table.horizontalHeader()
    top.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
    top.setDefaultAlignment(Qt.AlignmentFlag.AlignCenter | wrap)
    top.setFixedHeight(3 * lines + 8)
    side = table.verticalHeader()
    side.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter | wrap)
    side.setFixedWidth(15 * table.fontMetrics().averageCharWidth() + 16)
    side.setDefaultSectionSize(3 * lines + 8)
    table.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    table.setMinimumHeight(3 * lines + 8 + 3 * (3 * lines + 8) + 4)


_IMAGE_STYLE = {
    "overlay": lambda w: {"colormap": w.colour.value},
    "checkerboard": lambda w: {"colormap": "gray", "contrast_limits": (0, 1)},
    "difference": lambda w: {"colormap": "PiYG", "contrast_limits": (-1, 1)},
    # opaque over the brain (NaN outside it): a colour under them would change their meaning
    "jacobian": lambda w: {"colormap": JACOBIAN_COLORMAP, "contrast_limits": LOG2_JACOBIAN_LIMITS},
    "magnitude": lambda w: {"colormap": "viridis"},
}


def _compute(
    key, result, fixed, moving, labels, tiles, every_mm, structures=None
) -> tuple[Volume | tuple, str, str]:
    """One QC view as (Volume, "image" or "labels", a sentence for the status line), or
    (napari layer data, "layer", sentence) for the region outlines."""

    on_grid = lambda data: Volume(data, fixed.affine, key, fixed.world_axes)  # noqa: E731
    linear = not result.deformable
    if key in ("overlay", "checkerboard", "difference"):
        warped = result.warp(fixed, moving)
        if key == "overlay":
            # contrast from the tissue's percentiles: a saturated spot sets no scale
            tissue = np.asarray(warped.data)[np.asarray(warped.data) > 0]
            limits = (0.0, robust_range(tissue, (0.0, 99.5))[1]) if tissue.size else (0.0, 1.0)
            shown = replace(warped, metadata={**warped.metadata, LIMITS_KEY: limits})
            return (
                shown,
                "image",
                (
                    "The warped sample over the atlas: white where both are bright, one colour "
                    "where only one is (contrast up to the tissue's 99.5th percentile)."
                ),
            )
        if key == "checkerboard":
            board = qc.checkerboard(fixed.data, warped.data, tiles)
            return on_grid(board), "image", f"Atlas and sample in {tiles} tiles per axis."
        diff = qc.normalised_difference(fixed.data, warped.data)
        return on_grid(diff), "image", "Atlas minus sample, each scaled to [0, 1]."
    # the regions whole, drawn as their outlines in the plane shown (napari's label contours
    # follow the slider); hovering anywhere inside one names it
    if key in ("boundaries", "sample_boundaries"):
        regions = labels if key == "boundaries" else result.warp_to_sample(labels, moving, True)
        where = "" if key == "boundaries" else " on your volume"
        note = f"Atlas region outlines{where}, in this plane; hover inside one to name it."
        if structures is None:
            return regions, "labels", note
        # areas, not every layer and nucleus (at 100 µm those would be outlines everywhere)
        coarse = atlas.coarser_labels(regions, structures, OUTLINE_DEPTH)
        return annotation_layer_data(coarse, structures), "layer", note
    if key == "grid":  # on the atlas's grid: its lines are drawn a voxel wide
        cells = qc.deformed_cells(qc.deformation_of(result, fixed), fixed.spacing, every_mm)
        note = (
            "A linear result bends nothing: the grid is straight (the linear map itself is in "
            "the overlay)."
            if linear
            else f"A grid every {every_mm:g} mm pushed through the SyN deformation, drawn in the "
            "plane shown."
        )
        # one colour for every cell: their borders, drawn as contours, are the grid's lines
        colours = {None: (1.0, 0.85, 0.0, 1.0), 0: (0.0, 0.0, 0.0, 0.0)}
        return labels_layer_data(on_grid(cells), colormap=colours), "layer", note
    # the deformation's maps on its own (working) grid when coarser: placed in the same world
    maps = qc.map_grid(result, fixed)
    on_grid = lambda data: Volume(data, maps.affine, key, maps.world_axes)  # noqa: E731
    jac, uniform = qc.jacobian_of(result, maps)
    brain = qc.brain_mask(fixed, labels)  # shown over the whole brain, holes included
    outside = ~qc.mask_on(brain, fixed, maps)
    if key == "jacobian":
        note = (
            f"A linear result has one Jacobian everywhere: {float(jac.flat[0]):.3f}."
            if uniform
            else f"Jacobian determinant from {np.nanmin(jac[~outside]):.2f} to "
            f"{np.nanmax(jac[~outside]):.2f} over the brain; shown as log2: green = stretched "
            "(> 1), pink = squeezed (< 1)."
        )
        log2 = qc.log2_jacobian(jac)
        log2[outside] = np.nan
        return on_grid(log2), "image", note
    if key == "folding":
        folds = qc.folding_mask(jac)
        return on_grid(folds), "labels", f"{int(folds.sum())} folding voxels."
    magnitude = qc.displacement_magnitude(qc.deformation_of(result, maps)).astype(np.float32)
    magnitude[outside] = np.nan
    largest = float(np.nanmax(magnitude)) if np.any(~outside) else 0.0
    return on_grid(magnitude), "image", f"Largest SyN displacement {largest:.2f} mm."


def _write_report(folder, result, fixed, moving, labels, state):
    return report.write(
        folder,
        result,
        fixed,
        moving,
        labels,
        report.stage_figures(result, fixed, moving, state, annotation=labels),
    )
