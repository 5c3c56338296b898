"""Finding and adding layers; the user's layers are never modified in place."""

from __future__ import annotations

import threading

import napari
import numpy as np
from napari.layers import Image, Labels, Layer, Shapes

from napari_ccf_align.core.volume import Volume
from napari_ccf_align.plugin.layer_data import VOLUME_KEY

_KINDS = {"image": Image, "labels": Labels, "shapes": Shapes}


def add_layer_data(viewer: napari.viewer.Viewer, layer_data: tuple) -> Layer:
    """Add a ``(data, kwargs, type)`` tuple; a layer of ours with that name is updated instead.

    Updating in place keeps what the user set on the layer (colormap, opacity, ...)
    and is far cheaper for napari than removing and adding a layer. Layers this
    plugin did not make are never touched: a new layer is added beside them.
    """
    data, kwargs, kind = layer_data
    name = kwargs.get("name")
    if name in viewer.layers:
        layer = viewer.layers[name]
        # isinstance, not type(): a plugin's viewer hands out proxies of its layers
        if VOLUME_KEY in layer.metadata and isinstance(layer, _KINDS.get(kind, ())):
            # each assignment makes napari re-slice and re-upload: skip the ones that change nothing
            if not np.allclose(layer.affine.affine_matrix, kwargs["affine"]):
                layer.affine = kwargs["affine"]
            layer.metadata.update(kwargs.get("metadata", {}))
            limits = kwargs.get("contrast_limits")
            if limits is not None and not np.allclose(layer.contrast_limits, limits):
                layer.contrast_limits = limits
            layer.data = data
            return layer
    return viewer.add_layer(Layer.create(data, kwargs, kind))


def free_name(viewer: napari.viewer.Viewer, name: str) -> str:
    """``name``, or ``name [2]``, ``name [3]``, ... : the first no layer has."""
    taken = {layer.name for layer in viewer.layers}
    if name not in taken:
        return name
    k = 2
    while f"{name} [{k}]" in taken:
        k += 1
    return f"{name} [{k}]"


_labels_warm = threading.Event()


def warm_labels_in_background() -> None:
    """Have napari compile its label colouring (numba, ~1.3 s on first use) on a daemon
    thread, through a throw-away Labels layer that no viewer shows, so that the first atlas,
    session or outline view does not stall the GUI thread for it. Only the first call works."""
    if _labels_warm.is_set():
        return
    _labels_warm.set()

    def warm() -> None:
        try:
            colours = {None: (0.0, 0.0, 0.0, 0.0), 0: (0.0, 0.0, 0.0, 0.0), 1: (1.0, 0.0, 0.0, 1.0)}
            for dtype in (np.uint8, np.uint16, np.uint32):  # numba compiles one per dtype
                Labels(np.ones((4, 4), dtype), colormap=colours)
        except Exception:  # only a warm-up: the real layer compiles it if this could not
            pass

    threading.Thread(target=warm, name="ccf-align-labels-warm-up", daemon=True).start()


#: Metadata key under which a layer holds a registration result (the Register dock's).
RESULT_KEY = "ccf_align_result"


def is_result(layer: Layer) -> bool:
    """Whether ``layer`` shows a registration's result (never a volume to align)."""
    return RESULT_KEY in layer.metadata


def is_atlas(layer: Layer) -> bool:
    """Whether ``layer`` holds an atlas (loaded as the Allen CCF, an atlas file or a phantom)."""
    v = layer.metadata.get(VOLUME_KEY)
    return isinstance(v, Volume) and "atlas" in v.metadata


def atlas_layer(viewer: napari.viewer.Viewer, kind: type = Image) -> Layer | None:
    """The atlas template (Image) or annotation (Labels) layer, if one is loaded."""
    for layer in viewer.layers:
        if isinstance(layer, kind) and is_atlas(layer):
            return layer
    return None


def image_layers(viewer: napari.viewer.Viewer) -> list[Image]:
    """Every Image layer, in the viewer's order."""
    return [layer for layer in viewer.layers if isinstance(layer, Image)]


#: Name endings of the layers the Align widget draws (never inputs to align or register).
PREVIEW_SUFFIX = " (aligned preview)"
BOX_SUFFIX = " (crop box)"
EDGES_SUFFIX = " (crop box edges)"


