"""Finding and adding layers; the user's layers are never modified in place."""

from __future__ import annotations

import napari
from napari.layers import Image, Layer

from ..core.volume import Volume
from ..layer_data import VOLUME_KEY, volume_of_layer


def add_layer_data(viewer: napari.viewer.Viewer, layer_data: tuple) -> Layer:
    """Add a ``(data, kwargs, type)`` tuple, replacing a layer of ours with the same name."""
    data, kwargs, kind = layer_data
    name = kwargs.get("name")
    if name in viewer.layers and VOLUME_KEY in viewer.layers[name].metadata:
        viewer.layers.remove(name)
    return viewer.add_layer(Layer.create(data, kwargs, kind))


def atlas_layer(viewer: napari.viewer.Viewer, kind: type = Image) -> Layer | None:
    """The atlas template (Image) or annotation (Labels) layer, if one is loaded."""
    for layer in viewer.layers:
        v = layer.metadata.get(VOLUME_KEY)
        if isinstance(layer, kind) and isinstance(v, Volume) and "atlas" in v.metadata:
            return layer
    return None


def image_layers(viewer: napari.viewer.Viewer) -> list[Image]:
    """Every Image layer, in the viewer's order."""
    return [layer for layer in viewer.layers if isinstance(layer, Image)]


__all__ = ["add_layer_data", "atlas_layer", "image_layers", "volume_of_layer"]
