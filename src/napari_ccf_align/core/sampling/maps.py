"""Sampling an image through a point map: a registration result's map, not an affine.

A result's map (``to_moving`` or ``to_atlas``: world points in, world points out, RAS
mm) is evaluated at every voxel centre of the output grid, in slabs, and the image is
read there. Linear sampling follows ITK's edge rule (:func:`itk_edge`), so files
re-applied by SimpleITK give the same image, edges included.
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


def sample_on_grid(
    image: Volume,
    grid: Volume,
    to_image: Callable[[np.ndarray], np.ndarray],
    labels: bool,
    name: str,
    slab_voxels: int = 2_000_000,
) -> Volume:
    """``image`` sampled at ``to_image(p)`` for every voxel centre ``p`` of ``grid`` (world mm).

    Nearest neighbour for ``labels`` (only existing values), else linear; 0 outside.
    Works through slabs of about ``slab_voxels`` voxels along the grid's first axis,
    so memory stays bounded on large grids.
    """
    data = np.asarray(image.data)
    out = np.zeros(grid.shape, data.dtype)
    over_grid(grid, lambda world: _sample(image, to_image(world), labels), out, slab_voxels)
    return Volume(
        out, grid.affine, name, grid.world_axes, {"registered_to": grid.name, "labels": labels}
    )


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


def _sample(volume: Volume, world: np.ndarray, labels: bool) -> np.ndarray:
    """``volume`` at world points: nearest neighbour (labels keep their values) or linear."""
    idx = volume.world_to_index(world.reshape(-1, volume.ndim)).T
    data = np.asarray(volume.data)
    if labels:
        rounded = np.rint(idx).astype(np.int64)
        inside = np.all((rounded >= 0) & (rounded < np.asarray(data.shape)[:, None]), axis=0)
        out = np.zeros(rounded.shape[1], data.dtype)
        out[inside] = data[tuple(rounded[:, inside])]
        return out
    # (so files re-applied by SimpleITK give the same image, edges included)
    idx, outside = itk_edge(idx, data.shape)
    values = ndimage.map_coordinates(
        data.astype(np.float32, copy=False), idx, order=1, mode="nearest"
    )
    values[outside] = 0.0
    if data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(data.dtype)
    return values.astype(data.dtype, copy=False)
