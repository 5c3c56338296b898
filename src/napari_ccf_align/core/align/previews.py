"""The Align previews: the moving volume on the atlas grid through the start transform.

Coarse while dragging (block means of the moving volume on a coarse grid), exact
on release (the shown slices first), with the crop box's outline; sampled by
:mod:`napari_ccf_align.core.sampling` through exactly the map the engines start from.
"""

from __future__ import annotations

import itertools
import math
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import SimpleITK as sitk

from napari_ccf_align.core import frames, sampling
from napari_ccf_align.core.align.state import (
    COARSE_MAX_VOXELS,
    AlignmentState,
    check_crop,
    crop_box_corners,
)
from napari_ccf_align.core.errors import DimensionError
from napari_ccf_align.core.volume import (
    Volume,
    block_factors,
    block_mean,
    from_sitk,
    robust_range,
    to_sitk,
)


def coarse_grid(fixed: Volume, max_voxels: int = COARSE_MAX_VOXELS) -> Volume:
    """An empty grid covering the same world box as ``fixed`` with at most ``max_voxels``."""
    factor = max(1, math.ceil((np.prod(fixed.shape) / max_voxels) ** (1 / fixed.ndim)))
    if factor == 1:
        return fixed
    shape = tuple(max(1, s // factor) for s in fixed.shape)
    # keep the box: the first voxel centre moves by half the new spacing minus half the old
    scale = np.diag([*([factor] * fixed.ndim), 1.0]).astype(float)
    affine = fixed.affine @ scale
    affine[: fixed.ndim, fixed.ndim] = fixed.index_to_world(np.full(fixed.ndim, (factor - 1) / 2))
    return Volume.grid(shape, affine, f"{fixed.name} (coarse)", fixed.world_axes)


def resample(
    grid: Volume,
    moving: Volume,
    transform: sitk.Transform,
    interpolator: int = sitk.sitkLinear,
    default: float = 0.0,
) -> Volume:
    """The moving volume sampled on ``grid`` through an ITK (fixed -> moving) transform.

    Only ``grid``'s geometry is used (its voxels are not read or copied). The result
    keeps the moving volume's data type (a uint16 volume is previewed as uint16, at
    half the memory of float32).
    """
    if moving.ndim != grid.ndim:
        raise DimensionError(
            f"{moving.name!r} is {moving.ndim}D but {grid.name!r} is {grid.ndim}D: choose a "
            f"{grid.ndim}D moving volume."
        )
    origin, spacing, direction = frames.itk_geometry(grid.affine, grid.world_axes)
    f = sitk.ResampleImageFilter()
    f.SetSize([int(n) for n in grid.shape[::-1]])
    f.SetOutputOrigin(origin)
    f.SetOutputSpacing(spacing)
    f.SetOutputDirection(direction)
    f.SetTransform(transform)
    f.SetInterpolator(interpolator)
    f.SetDefaultPixelValue(default)
    out = f.Execute(to_sitk(moving))
    return from_sitk(out, f"{moving.name} (aligned)", world_axes=grid.world_axes, copy=False)


def preview(fixed: Volume, moving: Volume, state: AlignmentState, coarse: bool = False) -> Volume:
    """The moving volume on the atlas grid through exactly the engines' initial transform.

    Linear interpolation by the rules of SimpleITK's resampler (see
    :mod:`.sampling`), through ``state.rigid.matrix()``, the map the SimpleITK
    and DIPY initial transforms are built from.

    Parameters
    ----------
    moving, fixed : Volume
        The user's volume and the atlas template (both 3D).
    state : AlignmentState
        The alignment; a crop that cuts is applied first (as if the volume were cut).
    coarse : bool
        Sample on a grid of at most :data:`COARSE_MAX_VOXELS` voxels covering the
        same box (for interactive dragging); otherwise on the atlas grid itself.
    """
    return preview_with_box(fixed, moving, state, coarse).image


def crop_box_edges(volume: Volume, state: AlignmentState) -> np.ndarray:
    """The 12 edges of the crop box where the alignment puts them: ``(12, 2, 3)`` RAS mm."""
    corners = frames.apply_affine(state.rigid.matrix(), crop_box_corners(volume, state.crop))
    edges = []
    for i in range(8):
        for bit in (1, 2, 4):
            j = i | bit
            if j != i:
                edges.append((corners[i], corners[j]))
    return np.asarray(edges)


@dataclass(frozen=True)
class Preview:
    """What the Align widget shows: the aligned volume and the crop box on the atlas grid."""

    image: Volume
    box: Volume | None  # None when there is no crop
    coarse: bool
    partial: bool = False  # only a slab of the grid (the shown slice), the rest follows
    limits: tuple[float, float] | None = None  # the moving volume's robust display range


def _box_row_spans(grid: Volume, moving: Volume, state: AlignmentState):
    """Per grid row, the index intervals inside the crop box and inside its core.

    The core is the box shrunk by one output voxel's reach on every side, so
    "inside but not core" is a shell one voxel thick along the faces.
    """
    crop = state.crop or tuple((0, s) for s in moving.shape)
    check_crop(moving, crop)
    lo = np.array([a for a, _ in crop], float) - 0.5
    hi = np.array([b for _, b in crop], float) - 0.5
    m = sampling.index_map(moving.affine, grid.affine, state.rigid.matrix())  # grid -> moving
    lin, off = m[:3, :3], m[:3, 3]
    thick = np.abs(lin).sum(axis=1)  # moving voxels per output voxel step, per moving axis
    inside = sampling.row_spans(lin, off, lo, hi, grid.shape)
    core = sampling.row_spans(lin, off, lo + thick, hi - thick, grid.shape)
    return inside, core


def box_faces(grid: Volume, moving: Volume, state: AlignmentState) -> np.ndarray:
    """1 on ``grid`` voxels within one output voxel of a face of the crop box (inside it).

    Computed from the transform alone (no resampling of a mask volume): along each
    grid row the box is one interval of indices (:mod:`.rows`), so the cost is per
    row and nothing the size of the moving volume.
    """
    inside, core = _box_row_spans(grid, moving, state)
    return sampling.spans_mask(grid.shape, *inside, hole=core)


def footprint(
    grid: Volume, moving: Volume, state: AlignmentState
) -> tuple[tuple[int, int], ...] | None:
    """The box of ``grid`` voxels the moving volume (or its crop box) can land on.

    The corners of the moving voxels' extent (the crop box when it cuts) go
    through the alignment into grid indices; their bounding box, one voxel
    wider on every side, holds every grid voxel whose interpolated value can
    differ from the background. Every other voxel of a resample is 0.

    Returns
    -------
    tuple of (int, int) or None
        ``(start, stop)`` grid indices per axis; None when nothing lands on the grid.
    """
    cut = state.crop is not None and not state.crop_as_mask
    box = state.crop if cut else tuple((0, n) for n in moving.shape)
    corners = np.array(list(itertools.product(*[(a - 0.5, b - 0.5) for a, b in box])))
    world = frames.apply_affine(state.rigid.matrix() @ moving.affine, corners)
    index = frames.apply_affine(np.linalg.inv(grid.affine), world)
    lo = np.maximum(np.floor(index.min(axis=0)).astype(int) - 1, 0)
    hi = np.minimum(np.ceil(index.max(axis=0)).astype(int) + 2, grid.shape)
    if np.any(lo >= hi):
        return None
    return tuple((int(a), int(b)) for a, b in zip(lo, hi, strict=True))


_COARSE_SOURCES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _coarse_source(moving: Volume, grid: Volume) -> tuple[Volume, tuple[int, ...]]:
    """Block means of ``moving`` near ``grid``'s spacing (kept while the Volume lives).

    A coarse grid point-sampling a fine volume is slow (each point reads voxels far
    from the last) and aliased; sampling the block means is neither.
    """
    factors = block_factors(moving, grid.spacing)
    kept = _COARSE_SOURCES.setdefault(moving, {})
    if factors not in kept:
        kept[factors] = block_mean(moving, factors)
    return kept[factors], factors


def _pasted(part: np.ndarray, box: Sequence[tuple[int, int]], shape) -> np.ndarray:
    """``part`` placed at ``box`` in zeros of ``shape`` (untouched pages cost nothing)."""
    whole = np.zeros(shape, part.dtype)
    whole[tuple(slice(a, b) for a, b in box)] = part
    return whole


def _check_3d(fixed: Volume, moving: Volume) -> None:
    for v in (fixed, moving):
        if v.ndim != 3:
            raise DimensionError(
                f"{v.name!r} is {v.ndim}D but the preview needs 3D volumes: choose a 3D volume."
            )


def preview_with_box(
    fixed: Volume, moving: Volume, state: AlignmentState, coarse: bool = False
) -> Preview:
    """:func:`preview` plus the crop box outline through the same transform (if cropping).

    Only the grid voxels the volume (or its crop box) can land on are sampled
    (:func:`footprint`); the rest are 0. A crop that cuts is sampled as if the
    volume were cut to it (no copy is made). A coarse preview samples block means
    of the moving volume near the coarse grid's spacing
    (:func:`.block_mean`, made once per volume).
    """
    _check_3d(fixed, moving)
    grid = coarse_grid(fixed) if coarse else fixed
    region = footprint(grid, moving, state)
    cut = state.crop if state.crop is not None and not state.crop_as_mask else None
    check_crop(moving, state.crop)
    source = moving
    if coarse:
        source, factors = _coarse_source(moving, grid)
        if cut is not None:  # the box in blocks: the blocks it touches
            cut = tuple(
                (a // f, min(-(-b // f), n))
                for (a, b), f, n in zip(cut, factors, source.shape, strict=True)
            )
    data = sampling.linear(
        np.asarray(source.data),
        sampling.index_map(source.affine, grid.affine, state.rigid.matrix()),
        grid.shape,
        box=cut,
        region=region or tuple((0, 0) for _ in grid.shape),
    )
    image = Volume(data, grid.affine, f"{moving.name} (aligned)", grid.world_axes)
    box = None
    if state.crop is not None:
        box = np.zeros(grid.shape, np.uint8)
        if region is not None:
            box = _pasted(box_faces(grid.cropped(region), moving, state), region, grid.shape)
    return _preview(image, box, moving, coarse)


def _preview(image: Volume, box: np.ndarray | None, moving: Volume, coarse: bool) -> Preview:
    box_volume = None if box is None else image.with_data(box, name=f"{moving.name} crop box")
    return Preview(image, box_volume, coarse, limits=display_range(moving))


_DISPLAY_RANGES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def display_range(volume: Volume) -> tuple[float, float]:
    """Contrast limits for showing ``volume`` (and its previews): its 0.5-99.5 percentiles.

    Computed once per Volume (on a subsample). A preview that is still mostly empty
    (the volume far off the atlas) would give limits near 0 and a saturated picture.
    """
    if volume not in _DISPLAY_RANGES:
        lo, hi = robust_range(volume.data)
        _DISPLAY_RANGES[volume] = (lo, hi) if hi > lo else (lo, lo + 1.0)
    return _DISPLAY_RANGES[volume]


def _slab_box(fixed: Volume, axis: int, world_mm: float, half: int) -> list[tuple[int, int]] | None:
    point = fixed.centre_mm.copy()
    point[axis] = world_mm
    index = round(float(fixed.world_to_index(point)[axis]))
    lo, hi = max(0, index - half), min(fixed.shape[axis], index + half + 1)
    if lo >= hi:
        return None
    box = [(0, n) for n in fixed.shape]
    box[axis] = (lo, hi)
    return box


def _on_grid(part: Volume, grid: Volume, box: Sequence[tuple[int, int]]) -> Volume:
    """``part`` (the ``box`` of ``grid``) placed in zeros of the whole grid."""
    return Volume(_pasted(part.data, box, grid.shape), grid.affine, part.name, grid.world_axes)


def exact_previews(
    fixed: Volume, moving: Volume, state: AlignmentState, shown: tuple[int, float] | None
) -> Iterator[Preview]:
    """The exact preview, in two steps when the grid is big and a slice is shown.

    First the few slices around the shown one (``shown = (world axis, position in mm)``),
    which take milliseconds, placed on the whole grid (the rest 0, so that the layer
    keeps its place and size); then the whole grid. Both through the same transform.
    """
    if shown is not None and np.prod(fixed.shape) > COARSE_MAX_VOXELS:
        box = _slab_box(fixed, *shown, half=2)
        if box is not None:
            part = preview_with_box(fixed.cropped(box), moving, state)
            image = _on_grid(part.image, fixed, box)
            outline = None if part.box is None else _on_grid(part.box, fixed, box)
            yield Preview(image, outline, coarse=False, partial=True, limits=part.limits)
    yield preview_with_box(fixed, moving, state)
    if np.prod(fixed.shape) > COARSE_MAX_VOXELS:  # ready for the next drag (once per volume)
        _coarse_source(moving, coarse_grid(fixed))
