"""The initial alignment: one small serialisable state, and the tools that set it.

:class:`AlignmentState` is the whole of it: the rigid parameters, the crop box
and whether the crop cuts or only masks the metric. The Align widget, the
engines and the saved session all read this one object; nothing keeps a copy.
"""

from __future__ import annotations

import itertools
import json
import math
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import SimpleITK as sitk

from . import downsample, rows, sampling, space
from .boundary import guard_public_functions
from .errors import CropError, DimensionError, EmptyVolumeError, SettingsError
from .volume import Volume, from_sitk, robust_range, strided_sample, to_sitk

#: Most voxels a coarse (while-dragging) preview may have (1 M keeps it near 30 ms on 2 cores).
COARSE_MAX_VOXELS = 1_000_000

CentreMode = Literal["volume", "tissue"]


@dataclass(frozen=True)
class AlignmentState:
    """Everything the user set by hand before registration.

    Parameters
    ----------
    rigid : RigidParams
        Rotation (degrees about R, A, S), shift (mm) and flips of the moving volume.
    crop : tuple of (int, int) or None
        ``(start, stop)`` voxel range per array axis of the moving volume; None = all.
    crop_as_mask : bool
        Use the crop box as a metric mask instead of cutting the volume.
    """

    rigid: space.RigidParams = field(default_factory=space.RigidParams)
    crop: tuple[tuple[int, int], ...] | None = None
    crop_as_mask: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.rigid, space.RigidParams):
            raise SettingsError(
                f"The alignment's rigid part is a {type(self.rigid).__name__}: give a RigidParams."
            )
        if self.crop is not None:
            object.__setattr__(self, "crop", _crop_ranges(self.crop))
        object.__setattr__(self, "crop_as_mask", bool(self.crop_as_mask))

    def to_dict(self) -> dict:
        """JSON-ready dictionary."""
        return {
            "rigid": self.rigid.to_dict(),
            "crop": None if self.crop is None else [list(r) for r in self.crop],
            "crop_as_mask": self.crop_as_mask,
        }

    @classmethod
    def from_dict(cls, data: dict) -> AlignmentState:
        """Inverse of :meth:`to_dict`.

        Raises
        ------
        SettingsError, AffineError, CropError
            If a key is missing or unknown or a value is of the wrong kind.
        """
        if not isinstance(data, dict) or "rigid" not in data:
            raise SettingsError(
                "This is not a saved alignment (no 'rigid' entry): choose a file the Align "
                "widget or a session wrote."
            )
        unknown = sorted(set(data) - {"rigid", "crop", "crop_as_mask"})
        if unknown:
            raise SettingsError(
                f"Unknown alignment entr(ies) {', '.join(unknown)}: remove them, or choose a file "
                "the Align widget or a session wrote."
            )
        return cls(
            space.RigidParams.from_dict(data["rigid"]),
            data.get("crop"),
            data.get("crop_as_mask", False),
        )

    def to_json(self) -> str:
        """The state as a JSON string."""
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> AlignmentState:
        """Inverse of :meth:`to_json` (bad JSON raises :class:`SettingsError`)."""
        try:
            data = json.loads(text)
        except (TypeError, ValueError) as exc:
            raise SettingsError(
                f"The saved alignment is not valid JSON ({exc}): choose the file again or reset."
            ) from None
        return cls.from_dict(data)

    def with_rigid(self, **changes) -> AlignmentState:
        """A new state with some rigid fields replaced."""
        return replace(self, rigid=replace(self.rigid, **changes))


def _crop_ranges(crop: object) -> tuple[tuple[int, int], ...]:
    """``((start, stop), ...)`` of whole numbers, or a :class:`CropError`."""
    try:
        ranges = tuple((a, b) for a, b in crop)
        ok = all(
            isinstance(v, (int, np.integer)) or (isinstance(v, float) and v.is_integer())
            for r in ranges
            for v in r
        )
    except (TypeError, ValueError):
        ranges, ok = (), False
    if not ranges or not ok:
        raise CropError(
            f"The crop {crop!r} is not one (start, stop) pair of whole voxel numbers per axis: "
            "give e.g. ((0, 100), (10, 90), (0, 80))."
        )
    return tuple((int(a), int(b)) for a, b in ranges)


# --------------------------------------------------------------------------- centres and moments


