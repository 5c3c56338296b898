"""npe2 reader: open NRRD, NIfTI, MHA/MHD, (annotated) TIFF and OME-Zarr written here, in the
RAS world."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import tifffile

from napari_ccf_align.core import io
from napari_ccf_align.core.errors import OrientationError
from napari_ccf_align.plugin.layer_data import image_layer_data


def get_reader(path: str | list[str]) -> Callable | None:
    """Return a reader for ``path`` if this plugin can place it in the world, else None.

    A TIFF without this plugin's orientation metadata (or an OME-Zarr store not written
    here) has no orientation to trust: when the user picks this plugin for it in napari's
    reader choice, the reader says so in one sentence and points to the Load dock, which
    asks for the orientation code (napari's own reader still opens it as plain pixels).
    """
    if isinstance(path, list):
        readers = [get_reader(p) for p in path]
        if not path or not all(readers):
            return None
        return _refuse_unplaced if _refuse_unplaced in readers else _read_many
    if not io.is_supported(path):
        return None
    if io.suffix_of(path) in io.TIFF_SUFFIXES and not _has_own_metadata(path):
        return _refuse_unplaced
    if io.suffix_of(path) in io.ZARR_SUFFIXES:
        from napari_ccf_align.core.io import omezarr

        if not omezarr.has_own_attributes(path):
            return _refuse_unplaced
    return _read_many


def _refuse_unplaced(path: str | list[str]) -> list[tuple]:
    first = Path(path[0] if isinstance(path, list) else path)
    zarr = io.suffix_of(first) in io.ZARR_SUFFIXES  # OME-Zarr gives its voxel size
    lacks = "" if zarr else " or how large its voxels are"
    asks = "orientation code" if zarr else "orientation code and voxel size"
    raise OrientationError(
        f"{first.name!r} does not say which way its axes run{lacks}: open it with "
        f"Plugins > napari-ccf-align > Load volume and atlas, which asks for the {asks}."
    )


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
