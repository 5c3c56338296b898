"""The Align dock widget: rotate, shift, flip and crop the moving volume by hand, with a preview.

The preview is the moving volume resampled onto the atlas grid through exactly
the transform the engines start from (``AlignmentState.rigid.sitk_transform()``):
coarse while a slider is dragged, exact on release. napari's own layer affine
is never used for it, because napari's 2D view cannot show out-of-plane rotation.
"""

from __future__ import annotations

from dataclasses import replace

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    Label,
    PushButton,
)
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QSettings, Qt, QTimer
from qtpy.QtWidgets import QGridLayout, QGroupBox, QLabel, QVBoxLayout, QWidget
from superqt import QLabeledDoubleSlider, QLabeledRangeSlider

from napari_ccf_align.core import align, frames, sampling
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.errors import CcfAlignError, DimensionError
from napari_ccf_align.core.volume import Volume
from napari_ccf_align.plugin.layer_data import (
    image_layer_data,
    is_placed,
    placed_volume,
    restated,
    segments_as_vectors,
    volume_of_layer,
)
from napari_ccf_align.plugin.model import model_for
from napari_ccf_align.plugin.widgets import _worker
from napari_ccf_align.plugin.widgets._geometry import GeometryForm
from napari_ccf_align.plugin.widgets._layers import (
    BOX_SUFFIX,
    EDGES_SUFFIX,
    PREVIEW_SUFFIX,
    add_layer_data,
    choose_inputs,
    input_choices,
    is_atlas,
    is_result,
    keep_inputs_fresh,
)
from napari_ccf_align.plugin.widgets._view import (
    StepWidget,
    anatomical_view,
    follow_anatomy,
    row,
    scrollable,
    wrapping,
)

AXES = ("R", "A", "S")


def _slider(lo: float, hi: float, step: float, decimals: int) -> QLabeledDoubleSlider:
    s = QLabeledDoubleSlider(Qt.Orientation.Horizontal)
    s.setRange(lo, hi)
    s.setSingleStep(step)
    s.setDecimals(decimals)
    s.setValue(0.0)
    return s


