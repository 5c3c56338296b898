"""OME-Zarr (NGFF multiscale images) in and out, through ``ome-zarr`` and ``zarr``.

Reading opens the store lazily (dask arrays, one per pyramid level) and loads only the
level asked for: the full level by default (``apply``), or the coarsest level still at
least as fine as a resolution (registration: :func:`level_for`). The voxel size comes
from each level's ``scale`` transform and its axes' units; NGFF says nothing of anatomy,
so the orientation code is given as for a TIFF, unless the store was written here (the
``napari_ccf_align`` attribute keeps the exact index -> world map).

Writing puts the array as it is (axes ``z, y, x`` = the volume's array axes) with
``scale`` (µm) and ``translation`` (µm, the world position of voxel 0 where the axes run
along +R, +A, +S) transforms, and a pyramid of 2x block means (nearest voxels for
labels) down to about 64 voxels a side. It is written under a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from napari_ccf_align.core import frames
from napari_ccf_align.core.errors import (
    DimensionError,
    MissingVoxelSizeError,
    OrientationError,
    UnreadableFileError,
    WriteError,
)
from napari_ccf_align.core.volume import Volume, block_mean

SUFFIXES = (".ome.zarr", ".zarr")

#: Our attribute in the store's metadata: orientation code and index -> world affine.
ATTRIBUTE = "napari_ccf_align"

#: Units NGFF allows for space axes, in µm.
_UNITS_UM = {
    "nanometer": 1e-3,
    "micrometer": 1.0,
    "millimeter": 1000.0,
    "centimeter": 1e4,
    "meter": 1e6,
    "angstrom": 1e-4,
}

_SMALLEST_LEVEL = 64  # voxels along the longest axis of the coarsest level written


def is_ome_zarr(path: str | os.PathLike) -> bool:
    """Whether ``path`` is a folder holding an NGFF image (``zarr.json`` or ``.zattrs``)."""
    p = Path(path)
    return p.is_dir() and ((p / "zarr.json").is_file() or (p / ".zattrs").is_file())


def _node(path: Path):
    try:
        from ome_zarr.io import parse_url
        from ome_zarr.reader import Multiscales, Reader
    except ImportError:
        raise UnreadableFileError(
            f"{path.name} is OME-Zarr, which needs the ome-zarr package: pip install ome-zarr."
        ) from None
    try:
        location = parse_url(str(path))
        nodes = list(Reader(location)()) if location is not None else []
    except Exception as exc:  # zarr and ome-zarr raise many kinds on damaged stores
        raise UnreadableFileError(
            f"{path.name} could not be read as OME-Zarr ({type(exc).__name__}: {exc}); check "
            "the store or export it again."
        ) from None
    for node in nodes:
        if any(isinstance(spec, Multiscales) for spec in node.specs) and node.data:
            return node
    raise UnreadableFileError(
        f"{path.name} holds no OME-Zarr multiscale image: give the image's own folder (the one "
        "with the 'multiscales' metadata)."
    )


def _own_attributes(path: Path) -> dict:
    for name in ("zarr.json", ".zattrs"):
        f = path / name
        if f.is_file():
            try:
                data = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return {}
            attrs = data.get("attributes", data)
            return dict(attrs.get(ATTRIBUTE) or {})
    return {}


def _spatial(node, path: Path) -> tuple[list[int], list[float]]:
    """Indices of the space axes and their units (µm per unit), refusing other axes > 1."""
    axes = node.metadata.get("axes") or [{"name": n, "type": "space"} for n in "zyx"]
    shape = node.data[0].shape
    keep, units, extra = [], [], []
    for k, axis in enumerate(axes):
        name = axis["name"] if isinstance(axis, dict) else str(axis)
        kind = axis.get("type", "space") if isinstance(axis, dict) else "space"
        if kind == "space" or name in "zyx":
            keep.append(k)
            unit = axis.get("unit") if isinstance(axis, dict) else None
            units.append(_UNITS_UM.get(str(unit).lower(), 1.0) if unit else 1.0)
        elif shape[k] > 1:
            extra.append(f"{name}={shape[k]}")
    if extra:
        raise DimensionError(
            f"{path.name} has channel or time axes ({', '.join(extra)}): save one channel at one "
            "time point as its own OME-Zarr (or TIFF), then load that."
        )
    return keep, units


def levels(path: str | os.PathLike, node=None) -> list[tuple[tuple[int, ...], np.ndarray]]:
    """``(shape, voxel size µm)`` of each pyramid level, finest first (no voxels read);
    ``node``: the store's image node when already open."""
    path = Path(path)
    node = node if node is not None else _node(path)
    keep, units = _spatial(node, path)
    transforms = node.metadata.get("coordinateTransformations") or [[] for _ in node.data]
    out = []
    for data, ct in zip(node.data, transforms, strict=False):
        scale = next((t["scale"] for t in ct if t.get("type") == "scale"), None)
        size = None
        if scale is not None:
            size = np.array([float(scale[k]) * u for k, u in zip(keep, units, strict=True)])
        out.append((tuple(int(data.shape[k]) for k in keep), size))
    return out


