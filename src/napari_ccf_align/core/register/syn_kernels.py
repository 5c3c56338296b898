"""SyN's kernels, threaded: composing displacement fields, inverting one, warping an image,
the CC factors.

DIPY's SyN adds each step to its field by composition, inverts both models' fields four
times an iteration, warps both images through them and computes the cross-correlation's
local sums; at the finest level
these are over half of an iteration's time (``docs/benchmarks.md``), each on one core.
Here they run with the GIL released and the grid's first axis split between threads:

- :func:`compose` is DIPY's ``compose_vector_fields_3d``: ``comp[i] = d1[i] + t d2(i + B
  d1[i])``, ``d2`` read trilinearly where all eight neighbours exist and the composition 0
  elsewhere (DIPY's rule for a point outside ``d2``'s grid);
- :func:`invert` is DIPY's ``invert_vector_field_fixed_point_3d``, the fixed-point
  inversion of Chen et al. (2008, Med. Phys. 35(1) 81): ``p <- p - s (p + d(x + p))`` with
  DIPY's step sizes (0.75, then 0.5, each vector's step capped at that share of the
  largest residual) and its stop (the largest residual below 0.1 voxel, the mean below
  ``tolerance``, or ``max_iter`` iterations);
- :func:`warp` is DIPY's ``warp_3d``: ``warped[i] = volume[C d(A i) + B i]``, where both
  the field and the image are read from the corners of the eight that are on their grid
  (DIPY's rule for a warp: a point at the edge reads part of its neighbourhood);
- :func:`cc_factors` is DIPY's own ``precompute_cc_factors_3d`` on two halves of the
  grid, each with the window's margin.

The first three are numba (interpolation in double precision, where DIPY sums in the fields'
float32), so results equal DIPY's to float32 rounding; the last is DIPY's running window
sums started at another plane, equal to rounding (``tests/test_syn_kernels.py``). The plane
blocks are fixed and their sums added in order, so results do not depend on the number of
threads. All are 3D (:func:`install` is called for 3D runs only). Fields are ``(n0, n1, n2,
3)`` in world units (mm) on one grid, ``world2grid`` its world -> index matrix, as DIPY
keeps them.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numba
import numpy as np

__all__ = ["cc_factors", "compose", "dipys_own", "install", "invert", "smooth", "warp"]

_BLOCKS = 8  # plane blocks per call (fixed: the sums' order, and so the bits, stay put)
_SMALL = 65_536  # voxels under which a call runs as one block on the caller's thread
_pool: ThreadPoolExecutor | None = None
_ours = True  # off within :func:`dipys_own`


@contextmanager
def dipys_own() -> Iterator[None]:
    """Within it, SyN runs on DIPY's own kernels (to measure what these gain)."""
    global _ours
    before, _ours = _ours, False
    try:
        yield
    finally:
        _ours = before


@numba.njit(nogil=True, cache=True, inline="always")
def _composed(d1, flat, n0, n1, n2, b, t, k, i, j):  # pragma: no cover (numba-compiled)
    """``(inside, d1[k, i, j] + t d2(k, i, j + B d1[k, i, j]))``, the vector as three
    numbers; ``(False, 0, 0, 0)`` where a neighbour of the point is off ``d2``'s ``(n0,
    n1, n2)`` grid (or the point is not a number).

    ``d2`` comes as its flat ``(n0 * n1 * n2, 3)`` view, read at the eight corners'
    offsets with their weights worked out once, and the vector is returned, not written:
    4D indexing of each of the 24 values and writing the vector through an output array
    made the inversion's residual 1.4x slower (``docs/benchmarks.md``, session 11).
    """
    a0, a1, a2 = d1[k, i, j, 0], d1[k, i, j, 1], d1[k, i, j, 2]
    x = k + (b[0, 0] * a0 + b[0, 1] * a1 + b[0, 2] * a2)
    y = i + (b[1, 0] * a0 + b[1, 1] * a1 + b[1, 2] * a2)
    z = j + (b[2, 0] * a0 + b[2, 1] * a1 + b[2, 2] * a2)
    inside, v0, v1, v2 = _vector_at(flat, n0, n1, n2, x, y, z)
    if not inside:
        return False, 0.0, 0.0, 0.0
    return True, t * v0 + a0, t * v1 + a1, t * v2 + a2


