"""Reading and writing volumes: NRRD, NIfTI, MHA/MHD (SimpleITK) and TIFF (tifffile).

Every reader returns a :class:`~napari_ccf_align.core.volume.Volume` in the RAS
world; every writer writes under a temporary name in the target folder and
renames, so a failed write never leaves a half-written file under the final name.

A generic read keeps the header's meaning (an NRRD that says LPS is read as
LPS). Files whose headers are known to be wrong, such as the raw Allen NRRDs,
are read through :mod:`napari_ccf_align.core.io.atlas`, which states the truth.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import math
import os
import re
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import tifffile

from napari_ccf_align.core import frames
from napari_ccf_align.core.errors import (
    CcfAlignError,
    DimensionError,
    InputError,
    MissingFileError,
    MissingVoxelSizeError,
    OrientationError,
    UnreadableFileError,
    WriteError,
)
from napari_ccf_align.core.volume import Volume, from_sitk, to_sitk

#: File endings read and written through SimpleITK.
SITK_SUFFIXES = (".nrrd", ".nhdr", ".nii", ".nii.gz", ".mha", ".mhd")
#: File endings read and written through tifffile.
TIFF_SUFFIXES = (".tif", ".tiff", ".ome.tif", ".ome.tiff")
#: Folder endings read and written as OME-Zarr (:mod:`.omezarr`).
ZARR_SUFFIXES = (".ome.zarr", ".zarr")
#: Every file ending :func:`read_volume` accepts.
SUFFIXES = SITK_SUFFIXES + TIFF_SUFFIXES + ZARR_SUFFIXES

_TIFF_UNITS_UM = {"micron": 1.0, "um": 1.0, "µm": 1.0, "\\u00B5m": 1.0, "mm": 1000.0, "nm": 1e-3}


def suffix_of(path: str | os.PathLike) -> str:
    """Lower-case file ending, double endings (``.nii.gz``, ``.ome.tif``) included."""
    name = Path(path).name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    return Path(name).suffix


def is_supported(path: str | os.PathLike) -> bool:
    """Whether :func:`read_volume` knows the file's ending."""
    return suffix_of(path) in SUFFIXES


def store_of(path: str | os.PathLike) -> Path:
    """``path``, or the OME-Zarr folder when ``path`` is its ``zarr.json`` / ``.zattrs``
    (what a file dialog picks inside a store)."""
    p = Path(path)
    if p.name in ("zarr.json", ".zattrs") and suffix_of(p.parent) in ZARR_SUFFIXES:
        return p.parent
    return p