def level_for(path: str | os.PathLike, resolution_um: float) -> int:
    """The coarsest level whose voxels are all at most ``resolution_um`` (else level 0)."""
    best = 0
    for k, (_, size) in enumerate(levels(path)):
        if size is not None and float(np.max(size)) <= resolution_um * (1 + 1e-6):
            best = k
    return best


#: The most voxels a level napari opens may hold (512 MB of uint16): the finest level
#: under it is shown, coarser views of a 10 µm brain stay interactive.
VIEW_MAX_VOXELS = 256_000_000


def level_within(path: str | os.PathLike, max_voxels: int = VIEW_MAX_VOXELS) -> int:
    """The finest level with at most ``max_voxels`` voxels (else the coarsest)."""
    shown = levels(path)
    for k, (shape, _) in enumerate(shown):
        if int(np.prod(shape)) <= max_voxels:
            return k
    return len(shown) - 1


def has_own_attributes(path: str | os.PathLike) -> bool:
    """Whether the store was written here (it then says its own orientation)."""
    return is_ome_zarr(path) and bool(_own_attributes(Path(path)).get("orientation"))


def placement(
    path: str | os.PathLike,
    voxel_size_um: float | Sequence[float] | None = None,
    orientation: str | None = None,
    style: frames.OrientationStyle = "nibabel",
    level: int = 0,
    node=None,
) -> Volume:
    """The grid of one pyramid level (where its voxels are, no values read)."""
    path = Path(path)
    shown = levels(path, node)
    if not 0 <= level < len(shown):
        raise UnreadableFileError(
            f"{path.name} has pyramid levels 0 to {len(shown) - 1}, not {level}: give one of "
            "those (0 is the full resolution)."
        )
    shape = shown[level][0]
    own = _own_attributes(path)
    if orientation is None and voxel_size_um is None and "affine" in own:
        affine = np.asarray(own["affine"], float)
        factor = np.ones(3)
        if shown[level][1] is not None and shown[0][1] is not None:
            factor = np.asarray(shown[level][1]) / np.asarray(shown[0][1])
        step = np.diag([*factor, 1.0])
        step[: len(factor), -1] = 0.5 * factor - 0.5  # block centres of the coarser level
        return Volume.grid(shape, affine @ step, path.name, frames.WORLD_AXES)
    if orientation is None:
        orientation, style = own.get("orientation"), "nibabel"
    if orientation is None:
        raise OrientationError(
            f"{path.name} is OME-Zarr, which carries no anatomical orientation: give its "
            "orientation code (e.g. 'PIR' or BrainGlobe 'asl')."
        )
    size = shown[level][1] if voxel_size_um is None else voxel_size_um
    if size is None:
        raise MissingVoxelSizeError(
            f"{path.name} has no scale for level {level} in its metadata: give the voxel size "
            "in µm."
        )
    size_mm = frames.check_voxel_size(size, len(shape), "µm") / 1000.0
    affine = frames.orientation_affine(orientation, size_mm, style=style)
    return Volume.grid(shape, affine, path.name, frames.world_axes_of(
        frames.parse_orientation(orientation, style, len(shape))))  # fmt: skip


def read(
    path: str | os.PathLike,
    voxel_size_um: float | Sequence[float] | None = None,
    orientation: str | None = None,
    style: frames.OrientationStyle = "nibabel",
    name: str | None = None,
    level: int = 0,
) -> Volume:
    """One pyramid level of an OME-Zarr image as a Volume (see the module docstring)."""
    path = Path(path)
    node = _node(path)  # (the metadata is parsed once, for the grid and the voxels)
    grid = placement(path, voxel_size_um, orientation, style, level, node)
    keep, _ = _spatial(node, path)
    data = node.data[level]
    index = tuple(slice(None) if k in keep else 0 for k in range(data.ndim))
    array = _read_level(path, node, level, index)
    if array is None:  # (a store zarr cannot open by path: through the dask array)
        array = np.asarray(data[index].compute())
    return Volume(array, grid.affine, name or path.name, grid.world_axes, {"source": str(path)})


def _read_level(path: Path, node, level: int, index: tuple) -> np.ndarray | None:
    """The level's voxels read by zarr straight into one array (dask would hold every
    chunk and then their concatenation: twice the bytes at the peak)."""
    from ome_zarr.reader import Multiscales

    spec = next((s for s in node.specs if isinstance(s, Multiscales)), None)
    if spec is None or level >= len(spec.datasets):
        return None
    try:
        import zarr

        return np.asarray(zarr.open_array(str(path / spec.datasets[level]), mode="r")[index])
    except Exception:  # a layout zarr does not open by path: the caller reads through dask
        return None


def fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 over the store's metadata files and each chunk's name and size: changes when
    the image is rewritten, without reading gigabytes of chunks."""
    root = Path(path)
    h = hashlib.sha256()
    for f in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = f.relative_to(root).as_posix()
        h.update(rel.encode())
        if f.name in ("zarr.json", ".zattrs", ".zarray", ".zgroup"):
            h.update(f.read_bytes())
        else:
            h.update(str(f.stat().st_size).encode())
    return h.hexdigest()


#: Planes along array axis 0 per written slab and per chunk.
PLANES = 32


def _half(prev, labels: bool, planes: int = PLANES) -> Iterator[tuple[int, np.ndarray]]:
    """The next pyramid level of the zarr array ``prev``, slab by slab: 2x block means
    (a last partial block dropped), or every other voxel for labels."""
    shape = tuple(n // 2 for n in prev.shape)
    for start in range(0, shape[0], planes):
        stop = min(start + planes, shape[0])
        block = np.asarray(prev[2 * start : 2 * stop])
        if labels:
            yield start, block[::2, ::2, ::2][:, : shape[1], : shape[2]]
            continue
        mean = block_mean(Volume(block, np.eye(4)), (2, 2, 2)).data
        if block.dtype.kind in "iu":
            mean = np.rint(mean)
        yield start, np.asarray(mean).astype(block.dtype)


def slabs_of(data: np.ndarray, planes: int = PLANES) -> Iterator[tuple[int, np.ndarray]]:
    """An in-memory array as ``(first plane, slab)`` pairs along axis 0."""
    for start in range(0, data.shape[0], planes):
        yield start, data[start : start + planes]


def write(volume: Volume, path: str | os.PathLike, labels: bool | None = None) -> Path:
    """Write ``volume`` as an OME-Zarr image at ``path`` (see the module docstring)."""
    labels = bool(volume.metadata.get("labels")) if labels is None else labels
    data = np.asarray(volume.data)
    return write_slabs(path, volume, data.dtype, slabs_of(data), labels)


def write_slabs(
    path: str | os.PathLike,
    grid: Volume,
    dtype,
    slabs: Iterable[tuple[int, np.ndarray]],
    labels: bool = False,
) -> Path:
    """Write an image on ``grid`` that arrives as ``(first plane, slab)`` pairs along array
    axis 0, never whole in memory: the full level slab by slab, then each coarser level from
    the one before, slab by slab (see the module docstring).

    Raises
    ------
    WriteError
        Not 3D, no such folder, or ``path`` is something else than an OME-Zarr image.
    """
    import zarr
    from ome_zarr.writer import write_multiscales_metadata

    path = Path(path)
    if grid.ndim != 3:
        raise WriteError(f"{path.name}: only 3D volumes are written as OME-Zarr.")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise WriteError(f"The folder {folder} does not exist: create it or choose another one.")
    if path.exists() and not is_ome_zarr(path):
        raise WriteError(f"{path} exists and is not an OME-Zarr image: choose another name.")
    spacing_um = frames.spacing_of(grid.affine) * 1000.0
    affine = np.asarray(grid.affine, float)
    aligned = np.allclose(affine[:3, :3], np.diag(np.diag(affine[:3, :3]))) and np.all(
        np.diag(affine[:3, :3]) > 0
    )
    origin_um = affine[:3, 3] * 1000.0 if aligned else np.zeros(3)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".partial", dir=folder))
    try:
        group = zarr.open_group(str(tmp), mode="w")

        def level_array(k: int, shape):
            chunks = (min(PLANES, shape[0]), min(256, shape[1]), min(256, shape[2]))
            return group.create_array(f"s{k}", shape=shape, chunks=chunks, dtype=dtype,
                                      fill_value=0)  # fmt: skip

        arrays = [level_array(0, grid.shape)]
        for start, slab in slabs:
            arrays[0][start : start + slab.shape[0]] = np.asarray(slab, dtype=dtype)
        while max(arrays[-1].shape) > _SMALLEST_LEVEL and min(arrays[-1].shape) >= 2:
            prev = arrays[-1]
            arrays.append(level_array(len(arrays), tuple(n // 2 for n in prev.shape)))
            for start, slab in _half(prev, labels):
                arrays[-1][start : start + slab.shape[0]] = slab
        datasets = []
        for k in range(len(arrays)):
            factor = np.full(3, 2.0**k)  # a last partial block is dropped
            shift = origin_um + (0.5 * factor - 0.5) * spacing_um  # block centres
            datasets.append({"path": f"s{k}", "coordinateTransformations": [
                {"type": "scale", "scale": [float(v) for v in spacing_um * factor]},
                {"type": "translation", "translation": [float(v) for v in shift]},
            ]})  # fmt: skip
        axes = [{"name": n, "type": "space", "unit": "micrometer"} for n in "zyx"]
        write_multiscales_metadata(group, datasets, axes=axes, name=grid.name)
        group.attrs[ATTRIBUTE] = {
            "orientation": grid.orientation,
            "affine": affine.tolist(),
            "labels": bool(labels),
        }
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:  # (an OSError is worded by volumes.write_volume)
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path