@numba.njit(nogil=True, cache=True, inline="always")
def _vector_at(flat, n0, n1, n2, x, y, z):  # pragma: no cover (numba-compiled)
    """``(True, the vector at (x, y, z))`` of a flat ``(n0 * n1 * n2, 3)`` field read
    trilinearly where all eight corners are on its grid, else ``(False, 0, 0, 0)``."""
    if not (-1.0 < x < n0 and -1.0 < y < n1 and -1.0 < z < n2):
        return False, 0.0, 0.0, 0.0
    fx, fy, fz = math.floor(x), math.floor(y), math.floor(z)
    ix, iy, iz = int(fx), int(fy), int(fz)
    if ix < 0 or iy < 0 or iz < 0 or ix + 1 >= n0 or iy + 1 >= n1 or iz + 1 >= n2:
        return False, 0.0, 0.0, 0.0
    cx, cy, cz = x - fx, y - fy, z - fz
    ax, ay, az = 1.0 - cx, 1.0 - cy, 1.0 - cz
    w0, w1, w2, w3 = ax * ay * az, ax * ay * cz, ax * cy * az, ax * cy * cz
    w4, w5, w6, w7 = cx * ay * az, cx * ay * cz, cx * cy * az, cx * cy * cz
    o0 = (ix * n1 + iy) * n2 + iz
    o2 = o0 + n2
    o4 = o0 + n1 * n2
    o6 = o4 + n2
    v0 = (
        w0 * flat[o0, 0] + w1 * flat[o0 + 1, 0] + w2 * flat[o2, 0] + w3 * flat[o2 + 1, 0]
        + w4 * flat[o4, 0] + w5 * flat[o4 + 1, 0] + w6 * flat[o6, 0] + w7 * flat[o6 + 1, 0]
    )  # fmt: skip
    v1 = (
        w0 * flat[o0, 1] + w1 * flat[o0 + 1, 1] + w2 * flat[o2, 1] + w3 * flat[o2 + 1, 1]
        + w4 * flat[o4, 1] + w5 * flat[o4 + 1, 1] + w6 * flat[o6, 1] + w7 * flat[o6 + 1, 1]
    )  # fmt: skip
    v2 = (
        w0 * flat[o0, 2] + w1 * flat[o0 + 1, 2] + w2 * flat[o2, 2] + w3 * flat[o2 + 1, 2]
        + w4 * flat[o4, 2] + w5 * flat[o4 + 1, 2] + w6 * flat[o6, 2] + w7 * flat[o6 + 1, 2]
    )  # fmt: skip
    return True, v0, v1, v2


@numba.njit(nogil=True, cache=True)
def _compose_planes(d1, d2, b, t, comp, first, last, sums):  # pragma: no cover
    """:func:`compose` on planes ``first:last``; ``sums`` gets (count, sum of squared
    norms, sum of their squares, largest squared norm) of the points inside."""
    n0, n1, n2 = d2.shape[0], d2.shape[1], d2.shape[2]
    flat = d2.reshape(n0 * n1 * n2, 3)
    count, total, total_sq, largest = 0.0, 0.0, 0.0, 0.0
    for k in range(first, last):
        for i in range(d1.shape[1]):
            for j in range(d1.shape[2]):
                inside, v0, v1, v2 = _composed(d1, flat, n0, n1, n2, b, t, k, i, j)
                comp[k, i, j, 0] = v0
                comp[k, i, j, 1] = v1
                comp[k, i, j, 2] = v2
                if inside:
                    nn = v0 * v0 + v1 * v1 + v2 * v2
                    count += 1.0
                    total += nn
                    total_sq += nn * nn
                    largest = max(largest, nn)
    sums[0] += count
    sums[1] += total
    sums[2] += total_sq
    sums[3] = max(sums[3], largest)