def exists(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an input this module can open: a file, or an OME-Zarr folder."""
    p = store_of(path)
    if suffix_of(p) in ZARR_SUFFIXES:
        from napari_ccf_align.core.io import omezarr

        return omezarr.is_ome_zarr(p)
    return p.is_file()


def _stem(path: Path) -> str:
    suffix = suffix_of(path)
    return path.name[: -len(suffix)] if suffix else path.name


def file_stem(path: str | os.PathLike) -> str:
    """A file's name without its ending (``brain.nii.gz`` -> ``brain``)."""
    return _stem(Path(path))


# --------------------------------------------------------------------------- reading


def read_volume(
    path: str | os.PathLike,
    *,
    voxel_size_um: float | Sequence[float] | None = None,
    orientation: str | None = None,
    style: frames.OrientationStyle = "nibabel",
    name: str | None = None,
    level: int = 0,
) -> Volume:
    """Read a 2D or 3D image file into a Volume in the RAS world.

    Parameters
    ----------
    path : str or path-like
        NRRD, NIfTI (``.nii``, ``.nii.gz``), MHA/MHD or TIFF file.
    voxel_size_um : float or sequence of float, optional
        Voxel size in µm per array axis (numpy order). Needed for TIFF files whose
        metadata carries none; for other formats it replaces the header's spacing
        (and then ``orientation`` must be given too).
    orientation : str, optional
        Orientation code of the array axes. Required for TIFF files (they carry no
        trustworthy orientation); for other formats it replaces the header's.
    style : {"nibabel", "brainglobe"}
        How ``orientation`` is written.
    name : str, optional
        Volume name; default the file name without its ending.
    level : int
        OME-Zarr pyramid level (0: full resolution; see :func:`.omezarr.level_for`).

    Raises
    ------
    MissingFileError, UnreadableFileError, MissingVoxelSizeError, OrientationError
        Each with one sentence saying what is wrong and what to do.
    """
    path = store_of(path)
    if not exists(path):
        raise MissingFileError(f"No file at {path}: check the path, or pick the file again.")
    suffix = suffix_of(path)
    name = name or _stem(path)
    if suffix in ZARR_SUFFIXES:
        from napari_ccf_align.core.io import omezarr

        volume = omezarr.read(path, voxel_size_um, orientation, style, name, level)
    elif suffix in TIFF_SUFFIXES:
        volume = _read_tiff(path, voxel_size_um, orientation, style, name)
    elif suffix in SITK_SUFFIXES:
        if suffix in (".nii", ".nii.gz") and voxel_size_um is None:
            check_nifti_spacing(path)
        volume = _read_sitk(path, name)
        if orientation is not None or voxel_size_um is not None:
            volume = _override_geometry(volume, voxel_size_um, orientation, style)
    else:
        volume = None
    if volume is not None:
        # how it was read, so that it can be read the same way again (sessions)
        read_as = {
            "voxel_size_um": None
            if voxel_size_um is None
            else np.broadcast_to(np.asarray(voxel_size_um, float), (volume.ndim,)).tolist(),
            "orientation": orientation,
            "style": style,
            "level": int(level),
        }
        return replace(
            volume, metadata={**volume.metadata, "source": str(path), "read_as": read_as}
        )
    raise UnreadableFileError(
        f"{path.name} is not a format this plugin reads: use NRRD, NIfTI (.nii, .nii.gz), MHA/MHD, "
        "TIFF or OME-Zarr."
    )


def check_data_file(path: str | os.PathLike) -> None:
    """Refuse a detached header (``.nhdr``, ``.mhd``) whose data file lies outside its folder.

    The header names its data file; ITK follows absolute paths, ``..`` and symbolic links, so
    a header from elsewhere could read any file on the machine as voxels. The data file must
    be a file in the header's own folder (as this package writes them).
    """
    path = Path(path)
    if suffix_of(path) not in (".nhdr", ".mhd", ".mha", ".nrrd"):
        return
    header, _ = _text_header(path)
    data = header.get("data file") or header.get("datafile") or header.get("elementdatafile")
    if not data or data.upper() in ("LOCAL", "LIST") or " " in data.strip():
        return  # attached data, or a list/pattern ITK reads within the header's rules
    if Path(data).name == path.name:
        raise UnreadableFileError(
            f"{path.name} names itself as its data file, so its voxels would be its own header "
            "text: name the data file that belongs to it, or export the volume again."
        )
    target = path.parent / data
    inside = Path(data).name == data and not Path(data).is_absolute()
    if not inside or target.is_symlink() or target.resolve().parent != path.parent.resolve():
        raise UnreadableFileError(
            f"{path.name} names its data file {data!r}, which is not a file in its own folder: "
            f"keep the data file beside {path.name} and name it there (nothing was read)."
        )


def _read_sitk(path: Path, name: str) -> Volume:
    check_data_file(path)
    from_bytes = _is_float_nifti(path)  # ITK would turn NaN into 0: checked in the file
    check_complete(path, finite=from_bytes)
    try:
        image = sitk.ReadImage(str(path))
    except (RuntimeError, OSError, EOFError) as exc:
        raise UnreadableFileError(
            f"{path.name} could not be read (corrupt, truncated or not really "
            f"{suffix_of(path)}): {first_line(exc)}; check the file or export it again."
        ) from None
    # the image is ours alone: share its buffer (a 10 µm brain is 2.3 GB, not 4.7 at its peak)
    volume = from_sitk(image, name, {"source": str(path)}, copy=False)
    if not from_bytes:
        check_finite_values(volume.data, path)
    return volume


def check_finite_values(data: np.ndarray, path: Path) -> None:
    """Refuse an image holding NaN or infinite values: every engine and figure would take
    them for data (or, through ITK's NIfTI reader, for zeros)."""
    if not np.issubdtype(data.dtype, np.floating):
        return
    bad = int(data.size - np.count_nonzero(np.isfinite(data)))
    if bad:
        raise UnreadableFileError(
            f"{path.name} holds {bad:,} NaN or infinite values ({100.0 * bad / data.size:.3g} % "
            "of its voxels), which registration cannot use: replace them (with 0 for "
            "background) or export the file again."
        )


def _nifti_head(path: Path) -> bytes:
    """The first 352 bytes of a NIfTI-1 file (decompressed for ``.nii.gz``), or b""."""
    try:
        if suffix_of(path) == ".nii.gz":
            with gzip.open(path, "rb") as f:
                return f.read(352)
        with open(path, "rb") as f:
            return f.read(352)
    except (OSError, EOFError, zlib.error):
        return b""  # the reader reports what is wrong with the file


def _is_float_nifti(path: Path) -> bool:
    if suffix_of(path) not in (".nii", ".nii.gz"):
        return False
    layout = _nifti_layout(_nifti_head(path))
    return layout is not None and layout[1] is not None


def check_nifti_spacing(path: str | os.PathLike) -> None:
    """Refuse a NIfTI file whose header gives a voxel size of 0, a negative one or NaN
    (``pixdim``): ITK would read it as 1 mm without a word."""
    path = Path(path)
    head = _nifti_head(path)
    layout = _nifti_layout(head)
    if layout is None:
        return
    e = layout[0]
    ndim = struct.unpack(e + "h", head[40:42])[0]
    if not 1 <= ndim <= 7:
        return  # not a NIfTI-1 header the reader accepts; it says so
    pixdim = struct.unpack(e + "8f", head[76:108])[1 : 1 + min(ndim, 3)]
    if all(math.isfinite(v) and v > 0 for v in pixdim):
        return
    shown = " × ".join(f"{v:g}" for v in pixdim)
    raise MissingVoxelSizeError(
        f"{path.name}'s header gives a voxel size of {shown} mm (pixdim), which ITK would "
        "read as 1 mm: give the voxel size and orientation yourself (--voxel-size Z Y X and "
        "--orientation, or the Load form's fields)."
    )


_HEADER_KEYS = {
    ".nrrd": ("encoding", "data file", "datafile"),
    ".nhdr": ("encoding", "data file", "datafile"),
    ".mha": ("compresseddata", "elementdatafile"),
    ".mhd": ("compresseddata", "elementdatafile"),
}


def _text_header(path: Path) -> tuple[dict[str, str], int]:
    """Lower-case ``key: value`` / ``Key = Value`` pairs of an NRRD or MetaImage header,
    and the header's length in bytes (where attached data starts)."""
    out: dict[str, str] = {}
    with open(path, "rb") as f:
        head = f.read(65536)
    offset = 0
    for raw in head.split(b"\n"):
        offset += len(raw) + 1
        line = raw.decode("latin-1").strip()
        if not line:
            break  # NRRD: the blank line ends the header
        for sep in (":=", ":", "="):
            key, found, value = line.partition(sep)
            if found:
                out.setdefault(key.strip().lower(), value.strip())
                break
        if line.lower().startswith("elementdatafile"):
            break  # MetaImage: the last header line
    return out, offset


def _data_bytes(path: Path) -> int:
    """The number of data bytes a file's header announces."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    reader.ReadImageInformation()
    size = int(np.prod(reader.GetSize())) * reader.GetNumberOfComponents()
    pixel = sitk.GetArrayFromImage(sitk.Image([1] * reader.GetDimension(), reader.GetPixelID()))
    return size * pixel.dtype.itemsize


def check_complete(path: str | os.PathLike, finite: bool = False) -> None:
    """Raise :class:`UnreadableFileError` if a file holds less data than its header says.

    ITK reads a truncated uncompressed NIfTI, NRRD or MetaImage file with the
    missing part as zeros (a ``.nii.gz`` too), and an ``.mhd`` without its ``.raw``
    fails with a message that does not say so. Other compressed files are checked by
    their reader. With ``finite``, a float NIfTI holding a NaN or infinite value is
    refused as well (for files that must be finite, such as displacement fields).
    """
    path = Path(path)
    suffix = suffix_of(path)
    if suffix == ".nii.gz":
        _check_nifti_gz_complete(path, finite)
        return
    if finite and suffix == ".nii":
        raw = path.read_bytes()
        _check_finite(path, raw, _nifti_layout(raw[:352]))
    if suffix not in SITK_SUFFIXES:
        return
    try:
        need = _data_bytes(path)
    except RuntimeError:
        if suffix == ".mhd":  # ITK does not say why; a missing .raw is the common cause
            header, _ = _text_header(path)
            data = header.get("elementdatafile", "")
            if data and not (path.parent / data).is_file():
                raise UnreadableFileError(
                    f"{path.name} names its data file {data}, which is missing: keep {data} in "
                    f"the same folder as {path.name}."
                ) from None
        return  # an unreadable header is reported by the reader itself
    header, header_bytes = _text_header(path) if suffix in _HEADER_KEYS else ({}, 352)
    if header.get("compresseddata", "false").lower() == "true":
        return
    if header.get("encoding", "raw").lower() not in ("raw", ""):
        return
    data = header.get("data file") or header.get("datafile") or header.get("elementdatafile")
    if data and data.upper() != "LOCAL":
        target = path.parent / data
        if not target.is_file():
            raise UnreadableFileError(
                f"{path.name} names its data file {data}, which is missing: keep {data} in the "
                f"same folder as {path.name}."
            )
        have = target.stat().st_size
    else:
        have = path.stat().st_size - header_bytes
    if have < need:
        raise UnreadableFileError(
            f"{path.name} is truncated: it holds {max(have, 0):,} of the {need:,} data bytes its "
            "header announces; copy or export it again."
        )


#: NIfTI datatype codes of the float kinds (whose values can be NaN), as numpy codes.
_NIFTI_FLOATS = {16: "f4", 64: "f8", 32: "c8", 1792: "c16"}


def _nifti_layout(head: bytes) -> tuple[str, str | None, int] | None:
    """``(byte order, float dtype code or None, data offset)`` of a NIfTI-1 header's first
    bytes, or None when there are too few of them."""
    if len(head) < 112:
        return None
    e = "<" if struct.unpack("<i", head[:4])[0] == 348 else ">"
    kind = _NIFTI_FLOATS.get(struct.unpack(e + "h", head[70:72])[0])
    return e, kind, int(struct.unpack(e + "f", head[108:112])[0]) or 352


def _check_finite(path: Path, raw: bytes, layout) -> None:
    """Refuse a float NIfTI holding NaN or infinite values, read from its own bytes:
    SimpleITK reads a NaN as a number near 0, so damage would pass for data."""
    if layout is None or layout[1] is None:
        return
    e, kind, offset = layout
    check_finite_values(np.frombuffer(raw, dtype=e + kind, offset=offset), path)


def _check_nifti_gz_complete(path: Path, finite: bool = False) -> None:
    """Raise :class:`UnreadableFileError` if a ``.nii.gz`` holds less than its header says
    (or, with ``finite``, a NaN or infinite value).

    ITK's NIfTI reader pads a short file with zeros, whether the gzip stream was cut
    (then also broken) or a whole stream holds too few bytes; the stream is decompressed
    once and its length compared with the header's.
    """
    raw = b""
    try:
        with gzip.open(path, "rb") as f:
            if finite:  # the values are needed too: the whole stream, once
                raw = f.read()
                head, total = raw[:352], len(raw)
            else:
                head = f.read(352)
                total = len(head)
                while block := f.read(1 << 24):
                    total += len(block)
    except gzip.BadGzipFile:
        raise UnreadableFileError(
            f"{path.name} is not gzip-compressed, so it is not really .nii.gz: check the file "
            "or export it again."
        ) from None
    except (EOFError, OSError, zlib.error):
        raise UnreadableFileError(
            f"{path.name} is truncated (its gzip stream ends early): copy or export it again."
        ) from None
    try:
        need = _data_bytes(path)
    except RuntimeError:
        return  # an unreadable header is reported by the reader itself
    layout = _nifti_layout(head)
    if layout is None:
        return
    if total - layout[2] < need:
        raise UnreadableFileError(
            f"{path.name} is truncated: it holds {max(total - layout[2], 0):,} of the {need:,} "
            "data bytes its header announces; copy or export it again."
        )
    if finite:
        _check_finite(path, raw, layout)


def _override_geometry(volume, voxel_size_um, orientation, style) -> Volume:
    if orientation is None:
        raise OrientationError(
            "A voxel size was given without an orientation code: give both, or neither to keep "
            "the file's header."
        )
    size = volume.spacing * 1000.0 if voxel_size_um is None else voxel_size_um
    size_mm = frames.check_voxel_size(size, volume.ndim, "µm") / 1000.0
    meta = {**volume.metadata, "header_overridden": True}
    return Volume.from_array(
        volume.data, size_mm, orientation, style, name=volume.name, metadata=meta
    )


def sha256_of(path: str | os.PathLike, chunk: int = 1 << 22) -> str:
    """SHA-256 (hex) of a file's bytes, read in ``chunk``-byte blocks (an OME-Zarr folder:
    :func:`.omezarr.fingerprint`)."""
    if suffix_of(path) in ZARR_SUFFIXES and exists(path):
        from napari_ccf_align.core.io import omezarr

        return omezarr.fingerprint(path)
    if not Path(path).is_file():
        raise MissingFileError(f"No file at {path}: check the path, or pick the file again.")
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def first_line(exc: BaseException) -> str:
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    detail = next(
        (ln for ln in lines if "Description" in ln or "ERROR" in ln), lines[-1] if lines else ""
    )
    return detail.split("Description:")[-1].strip()[:200]


def tiff_voxel_size_um(path: str | os.PathLike) -> np.ndarray | None:
    """Voxel size (µm, numpy axis order) that a TIFF's metadata gives, or None.

    Looks at this plugin's own JSON metadata, then ImageJ's ``spacing`` and the
    X/Y resolution tags.
    """
    if not Path(path).is_file():
        raise MissingFileError(f"No file at {path}: check the path, or pick the file again.")
    with tifffile.TiffFile(path) as tif:
        own = plugin_tiff_metadata(tif)
        if own and "voxel_size_um" in own:
            return np.asarray(own["voxel_size_um"], dtype=float)
        page = tif.pages.first
        ndim = len(tif.series[0].shape)
        ij = tif.imagej_metadata or {}
        unit = str(ij.get("unit", "")).strip()
        scale = _TIFF_UNITS_UM.get(unit)
        xr, yr = page.tags.get("XResolution"), page.tags.get("YResolution")
        if scale is None or xr is None or yr is None:
            return None
        x = scale * xr.value[1] / xr.value[0]
        y = scale * yr.value[1] / yr.value[0]
        if ndim == 2:
            return np.array([y, x])
        if "spacing" not in ij:
            return None
        return np.array([scale * float(ij["spacing"]), y, x])


def plugin_tiff_metadata(tif: tifffile.TiffFile) -> dict | None:
    meta = tif.shaped_metadata
    if meta and isinstance(meta[0], dict) and "ccf_align" in meta[0]:
        return json.loads(meta[0]["ccf_align"])
    return None


def _read_tiff(path: Path, voxel_size_um, orientation, style, name) -> Volume:
    try:
        with tifffile.TiffFile(path) as tif:
            data = tif.asarray()
            axes = tif.series[0].axes
            own = plugin_tiff_metadata(tif) or {}
    except Exception as exc:  # tifffile raises many kinds on corrupt files
        raise UnreadableFileError(
            f"{path.name} could not be read as TIFF ({type(exc).__name__}: {exc}); check the file "
            "or export it again."
        ) from None
    extra = [f"{a}={n}" for a, n in zip(axes, data.shape, strict=False) if a in "SCTE" and n > 1]
    if extra:
        raise DimensionError(
            f"{path.name} has colour, channel or time axes ({', '.join(extra)}): save one grey "
            "channel at one time point as its own TIFF, then load that."
        )
    data = np.squeeze(data)
    if orientation is None:
        orientation = own.get("orientation")
        style = "nibabel"
    if orientation is None:
        raise OrientationError(
            f"{path.name} is a TIFF, which carries no trustworthy orientation: give its "
            "orientation code (e.g. 'PIR' or BrainGlobe 'asl')."
        )
    if voxel_size_um is None:
        voxel_size_um = tiff_voxel_size_um(path)
    if voxel_size_um is None:
        raise MissingVoxelSizeError(
            f"{path.name} has no voxel size in its metadata: give the voxel size in µm."
        )
    size_mm = frames.check_voxel_size(voxel_size_um, data.ndim, "µm") / 1000.0
    return Volume.from_array(
        data,
        size_mm,
        orientation,
        style,
        origin_mm=own.get("origin_mm"),
        name=name,
        metadata={"source": str(path)},
    )


# --------------------------------------------------------------------------- writing


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


#: The user's umask: files we write get the permissions any file they make would get.
_UMASK = _current_umask()
_PARTIAL = ".partial"


def current_umask() -> int:
    """The user's umask (read once, at import)."""
    return _UMASK