class AlignWidget(StepWidget):
    """Initial alignment and crop of the moving volume, previewed on the atlas grid."""

    step_title = "Align and crop"

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        sampling.warm_up_in_background()  # compiled off the GUI thread, ready for the first preview
        self.viewer = napari_viewer
        self.model = model_for(napari_viewer)
        self.settings_store = QSettings("napari-ccf-align", "align")
        self.worker = None
        self._pending: bool | None = None  # a preview asked for while one is computing
        self._computing: tuple | None = None  # (state, moving, fixed, coarse) of the one in flight
        self._updating = False  # True while the controls are set from the model
        self._ndim = 3  # axes of the moving volume (crop sliders shown)
        self._auto_limits: tuple[float, float] | None = None  # preview limits this widget set
        self._message = ""  # the last action's sentence, shown after the preview's kind
        self._box_ready_for: tuple[str, Volume] | None = None  # (layer, grid) of the next box
        self._box_timer = QTimer(self)
        self._box_timer.setSingleShot(True)
        self._box_timer.setInterval(500)  # while the user looks at the preview
        self._box_timer.timeout.connect(self._ready_box_layer)
        self.previews = 0

        # -- layers and the moving volume's geometry
        self.fixed = ComboBox(label="atlas (fixed)", choices=self._inputs)
        self.moving = ComboBox(label="your volume (moving)", choices=self._inputs)
        self.geometry = GeometryForm()
        self.orientation, self.style = self.geometry.code_edit, self.geometry.style_box
        self.reinterpret = PushButton(text="Apply code and size (new layer)")
        self.top = Container(
            widgets=[
                self.fixed,
                self.moving,
                self.geometry,
                self.reinterpret,
            ]
        )

        # -- rotation, translation, flips
        rot_step = float(self.settings_store.value("rotation_step", 0.5))
        shift_step = float(self.settings_store.value("shift_step", 0.05))
        self.rot = [_slider(-180, 180, rot_step, 2) for _ in AXES]
        self.shift = [_slider(-15, 15, shift_step, 3) for _ in AXES]
        self.flip = [CheckBox(text=f"flip {a}") for a in AXES]
        grid = QGridLayout()
        for k, a in enumerate(AXES):
            grid.addWidget(QLabel(f"rotate about {a} (°)"), k, 0)
            grid.addWidget(self.rot[k], k, 1)
            grid.addWidget(QLabel(f"shift {a} (mm)"), 3 + k, 0)
            grid.addWidget(self.shift[k], 3 + k, 1)
        box = QGroupBox("Rotation and shift (RAS world)")
        box_layout = QVBoxLayout(box)
        box_layout.addLayout(grid)
        self.rot_step = FloatSpinBox(
            label="rotation step (°)", min=0.01, max=45, step=0.1, value=rot_step
        )
        self.shift_step = FloatSpinBox(
            label="shift step (mm)", min=0.001, max=5, step=0.01, value=shift_step
        )
        self.centre_mode = ComboBox(
            label="centre of rotation",
            choices=[("volume centre", "volume"), ("tissue centroid", "tissue")],
            value="volume",
        )
        self.match_mode = ComboBox(
            label="centre on atlas by",
            choices=[("geometric centres", "volume"), ("tissue centroids", "tissue")],
            value="tissue",
        )
        self.centre_button = PushButton(text="Centre on atlas")
        self.moments_button = PushButton(text="Match moments")
        self.reset_button = PushButton(text="Reset")
        self.undo_button = PushButton(text="Undo")
        self.redo_button = PushButton(text="Redo")
        self.controls = Container(
            widgets=[
                row(*self.flip),
                self.rot_step,
                self.shift_step,
                self.centre_mode,
                self.match_mode,
                row(self.centre_button, self.moments_button),
                row(self.reset_button, self.undo_button, self.redo_button),
            ]
        )
        box_layout.addWidget(self.controls.native)

        # -- crop
        self.crop = [QLabeledRangeSlider(Qt.Orientation.Horizontal) for _ in range(3)]
        self.crop_labels = [QLabel("") for _ in range(3)]
        crop_box = QGroupBox("Crop (voxels of your volume)")
        crop_grid = QGridLayout(crop_box)
        self.crop_names = [QLabel(f"axis {k}") for k in range(3)]
        for k in range(3):
            crop_grid.addWidget(self.crop_names[k], 2 * k, 0)
            crop_grid.addWidget(self.crop[k], 2 * k, 1)
            crop_grid.addWidget(self.crop_labels[k], 2 * k + 1, 1)
        self.margin = FloatSpinBox(label="auto margin (mm)", min=0, max=10, step=0.1, value=0.5)
        self.auto_crop = PushButton(text="Auto crop to tissue")
        self.clear_crop = PushButton(text="No crop")
        self.as_mask = CheckBox(text="use as metric mask instead of cutting")
        self.crop_controls = Container(
            widgets=[
                self.margin,
                row(self.auto_crop, self.clear_crop),
                self.as_mask,
            ]
        )
        crop_grid.addWidget(self.crop_controls.native, 6, 0, 1, 2)
        self.status = Label(value="")
        wrapping(self.status)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(self.top.native)
        layout.addWidget(box)
        layout.addWidget(crop_box)
        layout.addWidget(self.status.native)
        layout.addStretch(1)
        scrollable(self, body)

        # -- wiring
        for k in range(3):
            self.rot[k].valueChanged.connect(self._from_controls)
            self.shift[k].valueChanged.connect(self._from_controls)
            self.rot[k].sliderReleased.connect(self._released)
            self.shift[k].sliderReleased.connect(self._released)
            self.flip[k].changed.connect(self._from_controls)
            self.crop[k].valueChanged.connect(self._from_controls)
            self.crop[k].sliderReleased.connect(self._released)
        self.as_mask.changed.connect(self._from_controls)
        self.rot_step.changed.connect(self._steps)
        self.shift_step.changed.connect(self._steps)
        self.centre_mode.changed.connect(self.set_centre)
        self.centre_button.changed.connect(self.centre_on_atlas)
        self.moments_button.changed.connect(self.match_moments)
        self.reset_button.changed.connect(self.model.reset)
        self.undo_button.changed.connect(self.model.undo)
        self.redo_button.changed.connect(self.model.redo)
        self.auto_crop.changed.connect(self.auto_crop_to_tissue)
        self.clear_crop.changed.connect(self.no_crop)
        self.reinterpret.changed.connect(self.apply_geometry)
        self.moving.changed.connect(self._on_moving)
        self.model.changed.connect(self._on_model)
        self.viewer.dims.events.ndisplay.connect(self._on_ndisplay)
        follow_anatomy(self.viewer)
        # the model's layer stays the moving one as layers come (a result, a reloaded session)
        keep_inputs_fresh(self.viewer, self.fixed, self.moving, lambda: self.model.moving_layer)
        self.model.session_loaded.connect(self._on_session)

    # ------------------------------------------------------------------ layers

    def _inputs(self, _widget=None):
        return input_choices(self.viewer)

    def _volumes(self) -> tuple[Volume, Volume]:
        """(moving, fixed) Volumes, or a CcfAlignError saying what is missing."""
        fixed_layer, moving_layer = self.fixed.value, self.moving.value
        if fixed_layer is None:
            raise CcfAlignError("No atlas is loaded: load it with the Load widget first.")
        if moving_layer is None or moving_layer.name == fixed_layer.name:
            raise CcfAlignError("Choose your volume as the moving layer (not the atlas).")
        if moving_layer.data.ndim != fixed_layer.data.ndim:
            raise DimensionError(
                f"{moving_layer.name!r} is {moving_layer.data.ndim}D but the atlas is "
                f"{fixed_layer.data.ndim}D: choose a {fixed_layer.data.ndim}D volume."
            )
        fixed, moving = placed_volume(fixed_layer), placed_volume(moving_layer)
        return moving, fixed

    def _on_moving(self, layer=None) -> None:
        if layer is None or is_atlas(layer) or is_result(layer):
            return  # a passing choice while the layers change: never the volume to align
        try:
            v = volume_of_layer(layer)
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return
        if v.ndim != 3:
            self._say(
                f"{layer.name!r} is {v.ndim}D but the atlas is 3D: choose a 3D volume to align.",
                error=True,
            )
            return
        if not is_placed(layer):
            stated = not np.allclose(v.spacing, 1.0)  # napari's default scale says nothing
            self.geometry.set(v.spacing * 1000.0 if stated else [0.0] * v.ndim, None)
            self._say(
                f"{layer.name!r} has no stated orientation (it was opened by another reader): "
                "give its voxel size per axis and its orientation code, then 'Apply code and "
                "size'.",
                error=True,
            )
            return
        self._ndim = v.ndim
        self.geometry.set(v.spacing * 1000.0, v.orientation)
        self._label_crop_axes(v)
        # a new range clamps a slider's value and says so: with the other axes still at the
        # previous volume's, that half-set box is no user's crop (it was refused as one)
        self._updating = True
        try:
            for k in range(3):
                slider = self.crop[k]
                slider.setVisible(k < v.ndim)
                if k < v.ndim:
                    slider.setRange(0, v.shape[k])
        finally:
            self._updating = False
        if self.model.moving_layer != layer.name:
            self.model.moving_layer = layer.name
            centre = align.centre_of(v, "volume")
            self.model.set(AlignmentState(frames.RigidParams(centre_mm=tuple(centre))))
            self._say(f"Aligning {layer.name}. Next: 'Centre on atlas', then rotate and crop.")
        else:
            self._on_model(self.model.state)

    def _on_session(self, loaded) -> None:
        """A loaded session: its sample is the moving layer, its state the controls'."""
        _, moving_name = loaded
        if moving_name in self.viewer.layers:
            choose_inputs(self.viewer, self.fixed, self.moving, moving_name)
            self._on_moving(self.moving.value)

    def _label_crop_axes(self, v: Volume) -> None:
        """Name each crop row by the user's file axis and its anatomical direction.

        The layer (and so the crop) holds the array in R, A, S order; the user knows
        the axes of the file, which the code it was loaded with names.
        """
        code = str(v.metadata.get("orientation", ""))
        if sorted(frames.world_axes_of(c) for c in code) != ["A", "R", "S"]:
            code = ""
        ends = (("L", "R"), ("P", "A"), ("I", "S"))
        for k in range(3):
            lo, hi = ends[k]
            if code:
                j, backwards = frames.file_axes(code)[k]
                runs = f"{hi}→{lo}" if backwards else f"{lo}→{hi}"  # the way the file's index runs
                self.crop_names[k].setText(
                    f"file axis {j} (runs {runs}), {v.shape[k]} voxels; slider {lo}→{hi}"
                )
            else:
                self.crop_names[k].setText(f"{lo}→{hi}, {v.shape[k]} voxels")

    def apply_geometry(self, _value=None) -> None:
        """Place the moving layer's array with the given code and voxel sizes (a new layer)."""
        layer = self.moving.value
        if layer is None:
            self._say("Choose your volume as the moving layer first.", error=True)
            return
        try:
            size, code = self.geometry.checked(layer.data.ndim)
            new = restated(layer, size, code, "nibabel", f"{layer.name} ({code})")
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return
        self.moving.value = add_layer_data(
            self.viewer, image_layer_data(new, colormap="magenta", blending="additive")
        )

    def _say(self, text: str, error: bool = False) -> None:
        """One status line (replacing any older one); errors are also a notification."""
        self._message = text
        self.status.value = text
        if error:
            show_error(text)

    # ------------------------------------------------------------------ state <-> controls

    def _steps(self, _value=None) -> None:
        for k in range(3):
            self.rot[k].setSingleStep(self.rot_step.value)
            self.shift[k].setSingleStep(self.shift_step.value)
        self.settings_store.setValue("rotation_step", self.rot_step.value)
        self.settings_store.setValue("shift_step", self.shift_step.value)

    def _dragging(self) -> bool:
        return any(s.isSliderDown() for s in (*self.rot, *self.shift, *self.crop))

    def state_from_controls(self) -> AlignmentState:
        """The state the controls show (centre kept from the model)."""
        current = self.model.state
        crop = tuple(tuple(int(x) for x in self.crop[k].value()) for k in range(self._ndim))
        full = all(c == (0, self.crop[k].maximum()) for k, c in enumerate(crop))
        return AlignmentState(
            frames.RigidParams(
                tuple(s.value() for s in self.rot),
                tuple(s.value() for s in self.shift),
                current.rigid.centre_mm,
                tuple(f.value for f in self.flip),
            ),
            None if full else crop,
            bool(self.as_mask.value),
        )

    def _from_controls(self, _value=None) -> None:
        if self._updating:
            return
        self._message = ""  # a new action: an older sentence (or error) no longer applies
        dragging = self._dragging()
        state = self.state_from_controls()
        if state.crop is not None:
            try:
                align.check_crop(self._volumes()[0], state.crop)
            except CcfAlignError as exc:
                self._say(str(exc), error=True)
                return
        self.model.set(state, record=not dragging)
        if not dragging:
            self.request_preview(coarse=False)

    def _released(self) -> None:
        self.model.commit()
        self.request_preview(coarse=False)

    def _on_model(self, state: AlignmentState) -> None:
        self._updating = True
        try:
            for k in range(3):
                self.rot[k].setValue(state.rigid.rotation_deg[k])
                shift = state.rigid.translation_mm[k]
                if abs(shift) > self.shift[k].maximum():  # e.g. after "centre on atlas"
                    reach = float(np.ceil(abs(shift) + 5.0))
                    self.shift[k].setRange(-reach, reach)
                self.shift[k].setValue(shift)
                self.flip[k].value = state.rigid.flip[k]
                if k < self._ndim:
                    rng = state.crop[k] if state.crop else (0, self.crop[k].maximum())
                    self.crop[k].setValue(rng)
            self.as_mask.value = state.crop_as_mask
        finally:
            self._updating = False
        self._show_crop_extent(state)
        self.request_preview(coarse=self._dragging())

    def _show_crop_extent(self, state: AlignmentState) -> None:
        layer = self.moving.value
        if layer is None or layer.name != self.model.moving_layer:
            return
        v = volume_of_layer(layer)
        crop = state.crop or tuple((0, s) for s in v.shape)
        code = str(v.metadata.get("orientation", ""))
        backwards = [False] * 3
        if sorted(frames.world_axes_of(c) for c in code) == ["A", "R", "S"]:
            backwards = [rev for _, rev in frames.file_axes(code)]
        for k, (a, b) in enumerate(crop[:3]):
            mm = (b - a) * v.spacing[k]
            n = v.shape[k]
            fa, fb = (n - b, n - a) if backwards[k] else (a, b)  # in the file's own indices
            self.crop_labels[k].setText(f"file voxels {fa}–{fb} = {mm:.2f} mm")

    # ------------------------------------------------------------------ actions

    def set_centre(self, mode=None) -> None:
        """Rotate about the volume centre or the tissue centroid (the map stays the same)."""
        try:
            moving, _ = self._volumes()
            self.model.set(align.with_centre(self.model.state, moving, self.centre_mode.value))
        except CcfAlignError as exc:
            self._say(str(exc), error=True)

    def centre_on_atlas(self, _value=None) -> None:
        """Shift so the moving centre lands on the atlas centre."""
        try:
            moving, fixed = self._volumes()
            self.model.set(
                align.centre_on_atlas(self.model.state, moving, fixed, self.match_mode.value)
            )
            self._say(
                "Centred on the atlas. Next: rotate until the preview matches the atlas, crop "
                "if needed, then open 'Register' and press Run."
            )
        except CcfAlignError as exc:
            self._say(str(exc), error=True)

    def match_moments(self, _value=None) -> None:
        """Rotate and shift so the principal axes of the tissue match the atlas's."""
        try:
            moving, fixed = self._volumes()
            self.model.set(align.match_moments(self.model.state, moving, fixed))
        except CcfAlignError as exc:
            self._say(str(exc), error=True)

    def auto_crop_to_tissue(self, _value=None) -> None:
        """Crop to the tissue's bounding box plus the margin."""
        try:
            moving, _ = self._volumes()
            box = align.auto_crop(moving, self.margin.value)
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return
        self.model.set(replace(self.model.state, crop=box))
        ranges = ", ".join(f"{a}–{b}" for a, b in box)
        show_info(f"Cropped to the tissue with a {self.margin.value:g} mm margin: voxels {ranges}.")

    def no_crop(self, _value=None) -> None:
        """Remove the crop."""
        self.model.set(replace(self.model.state, crop=None))

    # ------------------------------------------------------------------ preview

    def request_preview(self, coarse: bool = False):
        """Compute the preview on a worker; a request during a computation is queued (latest wins)."""
        if self.worker is not None:
            self._pending = coarse if self._pending is None else (self._pending and coarse)
            return None
        try:
            moving, fixed = self._volumes()
        except CcfAlignError:
            return None
        state = self.model.state
        try:
            align.check_crop(moving, state.crop)
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return None
        self._computing = (state, moving, fixed, coarse)
        if coarse:
            self.worker = _worker.start(
                align.preview_with_box,
                moving=moving,
                fixed=fixed,
                state=state,
                coarse=True,
                on_done=self._show_preview,
                on_error=lambda exc: self._say(str(exc), error=True),
                on_finished=self._preview_finished,
            )
            return self.worker
        self.worker = _worker.start(
            align.exact_previews,
            moving=moving,
            fixed=fixed,
            state=state,
            shown=self._shown_slice(),
            on_yield=self._show_preview,
            on_done=lambda _none: None,
            on_error=lambda exc: self._say(str(exc), error=True),
            on_finished=self._preview_finished,
        )
        return self.worker

    def _shown_slice(self) -> tuple[int, float] | None:
        """(world axis, position mm) of the 2D slice on screen; None in 3D."""
        dims = self.viewer.dims
        if dims.ndisplay != 2 or dims.ndim != 3:
            return None
        axis = dims.not_displayed[-1]
        return axis, float(dims.point[axis])

    def _preview_finished(self) -> None:
        self.worker = None
        if self._pending is not None:
            coarse, self._pending = self._pending, None
            coarse = coarse and self._dragging()
            if self._on_screen_already(coarse):
                return
            self.request_preview(coarse=coarse)

    def _on_screen_already(self, coarse: bool) -> bool:
        """Whether the preview just computed is what a new request would compute (or better)."""
        done, self._computing = self._computing, None
        if done is None or done[0] != self.model.state:
            return False
        try:
            moving, fixed = self._volumes()
        except CcfAlignError:
            return False
        return done[1] is moving and done[2] is fixed and (coarse or not done[3])

    def _ready_box_layer(self) -> None:
        """Add the (empty, hidden) crop-box layer while the user is idle after a preview.

        Adding a layer costs napari 0.2-0.3 s of the GUI thread here; done now, the
        first crop only sets the layer's data.
        """
        if self._box_ready_for is None:
            return
        (name, grid), self._box_ready_for = self._box_ready_for, None
        full = name + BOX_SUFFIX
        if full in self.viewer.layers or self.moving.value is None:
            return
        if self.moving.value.name != name or self._dragging():
            return
        empty = replace(grid, data=np.zeros(grid.shape, np.uint8), name=full)
        active = self.viewer.layers.selection.active
        keep = active.name if active is not None else None
        add_layer_data(
            self.viewer,
            image_layer_data(
                empty, colormap="yellow", blending="additive", contrast_limits=(0, 1), visible=False
            ),
        )
        if keep in self.viewer.layers:  # napari selects a new layer: give the user's back
            self.viewer.layers.selection.active = self.viewer.layers[keep]

    def _show_box_edges(self, name: str) -> None:
        """The crop box as 12 lines for the 3D view (the 2D view shows the box faces).

        Made only while the 3D view is on: adding a layer costs the GUI thread a
        few hundred milliseconds, which a 2D crop need not pay.
        """

        full = name + EDGES_SUFFIX
        state = self.model.state
        if state.crop is None or self.moving.value is None:
            if full in self.viewer.layers:
                self.viewer.layers.remove(full)
            return
        if full not in self.viewer.layers and self.viewer.dims.ndisplay != 3:
            return
        edges = align.crop_box_edges(volume_of_layer(self.moving.value), state)
        vectors = segments_as_vectors(edges)
        if full in self.viewer.layers:
            self.viewer.layers[full].data = vectors
        else:
            # a Vectors layer, not Shapes: napari's Shapes compile numba kernels on the GUI
            # thread the first time (10-20 s on a fresh install); Vectors draw lines directly
            self.viewer.add_vectors(
                vectors,
                vector_style="line",
                edge_color="yellow",
                edge_width=0.04,
                name=full,
            )
        self._on_ndisplay()

    def _on_ndisplay(self, _event=None) -> None:
        three_d = self.viewer.dims.ndisplay == 3
        name = self.moving.value.name if self.moving.value is not None else ""
        if three_d and name and name + EDGES_SUFFIX not in self.viewer.layers:
            self._show_box_edges(name)
            return
        for suffix, visible in ((BOX_SUFFIX, not three_d), (EDGES_SUFFIX, three_d)):
            if name + suffix in self.viewer.layers:
                self.viewer.layers[name + suffix].visible = visible

    def _show_preview(self, preview: align.Preview) -> None:
        if self.moving.value is None or self.moving.value not in self.viewer.layers:
            return  # the layer went away while the preview was computed
        name = self.moving.value.name if self.moving.value is not None else "volume"
        image_kwargs = {"colormap": "magenta", "blending": "additive"}
        shown = (
            self.viewer.layers[name + PREVIEW_SUFFIX]
            if name + PREVIEW_SUFFIX in self.viewer.layers
            else None
        )
        # the moving volume's range, not the first (nearly empty) preview's; a user's own
        # contrast edit is kept (the limits are only set while they are still ours)
        if shown is None or np.allclose(
            shown.contrast_limits, self._auto_limits or (np.nan, np.nan)
        ):
            image_kwargs["contrast_limits"] = preview.limits
            self._auto_limits = preview.limits
        for vol, suffix, kwargs in (
            (preview.image, PREVIEW_SUFFIX, image_kwargs),
            (
                preview.box,
                BOX_SUFFIX,
                {"colormap": "yellow", "blending": "additive", "contrast_limits": (0, 1)},
            ),
        ):
            full = name + suffix
            if vol is None:
                if full in self.viewer.layers:
                    self.viewer.layers.remove(full)
                continue
            layer = add_layer_data(self.viewer, image_layer_data(replace(vol, name=full), **kwargs))
            if suffix == BOX_SUFFIX and not layer.visible and self.viewer.dims.ndisplay == 2:
                layer.visible = True  # the hidden layer made ready for the first crop
        self._show_box_edges(name)
        if (
            preview.box is None
            and not preview.coarse
            and name + BOX_SUFFIX not in self.viewer.layers
        ):
            self._box_ready_for = (name, preview.image)
            self._box_timer.start()  # owned by the widget: it dies with it
        moving_layer = self.moving.value
        if moving_layer is not None and moving_layer.visible:
            moving_layer.visible = False  # the preview replaces it on screen; data untouched
        anatomical_view(self.viewer)
        self.previews += 1
        if preview.partial:
            kind = "Exact preview of the shown slices; the rest follows."
        else:
            kind = "Coarse preview (dragging)." if preview.coarse else "Exact preview."
        self.status.value = f"{kind} {self._message}".strip()
