"""Session dock: save a result as a session folder, load one back, apply it to other layers.

Only wiring: :mod:`~napari_ccf_align.core.runs.session` writes and reads, :mod:`~napari_ccf_align.core.results.apply` maps
images, labels and points; the work runs on worker threads.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, Label, PushButton, Table
from napari.layers import Image, Labels, Points
from napari.utils.notifications import show_error, show_info
from qtpy.QtWidgets import QVBoxLayout, QWidget

from napari_ccf_align.core import align
from napari_ccf_align.core.errors import CcfAlignError
from napari_ccf_align.core.io import atlas
from napari_ccf_align.core.results import apply, report
from napari_ccf_align.core.runs import applying, session
from napari_ccf_align.core.volume import Volume, robust_range
from napari_ccf_align.plugin.layer_data import (
    HEMISPHERES_KEY,
    STRUCTURES_KEY,
    VOLUME_KEY,
    annotation_layer_data,
    displayable,
    image_layer_data,
    labels_layer_data,
    placed_volume,
    template_layer_data,
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
from napari_ccf_align.plugin.widgets._view import (
    StepWidget,
    follow_anatomy,
    row,
    scrollable,
    wrapping,
)
from napari_ccf_align.plugin.widgets.register import MOVING_KEY, RESULT_KEY, RUN_KEY

_DIRECTIONS = [
    ("sample → atlas", "atlas"),
    ("atlas → sample", "sample"),
]


class SessionWidget(StepWidget):
    """Save and load sessions; apply a result to another image, label image or points layer."""

    step_title = "Session"

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        warm_labels_in_background()  # napari's label colouring, compiled off the GUI thread
        self.viewer = napari_viewer
        self.model = model_for(napari_viewer)
        self.worker = None
        self.result = ComboBox(label="result", choices=self._results)
        pick_newest(self.result, napari_viewer, RESULT_KEY)
        self.folder = FileEdit(label="session folder", mode="d")
        self.save_button = PushButton(text="Save session")
        self.load_button = PushButton(text="Load session")
        self.layer = ComboBox(label="layer to apply to", choices=self._appliable)
        self.direction = ComboBox(label="direction", choices=_DIRECTIONS, value="atlas")
        self.apply_button = PushButton(text="Apply")
        self.export_folder = FileEdit(label="brainreg folder", mode="d")
        self.export_button = PushButton(text="Export for BrainGlobe tools")
        self.volumes = Table(value={"data": [], "columns": ["left (mm³)", "right (mm³)"]})
        self.volumes.visible = False
        self.status = Label(value="Save a result, or load a saved session.")
        wrapping(self.status)
        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(
            Container(
                widgets=[self.result, self.folder, row(self.save_button, self.load_button)]
            ).native
        )
        layout.addWidget(row(Label(value="Apply the result to other data")).native)
        layout.addWidget(Container(widgets=[self.layer, self.direction, self.apply_button]).native)
        layout.addWidget(
            row(
                Label(value="The saved session as brainreg's folder (brainglobe-segmentation, ...)")
            ).native
        )
        layout.addWidget(Container(widgets=[self.export_folder, self.export_button]).native)
        layout.addWidget(self.status.native)
        layout.addWidget(self.volumes.native)
        layout.addStretch(1)
        scrollable(self, body)
        self.save_button.changed.connect(lambda _=None: self.save_session(self.folder.value))
        self.load_button.changed.connect(lambda _=None: self.load_session(self.folder.value))
        self.apply_button.changed.connect(lambda _=None: self.apply_to(self.layer.value))
        self.export_button.changed.connect(
            lambda _=None: self.export_brainreg(self.folder.value, self.export_folder.value)
        )
        self.layer.changed.connect(self._guess_direction)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed):
            event.connect(self._refresh)
        self.model.result_finished.connect(
            lambda name: offer_results(self.result, self.viewer, RESULT_KEY, newest=name)
        )
        follow_anatomy(self.viewer)

    # ------------------------------------------------------------------ choices

    def _results(self, _widget=None) -> list[tuple[str, str]]:
        return result_choices(self.viewer, RESULT_KEY)

    def _appliable(self, _widget=None) -> list[tuple[str, str]]:
        return [
            (layer.name, layer.name)
            for layer in self.viewer.layers
            if isinstance(layer, Image | Labels | Points) and RESULT_KEY not in layer.metadata
        ]

    def _refresh(self, _event=None) -> None:
        offer_results(self.result, self.viewer, RESULT_KEY)
        self.layer.reset_choices()

    def _guess_direction(self, name: str | None = None) -> None:
        """Atlas-space layers go to the sample, everything else to the atlas."""
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            v = layer.metadata.get(VOLUME_KEY)
            on_atlas = isinstance(v, Volume) and (
                "atlas" in v.metadata or "registered_to" in v.metadata
            )
            self.direction.value = "sample" if on_atlas else "atlas"

    def _say(self, text: str, error: bool = False) -> None:
        """The whole text in the status line; a notification of it too (for news, only its
        first sentence: napari's notification shows one line)."""
        self.status.value = text
        if error:
            show_error(text)
        else:
            first, sep, _ = text.partition(". ")
            show_info(first + "." if sep else text)

    def _chosen(self):
        """(result layer, result, atlas Volume, sample Volume), or a CcfAlignError."""
        layer, fixed, moving = result_inputs(
            self.viewer,
            self.result.value,
            MOVING_KEY,
            "There is no result yet: run a registration or load a session.",
            "open it again, or load the session.",
        )
        return layer, layer.metadata[RESULT_KEY], fixed, moving

    # ------------------------------------------------------------------ save

    def save_session(self, folder) -> object:
        """Write the chosen result as a session folder (on a worker)."""
        try:
            if not str(folder).strip() or Path(folder) == Path("."):
                raise CcfAlignError("Give a session folder to save into (a new or empty one).")
            session.check_session_target(folder)
            layer, result, fixed, moving = self._chosen()
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return None
        asked = layer.metadata.get(RUN_KEY) or {}
        state = asked.get("state") or self.model.state
        labels = atlas_layer(self.viewer, Labels)
        annotation = (
            atlas.structure_id_volume(volume_of_layer(labels)) if labels is not None else None
        )
        structures = labels.metadata.get(STRUCTURES_KEY) if labels is not None else None
        hemispheres = labels.metadata.get(HEMISPHERES_KEY) if labels is not None else None
        method = asked.get("method") or result.method

        def job():
            in_file = session.as_in_file(moving)  # the grid of the user's file
            on_file = replace(state, crop=align.crop_between(state.crop, moving, in_file))
            warped = result.warp(fixed, in_file)  # once, for the figures and the session
            figures = report.stage_figures(result, fixed, in_file, on_file, warped, annotation)
            s = session.of_run(result, method, on_file, fixed, in_file, asked.get("start"), figures)
            saved = session.save(
                folder,
                s,
                fixed,
                in_file,
                annotation,
                warped=warped,
                structures=structures,
                hemispheres=hemispheres,
            )
            return saved, major_volumes(saved)

        self.status.value = "Saving the session (transforms, warped image, QC report)..."
        self._busy(True)
        self.worker = _worker.start(job, on_done=self._saved, on_error=self._on_error)
        return self.worker

    def export_brainreg(self, folder, out) -> object:
        """Write the saved session at ``folder`` as brainreg's output folder ``out`` (on a
        worker), for brainglobe-segmentation, brainmapper and brainglobe-napari-io."""
        try:
            if not str(out).strip() or Path(out) == Path("."):
                raise CcfAlignError("Give a brainreg folder to export into (a new or empty one).")
            if not (Path(folder) / session.SESSION_JSON).is_file():
                raise CcfAlignError(
                    "The export is made from a saved session: save the session (or load one) "
                    "into the session folder first."
                )
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return None

        def job():
            from napari_ccf_align.core.runs import exporting

            saved, read_from = session.load(folder)
            return exporting.export_brainreg(saved, read_from, out)

        self.status.value = "Writing brainreg's folder..."
        self._busy(True)
        self.worker = _worker.start(job, on_done=self._exported, on_error=self._on_error)
        return self.worker

    def _exported(self, out) -> None:
        self._busy(False)
        self._say(f"brainreg folder written in {out}: open it with the BrainGlobe tools.")

    def _saved(self, saved) -> None:
        folder, volumes = saved
        self._busy(False)
        self._show_volumes(volumes)
        self._say(
            f"Session saved in {folder}."
            + (
                " Region volumes (left, right, mm³) in volumes.csv; the major ones below."
                if volumes
                else ""
            )
        )

    def _show_volumes(self, rows: list[tuple[str, float, float]]) -> None:
        """The major regions' volumes in the sample (left, right; mm³) in the dock's table."""
        self.volumes.visible = bool(rows)
        if rows:
            self.volumes.value = {
                "data": [[f"{left:.3f}", f"{right:.3f}"] for _, left, right in rows],
                "index": [name for name, _, _ in rows],
                "columns": ["left (mm³)", "right (mm³)"],
            }

    # ------------------------------------------------------------------ load

    def load_session(self, folder) -> object:
        """Read a session folder and restore its layers and the widgets' state (on a worker)."""
        if not str(folder).strip() or Path(folder) == Path("."):
            self._say("Choose the session folder to load.", error=True)
            return None

        def job():
            s, read_from = session.load(folder)
            moving = session.read_moving(s, read_from)
            template, annotation, structures = session.read_fixed(s, read_from)
            warped = s.result.warp(template, moving)
            limits = robust_range(moving.data), robust_range(warped.data)  # off the GUI thread
            volumes = major_volumes(read_from)
            return s, read_from, moving, template, annotation, structures, warped, limits, volumes

        self.status.value = "Loading the session..."
        self._busy(True)
        self.worker = _worker.start(job, on_done=self._restore, on_error=self._on_error)
        return self.worker

    def _restore(self, loaded) -> None:
        """Show a loaded session, one layer or dock per turn of the event loop (napari's
        layer add is the GUI thread's cost; one at a time keeps each stall to one add)."""
        s, read_from, moving, template, annotation, structures, warped, limits, volumes = loaded
        res = round(s.atlas.resolution_um)
        if s.atlas.kind in ("allen", "brainglobe"):
            shown = [template_layer_data(template, res)]
            if annotation is not None:
                shown.append(annotation_layer_data(annotation, structures, res))
        else:
            shown = [image_layer_data(template, colormap="gray", blending="additive")]
        shown.append(
            image_layer_data(
                moving,
                colormap="magenta",
                blending="additive",
                visible=False,
                contrast_limits=_shown_limits(limits[0]),
            )
        )
        asked = {"method": s.method, "state": s.state, "start": s.start}
        meta = {RESULT_KEY: s.result, MOVING_KEY: moving.name, RUN_KEY: asked}
        name = f"{moving.name} ({s.method})"
        result_data = image_layer_data(
            warped,
            name=name,
            colormap="magenta",
            blending="additive",
            metadata=meta,
            contrast_limits=_shown_limits(limits[1]),
        )

        def add_result() -> None:
            layer = add_layer_data(self.viewer, result_data)
            layer.metadata.update(meta)
            layers = self.viewer.layers
            layers.move(layers.index(layer.name), len(layers))  # on top: above the annotation

        def announce() -> None:
            # which layer is the sample (Align selects it), then the state (its controls and
            # preview follow, on the right layer)
            in_layer = displayable(moving)  # the layer's layout (the session's is the file's)
            state = replace(s.state, crop=align.crop_between(s.state.crop, moving, in_layer))
            self.model.moving_layer = moving.name
            self.model.session_loaded.emit((s, moving.name))
            self.model.set(state)
            self.result.value = name
            self._show_volumes(volumes)
            self._busy(False)
            self._say(f"Session loaded from {read_from}: {s.method} of {moving.name!r}.")

        steps = [lambda data=data: add_layer_data(self.viewer, data) for data in shown]
        steps.append(add_result)
        steps += self._open_steps()  # a fresh viewer has no docks: they take the state
        steps.append(announce)
        self.status.value = "Showing the session's layers..."
        _worker.in_turns(steps, self._on_error)

    def _open_steps(self) -> list:
        """The steps that open the Align and Register docks (a fresh viewer has none), so
        that they take the session's state and settings when it is announced."""
        window = getattr(self.viewer, "window", None)
        if window is None:
            return []

        def opener(dock: str):
            def open_dock() -> None:
                try:
                    window.add_plugin_dock_widget("napari-ccf-align", dock)
                except Exception as exc:  # napari without our manifest (never in a real install)
                    self._say(f"Could not open the {dock} dock: {exc}", error=True)

            return open_dock

        return [opener(dock) for dock in ("Initial alignment and crop", "Register")]

    # ------------------------------------------------------------------ apply

    def apply_to(self, name: str | None) -> object:
        """Map the layer ``name`` through the chosen result into the other space (on a worker)."""

        try:
            if name is None or name not in self.viewer.layers:
                raise CcfAlignError("Choose a layer to apply the result to.")
            _, result, fixed, moving = self._chosen()
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return None
        layer = self.viewer.layers[name]
        to = self.direction.value
        if isinstance(layer, Points):
            return self._apply_points(layer, result, to)
        source = placed_volume(layer) if isinstance(layer, Image) else volume_of_layer(layer)
        labels = isinstance(layer, Labels)
        if labels:
            source = atlas.structure_id_volume(source)

        try:
            if to == "atlas":
                applying.check_same_tissue(source, moving)
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return None

        def job():
            return apply.map_volume(result, source, to, fixed, moving, labels)

        def done(out: Volume) -> None:
            self._busy(False)
            out_name = f"{layer.name} (in {to})"
            data = (labels_layer_data if labels else image_layer_data)(out, name=out_name)
            add_layer_data(self.viewer, data)
            kind = "nearest neighbour, label values kept" if labels else "linear"
            self._say(f"Added {out_name!r} ({kind}).")

        self.status.value = f"Applying the result to {layer.name!r}..."
        self._busy(True)
        self.worker = _worker.start(job, on_done=done, on_error=self._on_error)
        return self.worker

    def _apply_points(self, layer: Points, result, to: str) -> None:
        world = np.asarray([layer.data_to_world(p) for p in layer.data], float)
        # napari's world is (axis 0, 1, 2) of the layers = our RAS mm, as every layer's affine maps
        mapped = (apply.points_to_atlas if to == "atlas" else apply.points_to_sample)(result, world)
        features = {}
        labels = atlas_layer(self.viewer, Labels)
        if to == "atlas" and labels is not None:
            compact = volume_of_layer(labels)
            ids = apply.regions_at(atlas.structure_id_volume(compact), mapped)
            features["region_id"] = ids
            table = labels.features
            if "id" in table and "name" in table:
                names = dict(zip(table["id"], table["name"], strict=False))
                features["region"] = np.asarray([names.get(int(i), "") for i in ids], dtype=object)
        out_name = f"{layer.name} (in {to})"
        self.viewer.add_points(
            mapped, name=out_name, size=layer.size.mean() if len(layer.size) else 0.2,
            face_color="yellow", features=features or None,
        )  # fmt: skip
        self._say(f"Added {out_name!r}: {len(mapped)} points.")

    # ------------------------------------------------------------------ state

    def _busy(self, busy: bool) -> None:
        for button in (self.save_button, self.load_button, self.apply_button, self.export_button):
            button.enabled = not busy

    def _on_error(self, exc: BaseException) -> None:
        self._busy(False)
        self._say(_worker.error_sentence(exc), error=True)


def _shown_limits(limits: tuple[float, float]) -> tuple[float, float]:
    """Robust contrast limits (0.5-99.5th percentiles), widened when they are equal."""
    lo, hi = limits
    return (lo, hi) if hi > lo else (lo, lo + 1.0)


def major_volumes(folder: Path) -> list[tuple[str, float, float]]:
    """``(name, left mm³, right mm³)`` of the major regions in a session's ``volumes.csv``
    (empty when it has none), in the order of the Allen ontology's major regions."""
    import csv

    from napari_ccf_align.core.results.qc import MAJOR_REGIONS

    path = Path(folder) / session.VOLUMES_CSV
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as f:
        by_id = {int(r["structure_id"]): r for r in csv.DictReader(f)}
    return [
        (
            by_id[sid]["name"],
            float(by_id[sid]["left_volume_mm3"]),
            float(by_id[sid]["right_volume_mm3"]),
        )
        for sid in MAJOR_REGIONS
        if sid in by_id
    ]
