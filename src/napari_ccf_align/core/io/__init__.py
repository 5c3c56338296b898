"""Files in and out: volumes, ITK transform and displacement-field files, the Allen CCF.

``volumes`` reads and writes NRRD, NIfTI, MHA/MHD, TIFF and OME-Zarr (atomically), ``transforms``
the ITK files a session holds, ``atlas`` downloads, verifies and caches the Allen CCF
and puts it in the RAS world. The volume functions are importable from here.
"""

from napari_ccf_align.core.io.volumes import (
    SITK_SUFFIXES,
    SUFFIXES,
    TIFF_SUFFIXES,
    ZARR_SUFFIXES,
    atomic_path,
    check_complete,
    check_output_folder,
    check_written,
    current_umask,
    exists,
    file_stem,
    first_line,
    is_supported,
    peek,
    plugin_tiff_metadata,
    read_volume,
    remove_stale_partials,
    sha256_of,
    store_of,
    suffix_of,
    tiff_voxel_size_um,
    write_error,
    write_trace_csv,
    write_volume,
)

__all__ = [
    "SITK_SUFFIXES",
    "SUFFIXES",
    "TIFF_SUFFIXES",
    "ZARR_SUFFIXES",
    "atomic_path",
    "check_complete",
    "check_output_folder",
    "check_written",
    "current_umask",
    "exists",
    "file_stem",
    "first_line",
    "is_supported",
    "peek",
    "plugin_tiff_metadata",
    "read_volume",
    "remove_stale_partials",
    "sha256_of",
    "store_of",
    "suffix_of",
    "tiff_voxel_size_um",
    "write_error",
    "write_trace_csv",
    "write_volume",
]