@numba.njit(nogil=True, cache=True)
def _residual_planes(p, d, b, inv_spacing, q, norms, first, last, sums):  # pragma: no cover
    """The inversion's residual ``q = p + d(x + p)`` on planes ``first:last``, its norms
    in voxels; ``sums`` gets (their sum, their largest)."""
    n0, n1, n2 = d.shape[0], d.shape[1], d.shape[2]
    flat = d.reshape(n0 * n1 * n2, 3)
    total, largest = 0.0, 0.0
    for k in range(first, last):
        for i in range(p.shape[1]):
            for j in range(p.shape[2]):
                _, v0, v1, v2 = _composed(p, flat, n0, n1, n2, b, 1.0, k, i, j)
                q[k, i, j, 0] = v0
                q[k, i, j, 1] = v1
                q[k, i, j, 2] = v2
                s0 = q[k, i, j, 0] * inv_spacing[0]
                s1 = q[k, i, j, 1] * inv_spacing[1]
                s2 = q[k, i, j, 2] * inv_spacing[2]
                m = math.sqrt(s0 * s0 + s1 * s1 + s2 * s2)
                norms[k, i, j] = m
                total += m
                largest = max(largest, m)
    sums[0] += total
    sums[1] = max(sums[1], largest)


@numba.njit(nogil=True, cache=True)
def _step_planes(p, q, norms, epsilon, maxlen, first, last):  # pragma: no cover
    """``p -= s q`` on planes ``first:last``, ``s`` = ``epsilon``, capped for the vectors
    whose residual is over ``maxlen``."""
    for k in range(first, last):
        for i in range(p.shape[1]):
            for j in range(p.shape[2]):
                n = norms[k, i, j]
                s = epsilon * maxlen / n if n > maxlen else epsilon
                for c in range(3):
                    p[k, i, j, c] = p[k, i, j, c] - s * q[k, i, j, c]


@numba.njit(nogil=True, cache=True, inline="always")
def _corners(flat, n0, n1, n2, x, y, z, c):  # pragma: no cover (numba-compiled)
    """Component ``c`` of a flat ``(n0 * n1 * n2, m)`` grid read trilinearly at ``(x, y,
    z)`` from the corners that are on the grid (DIPY's ``_interpolate_scalar_3d`` and
    ``_interpolate_vector_3d``: a corner off the grid adds nothing; a point outside
    ``(-1, n)`` on any axis, or not a number, reads 0)."""
    if not (-1.0 < x < n0 and -1.0 < y < n1 and -1.0 < z < n2):
        return 0.0
    fx, fy, fz = math.floor(x), math.floor(y), math.floor(z)
    ix, iy, iz = int(fx), int(fy), int(fz)
    cx, cy, cz = x - fx, y - fy, z - fz
    ax, ay, az = 1.0 - cx, 1.0 - cy, 1.0 - cz
    if ix >= 0 and iy >= 0 and iz >= 0 and ix + 1 < n0 and iy + 1 < n1 and iz + 1 < n2:
        o0 = (ix * n1 + iy) * n2 + iz  # all eight on the grid: the common case
        o2 = o0 + n2
        o4 = o0 + n1 * n2
        o6 = o4 + n2
        return ax * (
            ay * (az * flat[o0, c] + cz * flat[o0 + 1, c])
            + cy * (az * flat[o2, c] + cz * flat[o2 + 1, c])
        ) + cx * (
            ay * (az * flat[o4, c] + cz * flat[o4 + 1, c])
            + cy * (az * flat[o6, c] + cz * flat[o6 + 1, c])
        )
    v = 0.0
    for a in range(2):
        kk = ix + a
        if kk < 0 or kk >= n0:
            continue
        wa = cx if a else ax
        for b in range(2):
            ii = iy + b
            if ii < 0 or ii >= n1:
                continue
            wb = cy if b else ay
            for e in range(2):
                jj = iz + e
                if jj < 0 or jj >= n2:
                    continue
                v += wa * wb * (cz if e else az) * flat[(kk * n1 + ii) * n2 + jj, c]
    return v


