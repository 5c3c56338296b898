"""Linear (trilinear) sampling of a 3D array through an affine map of indices.

The previews resample the user's volume onto the atlas grid many times. SimpleITK's
``ResampleImageFilter`` does that at about 28 ns of CPU per output voxel on this
project's 2-core test machine (1.0 - 1.2 s for the 77 M voxels of the 25 µm grid);
:func:`linear` takes 0.65 - 0.8 of that time, because it does nothing but trilinear
interpolation of a grid that an affine map sends into the source array (see
``docs/benchmarks.md``).

It follows the rules of ITK's ``LinearInterpolateImageFunction`` as used by
``ResampleImageFilter``, so that the preview is the resample the engines would make:

- a grid voxel whose continuous source index ``x`` lies in ``[lo - 0.5, hi - 0.5)``
  on every axis (``lo``, ``hi`` the source box; the whole array by default) is
  interpolated, every other one is 0;
- the neighbours of a point within half a voxel of the box are clamped to the box
  (the edge value continues for half a voxel);
- interpolation runs along the last array axis first (ITK's x), then the middle, then
  the first, as ``a + (b - a) * t`` in double precision.

One difference is deliberate: integer outputs are rounded to the nearest integer,
where ITK truncates (an identity resample of a uint16 volume with 25 µm voxels loses
1 in about 40 % of its voxels there, because the identity is only exact to an ulp).
Floating-point outputs are ITK's value rounded to the output type.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from napari_ccf_align.core.errors import DimensionError

__all__ = ["index_map", "linear", "warm_up"]


def index_map(
    source_affine: np.ndarray, grid_affine: np.ndarray, world_map: np.ndarray
) -> np.ndarray:
    """4 x 4 map from grid indices to continuous source indices.

    Parameters
    ----------
    source_affine, grid_affine : numpy.ndarray
        ``(4, 4)`` index-to-world (RAS mm) affines of the source array and of the grid.
    world_map : numpy.ndarray
        ``(4, 4)`` RAS map taking source-world points to their place on the grid's
        world (the alignment, e.g. ``RigidParams.matrix()``).

    Examples
    --------
    >>> shift = np.eye(4); shift[0, 3] = 2.0          # the source moved by +2 mm along R
    >>> index_map(np.eye(4), np.eye(4), shift) @ [5, 0, 0, 1]
    array([3., 0., 0., 1.])
    """
    return np.linalg.inv(np.asarray(world_map, float) @ np.asarray(source_affine, float)) @ (
        np.asarray(grid_affine, float)
    )


@numba.njit(nogil=True, cache=True, inline="always")
def blend(src, i, j, k, i1, j1, k1, dx, dy, dz):  # pragma: no cover (numba-compiled)
    """Trilinear blend of the 8 voxels at ``i..i1, j..j1, k..k1``, last axis first (ITK's x),
    as ``a + (b - a) * t`` in double precision."""
    v00 = float(src[i, j, k])
    v00 += (float(src[i, j, k1]) - v00) * dz
    v01 = float(src[i, j1, k])
    v01 += (float(src[i, j1, k1]) - v01) * dz
    v10 = float(src[i1, j, k])
    v10 += (float(src[i1, j, k1]) - v10) * dz
    v11 = float(src[i1, j1, k])
    v11 += (float(src[i1, j1, k1]) - v11) * dz
    v0 = v00 + (v01 - v00) * dy
    v1 = v10 + (v11 - v10) * dy
    return v0 + (v1 - v0) * dx


@numba.njit(nogil=True, cache=True, inline="always")
def rounded(v, rounding):  # pragma: no cover (numba-compiled)
    """``v`` ready for the output's cast: 1 unsigned (+0.5, the cast floors), 2 signed
    (rounded half up), 0 floating point (as it is)."""
    if rounding == 1:
        return v + 0.5
    if rounding == 2:
        return math.floor(v + 0.5)
    return v


@numba.njit(nogil=True, cache=True)
def _linear_planes(src, m, lo, hi, region, out, first, last, rounding):  # pragma: no cover
    # numba-compiled, so coverage does not see it; the tests compare it with SimpleITK.
    # Every number the loops read is a local: `out` could alias the arrays, so LLVM
    # would otherwise load them again for every voxel.
    m00, m01, m02, m03 = m[0, 0], m[0, 1], m[0, 2], m[0, 3]
    m10, m11, m12, m13 = m[1, 0], m[1, 1], m[1, 2], m[1, 3]
    m20, m21, m22, m23 = m[2, 0], m[2, 1], m[2, 2], m[2, 3]
    lo0, lo1, lo2 = lo[0], lo[1], lo[2]
    hi0, hi1, hi2 = hi[0] - 1, hi[1] - 1, hi[2] - 1  # last valid index
    x_lo, y_lo, z_lo = lo0 - 0.5, lo1 - 0.5, lo2 - 0.5
    x_hi, y_hi, z_hi = hi0 + 0.5, hi1 + 0.5, hi2 + 0.5
    b_first, b_last = region[1, 0], region[1, 1]
    c_first, c_last = region[2, 0], region[2, 1]
    for a in range(first, last):
        for b in range(b_first, b_last):
            x0 = m00 * a + m01 * b + m03
            y0 = m10 * a + m11 * b + m13
            z0 = m20 * a + m21 * b + m23
            for c in range(c_first, c_last):
                x = x0 + m02 * c
                y = y0 + m12 * c
                z = z0 + m22 * c
                if not (x_lo <= x < x_hi and y_lo <= y < y_hi and z_lo <= z < z_hi):
                    continue
                # floor for x >= -1 (truncation of a positive number is cheaper)
                i = int(x + 1.0) - 1
                j = int(y + 1.0) - 1
                k = int(z + 1.0) - 1
                dx = x - i
                dy = y - j
                dz = z - k
                if i < lo0:
                    i, dx = lo0, 0.0
                if j < lo1:
                    j, dy = lo1, 0.0
                if k < lo2:
                    k, dz = lo2, 0.0
                i1 = i + 1 if i < hi0 else i
                j1 = j + 1 if j < hi1 else j
                k1 = k + 1 if k < hi2 else k
                out[a, b, c] = rounded(blend(src, i, j, k, i1, j1, k1, dx, dy, dz), rounding)


#: Grids smaller than this are sampled on the calling thread alone (about 10 ms here).
SMALL_GRID_VOXELS = 2_000_000


def _threads() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


def linear(
    source: np.ndarray,
    grid_to_source: np.ndarray,
    shape: Sequence[int],
    box: Sequence[tuple[int, int]] | None = None,
    region: Sequence[tuple[int, int]] | None = None,
) -> np.ndarray:
    """``source`` sampled by linear interpolation on a grid of ``shape``.

    Parameters
    ----------
    source : numpy.ndarray
        3D array (any real dtype; bool is read as 0/1 and gives uint8, float16 gives
        float32; a non-native byte order is converted first, at the cost of a copy).
    grid_to_source : numpy.ndarray
        ``(4, 4)`` affine from grid index to continuous source index (see
        :func:`index_map`).
    shape : sequence of int
        The grid's shape.
    box : sequence of (int, int), optional
        Source index range ``[start, stop)`` per axis to sample from, as if the
        source were cut to it (a crop that keeps world positions). Default: all.
    region : sequence of (int, int), optional
        Grid index range to compute; the rest of the grid is 0. Default: all.

    Returns
    -------
    numpy.ndarray
        Array of ``shape`` with the source's dtype; 0 wherever the box does not land.

    Examples
    --------
    >>> src = np.arange(8, dtype=np.float32).reshape(2, 2, 2)
    >>> half = np.eye(4); half[2, 3] = 0.5           # half a voxel along the last axis
    >>> linear(src, half, (2, 2, 1))[:, :, 0]
    array([[0.5, 2.5],
           [4.5, 6.5]], dtype=float32)
    """
    if source.ndim != 3 or len(shape) != 3:
        raise DimensionError(
            f"linear sampling needs a 3D source and grid, got {source.ndim}D and {len(shape)}D."
        )
    if source.dtype == np.bool_:
        source = source.view(np.uint8)
    if np.iscomplexobj(source) or not np.issubdtype(source.dtype, np.number):
        raise TypeError(
            f"Cannot interpolate an array of {source.dtype}: give a real-valued (integer or "
            "float) volume."
        )
    src = np.asarray(source)  # any strides: a copy of a big volume would cost more
    if src.dtype == np.float16 or not src.dtype.isnative:  # types the kernel cannot read
        src = src.astype(np.float32 if src.dtype == np.float16 else src.dtype.newbyteorder("="))
    box = tuple((0, n) for n in src.shape) if box is None else tuple(box)
    region = tuple((0, n) for n in shape) if region is None else tuple(region)
    out = np.zeros(tuple(int(n) for n in shape), src.dtype)
    lo = np.array([max(0, int(a)) for a, _ in box], np.int64)
    hi = np.array([min(n, int(b)) for (_, b), n in zip(box, src.shape, strict=True)], np.int64)
    reg = np.array(
        [[max(0, int(a)), min(n, int(b))] for (a, b), n in zip(region, out.shape, strict=True)],
        np.int64,
    )
    if np.any(hi <= lo) or np.any(reg[:, 1] <= reg[:, 0]):
        return out
    m = np.ascontiguousarray(grid_to_source, dtype=np.float64)
    rounding = 1 if src.dtype.kind == "u" else 2 if src.dtype.kind == "i" else 0
    # small grids in one call: each extra thread needs the GIL to start and to report,
    # and a busy GUI thread hands the GIL over only every few milliseconds
    voxels = int(np.prod(reg[:, 1] - reg[:, 0]))
    threads = 1 if voxels < SMALL_GRID_VOXELS else _threads()
    bounds = np.linspace(reg[0, 0], reg[0, 1], min(threads, reg[0, 1] - reg[0, 0]) + 1)
    chunks = [
        (int(a), int(b)) for a, b in zip(bounds[:-1].round(), bounds[1:].round(), strict=True)
    ]
    if len(chunks) == 1:
        _linear_planes(src, m, lo, hi, reg, out, *chunks[0], rounding)
        return out
    with ThreadPoolExecutor(len(chunks)) as pool:
        jobs = [
            pool.submit(_linear_planes, src, m, lo, hi, reg, out, a, b, rounding) for a, b in chunks
        ]
        for job in jobs:
            job.result()
    return out


def warm_up(dtypes: Sequence[type] = (np.uint16, np.float32)) -> None:
    """Load the compiled kernel for ``dtypes`` now (compile it, the first time ever).

    numba holds the GIL while it loads or compiles (0.3 s from its cache here, about
    1 s per type to compile), so a GUI calls this while it builds its widgets rather
    than let the first preview or result stall the screen.
    """
    for dtype in dtypes:
        linear(np.zeros((1, 1, 1), dtype), np.eye(4), (1, 1, 1))
