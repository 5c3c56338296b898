"""Volume: an array plus the affine that places it in the RAS world.

A :class:`Volume` never changes its array in place; every operation returns a
new Volume (often sharing memory through a numpy view).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import SimpleITK as sitk

from napari_ccf_align.core import frames
from napari_ccf_align.core.errors import CropError, DimensionError, EmptyVolumeError, SettingsError


@dataclass(frozen=True, eq=False)
class Volume:
    """An image array and where it sits in the world.

    Parameters
    ----------
    data : numpy.ndarray
        2D or 3D array, in its own axis order.
    affine : numpy.ndarray
        ``(ndim + 1, ndim + 1)`` map from array index to world millimetres.
    name : str
        Human-readable name (becomes the napari layer name).
    world_axes : str
        World axes the affine maps to, in RAS order: ``"RAS"`` for 3D volumes; two
        of those letters for a 2D section (e.g. ``"RS"`` for a coronal one).
    metadata : Mapping
        Free-form provenance (source file, orientation code as given, ...).

    Examples
    --------
    >>> v = Volume.from_array(np.zeros((4, 5, 6)), voxel_size_mm=0.1, orientation="PIR")
    >>> v.index_to_world([1, 0, 0]).round(6)
    array([ 0. , -0.1,  0. ])
    """

    data: np.ndarray
    affine: np.ndarray
    name: str = "volume"
    world_axes: str = frames.WORLD_AXES
    metadata: Mapping = field(default_factory=dict)

    def __post_init__(self) -> None:
        data = np.asarray(self.data)
        if data.ndim not in (2, 3):
            raise DimensionError(
                f"{self.name!r} has {data.ndim} dimensions (shape {data.shape}) but a 2D or 3D "
                "image is needed: pick one channel or time point first."
            )
        if len(self.world_axes) != data.ndim:
            raise DimensionError(
                f"{self.name!r} is {data.ndim}D but its world axes are {self.world_axes!r}: give "
                f"{data.ndim} world axes."
            )
        if 0 in data.shape:
            raise DimensionError(
                f"{self.name!r} has an empty axis (shape {data.shape}): it holds no voxels; check "
                "the file, or the crop."
            )
        if data.dtype.kind not in "biuf":
            raise DimensionError(
                f"{self.name!r} has data type {data.dtype}, which is not a grey-value image: give "
                "a numeric array (one channel)."
            )
        if data.dtype.kind == "f" and data.size and not _any_finite(data):
            raise EmptyVolumeError(
                f"{self.name!r} contains only NaN or infinite values: check the file or the "
                "processing that produced it."
            )
        object.__setattr__(self, "data", data)
        affine = frames.check_affine(self.affine, data.ndim)
        frames.check_voxel_size(frames.spacing_of(affine), data.ndim, "mm")  # 1 nm to 1 m
        object.__setattr__(self, "affine", affine)

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_array(
        cls,
        data: np.ndarray,
        voxel_size_mm: float | Sequence[float],
        orientation: str,
        style: frames.OrientationStyle = "nibabel",
        origin_mm: Sequence[float] | None = None,
        name: str = "volume",
        metadata: Mapping | None = None,
    ) -> Volume:
        """A Volume from an array, its voxel size and orientation code.

        Parameters
        ----------
        data : numpy.ndarray
            2D or 3D array.
        voxel_size_mm : float or sequence of float
            Voxel size along each array axis, mm.
        orientation : str
            Orientation code, one letter per array axis.
        style : {"nibabel", "brainglobe"}
            How ``orientation`` is written (see :func:`frames.parse_orientation`).
        origin_mm : sequence of float, optional
            World position (RAS mm) of index 0; default the world origin.
        """
        data = np.asarray(data)
        if data.ndim not in (2, 3):
            raise DimensionError(
                f"{name!r} has {data.ndim} dimensions (shape {data.shape}) but a 2D or 3D image "
                "is needed: pick one channel or time point first."
            )
        code = frames.parse_orientation(orientation, style, data.ndim)
        affine = frames.orientation_affine(code, voxel_size_mm, origin_mm)
        meta = {"orientation": code, **(metadata or {})}
        return cls(data, affine, name, frames.world_axes_of(code), meta)

    # -- geometry ---------------------------------------------------------------------

    @classmethod
    def grid(cls, shape, affine, name: str = "grid", world_axes: str | None = None) -> Volume:
        """A grid without data (a read-only broadcast of zeros): where voxels are, not values."""
        shape = tuple(int(n) for n in shape)
        axes = world_axes or ("RAS" if len(shape) == 3 else "RA")
        zeros = np.broadcast_to(np.zeros((), np.uint8), shape)
        return cls(zeros, np.asarray(affine, float), name, axes)

    @property
    def ndim(self) -> int:
        """Number of array axes (2 or 3)."""
        return self.data.ndim

    @property
    def shape(self) -> tuple[int, ...]:
        """Array shape, in the array's own axis order."""
        return self.data.shape

    @property
    def spacing(self) -> np.ndarray:
        """Voxel size along each array axis, mm."""
        return frames.spacing_of(self.affine)

    @property
    def orientation(self) -> str:
        """Nibabel-style code of the world directions closest to the array axes."""
        return frames.affine_orientation(self.affine, self.world_axes)

    def index_to_world(self, index: np.ndarray) -> np.ndarray:
        """World (RAS mm) position of array indices (``(..., ndim)``)."""
        return frames.apply_affine(self.affine, index)

    def world_to_index(self, points: np.ndarray) -> np.ndarray:
        """Fractional array indices of world (RAS mm) points (``(..., ndim)``)."""
        return frames.apply_affine(np.linalg.inv(self.affine), points)

    @property
    def centre_mm(self) -> np.ndarray:
        """World position (RAS mm) of the grid's centre."""
        return self.index_to_world((np.asarray(self.shape) - 1) / 2.0)

    # -- derived volumes ---------------------------------------------------------------

    def with_data(self, data: np.ndarray, name: str | None = None) -> Volume:
        """Same grid, other values (e.g. a filtered copy)."""
        if np.shape(data) != self.shape:
            raise DimensionError(
                f"New data has shape {np.shape(data)} but the grid is {self.shape}: give an array "
                "of the same shape."
            )
        return replace(self, data=np.asarray(data), name=name or self.name)

    def transformed(self, matrix: np.ndarray, name: str | None = None) -> Volume:
        """Same array, moved by a world transform (no resampling): affine <- matrix @ affine."""
        return replace(self, affine=np.asarray(matrix) @ self.affine, name=name or self.name)

    def reoriented(self, target: str = "RAS") -> Volume:
        """The same voxels with array axes running along ``target`` (nibabel code).

        Only the array layout changes; every voxel keeps its world position.
        """
        order, flip = frames.reorientation(self.affine, target, self.world_axes)
        data = np.transpose(self.data, order)
        n = self.ndim
        perm = np.zeros((n + 1, n + 1))
        for new, old in enumerate(order):
            perm[old, new] = 1.0
        perm[n, n] = 1.0
        flips = np.eye(n + 1)
        shape = data.shape
        slices = []
        for k, f in enumerate(flip):
            if f:
                flips[k, k] = -1.0
                flips[k, n] = shape[k] - 1
            slices.append(slice(None, None, -1) if f else slice(None))
        return replace(self, data=data[tuple(slices)], affine=self.affine @ perm @ flips)

    def cropped(self, box: Sequence[tuple[int, int]], name: str | None = None) -> Volume:
        """Voxels ``start <= index < stop`` along each axis, kept where they were in the world.

        Parameters
        ----------
        box : sequence of (int, int)
            ``(start, stop)`` voxel indices per array axis.

        Raises
        ------
        CropError
            If the box has the wrong length, is empty, or lies outside the volume.
        """
        if len(box) != self.ndim:
            raise CropError(
                f"The crop box has {len(box)} ranges but the volume has {self.ndim} axes: give one "
                "(start, stop) range per axis."
            )
        slices = []
        for k, ((start, stop), size) in enumerate(zip(box, self.shape, strict=True)):
            start, stop = int(start), int(stop)
            if start < 0 or stop > size or start >= stop:
                raise CropError(
                    f"The crop range {start}..{stop} on axis {k} is empty or outside the volume "
                    f"(0..{size}): choose a range inside the volume with start < stop."
                )
            slices.append(slice(start, stop))
        shift = np.eye(self.ndim + 1)
        shift[: self.ndim, self.ndim] = [s.start for s in slices]
        return replace(
            self, data=self.data[tuple(slices)], affine=self.affine @ shift, name=name or self.name
        )