def _partial_owner(path: Path) -> int | None:
    """The process id a temporary file's name carries (``.<stem>.<pid>.<random>.partial``)."""
    found = re.search(r"\.(\d+)\.[^.]+\.partial", path.name)
    return int(found.group(1)) if found else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete temporary files left in ``folder`` by writes whose process was killed.

    Only files named by :func:`atomic_path` whose writing process no longer runs are
    removed, so another process writing into the same folder is left alone.
    """
    removed = []
    for tmp in folder.glob(f".*{_PARTIAL}*"):
        pid = _partial_owner(tmp)
        if pid is not None and pid != os.getpid() and not _alive(pid):
            with contextlib.suppress(OSError):
                shutil.rmtree(tmp) if tmp.is_dir() else tmp.unlink()
                removed.append(tmp)
    return removed


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike, verify: Callable[[Path], None] | None = None
) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` if the block succeeds.

    The temporary name keeps the file ending (writers choose the format by it) and
    carries this process's id, so that temporary files of killed writes are found
    and removed on the next write to the folder. ``verify(tmp)``, if given, checks
    the written file before the rename (some writers report a full disk only on
    stderr); the file gets the permissions the user's umask gives new files.
    On failure the temporary file is removed, the previous file at ``path`` is kept,
    and a :class:`WriteError` says why.
    """
    if not isinstance(path, str | os.PathLike):
        raise InputError(f"{path!r} is not a file path: give a str or pathlib.Path to write to.")
    path = Path(path)
    check_name_length(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise WriteError(f"The folder {folder} does not exist: create it or choose another one.")
    if path.is_dir():
        raise WriteError(f"{path} is a folder: give a file name to write to.")
    remove_stale_partials(folder)
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{_stem(path)}.{os.getpid()}.",
            suffix=f"{_PARTIAL}{suffix_of(path)}",
            dir=folder,
        )
    except OSError as exc:
        raise write_error(folder, exc) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if verify is not None:
            verify(tmp_path)
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    except BaseException as exc:
        full = _nearly_full(folder)  # before the partial file's space is given back
        tmp_path.unlink(missing_ok=True)
        if isinstance(exc, OSError | RuntimeError) and not isinstance(exc, WriteError):
            raise write_error(folder, exc, full) from None
        raise


