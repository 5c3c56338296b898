"""Where a box lands along each row of a grid, under an affine map of indices.

An affine map sends a grid row (the last index varying) to a straight line, and a
box cuts a line in one interval; so "which grid voxels land in the box" is one
index interval per row. The crop box outline of the Align preview is built from
these intervals at a cost per row, not per voxel.
"""

from __future__ import annotations

import numba
import numpy as np


def row_spans(
    lin: np.ndarray, off: np.ndarray, lo: np.ndarray, hi: np.ndarray, shape: tuple[int, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """First and last index along the grid's last axis inside a box, for every grid row.

    Grid index ``(i, j, k)`` maps to ``lin @ (i, j, k) + off`` in the box's index
    space, which is linear in ``k`` along a row; the box ``lo <= x <= hi`` is then
    an interval of ``k`` per row. Rows that miss the box get ``first > last``.

    Parameters
    ----------
    lin, off : numpy.ndarray
        ``(3, 3)`` and ``(3,)``: the linear part and offset of the index map.
    lo, hi : numpy.ndarray
        ``(3,)`` corners of the box, in the box's (continuous) index space.
    shape : tuple of int
        Shape of the grid.

    Returns
    -------
    first, last : numpy.ndarray of int64
        ``shape[:2]`` arrays of the first and last index inside, per row.

    Examples
    --------
    >>> first, last = row_spans(np.eye(3), np.zeros(3), np.array([0, 0, 2.0]),
    ...                         np.array([9, 9, 4.5]), (1, 1, 10))
    >>> int(first[0, 0]), int(last[0, 0])
    (2, 4)
    """
    i, j = np.indices(shape[:2], dtype=float)
    start = lin[:, :1, None] * i + lin[:, 1:2, None] * j + off[:, None, None]
    first = np.full(shape[:2], -np.inf)
    last = np.full(shape[:2], np.inf)
    for m in range(3):
        step = lin[m, 2]
        if abs(step) < 1e-12:  # the row runs parallel to this pair of faces
            missed = (start[m] < lo[m]) | (start[m] > hi[m])
            first[missed] = np.inf
            continue
        t0, t1 = (lo[m] - start[m]) / step, (hi[m] - start[m]) / step
        first = np.maximum(first, np.minimum(t0, t1))
        last = np.minimum(last, np.maximum(t0, t1))
    n = shape[2]
    first = np.clip(np.ceil(first), 0, n).astype(np.int64)
    last = np.clip(np.floor(last), -1, n - 1).astype(np.int64)
    return first, last


@numba.njit(nogil=True, cache=True)
def _paint(out, first, last, hole_first, hole_last):  # pragma: no cover (numba-compiled)
    for a in range(out.shape[0]):
        for b in range(out.shape[1]):
            f, g = max(first[a, b], 0), min(last[a, b], out.shape[2] - 1)
            hf, hl = hole_first[a, b], hole_last[a, b]
            for c in range(f, g + 1):
                if c < hf or c > hl:
                    out[a, b, c] = 1


def spans_mask(
    shape: tuple[int, ...],
    first: np.ndarray,
    last: np.ndarray,
    hole: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """A uint8 mask that is 1 on each row's ``[first, last]``, minus its ``hole`` interval.

    Parameters
    ----------
    shape : tuple of int
        Shape of the grid.
    first, last : numpy.ndarray
        Per-row intervals from :func:`row_spans`.
    hole : tuple of numpy.ndarray, optional
        Per-row intervals to leave at 0 (e.g. the inside of a box, to keep its faces).

    Examples
    --------
    >>> m = spans_mask((1, 1, 8), np.array([[1]]), np.array([[6]]),
    ...                (np.array([[3]]), np.array([[4]])))
    >>> m[0, 0].tolist()
    [0, 1, 1, 0, 0, 1, 1, 0]
    """
    out = np.zeros(shape, np.uint8)
    if hole is None:
        hole = (np.zeros_like(first), np.full_like(last, -1))
    _paint(out, first, last, *hole)
    return out