def tissue_threshold(volume: Volume) -> float:
    """Otsu threshold separating tissue from background (computed on a subsample)."""
    data = np.asarray(volume.data, dtype=np.float32)
    sample = strided_sample(data, 2_000_000)
    sample = sample[np.isfinite(sample)]
    if sample.size == 0 or float(sample.max()) == float(sample.min()):
        raise EmptyVolumeError(
            f"{volume.name!r} has no contrast (all voxels equal): check that the right volume "
            "is selected."
        )
    otsu = sitk.OtsuThresholdImageFilter()
    otsu.SetInsideValue(0)
    otsu.SetOutsideValue(1)
    otsu.Execute(sitk.GetImageFromArray(sample.reshape(-1, 1)))
    return float(otsu.GetThreshold())


def tissue_mask(volume: Volume) -> np.ndarray:
    """Boolean mask of voxels above the Otsu threshold."""
    return np.asarray(volume.data) > tissue_threshold(volume)


def centre_of(volume: Volume, mode: CentreMode = "tissue") -> np.ndarray:
    """World position (RAS mm) of the grid centre or of the tissue centroid."""
    if mode == "volume":
        return volume.centre_mm
    idx = np.argwhere(tissue_mask(volume))
    return volume.index_to_world(idx.mean(axis=0))


def with_centre(state: AlignmentState, moving: Volume, mode: CentreMode) -> AlignmentState:
    """The same map from moving to atlas, expressed about a new centre of rotation.

    Rotation and flips stay as they are; the shift changes so that every voxel
    still lands in the same place.
    """
    c = centre_of(moving, mode)
    t = space.apply_affine(state.rigid.matrix(), c) - c
    return replace(state, rigid=replace(state.rigid, centre_mm=tuple(c), translation_mm=tuple(t)))


def centre_on_atlas(
    state: AlignmentState, moving: Volume, fixed: Volume, mode: CentreMode = "tissue"
) -> AlignmentState:
    """Shift so the moving centre (grid or tissue) lands on the atlas's, keeping rotation.

    The centre of rotation becomes the moving centre, so rotating afterwards
    turns the brain about itself.
    """
    c_moving = centre_of(moving, mode)
    c_fixed = centre_of(fixed, mode)
    return replace(
        state,
        rigid=space.RigidParams(
            state.rigid.rotation_deg,
            tuple((c_fixed - c_moving).tolist()),
            tuple(c_moving.tolist()),
            state.rigid.flip,
        ),
    )


