"""SyN's kernels, threaded: composing displacement fields, inverting one, the CC factors.

DIPY's SyN adds each step to its field by composition, inverts both models' fields four
times an iteration and computes the cross-correlation's local sums; at the finest level
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
- :func:`cc_factors` is DIPY's own ``precompute_cc_factors_3d`` on two halves of the
  grid, each with the window's margin.

The first two are numba (interpolation in double precision, where DIPY sums in the fields'
float32), so results equal DIPY's to float32 rounding; the third is DIPY's running window
sums started at another plane, equal to rounding (``tests/test_syn_kernels.py``). The plane
blocks are fixed and their sums added in order, so results do not depend on the number of
threads. All are 3D (:func:`install` is called for 3D runs only). Fields are ``(n0, n1, n2,
3)`` in world units (mm) on one grid, ``world2grid`` its world -> index matrix, as DIPY
keeps them.
"""

from __future__ import annotations

import itertools
import math
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numba
import numpy as np

__all__ = ["cc_factors", "compose", "dipys_own", "install", "invert"]

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
    return True, t * v0 + a0, t * v1 + a1, t * v2 + a2


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
    updates, its inversions and (with a CC metric) its window sums; once DIPY has connected
    its own (its ``OPT_START`` callback); nothing within :func:`dipys_own`."""
    if not _ours:
        return
    sdr.compose = compose
    sdr.invert_vector_field = invert
    if getattr(sdr.metric, "precompute_factors", None) is not None and sdr.metric.dim == 3:
        sdr.metric.precompute_factors = cc_factors