@numba.njit(nogil=True, cache=True)
def _warp_planes(volume, d, a, b, c, warped, first, last):  # pragma: no cover
    """:func:`warp` on the output planes ``first:last``."""
    n0, n1, n2 = d.shape[0], d.shape[1], d.shape[2]
    field = d.reshape(n0 * n1 * n2, 3)
    m0, m1, m2 = volume.shape
    image = volume.reshape(m0 * m1 * m2, 1)
    for k in range(first, last):
        for i in range(warped.shape[1]):
            for j in range(warped.shape[2]):
                x = a[0, 0] * k + a[0, 1] * i + a[0, 2] * j + a[0, 3]
                y = a[1, 0] * k + a[1, 1] * i + a[1, 2] * j + a[1, 3]
                z = a[2, 0] * k + a[2, 1] * i + a[2, 2] * j + a[2, 3]
                inside, e0, e1, e2 = _vector_at(field, n0, n1, n2, x, y, z)
                if not inside:  # DIPY adds the corners on the grid
                    e0 = _corners(field, n0, n1, n2, x, y, z, 0)
                    e1 = _corners(field, n0, n1, n2, x, y, z, 1)
                    e2 = _corners(field, n0, n1, n2, x, y, z, 2)
                px = c[0, 0] * e0 + c[0, 1] * e1 + c[0, 2] * e2
                py = c[1, 0] * e0 + c[1, 1] * e1 + c[1, 2] * e2
                pz = c[2, 0] * e0 + c[2, 1] * e1 + c[2, 2] * e2
                px += b[0, 0] * k + b[0, 1] * i + b[0, 2] * j + b[0, 3]
                py += b[1, 0] * k + b[1, 1] * i + b[1, 2] * j + b[1, 3]
                pz += b[2, 0] * k + b[2, 1] * i + b[2, 2] * j + b[2, 3]
                warped[k, i, j] = _corners(image, m0, m1, m2, px, py, pz, 0)


@numba.njit(nogil=True, cache=True, inline="always")
def _reflected(p, n):  # pragma: no cover (numba-compiled)
    """Index ``p`` of an axis of ``n`` mirrored into it as SciPy's ``mode="reflect"``
    does (``d c b a | a b c d | d c b a``)."""
    p = p % (2 * n)
    return 2 * n - 1 - p if p >= n else p


@numba.njit(nogil=True, cache=True)
def _smooth_planes(src, dst, w, axis, first, last):  # pragma: no cover (numba-compiled)
    """SciPy's ``correlate1d`` with the symmetric kernel ``w`` along ``axis`` (0, 1 or 2)
    of a ``(n0, n1, n2, m)`` array, ``mode="reflect"``, for the planes ``first:last`` of
    ``dst``: ``w[r] x[p] + sum_t w[r + t] (x[p - t] + x[p + t])`` in double precision,
    stored in ``dst``'s type, as SciPy sums it."""
    n0, n1, n2, m = src.shape
    r = (w.size - 1) // 2
    row = n2 * m
    acc = np.empty(n1 * row)
    turned = np.empty((n2, n1 * m), dtype=src.dtype)
    along = np.empty((n2, n1 * m))
    for k in range(first, last):
        if axis == 0:
            plane = src[k].reshape(n1 * row)
            for q in range(n1 * row):
                acc[q] = w[r] * np.float64(plane[q])
            for t in range(1, r + 1):
                lo = src[_reflected(k - t, n0)].reshape(n1 * row)
                hi = src[_reflected(k + t, n0)].reshape(n1 * row)
                wt = w[r + t]
                for q in range(n1 * row):
                    acc[q] += (np.float64(lo[q]) + np.float64(hi[q])) * wt
        elif axis == 1:
            plane = src[k].reshape(n1, row)
            for i in range(n1):
                for q in range(row):
                    acc[i * row + q] = w[r] * np.float64(plane[i, q])
                for t in range(1, r + 1):
                    lo, hi, wt = _reflected(i - t, n1), _reflected(i + t, n1), w[r + t]
                    for q in range(row):
                        acc[i * row + q] += (np.float64(plane[lo, q]) + plane[hi, q]) * wt
        else:  # along the rows: the plane turned so that they run down it, as for axis 1
            for i in range(n1):
                for j in range(n2):
                    for c in range(m):
                        turned[j, i * m + c] = src[k, i, j, c]
            col = n1 * m
            for j in range(n2):
                for q in range(col):
                    along[j, q] = w[r] * np.float64(turned[j, q])
                for t in range(1, r + 1):
                    lo, hi, wt = _reflected(j - t, n2), _reflected(j + t, n2), w[r + t]
                    for q in range(col):
                        along[j, q] += (np.float64(turned[lo, q]) + turned[hi, q]) * wt
            for i in range(n1):
                for j in range(n2):
                    for c in range(m):
                        acc[i * row + j * m + c] = along[j, i * m + c]
        out = dst[k].reshape(n1 * row)
        for q in range(n1 * row):
            out[q] = acc[q]


