"""Volumes as napari layer data, and back. No Qt; napari itself is not imported.

napari's world axes here are the RAS world axes in RAS order, so a layer's
``affine`` is a Volume's index-to-world affine, unchanged. napari cannot display
an affine that permutes axes (the displayed block of the matrix becomes singular),
so a layer always shows the Volume reoriented to RAS axis order: a numpy view with
every voxel at the same world position.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from napari_ccf_align.core.volume import Volume

#: Key under which an annotation layer's metadata keeps its StructureTable.
STRUCTURES_KEY = "ccf_align_structures"
#: Annotation layer metadata: the atlas's own hemisphere map (a BrainGlobe atlas's), if any.
HEMISPHERES_KEY = "ccf_align_hemispheres"
#: Key under which a layer's metadata keeps its Volume.
VOLUME_KEY = "ccf_align_volume"

#: Axis labels for napari's world axes (R, A, S), naming where each axis increases.
AXIS_LABELS = ("L→R (mm)", "P→A (mm)", "I→S (mm)")


def displayable(volume: Volume) -> Volume:
    """The Volume with array axes in world (RAS) order, as napari layers need it."""
    return volume.reoriented(volume.world_axes)


def layer_kwargs(volume: Volume, **extra: Any) -> dict:
    """Keyword arguments that place ``volume`` (already :func:`displayable`) in napari's world."""
    metadata = {VOLUME_KEY: volume, **extra.pop("metadata", {})}
    kwargs = {"name": volume.name, "affine": np.asarray(volume.affine), "metadata": metadata}
    kwargs.update(extra)
    return kwargs


def image_layer_data(volume: Volume, **extra: Any) -> tuple:
    """``(data, kwargs, "image")`` for napari readers and sample-data contributions."""
    volume = displayable(volume)
    return (volume.data, layer_kwargs(volume, **extra), "image")


def labels_layer_data(volume: Volume, **extra: Any) -> tuple:
    """``(data, kwargs, "labels")`` for a label volume."""
    volume = displayable(volume)
    return (volume.data, layer_kwargs(volume, **extra), "labels")


def volume_of_layer(layer: Any) -> Volume:
    """The Volume a layer shows: the one kept in its metadata, else built from the layer.

    A layer made elsewhere (by napari's own readers, say) is taken as it is placed
    in the world: its data-to-world map becomes the affine.
    """
    kept = layer.metadata.get(VOLUME_KEY)
    if isinstance(kept, Volume) and kept.data is layer.data:
        return kept
    if getattr(layer, "rgb", False) or getattr(layer, "multiscale", False):
        from napari_ccf_align.core.errors import DimensionError

        raise DimensionError(
            f"{layer.name!r} is a colour or multiscale layer: choose a single-channel grey volume."
        )
    ndim = layer.data.ndim
    affine = np.asarray(layer.affine.affine_matrix) @ _scale_translate(layer)
    world_axes = "RAS" if ndim == 3 else "RA"
    return Volume(np.asarray(layer.data), affine, layer.name, world_axes)


def is_placed(layer: Any) -> bool:
    """Whether this plugin placed the layer in the RAS world (its orientation was stated)."""
    kept = layer.metadata.get(VOLUME_KEY)
    return isinstance(kept, Volume) and kept.data is layer.data


def placed_volume(layer: Any) -> Volume:
    """The layer's Volume, if this plugin placed it in the RAS world; else a clear error.

    A layer opened by another reader (a TIFF through napari's own, say) has no
    stated orientation; taking its index axes as R, A, S would be a guess.
    """
    from napari_ccf_align.core.errors import OrientationError

    kept = layer.metadata.get(VOLUME_KEY)
    if not is_placed(layer):
        raise OrientationError(
            f"{layer.name!r} has no stated orientation (it was opened by another reader): give "
            "its orientation code and voxel size (Align: 'Apply code and size', or "
            "the Load widget) first."
        )
    return kept