#: Free space (bytes) under which a failed write is taken for a full disk (ITK's writers
#: say only "Error writing").
_NEARLY_FULL_BYTES = 1 << 20


def _nearly_full(folder: Path) -> bool:
    try:
        return shutil.disk_usage(folder).free < _NEARLY_FULL_BYTES
    except OSError:
        return False


def check_output_folder(path: str | os.PathLike) -> Path:
    """Check, before any work, that results can be written into the folder ``path``.

    The folder need not exist yet (it is made when the results are written), but
    it must not be a file, and it (or the nearest existing folder above it) must
    be writable.

    Raises
    ------
    WriteError
        Naming the path and what to do.
    """
    path = Path(path)
    check_name_length(path)
    if path.exists() and not path.is_dir():
        raise WriteError(f"{path} is a file, not a folder: give a folder name for the results.")
    existing = path
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise WriteError(
            f"{existing} is a file, so the folder {path} cannot be made: choose another place."
        )
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WriteError(
            f"The folder {existing} is not writable: choose a folder you can write to."
        )
    return path


#: Characters a temporary name adds to an output's name (``.NAME.<pid>.<random>.partial``).
_TEMPORARY_NAME_EXTRA = 40


def check_name_length(path: Path) -> None:
    """Refuse an output path with a part too long for the file system once a temporary
    name is made from it (names are written under a temporary name, then renamed)."""
    limit = 255
    with contextlib.suppress(OSError, ValueError, AttributeError):
        existing = next(p for p in [path, *path.parents] if p.exists())
        limit = os.pathconf(existing, "PC_NAME_MAX")
    room = limit - _TEMPORARY_NAME_EXTRA
    for part in path.parts:
        if len(os.fsencode(part)) > room:
            raise WriteError(
                f"The name {part[:24]}… is {len(os.fsencode(part))} bytes long, more than the "
                f"{room} an output's name may have here (the file system allows {limit}, and "
                "the temporary name it is written under needs the rest): choose a shorter name."
            )


