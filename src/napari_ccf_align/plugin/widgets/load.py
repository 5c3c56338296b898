"""The Load dock widget: the user's volume and the atlas (the Allen CCF, a BrainGlobe atlas or
an own template) as layers."""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
)
from napari.utils.notifications import show_error, show_info
from qtpy.QtCore import QTimer
from qtpy.QtWidgets import QGroupBox, QVBoxLayout, QWidget

from napari_ccf_align.core import frames, io
from napari_ccf_align.core.align.projections import mean_projections
from napari_ccf_align.core.errors import CcfAlignError
from napari_ccf_align.core.io import atlas, brainglobe
from napari_ccf_align.core.progress import CancelToken, ProgressEvent
from napari_ccf_align.core.volume import Volume
from napari_ccf_align.plugin.layer_data import (
    VOLUME_KEY,
    atlas_layer_data,
    image_layer_data,
    is_placed,
    restated,
    volume_of_layer,
)
from napari_ccf_align.plugin.widgets import _worker
from napari_ccf_align.plugin.widgets._geometry import GeometryForm
from napari_ccf_align.plugin.widgets._layers import (
    add_layer_data,
    atlas_layer,
    free_name,
    image_layers,
    is_atlas,
    warm_labels_in_background,
)
from napari_ccf_align.plugin.widgets._view import (
    StepWidget,
    anatomical_view,
    follow_anatomy,
    row,
    scrollable,
)
from napari_ccf_align.plugin.widgets.orientation_view import OrientationView

_FILE_FILTER = "Volumes (*.nrrd *.nhdr *.nii *.nii.gz *.mha *.mhd *.tif *.tiff zarr.json .zattrs)"


def _voxel_size(text: str) -> tuple[float, ...] | None:
    """A voxel size typed as one number (isotropic) or three (per file axis), µm."""
    if not text.strip():
        return None
    try:
        values = [float(v) for v in text.replace(",", " ").split()]
    except ValueError:
        values = []
    if len(values) not in (1, 3) or not all(v > 0 and np.isfinite(v) for v in values):
        raise CcfAlignError(
            f"Voxel size {text!r} is not one or three positive numbers of µm: type e.g. 25 or "
            "25 25 25."
        )
    return tuple(values * 3) if len(values) == 1 else tuple(values)


def _group(title: str, container: Container) -> QGroupBox:
    box = QGroupBox(title)
    layout = QVBoxLayout(box)
    layout.setContentsMargins(4, 4, 4, 4)
    layout.addWidget(container.native)
    return box