def _any_finite(data: np.ndarray) -> bool:
    """Whether any value is finite: a cheap look at a subsample first, the whole array if needed."""
    return bool(np.isfinite(strided_sample(data, 100_000)).any() or np.isfinite(data).any())


def strided_sample(data: np.ndarray, max_voxels: int) -> np.ndarray:
    """A strided view of ``data`` with about ``max_voxels`` voxels (for statistics)."""
    step = max(1, round((data.size / max_voxels) ** (1 / data.ndim)))
    return data[tuple(slice(None, None, step) for _ in range(data.ndim))]


def robust_range(data: np.ndarray, percentiles: tuple[float, float] = (0.5, 99.5)):
    """Low and high percentiles of the finite values (on a subsample of ~4 M voxels)."""
    sample = np.asarray(strided_sample(np.asarray(data), 4_000_000), dtype=np.float32)
    lo, hi = np.nanpercentile(np.where(np.isfinite(sample), sample, np.nan), percentiles)
    return float(lo), float(hi)


# --------------------------------------------------------------------------- SimpleITK boundary


def to_sitk(volume: Volume, dtype: type | None = None) -> sitk.Image:
    """SimpleITK image (LPS physical space) holding the volume at the same world place."""
    data = volume.data if dtype is None else volume.data.astype(dtype, copy=False)
    if data.dtype == np.bool_:
        data = data.astype(np.uint8)
    elif data.dtype == np.float16:  # SimpleITK has no half floats
        data = data.astype(np.float32)
    elif not data.dtype.isnative:  # nor big-endian arrays on a little-endian machine
        data = data.astype(data.dtype.newbyteorder("="))
    image = sitk.GetImageFromArray(np.ascontiguousarray(data))
    origin, spacing, direction = frames.itk_geometry(volume.affine, volume.world_axes)
    image.SetOrigin(origin)
    image.SetSpacing(spacing)
    image.SetDirection(direction)
    return image