def input_choices(viewer: napari.viewer.Viewer) -> list[tuple[str, Image]]:
    """(name, layer) of the Image layers a user may align or register (not our previews)."""
    return [
        (layer.name, layer)
        for layer in image_layers(viewer)
        if not layer.name.endswith((PREVIEW_SUFFIX, BOX_SUFFIX, EDGES_SUFFIX))
    ]


def choose_inputs(viewer: napari.viewer.Viewer, fixed, moving, preferred: str | None = None):
    """Refresh two layer combo boxes: the atlas as fixed, another layer (``preferred``) as moving."""
    fixed.reset_choices()
    moving.reset_choices()
    template = atlas_layer(viewer)
    # by name throughout: a plugin's viewer hands out a new proxy of a layer on every lookup
    if template is not None and getattr(fixed.value, "name", None) != template.name:
        fixed.value = template
    fixed_name = getattr(fixed.value, "name", None)
    if preferred in viewer.layers and preferred != fixed_name:
        moving.value = viewer.layers[preferred]
    elif getattr(moving.value, "name", None) == fixed_name:
        others = [lyr for name, lyr in input_choices(viewer) if name != fixed_name]
        if others:
            moving.value = others[-1]


def keep_inputs_fresh(viewer: napari.viewer.Viewer, fixed, moving, preferred=lambda: None):
    """Re-pick the input layers of two combo boxes whenever layers come or go.

    The boxes take their choices from :func:`input_choices`; ``preferred()`` names
    the layer to select as moving, if any. Returns the refresh function.
    """

    def refresh(_event=None) -> None:
        choose_inputs(viewer, fixed, moving, preferred())

    for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
        event.connect(refresh)
    refresh()
    return refresh


#: Metadata key of the time (HH:MM:SS) a result layer's run finished.
FINISHED_KEY = "ccf_align_finished"


def result_choices(viewer: napari.viewer.Viewer, key: str) -> list[tuple[str, str]]:
    """(label, name) of every image layer holding a registration result under ``key``,
    labelled by its name (the sample and method) and the time its run finished."""
    out = []
    for layer in viewer.layers:
        if isinstance(layer, Image) and key in layer.metadata:
            when = layer.metadata.get(FINISHED_KEY)
            out.append((f"{layer.name} · {when}" if when else layer.name, layer.name))
    return out


def offer_results(combo, viewer: napari.viewer.Viewer, key: str, newest: str | None = None) -> None:
    """Refresh a result picker: the run that just finished (``newest``), else a result that
    just arrived, becomes the one picked."""
    before = set(combo.choices)
    combo.reset_choices()
    names = [name for _, name in result_choices(viewer, key)]
    if newest is not None and newest in names:
        combo.value = newest
        return
    new = [name for name in names if name not in before]
    if new:
        combo.value = new[-1]


def pick_newest(combo, viewer: napari.viewer.Viewer, key: str) -> None:
    """Pick the newest result (the last in the layer list) in a picker just made."""
    names = [name for _, name in result_choices(viewer, key)]
    if names:
        combo.value = names[-1]


def result_inputs(
    viewer: napari.viewer.Viewer,
    name: str | None,
    moving_key: str,
    no_result: str,
    then: str,
) -> tuple[Layer, Volume, Volume]:
    """(result layer, atlas Volume, sample Volume) of the result layer ``name``.

    ``moving_key`` is the metadata key naming the result's sample layer;
    ``no_result`` is the sentence when there is no such layer, ``then`` what to do
    when its sample is no longer open. Raises :class:`CcfAlignError` with one sentence.
    """
    from napari_ccf_align.core.errors import CcfAlignError
    from napari_ccf_align.plugin.layer_data import placed_volume

    if name is None or name not in viewer.layers:
        raise CcfAlignError(no_result)
    layer = viewer.layers[name]
    template = atlas_layer(viewer)
    if template is None:
        raise CcfAlignError("No atlas is loaded: load it with the Load widget.")
    moving_name = layer.metadata.get(moving_key)
    if moving_name not in viewer.layers:
        raise CcfAlignError(
            f"The volume {moving_name!r} this result registered is no longer open: {then}"
        )
    return layer, placed_volume(template), placed_volume(viewer.layers[moving_name])
