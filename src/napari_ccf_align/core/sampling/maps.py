"""Displacement fields read at world points, and values computed over a grid in slabs.

:func:`field_at` reads a field (RAS mm on its grid) at any points, by DIPY's edge rule
(blend to zero) or ITK's (:func:`itk_edge`: the edge value for half a voxel, zero
beyond), so a result's point maps agree with its saved files; :func:`over_grid` fills
a whole-grid array slab by slab without whole-grid temporaries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np
from scipy import ndimage

from napari_ccf_align.core.volume import Volume


def field_at(
    disp: np.ndarray, grid: Volume, points: np.ndarray, edge: Literal["dipy", "itk"] = "dipy"
) -> np.ndarray:
    """A displacement field on ``grid`` linearly interpolated at world points ``(..., ndim)``.

    Beyond the outermost grid points the two conventions differ: ``"dipy"`` blends
    towards zero over one spacing, as DIPY reads its own fields; ``"itk"`` keeps the
    edge value for half a spacing and is zero beyond, as ITK's
    ``DisplacementFieldTransform`` reads a field file. A result's maps use ``"itk"``,
    so that its saved files map every point exactly as it does.
    """
    pts = np.asarray(points, dtype=float)
    flat = pts.reshape(-1, grid.ndim)
    idx = grid.world_to_index(flat).T
    out = np.empty_like(flat)
    if edge == "itk":
        idx, outside = itk_edge(idx, grid.shape)
    for k in range(grid.ndim):
        if edge == "itk":
            out[:, k] = ndimage.map_coordinates(disp[..., k], idx, order=1, mode="nearest")
            out[outside, k] = 0.0
        else:
            out[:, k] = ndimage.map_coordinates(
                disp[..., k], idx, order=1, mode="constant", cval=0.0
            )
    return out.reshape(pts.shape)


def over_grid(
    grid: Volume,
    values_at: Callable[[np.ndarray], np.ndarray],
    out: np.ndarray,
    slab_voxels: int = 2_000_000,
) -> np.ndarray:
    """Fill ``out`` (``grid.shape`` plus any trailing axes) with ``values_at(world points)``.

    ``values_at`` gets the world positions (RAS mm, ``(n, ndim)``) of the voxel centres
    of one slab of about ``slab_voxels`` voxels along the grid's first axis at a time,
    so no whole-grid temporaries are made.
    """
    rest = grid.shape[1:]
    step = max(1, slab_voxels // max(1, int(np.prod(rest))))
    for first in range(0, grid.shape[0], step):
        stop = min(first + step, grid.shape[0])
        idx = np.indices((stop - first, *rest), dtype=np.float64).reshape(grid.ndim, -1).T
        idx[:, 0] += first
        values = values_at(grid.index_to_world(idx))
        out[first:stop] = values.reshape(stop - first, *out.shape[1:])
    return out


def itk_edge(idx: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """ITK's edge rule for continuous indices ``(ndim, n)``: ``(clipped indices, outside)``.

    Within half a voxel beyond the outermost voxel centres the edge value holds (the
    indices are clipped onto the grid), beyond that a point is outside; as in ITK's
    ``IsInsideBuffer``, the lower half-voxel bound is inside, the upper one outside.
    """
    top = np.asarray(shape, float)[:, None] - 1.0
    outside = ~np.all((idx >= -0.5) & (idx < top + 0.5), axis=0)
    return np.clip(idx, 0.0, top), outside