def restated(layer: Any, voxel_size_um, code: str | None, style: str, name: str) -> Volume:
    """The layer's array placed anew with a stated orientation code and voxel size (µm).

    For a layer whose orientation was never stated (or was stated wrongly); the
    layer itself is not changed.
    """
    from napari_ccf_align.core import frames

    v = volume_of_layer(layer)
    size = np.asarray(voxel_size_um, dtype=float).reshape(-1)
    size_mm = frames.check_voxel_size(size[: v.ndim] if size.size > 1 else size, v.ndim, "µm")
    return Volume.from_array(v.data, size_mm / 1000.0, code or "", style, name=name)


def segments_as_vectors(segments: np.ndarray) -> np.ndarray:
    """Line segments ``(N, 2, D)`` (start, end) as napari Vectors data (start, end - start)."""
    seg = np.asarray(segments, dtype=float)
    return np.stack([seg[:, 0], seg[:, 1] - seg[:, 0]], axis=1)


def _scale_translate(layer: Any) -> np.ndarray:
    n = layer.data.ndim
    m = np.eye(n + 1)
    m[:n, :n] = np.diag(np.asarray(layer.scale, dtype=float))
    m[:n, n] = np.asarray(layer.translate, dtype=float)
    return m


def atlas_title(volume: Volume, resolution_um: float) -> str:
    """How layers name the atlas: ``"Allen CCF"`` with its resolution, a BrainGlobe
    atlas's own name (which says its resolution), or an own template's file name."""
    name = volume.metadata.get("brainglobe_name") or volume.metadata.get("atlas_title")
    return str(name) if name else f"Allen CCF ({resolution_um:g} µm)"


def _titled(title: str, what: str) -> str:
    if title.endswith("µm)"):  # "Allen CCF template (25 µm)"
        head, res = title.rsplit(" (", 1)
        return f"{head} {what} ({res}"
    return f"{title} {what}"


def template_layer_data(template: Volume, resolution_um: int) -> tuple:
    """Image layer data for the atlas template (grey, named after the atlas)."""
    return image_layer_data(
        template,
        name=_titled(atlas_title(template, resolution_um), "template"),
        colormap="gray",
        blending="additive",
    )


def annotation_layer_data(
    annotation: Volume, structures=None, resolution_um: int = 0, hemispheres: Volume | None = None
) -> tuple:
    """Labels layer data for the atlas annotation, with Allen colours and region names.

    Label values are renumbered 0..n (see :func:`~napari_ccf_align.core.io.atlas.compact_labels`);
    the layer's ``features`` table (``index``, ``id``, ``acronym``, ``name``) maps them
    back to Allen ids and makes napari's status bar name the region under the cursor.
    """
    from napari_ccf_align.core.io.atlas import compact_labels

    compact, ids = compact_labels(annotation)
    title = _titled(atlas_title(annotation, resolution_um), "annotation")
    extra: dict = {"name": title, "opacity": 0.5}
    if structures is not None:
        extra["metadata"] = {STRUCTURES_KEY: structures}  # for views that group regions
        known = [(k, int(i)) for k, i in enumerate(ids) if k and int(i) in structures]
        colors = structures.colors([i for _, i in known])
        extra["colormap"] = {
            None: (0.0, 0.0, 0.0, 0.0),
            0: (0.0, 0.0, 0.0, 0.0),
            **{k: colors[i] for k, i in known},
        }
        extra["features"] = {
            "index": np.asarray([k for k, _ in known]),
            "id": np.asarray([i for _, i in known]),
            "acronym": np.asarray([structures[i].acronym for _, i in known], dtype=object),
            "name": np.asarray([structures[i].name for _, i in known], dtype=object),
        }
    if hemispheres is not None:
        extra.setdefault("metadata", {})[HEMISPHERES_KEY] = hemispheres  # for volumes.csv
    return labels_layer_data(compact, **extra)


def atlas_layer_data(atlas) -> list[tuple]:
    """Layer data for a loaded :class:`~napari_ccf_align.core.io.atlas.Atlas`."""
    layers = [template_layer_data(atlas.template, atlas.resolution_um)]
    if atlas.annotation is not None:
        layers.append(
            annotation_layer_data(
                atlas.annotation, atlas.structures, atlas.resolution_um, atlas.hemispheres
            )
        )
    return layers