def _principal_axes(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    mask = tissue_mask(volume)
    idx = np.argwhere(mask)
    if len(idx) < 10:
        raise EmptyVolumeError(
            f"{volume.name!r} has almost no tissue above its threshold: check the volume."
        )
    pts = volume.index_to_world(idx)
    c = pts.mean(0)
    cov = np.cov((pts - c).T)
    _, vecs = np.linalg.eigh(cov)
    return c, vecs


def match_moments(state: AlignmentState, moving: Volume, fixed: Volume) -> AlignmentState:
    """Rotate and shift so the moving tissue's principal axes and centroid meet the atlas's.

    Of the sign choices of the axes, the proper rotation closest to the
    current rotation is kept (principal axes have no direction of their own).
    """
    cm, vm = _principal_axes(moving)
    cf, vf = _principal_axes(fixed)
    current = state.rigid.linear()
    best, best_score = None, -np.inf
    for signs in np.array(np.meshgrid([1, -1], [1, -1], [1, -1])).T.reshape(-1, 3):
        r = vf @ np.diag(signs) @ vm.T
        if np.linalg.det(r) < 0:
            continue
        score = np.trace(r.T @ current)
        if score > best_score:
            best, best_score = r, score
    m = np.eye(4)
    m[:3, :3] = best
    m[:3, 3] = cf - best @ cm
    params = space.RigidParams.from_matrix(m, cm)
    return replace(state, rigid=params)


# --------------------------------------------------------------------------- crop


def check_crop(volume: Volume, crop: Sequence[tuple[int, int]] | None) -> None:
    """Raise :class:`CropError` if ``crop`` is empty or outside ``volume``."""
    if crop is not None:
        volume.cropped(crop)


def crop_between(
    crop: Sequence[tuple[int, int]] | None, source: Volume, target: Volume
) -> tuple[tuple[int, int], ...] | None:
    """The same crop box on another layout of the same voxels (e.g. the file's, napari's).

    ``source`` and ``target`` hold the same grid with axes permuted or reversed;
    the box's corners are carried through their affines.

    Examples
    --------
    >>> import numpy as np
    >>> a = Volume.from_array(np.zeros((4, 6, 8)), 0.1, "PIR")
    >>> crop_between(((1, 3), (0, 6), (2, 5)), a, a.reoriented("RAS"))
    ((2, 5), (1, 3), (0, 6))
    """
    if crop is None:
        return None
    check_crop(source, crop)
    lo = np.array([a for a, _ in crop], float)
    hi = np.array([b - 1 for _, b in crop], float)
    to_target = np.linalg.inv(target.affine) @ source.affine
    corners = np.rint(space.apply_affine(to_target, np.stack([lo, hi]))).astype(int)
    start, stop = corners.min(axis=0), corners.max(axis=0) + 1
    return tuple((int(a), int(b)) for a, b in zip(start, stop, strict=True))


def auto_crop(volume: Volume, margin_mm: float = 0.5) -> tuple[tuple[int, int], ...]:
    """Voxel box around the tissue (Otsu threshold) plus a margin in mm, clipped to the grid."""
    mask = tissue_mask(volume)
    if not mask.any():
        raise CropError(f"No tissue found in {volume.name!r}: set the crop by hand.")
    idx = np.argwhere(mask)
    margin = np.ceil(margin_mm / volume.spacing).astype(int)
    lo = np.maximum(idx.min(0) - margin, 0)
    hi = np.minimum(idx.max(0) + 1 + margin, volume.shape)
    return tuple((int(a), int(b)) for a, b in zip(lo, hi, strict=True))


def crop_mask(volume: Volume, crop: Sequence[tuple[int, int]]) -> Volume:
    """A uint8 mask on the volume's grid: 1 inside the crop box."""
    check_crop(volume, crop)
    mask = np.zeros(volume.shape, np.uint8)
    mask[tuple(slice(a, b) for a, b in crop)] = 1
    return volume.with_data(mask, name=f"{volume.name} crop mask")


def crop_box_corners(volume: Volume, crop: Sequence[tuple[int, int]] | None) -> np.ndarray:
    """World (RAS mm) corners of the crop box's outer voxel faces, ``(8, 3)``."""
    crop = crop or tuple((0, s) for s in volume.shape)
    idx = np.array(list(itertools.product(*[(a - 0.5, b - 0.5) for a, b in crop])), dtype=float)
    return volume.index_to_world(idx)


def cropped_moving(volume: Volume, state: AlignmentState) -> Volume:
    """The moving volume as the engines see it: cut to the crop box unless it only masks."""
    if state.crop is None or state.crop_as_mask:
        return volume
    return volume.cropped(state.crop)


# --------------------------------------------------------------------------- preview


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
    origin, spacing, direction = space.itk_geometry(grid.affine, grid.world_axes)
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
    corners = space.apply_affine(state.rigid.matrix(), crop_box_corners(volume, state.crop))
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
    inside = rows.row_spans(lin, off, lo, hi, grid.shape)
    core = rows.row_spans(lin, off, lo + thick, hi - thick, grid.shape)
    return inside, core


def box_faces(grid: Volume, moving: Volume, state: AlignmentState) -> np.ndarray:
    """1 on ``grid`` voxels within one output voxel of a face of the crop box (inside it).

    Computed from the transform alone (no resampling of a mask volume): along each
    grid row the box is one interval of indices (:mod:`.rows`), so the cost is per
    row and nothing the size of the moving volume.
    """
    inside, core = _box_row_spans(grid, moving, state)
    return rows.spans_mask(grid.shape, *inside, hole=core)


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
    world = space.apply_affine(state.rigid.matrix() @ moving.affine, corners)
    index = space.apply_affine(np.linalg.inv(grid.affine), world)
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
    factors = downsample.block_factors(moving, grid.spacing)
    kept = _COARSE_SOURCES.setdefault(moving, {})
    if factors not in kept:
        kept[factors] = downsample.block_mean(moving, factors)
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
    (:func:`.downsample.block_mean`, made once per volume).
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


guard_public_functions(globals())
