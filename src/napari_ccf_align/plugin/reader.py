"""npe2 reader: open NRRD, NIfTI, MHA/MHD, (annotated) TIFF and OME-Zarr written here, in the
RAS world."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import tifffile

from napari_ccf_align.core import io
from napari_ccf_align.plugin.layer_data import image_layer_data


def get_reader(path: str | list[str]) -> Callable | None:
    """Return a reader for ``path`` if this plugin can place it in the world, else None.

    TIFF files are taken only when they carry this plugin's orientation metadata;
    other TIFFs have no trustworthy orientation, so they are left to napari's own
    reader (open them with the Load widget, which asks for the orientation code).
    """
    if isinstance(path, list):
        if not path or not all(get_reader(p) for p in path):
            return None
        return _read_many
    if not io.is_supported(path):
        return None
    if io.suffix_of(path) in io.TIFF_SUFFIXES and not _has_own_metadata(path):
        return None
    if io.suffix_of(path) in io.ZARR_SUFFIXES:
        from napari_ccf_align.core.io import omezarr

        if not omezarr.has_own_attributes(path):
            return None  # no orientation to trust: the Load widget asks for the code
    return _read_many


def _has_own_metadata(path: str) -> bool:
    try:
        with tifffile.TiffFile(path) as tif:
            return io.plugin_tiff_metadata(tif) is not None
    except Exception:
        return False


def _read_many(path: str | list[str]) -> list[tuple]:
    paths = path if isinstance(path, list) else [path]
    return [image_layer_data(_read_one(Path(p))) for p in paths]


def _read_one(path: Path):
    level = 0
    if io.suffix_of(path) in io.ZARR_SUFFIXES:  # the finest pyramid level napari can hold
        from napari_ccf_align.core.io import omezarr

        level = omezarr.level_within(path)
    return io.read_volume(path, level=level)