def _blocks(shape: tuple[int, ...]) -> list[tuple[int, int]]:
    """Plane blocks of a grid: one below ``_SMALL`` voxels (threads would cost more than
    they share), else ``_BLOCKS``; by size alone, so the sums' order is fixed."""
    n = shape[0]
    parts = 1 if math.prod(shape[:3]) < _SMALL else min(_BLOCKS, n)
    cuts = np.linspace(0, n, parts + 1).astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(cuts) if b > a]


def _threads() -> ThreadPoolExecutor:
    global _pool
    if _pool is None:
        _pool = ThreadPoolExecutor(max(1, min(os.cpu_count() or 1, 8)), "syn-kernels")
    return _pool


def _over_blocks(kernel, shape: tuple[int, ...], *args, sums: int = 0) -> np.ndarray:
    """Run ``kernel(*args, first, last[, sums])`` on every plane block of a grid of
    ``shape``, the first on this thread and the others on the pool; the blocks' sums, one
    row each, in block order."""
    blocks = _blocks(shape)
    out = np.zeros((len(blocks), max(sums, 1)))
    extra = [(out[b],) if sums else () for b in range(len(blocks))]
    futures = [
        _threads().submit(kernel, *args, first, last, *extra[b])
        for b, (first, last) in enumerate(blocks)
        if b > 0
    ]
    kernel(*args, *blocks[0], *extra[0])
    for future in futures:
        future.result()
    return out


def compose(d1, d2, premult_index, premult_disp, time_scaling, comp=None):
    """DIPY's ``compose_vector_fields_3d`` (same arguments), threaded.

    Parameters
    ----------
    d1, d2 : numpy.ndarray
        ``(n0, n1, n2, 3)`` displacement fields (mm); ``d1`` is applied first.
    premult_index : None
        Only the identity (DIPY's None) is computed here; any other goes to DIPY.
    premult_disp : numpy.ndarray or None
        ``(4, 4)`` world -> index of ``d2``'s grid (its linear part maps ``d1``'s vectors).
    time_scaling : float
        ``t`` in ``d1 + t d2(...)``.
    comp : numpy.ndarray, optional
        The output (may be ``d1`` itself: each voxel reads only its own ``d1``).

    Returns
    -------
    comp : numpy.ndarray
    stats : numpy.ndarray
        DIPY's three figures of the squared norms over the points inside: the square root
        of their largest, of their mean, and of their variance's.
    """
    if premult_index is not None:
        from dipy.align import vector_fields

        return vector_fields.compose_vector_fields_3d(
            d1, d2, premult_index, premult_disp, time_scaling, comp
        )
    if comp is None:
        comp = np.zeros_like(d1)
    b = np.eye(3) if premult_disp is None else np.asarray(premult_disp, float)[:3, :3]
    sums = _over_blocks(
        _compose_planes, d1.shape, d1, d2, np.ascontiguousarray(b), float(time_scaling),
        comp, sums=4,
    )  # fmt: skip
    count, total, total_sq = (float(x) for x in sums[:, :3].sum(axis=0))
    mean = total / count if count else math.nan
    stats = np.array(
        [
            math.sqrt(sums[:, 3].max()),
            math.sqrt(mean),
            math.sqrt(max(total_sq / count - mean * mean, 0.0)) if count else math.nan,
        ]
    )
    return comp, stats