class LoadWidget(StepWidget):
    """Load the user's volume (file or layer) and the Allen CCF atlas into the RAS world."""

    step_title = "Load"

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        super().__init__()
        warm_labels_in_background()  # napari's label colouring, compiled off the GUI thread
        self.viewer = napari_viewer
        self._token: CancelToken | None = None
        self._progress: napari.utils.progress | None = None
        self._header: tuple | None = None  # (voxel size µm, orientation) the file states
        self.worker = None
        self._size_request = 0

        # -- your volume
        self.source = ComboBox(label="source", choices=["file", "layer"], value="file")
        self.path = FileEdit(label="file", mode="r", filter=_FILE_FILTER)
        self.layer = ComboBox(label="layer", choices=self._layer_choices)
        self.geometry = GeometryForm()
        self.voxel, self.orientation, self.style = (
            self.geometry.voxel,
            self.geometry.code_edit,
            self.geometry.style_box,
        )
        self.check = PushButton(text="Check orientation")
        self.load_volume = PushButton(text="Load volume")
        self.volume_box = Container(
            widgets=[
                self.source,
                self.path,
                self.layer,
                self.geometry,
                row(self.check, self.load_volume),
            ]
        )
        self.view = OrientationView(self.viewer.theme)

        # -- atlas
        self.resolution = ComboBox(
            label="resolution (µm)", choices=list(atlas.RESOLUTIONS_UM), value=25
        )
        self.with_annotation = CheckBox(text="annotation and region names", value=True)
        self.cache = FileEdit(label="cache folder", mode="d", value=str(atlas.cache_dir()))
        self.size = Label(value="")
        self.load_atlas = PushButton(text="Load atlas")
        self.cancel = PushButton(text="Cancel", enabled=False)
        self.bar = ProgressBar(value=0, max=100, visible=False)
        self.local_template = FileEdit(label="template file", mode="r", filter="NRRD (*.nrrd)")
        self.local_annotation = FileEdit(label="annotation file", mode="r", filter="NRRD (*.nrrd)")
        self.local_structures = FileEdit(label="structures file", mode="r", filter="JSON (*.json)")
        self.load_local = PushButton(text="Load atlas from these files")
        self.atlas_box = Container(
            widgets=[
                self.resolution,
                self.with_annotation,
                self.cache,
                self.size,
                row(self.load_atlas, self.cancel),
                self.bar,
                Label(value="Offline? Pick the Allen files you have:"),
                self.local_template,
                self.local_annotation,
                self.local_structures,
                self.load_local,
            ]
        )
        self.bg_box = self._brainglobe_box()
        self.own_template = FileEdit(label="template file", mode="r", filter=_FILE_FILTER)
        self.own_labels = FileEdit(label="labels (optional)", mode="r", filter=_FILE_FILTER)
        self.own_code = LineEdit(label="orientation code")
        self.own_code.native.setPlaceholderText("the header's; a TIFF needs one, e.g. PIR")
        self.own_size = LineEdit(label="voxel size (µm)")
        self.own_size.native.setPlaceholderText("the header's, or e.g. 25 (or 25 25 25)")
        self.load_own = PushButton(text="Load own template")
        self.load_own.changed.connect(self.load_own_template)
        self.own_box = Container(
            widgets=[self.own_template, self.own_labels, self.own_code, self.own_size,
                     self.load_own]
        )  # fmt: skip
        self.status = Label(value="")
        for label in (self.size, self.status):
            label.native.setWordWrap(True)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.addWidget(_group("Your volume", self.volume_box))
        layout.addWidget(self.view)
        layout.addWidget(_group("Allen CCF v3 atlas", self.atlas_box))
        layout.addWidget(_group("Or a BrainGlobe atlas", self.bg_box))
        layout.addWidget(_group("Or your own template", self.own_box))
        layout.addWidget(self.status.native)
        layout.addStretch(1)
        scrollable(self, body)

        self.source.changed.connect(self._on_source)
        self.path.changed.connect(self._on_path)
        self.layer.changed.connect(self._on_layer)
        self.check.changed.connect(self.check_orientation)
        self._checked_file: tuple[Path, Volume] | None = None  # the array the last check read
        self._recheck = QTimer(self)
        self._recheck.setSingleShot(True)
        self._recheck.setInterval(250)  # after typing pauses, not on every key
        self._recheck.timeout.connect(lambda: self.check_orientation(live=True))
        self.geometry.changed.connect(self._geometry_changed)
        self.load_volume.changed.connect(self.load_user_volume)
        self.resolution.changed.connect(self.refresh_size)
        self.cache.changed.connect(self.refresh_size)
        self.with_annotation.changed.connect(self.refresh_size)
        self.load_atlas.changed.connect(self.start_atlas_load)
        self.cancel.changed.connect(self.cancel_load)
        self.load_local.changed.connect(self.load_atlas_from_files)
        self.viewer.layers.events.inserted.connect(self._keep_layer_choice)
        self.viewer.layers.events.removed.connect(self._keep_layer_choice)
        follow_anatomy(self.viewer)
        self._on_source()
        self.refresh_size()

    # ------------------------------------------------------------------ your volume

    def _layer_choices(self, _widget=None) -> list[tuple[str, object]]:
        # the atlas is never "your volume" (its check would compare the atlas with itself)
        return [(layer.name, layer) for layer in image_layers(self.viewer) if not is_atlas(layer)]

    def _keep_layer_choice(self, _event=None) -> None:
        """Refresh the layer choices, keeping the chosen layer (by name: a docked widget
        gets layer proxies, so the old value never equals the new choice)."""
        chosen = getattr(self.layer.value, "name", None)
        self.layer.reset_choices()
        for name, layer in self._layer_choices():
            if name == chosen and self.layer.value is not layer:
                self.layer.value = layer

    def _on_source(self, _value=None) -> None:
        from_file = self.source.value == "file"
        self.path.visible = from_file
        self.layer.visible = not from_file
        if from_file:
            self._on_path()
        else:
            self._on_layer(self.layer.value)

    def _on_path(self, _value=None) -> None:
        path = io.store_of(self.path.value)
        if not io.exists(path):
            return
        try:
            size_um, code, _shape = io.peek(path)
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return
        self._header = (None if size_um is None else tuple(float(x) for x in size_um), code)
        self.geometry.set(size_um, code)
        missing = [w for w, v in (("voxel size", size_um), ("orientation code", code)) if v is None]
        self._say(
            f"{path.name}: give its {' and '.join(missing)}."
            if missing
            else f"{path.name}: voxel size and orientation from the file's header."
        )

    def _on_layer(self, layer=None) -> None:
        if layer is None or self.source.value != "layer":
            return
        try:
            v = volume_of_layer(layer)
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return
        if is_placed(layer):
            self.geometry.set(v.spacing * 1000.0, v.orientation)
            self._say(f"{layer.name}: placed by this plugin; voxel size and code as it is shown.")
        else:  # opened by another reader: nothing about its geometry is known
            self.geometry.set([0.0] * v.ndim, None)
            self._say(
                f"{layer.name} was opened by another reader, which states no orientation: give "
                "its voxel size and orientation code (never guessed), then Load volume."
            )

    def read_volume(self) -> Volume:
        """The user's volume as the fields describe it (raises CcfAlignError on bad input)."""
        if self.source.value == "layer":
            layer = self.layer.value
            if layer is None:
                raise CcfAlignError("No image layer is open: open one or load a file.")
            v = volume_of_layer(layer)
            size, code = self.geometry.checked(v.ndim)
            if is_placed(layer) and code == v.orientation:
                if np.allclose(size, v.spacing * 1000.0, atol=0.01):
                    return v
            return restated(layer, size, code, "nibabel", f"{layer.name} (RAS)")
        return self._read_file()

    def _read_file(self) -> Volume:
        if not str(self.path.value).strip() or Path(self.path.value) == Path("."):
            raise CcfAlignError("No file was picked: pick your volume's file, or choose a layer.")
        path = io.store_of(self.path.value)
        header_size, header_code = self._header or (None, None)
        ndim = len(header_size) if header_size is not None else 3
        code, style = self.geometry.code(), self.geometry.style_box.value
        size = self.geometry.size_um(ndim)
        if header_size is not None and (code, style) == (header_code, "nibabel"):
            if np.allclose(size, header_size, atol=0.01):
                return io.read_volume(path)  # the header as it is: an oblique affine stays oblique
        if code is not None:
            frames.check_style(code, style)
        given = size if any(size) else None
        level = 0
        if io.suffix_of(path) in io.ZARR_SUFFIXES:  # the finest pyramid level napari can hold
            from napari_ccf_align.core.io import omezarr

            level = omezarr.level_within(path)
            if header_size is not None and given is not None:
                if np.allclose(given, header_size, atol=0.01):
                    given = None  # the level's own voxel size, from its metadata
        return io.read_volume(path, voxel_size_um=given, orientation=code, style=style, level=level)

    def check_orientation(self, _value=None, live: bool = False) -> None:
        """Show the volume's mean projections next to the atlas's.

        Once shown, the view follows every change of the code, style or voxel size
        (``live``): the array read first is placed anew, the file is not read again,
        and a code still being typed is said in the status line, not as a notification.
        """
        try:
            volume = self._volume_to_check() if live else self.read_volume()
        except CcfAlignError as exc:
            self._say(str(exc), error=not live)
            return
        if self.source.value == "file":
            self._checked_file = (Path(self.path.value), volume)
        template = atlas_layer(self.viewer)
        atlas_projs = mean_projections(volume_of_layer(template)) if template else []
        self.view.show_projections(mean_projections(volume), atlas_projs, volume.name)
        self._say(
            f"{volume.name} as {volume.orientation}: compare it with the atlas below; if it is "
            "upside down or back to front, fix the code."
        )

    def _volume_to_check(self) -> Volume:
        """The volume as the fields now describe it, from the array read at the last check."""
        kept = self._checked_file
        if self.source.value != "file" or kept is None or kept[0] != Path(self.path.value):
            return self.read_volume()
        size, code = self.geometry.checked(kept[1].ndim)
        return Volume.from_array(
            kept[1].data, np.asarray(size) / 1000.0, code, "nibabel", name=kept[1].name
        )

    def _geometry_changed(self, _value=None) -> None:
        if self.view.shown:
            self._recheck.start()

    def load_user_volume(self, _value=None) -> napari.layers.Image | None:
        """Add the user's volume as an Image layer in the RAS world (a new layer)."""
        try:
            volume = self.read_volume()
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return None
        if self.source.value == "layer" and volume is self.layer.value.metadata.get(VOLUME_KEY):
            show_info(f"{self.layer.value.name} is already placed in the RAS world.")
            return self.layer.value
        same = self._same_layer(volume)
        if same is not None:
            show_info(f"{same.name} is this file, already loaded as it is read now.")
            return same
        name = free_name(self.viewer, volume.name)  # a second channel never replaces the first
        layer = add_layer_data(
            self.viewer,
            image_layer_data(volume, name=name, colormap="magenta", blending="additive"),
        )
        anatomical_view(self.viewer)
        self.viewer.reset_view()
        self._say(
            f"Loaded {volume.name}: {volume.shape} voxels, {volume.orientation}. Next: in "
            "'Initial alignment and crop', press 'Centre on atlas'."
        )
        return layer

    def _same_layer(self, volume: Volume):
        """A layer already showing this very file read with the same geometry, or None."""
        source = volume.metadata.get("source")
        for layer in image_layers(self.viewer):
            kept = layer.metadata.get(VOLUME_KEY)
            if (
                isinstance(kept, Volume)
                and source is not None
                and kept.metadata.get("source") == source
                and kept.metadata.get("read_as") == volume.metadata.get("read_as")
            ):
                return layer
        return None

    # ------------------------------------------------------------------ atlas

    def _brainglobe_box(self) -> Container:
        """Any BrainGlobe atlas by name (installed ones first), through BrainGlobe's API."""
        names = brainglobe.known_names()
        if not names:
            return Container(
                widgets=[
                    Label(
                        value="BrainGlobe atlases (kim_mouse, princeton_mouse, whs_sd_rat, ...) "
                        f"need the BrainGlobe atlas API: {brainglobe.INSTALL_HINT}"
                    )
                ]
            )
        folder = brainglobe.default_dir()
        installed = brainglobe.installed_names(folder)
        choices = installed + [n for n in names if n not in installed]
        default = next((n for n in installed), "allen_mouse_25um")
        self.bg_name = ComboBox(label="atlas", choices=choices, value=default)
        self.bg_dir = FileEdit(label="BrainGlobe folder", mode="d", value=str(folder or ""))
        self.load_bg = PushButton(text="Load BrainGlobe atlas")
        self.load_bg.changed.connect(self.start_brainglobe_load)
        note = Label(
            value="Installed atlases are listed first; others are downloaded by BrainGlobe."
        )
        note.native.setWordWrap(True)
        return Container(widgets=[self.bg_name, self.bg_dir, note, self.load_bg])

    def start_brainglobe_load(self, _value=None):
        """Load the chosen BrainGlobe atlas (BrainGlobe downloads it first if needed)."""
        name = str(self.bg_name.value)
        folder = Path(self.bg_dir.value) if self.bg_dir.value else None
        folder = None if folder is None or str(folder) in ("", ".") else folder
        self._say(f"Loading the BrainGlobe atlas {name}...")
        self._set_busy(True)
        self.worker = _worker.start(
            brainglobe.load_brainglobe_atlas,
            name=name,
            folder=folder,
            on_done=self._on_atlas,
            on_error=self._on_error,
            on_finished=lambda: self._set_busy(False),
        )
        return self.worker

    def load_own_template(self, _value=None):
        """A lab's own template (any 3D reference volume, optional labels on its grid) as
        the atlas, read as its header says unless the code and voxel size restate it."""
        path = Path(self.own_template.value)
        if not str(self.own_template.value).strip() or path == Path("."):
            self._say("No template file was picked: pick your template's file.", error=True)
            return None
        labels = Path(self.own_labels.value)
        labels = None if str(labels) in ("", ".") else labels
        code = self.own_code.value.strip() or None
        try:
            size = _voxel_size(self.own_size.value)
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return None
        style = "brainglobe" if code and code.islower() else "nibabel"

        def job():
            from napari_ccf_align.core.runs import headless

            fixed = headless.load_fixed_file(path, code, size, style, labels)
            um = float(fixed.template.spacing.min()) * 1000.0
            return atlas.Atlas(um, fixed.template, fixed.annotation)

        self._say(f"Loading {path.name} as the atlas...")
        self._set_busy(True)
        self.worker = _worker.start(
            job, on_done=self._on_atlas, on_error=self._on_error,
            on_finished=lambda: self._set_busy(False),
        )  # fmt: skip
        return self.worker

    def _files(self) -> list[atlas.RemoteFile]:
        return atlas.remote_files(int(self.resolution.value), self.with_annotation.value)

    def refresh_size(self, _value=None) -> None:
        """Show how much the atlas load will download (0 when cached)."""
        files, cache = self._files(), Path(self.cache.value)
        self.size.value = "Download size: checking..."
        self._size_request += 1
        request = self._size_request

        def shown(size: tuple[int, int]) -> None:
            if request != self._size_request:
                return  # an answer to an older question (resolution changed since)
            known, unknown = size
            if known == 0 and unknown == 0:
                self.size.value = "All files are in the cache: no download."
            elif unknown:
                self.size.value = (
                    f"Download size: {known / 1e6:.1f} MB plus {unknown} file(s) of unknown "
                    "size (server not reachable?)."
                )
            else:
                self.size.value = f"Download size: {known / 1e6:.1f} MB."

        _worker.start(
            atlas.download_size,
            files=files,
            cache=cache,
            on_done=shown,
            on_error=lambda exc: shown((0, len(files))),
        )

    def start_atlas_load(self, _value=None):
        """Download (if needed) and load the atlas on a worker thread."""
        self._token = CancelToken()
        relay = _worker.ProgressRelay(parent=self)
        relay.event.connect(self._on_progress)
        self._set_busy(True)
        res = int(self.resolution.value)
        self.worker = _worker.start(
            atlas.load_atlas,
            resolution_um=res,
            annotation=self.with_annotation.value,
            cache=Path(self.cache.value),
            on_progress=relay.emit_event,
            cancel=self._token,
            on_done=self._on_atlas,
            on_error=self._on_error,
            on_finished=lambda: self._set_busy(False),
        )
        return self.worker

    def cancel_load(self, _value=None) -> None:
        """Ask the running download to stop; nothing partial is kept."""
        if self._token is not None:
            self._token.cancel()
            self.status.value = "Cancelling..."

    def load_atlas_from_files(self, _value=None) -> None:
        """Load the atlas from local Allen files (no network needed)."""
        template = Path(self.local_template.value)
        if not template.is_file():
            self._say("No template file was picked: pick average_template_<res>.nrrd.", error=True)
            return
        ann = Path(self.local_annotation.value)
        graph = Path(self.local_structures.value)
        try:
            a = atlas.load_atlas_files(
                template, ann if ann.is_file() else None, graph if graph.is_file() else None
            )
        except CcfAlignError as exc:
            self._say(str(exc), error=True)
            return
        self._on_atlas(a)

    def _on_progress(self, event: ProgressEvent) -> None:
        if event.stage == "notice":  # e.g. a file trusted on first use
            show_info(event.message)
            return
        if event.total:
            self.bar.max = int(event.total)
            self.bar.value = int(event.done)
            if self._progress is None:
                self._progress = napari.utils.progress(
                    total=int(event.total), desc="Allen CCF download"
                )
            self._progress.n = int(event.done)
            self._progress.refresh()
        self.status.value = f"{event.message}: {event.done / 1e6:.1f} of {event.total / 1e6:.1f} MB"

    def _on_atlas(self, loaded: atlas.Atlas) -> None:
        for data in atlas_layer_data(loaded):
            add_layer_data(self.viewer, data)
        anatomical_view(self.viewer)
        self.viewer.reset_view()
        if loaded.template.metadata.get("brainglobe_name"):
            self._say(f"BrainGlobe atlas {loaded.name} (version {loaded.version}) loaded.")
        elif loaded.template.metadata.get("atlas") == "own template":
            self._say(
                f"{loaded.template.name} loaded as the atlas"
                + (" with its labels." if loaded.annotation is not None else ".")
            )
        else:
            self._say(f"Allen CCF v3 at {loaded.resolution_um} µm loaded.")
        self.refresh_size()

    def _on_error(self, exc: BaseException) -> None:
        self._say(_worker.error_sentence(exc), error=True)

    def _say(self, text: str, error: bool = False) -> None:
        """One status line (replacing any older one); errors are also a notification."""

        self.status.value = text
        if error:
            show_error(text)

    def _set_busy(self, busy: bool) -> None:
        self.load_atlas.enabled = not busy
        self.load_local.enabled = not busy
        if hasattr(self, "load_bg"):
            self.load_bg.enabled = not busy
        self.load_own.enabled = not busy
        self.cancel.enabled = busy
        self.bar.visible = busy
        if not busy and self._progress is not None:
            self._progress.close()
            self._progress = None