def write_error(folder: Path, exc: BaseException, disk_full: bool = False) -> WriteError:
    """The one sentence for a failed write into ``folder`` (``disk_full``: the disk was
    found nearly full when it failed)."""
    text = str(exc)
    if disk_full or getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in text:
        return WriteError(
            f"The disk holding {folder} is full: free some space or choose another folder."
        )
    if getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM, errno.EROFS):
        return WriteError(f"The folder {folder} is not writable: choose a folder you can write to.")
    return WriteError(
        f"Could not write into {folder} ({first_line(exc)}): check the folder and disk."
    )


def write_volume(
    volume: Volume, path: str | os.PathLike, compress: bool = True, nibabel_order: bool = False
) -> Path:
    """Write a Volume so that other tools place its voxels where we do.

    NIfTI, NRRD and MHA go through SimpleITK (LPS headers, which nibabel,
    ITK-SNAP and 3D Slicer convert as we do). TIFF stores the array with the
    orientation code, voxel size and origin in this plugin's JSON metadata; only
    axis-aligned volumes can be written to TIFF.

    SimpleITK files list the axes in reverse numpy order, so a file read here and
    written again keeps its layout. With ``nibabel_order`` the file's axes
    (nibabel's array, ITK's x, y, z) are the volume's numpy axes instead: an
    atlas-space volume (axes R, A, S) then reads in nibabel as a plain RAS array
    with the atlas's affine. Either way every voxel stays at its world place.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    suffix = suffix_of(path)
    if nibabel_order and suffix in SITK_SUFFIXES:
        n = volume.ndim
        order = [*range(n - 1, -1, -1), n]
        volume = replace(
            volume, data=np.transpose(volume.data), affine=np.asarray(volume.affine)[:, order]
        )
    if suffix in ZARR_SUFFIXES:
        from napari_ccf_align.core.io import omezarr

        try:
            return omezarr.write(volume, path)
        except OSError as exc:
            raise write_error(path.parent if str(path.parent) else Path("."), exc) from None
    if suffix not in SITK_SUFFIXES + TIFF_SUFFIXES:
        raise WriteError(
            f"{path.name} has an ending this plugin cannot write: use .nii.gz, .nrrd, .mha, .tif "
            "or .ome.zarr."
        )

    def verify(tmp: Path) -> None:
        check_written(tmp, volume.shape, path.parent)

    if suffix in (".mhd", ".nhdr"):
        return _write_detached(volume, path, compress)
    with atomic_path(path, verify) as tmp:
        if suffix in SITK_SUFFIXES:
            sitk.WriteImage(to_sitk(volume), str(tmp), compress)
        else:
            _write_tiff(volume, tmp)
    return path


def _write_detached(volume: Volume, path: Path, compress: bool) -> Path:
    """A header and its separate data file (``.mhd`` + ``.raw``, ``.nhdr`` + ``.raw``).

    The header names its data file, so both are written under their final names in
    a temporary folder beside ``path``, checked, then moved: the data file first,
    the header last (a reader never finds a header without its data).
    """
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise WriteError(f"The folder {folder} does not exist: create it or choose another one.")
    remove_stale_partials(folder)
    try:
        tmp_dir = Path(
            tempfile.mkdtemp(prefix=f".{_stem(path)}.{os.getpid()}.", suffix=_PARTIAL, dir=folder)
        )
    except OSError as exc:
        raise write_error(folder, exc) from None
    try:
        header = tmp_dir / path.name
        sitk.WriteImage(to_sitk(volume), str(header), compress)
        check_written(header, volume.shape, folder)
        for part in sorted(tmp_dir.iterdir(), key=lambda p: p == header):
            os.chmod(part, 0o666 & ~_UMASK)
            os.replace(part, folder / part.name)
    except (OSError, RuntimeError) as exc:
        raise write_error(folder, exc) from None
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return path


def check_written(tmp: Path, shape: tuple[int, ...], folder: Path) -> None:
    """Raise :class:`WriteError` unless ``tmp`` reads back whole with ``shape``.

    ITK's writers report some failures (a full disk among them) only on stderr and
    return normally, leaving a truncated file; renaming it would replace the user's
    previous good file. The header is read back and, like every read, the data's
    size is checked against it (:func:`check_complete`).
    """
    try:
        found = peek(tmp)[2]
        check_complete(tmp)
    except CcfAlignError:
        found = None
    if found is None or tuple(found) != tuple(shape):
        free = shutil.disk_usage(folder).free if folder.is_dir() else 0
        raise WriteError(
            f"The file written into {folder} is incomplete (the disk holding it has "
            f"{free / 1e6:.0f} MB free; it may be full): free some space or choose another "
            "folder; the previous file, if any, was kept."
        )


def _write_tiff(volume: Volume, path: Path) -> None:
    code = volume.orientation
    expected = frames.orientation_affine(code, volume.spacing, volume.affine[:-1, -1])
    if volume.world_axes != frames.world_axes_of(code) or not np.allclose(
        expected, volume.affine, atol=1e-9
    ):
        raise WriteError(
            f"{volume.name!r} is oblique, which TIFF cannot describe: write NIfTI or NRRD instead."
        )
    own = {
        "orientation": code,
        "voxel_size_um": (volume.spacing * 1000.0).tolist(),
        "origin_mm": volume.affine[:-1, -1].tolist(),
    }
    tifffile.imwrite(
        path, volume.data, photometric="minisblack", metadata={"ccf_align": json.dumps(own)}
    )


def peek(path: str | os.PathLike) -> tuple[np.ndarray | None, str | None, tuple[int, ...] | None]:
    """What a file says about itself without reading its voxels.

    Returns
    -------
    voxel_size_um : numpy.ndarray or None
        Per array axis (numpy order), µm, when the file carries it.
    orientation : str or None
        Nibabel-style code of the header's axes (None for TIFF: never guessed).
    shape : tuple of int or None
        Array shape in numpy order.
    """
    path = store_of(path)
    if not exists(path):
        raise MissingFileError(f"No file at {path}: check the path, or pick the file again.")
    suffix = suffix_of(path)
    if suffix in ZARR_SUFFIXES:
        from napari_ccf_align.core.io import omezarr

        shape, size = omezarr.levels(path)[0]
        return size, None, shape
    if suffix in TIFF_SUFFIXES:
        try:
            with tifffile.TiffFile(path) as tif:
                shape = tuple(int(s) for s in np.squeeze(np.empty(tif.series[0].shape, bool)).shape)
                own = plugin_tiff_metadata(tif) or {}
        except Exception as exc:
            raise UnreadableFileError(
                f"{path.name} could not be read as TIFF ({type(exc).__name__}); check the file."
            ) from None
        return tiff_voxel_size_um(path), own.get("orientation"), shape
    if suffix not in SITK_SUFFIXES:
        raise UnreadableFileError(
            f"{path.name} is not a format this plugin reads: use NRRD, NIfTI (.nii, .nii.gz), "
            "MHA/MHD or TIFF."
        )
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError as exc:
        raise UnreadableFileError(
            f"{path.name} could not be read ({first_line(exc)}); check the file or export it again."
        ) from None
    n = reader.GetDimension()
    world = frames.WORLD_AXES if n == 3 else "RA"
    affine = frames.affine_from_itk(
        reader.GetOrigin(), reader.GetSpacing(), reader.GetDirection(), world
    )
    size_um = frames.spacing_of(affine) * 1000.0
    return size_um, frames.affine_orientation(affine, world), tuple(reader.GetSize()[::-1])


def write_trace_csv(points, path: str | os.PathLike) -> Path:
    """Write metric trace points (objects with level, iteration, metric, elapsed_s) as CSV."""
    path = Path(path)
    with atomic_path(path) as tmp:
        lines = ["level,iteration,metric,elapsed_s"]
        lines += [f"{p.level},{p.iteration},{p.metric:.10g},{p.elapsed_s:.4f}" for p in points]
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