def invert(d, world2grid, spacing, max_iter, tolerance, start=None):
    """DIPY's ``invert_vector_field_fixed_point_3d`` (same arguments), threaded.

    Parameters
    ----------
    d : numpy.ndarray
        ``(n0, n1, n2, 3)`` displacement field (mm) to invert.
    world2grid : numpy.ndarray
        ``(4, 4)`` world -> index of its grid.
    spacing : numpy.ndarray
        Voxel size (mm) along each axis; residuals are measured in voxels.
    max_iter : int
        At most this many fixed-point iterations.
    tolerance : float
        Stop once the mean residual (voxels) is at most this.
    start : numpy.ndarray, optional
        A first estimate of the inverse (DIPY passes the previous one); zero if None.

    Returns
    -------
    numpy.ndarray
        The inverse field, ``d``'s shape and dtype.
    """
    p = np.zeros_like(d) if start is None else np.array(start, dtype=d.dtype)
    q = np.zeros_like(d)
    norms = np.zeros(d.shape[:3])
    b = np.ascontiguousarray(np.asarray(world2grid, float)[:3, :3])
    inv_spacing = 1.0 / np.asarray(spacing, float)
    done, largest, error = 0, 1.0, 1.0 + tolerance
    while largest > 0.1 and done < max_iter and error > tolerance:
        epsilon = 0.75 if done == 0 else 0.5
        sums = _over_blocks(_residual_planes, d.shape, p, d, b, inv_spacing, q, norms, sums=2)
        largest = float(sums[:, 1].max())
        _over_blocks(_step_planes, d.shape, p, q, norms, epsilon, largest * epsilon)
        error = float(sums[:, 0].sum()) / norms.size
        done += 1
    return p


def warp(volume, d1, affine_idx_in=None, affine_idx_out=None, affine_disp=None, out_shape=None):
    """DIPY's ``warp_3d`` (same arguments), threaded: ``warped[i] = volume[C d1(A i) + B
    i]``, both read trilinearly from the corners on their grid.

    Parameters
    ----------
    volume : numpy.ndarray
        ``(m0, m1, m2)`` image to warp.
    d1 : numpy.ndarray
        ``(n0, n1, n2, 3)`` displacement field (mm).
    affine_idx_in, affine_idx_out, affine_disp : numpy.ndarray or None
        DIPY's ``A`` (output index -> ``d1``'s index), ``B`` (output index -> ``volume``'s
        index) and ``C`` (its linear part maps a displacement to ``volume``'s index units);
        None is the identity.
    out_shape : sequence of int, optional
        The output grid (default: ``d1``'s).

    Returns
    -------
    numpy.ndarray
        The warped image, ``volume``'s dtype.
    """
    shape = tuple(int(n) for n in (d1.shape[:3] if out_shape is None else out_shape))
    eye = np.eye(4)
    a, b, c = (
        eye if m is None else np.ascontiguousarray(np.asarray(m, float))
        for m in (affine_idx_in, affine_idx_out, affine_disp)
    )
    volume = np.ascontiguousarray(volume)
    warped = np.zeros(shape, dtype=volume.dtype)
    _over_blocks(_warp_planes, shape, volume, np.ascontiguousarray(d1), a, b, c, warped)
    return warped