class _ImageBuffer:
    """A SimpleITK image's pixel buffer as an array interface that keeps the image alive."""

    def __init__(self, image: sitk.Image) -> None:
        self._image = image
        view = sitk.GetArrayViewFromImage(image)
        interface = dict(view.__array_interface__)
        interface["data"] = (interface["data"][0], False)  # the buffer is ours alone: writable
        self.__array_interface__ = interface


def array_of(image: sitk.Image, copy: bool = True) -> np.ndarray:
    """The pixels of a SimpleITK image in numpy axis order.

    With ``copy=False`` the array shares the image's buffer and holds a reference
    to the image (so the buffer lives as long as the array). Use it only for an
    image nobody else holds, such as a filter's fresh output: it saves a copy of
    the whole buffer (0.17 s for 77 M uint16 voxels here).
    """
    if copy:
        return sitk.GetArrayFromImage(image)
    return np.asarray(_ImageBuffer(image))


def from_sitk(
    image: sitk.Image,
    name: str = "volume",
    metadata: Mapping | None = None,
    world_axes: str | None = None,
    copy: bool = True,
) -> Volume:
    """Volume (RAS world, numpy axis order) from a SimpleITK image (LPS, ITK order).

    ``world_axes`` names the world axes of a 2D image (ITK's x, y are read as
    L, P, so the default is ``"RA"``); 3D images are always ``"RAS"``. With
    ``copy=False`` the volume shares the image's pixel buffer (see :func:`array_of`).
    """
    if image.GetNumberOfComponentsPerPixel() != 1:
        raise DimensionError(
            f"{name!r} has {image.GetNumberOfComponentsPerPixel()} components per voxel (colour "
            "or vector image): give a single-channel image."
        )
    ndim = image.GetDimension()
    if ndim not in (2, 3):
        raise DimensionError(
            f"{name!r} has {ndim} dimensions but a 2D or 3D image is needed: pick one channel or "
            "time point first."
        )
    world_axes = frames.WORLD_AXES if ndim == 3 else (world_axes or "RA")
    affine = frames.affine_from_itk(
        image.GetOrigin(), image.GetSpacing(), image.GetDirection(), world_axes
    )
    return Volume(array_of(image, copy), affine, name, world_axes, dict(metadata or {}))


# --------------------------------------------------------------------------- block means


def block_factors(volume: Volume, spacing_mm: Sequence[float]) -> tuple[int, ...]:
    """Whole-voxel block sizes, per array axis, that come closest to ``spacing_mm`` from below.

    ``spacing_mm`` is the spacing the result should have at most (e.g. a coarse grid's,
    in mm); the factors are at least 1 and never make an axis shorter than 2 voxels.
    """
    target = float(np.min(spacing_mm))
    factors = np.maximum(np.floor(target / volume.spacing + 1e-9), 1).astype(int)
    factors = np.minimum(factors, np.maximum(np.asarray(volume.shape) // 2, 1))
    return tuple(int(f) for f in factors)


def block_mean(volume: Volume, factors: Sequence[int], chunk_voxels: int = 16_000_000) -> Volume:
    """The mean of every ``factors`` block of voxels, placed at the block's centre.

    Voxels left over at the far end of an axis (fewer than a block) are dropped. The
    result keeps the volume's dtype (integer means are rounded to the nearest integer).
    Memory: one float32 chunk of at most ``chunk_voxels`` source voxels at a time.

    Parameters
    ----------
    volume : Volume
        The source.
    factors : sequence of int
        Block size per array axis (voxels), each at least 1.

    Examples
    --------
    >>> v = Volume(np.arange(16.0).reshape(4, 4, 1), np.eye(4))
    >>> small = block_mean(v, (2, 2, 1))
    >>> small.data[..., 0].tolist(), small.index_to_world([0, 0, 0]).tolist()
    ([[2.5, 4.5], [10.5, 12.5]], [0.5, 0.5, 0.0])
    """
    f = np.asarray([int(x) for x in factors])
    if f.shape != (volume.ndim,) or np.any(f < 1):
        raise SettingsError(
            f"Block factors {tuple(factors)!r} are not {volume.ndim} whole numbers >= 1: give "
            f"one factor per axis, e.g. {(2,) * volume.ndim}."
        )
    if np.all(f == 1):
        return volume
    shape = np.asarray(volume.shape) // f
    data = np.asarray(volume.data)
    out = np.empty(tuple(shape), data.dtype)
    per_plane = int(np.prod(f[1:] * shape[1:])) * int(f[0])
    step = max(1, chunk_voxels // max(per_plane, 1))
    trimmed = tuple(slice(0, int(n * k)) for n, k in zip(shape[1:], f[1:], strict=True))
    for a in range(0, int(shape[0]), step):
        b = min(int(shape[0]), a + step)
        block = data[(slice(a * f[0], b * f[0]), *trimmed)].astype(np.float32)
        split = [b - a, f[0]] + [x for n, k in zip(shape[1:], f[1:], strict=True) for x in (n, k)]
        mean = block.reshape(split).mean(axis=tuple(range(1, 2 * volume.ndim, 2)))
        if np.issubdtype(data.dtype, np.integer):
            mean = np.rint(mean)
        out[a:b] = mean
    grid = block_grid(volume, f)
    return Volume(out, grid.affine, volume.name, volume.world_axes, dict(volume.metadata))


def block_grid(volume: Volume, factors: Sequence[int]) -> Volume:
    """The grid :func:`block_mean` puts its means on (no data): ``shape // factors`` voxels,
    each at the centre of its block of ``volume``'s voxels."""
    f = np.asarray([int(x) for x in factors])
    affine = volume.affine @ np.diag([*f.astype(float), 1.0])
    affine[: volume.ndim, volume.ndim] = volume.index_to_world((f - 1) / 2)
    shape = tuple(int(n) for n in np.asarray(volume.shape) // f)
    return Volume.grid(shape, affine, volume.name, volume.world_axes)