def smooth(field, sigma):
    """Each component of a vector field smoothed as ``scipy.ndimage.gaussian_filter(
    field[..., c], sigma)`` does (``mode="reflect"``, ``truncate=4``; axis by axis, each
    pass stored in the field's type), the components side by side and threaded.

    Parameters
    ----------
    field : numpy.ndarray
        ``(n0, n1, n2, m)`` field (left unchanged).
    sigma : float
        Standard deviation of the Gaussian (voxels), the same on every axis.

    Returns
    -------
    numpy.ndarray
        The smoothed field, a new array of ``field``'s shape and dtype.
    """
    radius = int(4.0 * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    w = np.exp(-0.5 / (sigma * sigma) * x**2)
    w = w / w.sum()
    a = np.array(field, order="C")
    b = np.empty_like(a)
    for axis, (src, dst) in enumerate(((a, b), (b, a), (a, b))):
        _over_blocks(_smooth_planes, a.shape, src, dst, w, axis)
    return b


def _cc_forward(metric):
    """DIPY's ``CCMetric.compute_forward`` with the step smoothed by :func:`smooth`."""
    step, metric.energy = metric.compute_forward_step(
        metric.gradient_static, metric.factors, metric.radius
    )
    return smooth(np.asarray(step), metric.sigma_diff)


def _cc_backward(metric):
    """DIPY's ``CCMetric.compute_backward`` with the step smoothed by :func:`smooth`."""
    step, _ = metric.compute_backward_step(metric.gradient_moving, metric.factors, metric.radius)
    return smooth(np.asarray(step), metric.sigma_diff)


def _warping_function(model, interpolation, *, warp_coordinates=False):
    """A DIPY map's ``_get_warping_function`` with :func:`warp` for its 3D linear warps."""
    if model.dim == 3 and interpolation == "linear" and not warp_coordinates:
        return warp
    return type(model)._get_warping_function(
        model, interpolation, warp_coordinates=warp_coordinates
    )


def cc_factors(static, moving, radius):
    """DIPY's ``precompute_cc_factors_3d`` (same arguments) on the two halves of the first
    axis at once, each computed with ``radius`` planes of margin.

    Parameters
    ----------
    static, moving : numpy.ndarray
        ``(n0, n1, n2)`` images on one grid.
    radius : int
        Half the cross-correlation window's side (voxels).

    Returns
    -------
    numpy.ndarray
        ``(n0, n1, n2, 5)``: DIPY's five factors per voxel.
    """
    from dipy.align import crosscorr

    n = static.shape[0]
    if n < 4 * (radius + 1) or static.size < _SMALL:
        return np.asarray(crosscorr.precompute_cc_factors_3d(static, moving, radius))

    def part(first: int, last: int) -> np.ndarray:
        lo, hi = max(0, first - radius), min(n, last + radius)
        factors = crosscorr.precompute_cc_factors_3d(static[lo:hi], moving[lo:hi], radius)
        return np.asarray(factors)[first - lo : last - lo]

    half = n // 2
    second = _threads().submit(part, half, n)
    return np.concatenate([part(0, half), second.result()])


def install(sdr) -> None:
    """Let a DIPY ``SymmetricDiffeomorphicRegistration`` use these kernels for its field
    updates, its inversions, its two models' image warps and (with a CC metric) its window
    sums; once DIPY has connected its own (its ``OPT_START`` callback); nothing within
    :func:`dipys_own`."""
    if not _ours:
        return
    for model in (sdr.static_to_ref, sdr.moving_to_ref):
        model._get_warping_function = functools.partial(_warping_function, model)
    sdr.compose = compose
    sdr.invert_vector_field = invert
    from dipy.align.metrics import CCMetric

    if type(sdr.metric) is CCMetric and sdr.metric.dim == 3:
        sdr.metric.precompute_factors = cc_factors
        sdr.metric.compute_forward = functools.partial(_cc_forward, sdr.metric)
        sdr.metric.compute_backward = functools.partial(_cc_backward, sdr.metric)
