"""The inputs every engine registers: one preparation step shared by SimpleITK and DIPY.

The user's :class:`~.alignment.AlignmentState` holds a rigid map, flips and a crop.
Engines optimise transforms without mirrors, so a flip is applied to the moving
volume's affine first (no voxel moves in memory); the crop either cuts the moving
volume or becomes a metric mask; intensities are clipped to percentiles and
scaled to [0, 1]. :func:`prepare` does all of it, once, the same way for every engine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_ccf_align.core import frames
from napari_ccf_align.core.align import AlignmentState, crop_mask, cropped_moving
from napari_ccf_align.core.errors import EmptyVolumeError, RegistrationError
from napari_ccf_align.core.register import intensity
from napari_ccf_align.core.volume import Volume, block_factors, block_mean, robust_range


@dataclass(frozen=True)
class Prepared:
    """What an engine registers.

    Attributes
    ----------
    fixed : Volume
        The atlas, clipped and scaled to [0, 1] (float32), on its own grid (RAS).
    moving : Volume
        The user's volume, cut to the crop box (unless the crop only masks), its
        affine mirrored by :attr:`flip`, clipped and scaled to [0, 1] (float32).
    fixed_mask, moving_mask : Volume or None
        Non-zero where the metric may sample (uint8), on each volume's grid.
    flip : numpy.ndarray
        4 x 4 RAS world mirror of R (about the centre of rotation) already applied
        to :attr:`moving` when the start map mirrors; else the identity.
    start : numpy.ndarray
        4 x 4 map (RAS mm) from :attr:`moving` to the atlas that the engine starts
        from, with no mirror in it: ``start @ flip`` is the user's start map.
    centre_mm : tuple of float
        Centre of rotation (RAS mm, moving frame) the engine rotates about.
    """

    fixed: Volume
    moving: Volume
    fixed_mask: Volume | None
    moving_mask: Volume | None
    flip: np.ndarray
    start: np.ndarray
    centre_mm: tuple[float, ...]

    def unflipped(self, matrix: np.ndarray) -> np.ndarray:
        """A map of the prepared (mirrored) moving volume as a map of the user's volume.

        ``matrix`` maps :attr:`moving` to the atlas (RAS mm); the result maps the
        volume the user gave (same voxels, unmirrored affine) to the atlas.
        """
        return np.asarray(matrix) @ self.flip


def normalise(volume: Volume, percentiles: tuple[float, float]) -> Volume:
    """Clip to percentiles (of finite voxels) and scale to [0, 1] as float32.

    Raises
    ------
    EmptyVolumeError
        If the volume has no contrast between the two percentiles.

    Examples
    --------
    >>> v = Volume.from_array(np.arange(8.0).reshape(2, 2, 2), (1, 1, 1), "RAS", "nibabel")
    >>> float(normalise(v, (0, 100)).data.max())
    1.0
    """
    data = np.asarray(volume.data, dtype=np.float32)
    lo, hi = robust_range(data, percentiles)
    if not np.isfinite(hi - lo) or hi <= lo:
        raise EmptyVolumeError(
            f"{volume.name!r} has no contrast between the {percentiles[0]} and "
            f"{percentiles[1]} percentiles (all-zero or constant): check the volume."
        )
    out = np.clip((data - lo) / (hi - lo), 0.0, 1.0)
    out[~np.isfinite(out)] = 0.0
    return volume.with_data(out)


def split_mirror(matrix: np.ndarray, centre_mm) -> tuple[np.ndarray, np.ndarray]:
    """A mirror of R about ``centre_mm`` and the rest, so ``rest @ flip == matrix``.

    ``flip`` is the identity unless ``matrix`` (4 x 4, RAS mm) mirrors (negative
    determinant); then ``rest`` has a positive determinant, as the engines'
    transforms need. Two flips make a rotation, so they need no split.

    Examples
    --------
    >>> p = frames.RigidParams(rotation_deg=(10, 0, 0), flip=(True, False, False))
    >>> flip, rest = split_mirror(p.matrix(), p.centre_mm)
    >>> bool(np.allclose(rest @ flip, p.matrix())), bool(np.linalg.det(rest[:3, :3]) > 0)
    (True, True)
    """
    m = np.asarray(matrix, dtype=float)
    if np.linalg.det(m[:3, :3]) >= 0:
        return np.eye(4), m
    c = np.asarray(centre_mm, dtype=float)
    f = np.diag([-1.0, 1.0, 1.0, 1.0])
    f[:3, 3] = c - f[:3, :3] @ c
    return f, m @ f


def prepare(
    fixed: Volume,
    moving: Volume,
    state: AlignmentState | None = None,
    clip_percentiles: tuple[float, float] = (0.5, 99.5),
    fixed_mask: Volume | None = None,
    start: np.ndarray | None = None,
    bias_correction: bool = False,
    match_histogram: bool = False,
) -> Prepared:
    """Flip split, crop, block means, masks and intensity normalisation: the engines' inputs.

    The moving volume is averaged in whole-voxel blocks to about the atlas grid's spacing
    (:func:`.volume.block_mean`; the atlas is the working grid, so SyN's at its working
    resolution), so no engine holds the sample at its native resolution.

    Parameters
    ----------
    fixed : Volume
        The atlas template (RAS world).
    moving : Volume
        The user's volume in its own frame.
    state : AlignmentState, optional
        The hand alignment and crop (default: identity, no crop).
    clip_percentiles : (float, float)
        Intensities of each volume are clipped to these percentiles, then scaled to [0, 1].
    fixed_mask : Volume, optional
        Non-zero where the metric may sample the atlas.
    start : numpy.ndarray, optional
        4 x 4 moving -> atlas map (RAS mm) to start from instead of the state's
        rigid map, e.g. an earlier result's ``matrix`` (hand alignment included).
    bias_correction, match_histogram : bool
        N4 bias-field correction of the moving volume, and matching its histogram to the
        atlas's (:mod:`.intensity`), after the block means and before the clipping.

    Raises
    ------
    RegistrationError
        If the volumes differ in dimensionality or the atlas mask is empty.
    EmptyVolumeError
        If either volume has no contrast.
    CropError
        If the crop box lies outside the moving volume.
    """
    state = state or AlignmentState()
    if fixed.ndim != moving.ndim:
        raise RegistrationError(
            f"{moving.name!r} is {moving.ndim}D but {fixed.name!r} is {fixed.ndim}D: register "
            "volumes of the same dimensionality."
        )
    if fixed_mask is not None and not np.any(fixed_mask.data):
        raise RegistrationError("The atlas mask is empty: draw or choose a mask with tissue.")
    matrix = state.rigid.matrix() if start is None else frames.check_affine(start, 3)
    flip, rest = split_mirror(matrix, state.rigid.centre_mm)
    work = cropped_moving(moving, state)
    mask = crop_mask(moving, state.crop) if state.crop and state.crop_as_mask else None
    # the engines never see more of the sample than the atlas grid can: block means to
    # about its spacing (a 10 µm sample against a 100 µm grid holds 1000 times less)
    factors = block_factors(work, fixed.spacing)
    if any(f > 1 for f in factors):
        work = block_mean(work, factors)
        if mask is not None:
            blocks = block_mean(mask, factors)  # rounded means: 1 where half a block is inside
            mask = blocks.with_data((np.asarray(blocks.data) >= 1).astype(np.uint8))
    if bias_correction:
        work = intensity.bias_corrected(work)
    if match_histogram:
        work = intensity.histogram_matched(work, fixed)
    if not np.array_equal(flip, np.eye(4)):
        work = work.transformed(flip)
        mask = mask.transformed(flip) if mask is not None else None
    work = normalise(work, clip_percentiles)
    check_structure(work, moving.name)
    return Prepared(
        normalise(fixed, clip_percentiles),
        work,
        None if fixed_mask is None else fixed_mask.with_data(np.asarray(fixed_mask.data) != 0),
        mask,
        flip,
        rest,
        state.rigid.centre_mm,
    )


#: The fewest voxels along any axis a volume must have to be registered.
MIN_VOXELS_PER_AXIS = 4
#: Below this mean correlation of neighbouring voxels (at the engines' grid) a volume is
#: taken for noise: real brains score 0.9-0.97 (Allen, DeMBA P14-P56, Perens MRI at
#: 200 µm), the Allen template under noise of half its maximum 0.08, white noise 0.00.
MIN_NEIGHBOUR_CORRELATION = 0.05


def check_registrable(volume: Volume, ndim: int = 3) -> None:
    """Refuse, in one sentence, a volume no engine can register to an ``ndim``-D atlas: of
    another dimensionality, or thinner than :data:`MIN_VOXELS_PER_AXIS` voxels along an axis."""
    if volume.ndim != ndim:
        raise RegistrationError(
            f"{volume.name!r} is {volume.ndim}D ({' × '.join(map(str, volume.shape))} voxels): "
            f"registration to the atlas needs a {ndim}D volume; load the whole stack, not one "
            "section."
        )
    if min(volume.shape) < MIN_VOXELS_PER_AXIS:
        raise RegistrationError(
            f"{volume.name!r} is only {' × '.join(map(str, volume.shape))} voxels: registration "
            f"needs at least {MIN_VOXELS_PER_AXIS} voxels along every axis; load the whole "
            "volume (or a larger crop)."
        )


def neighbour_correlation(data: np.ndarray) -> float:
    """Mean correlation of each voxel with its next neighbour along each axis (1: smooth,
    0: white noise)."""
    x = np.asarray(data, dtype=np.float32)
    x = x - x.mean()
    power = float(np.mean(x * x))
    if power <= 0:
        return 0.0
    r = []
    for axis in range(x.ndim):
        a = np.moveaxis(x, axis, 0)
        r.append(float(np.mean(a[1:] * a[:-1])) / power)
    return float(np.mean(r))


def check_structure(volume: Volume, name: str) -> None:
    """Refuse a volume that looks like noise on the engines' grid: any registration of it
    would be a number with no meaning."""
    r = neighbour_correlation(volume.data)
    if r < MIN_NEIGHBOUR_CORRELATION:
        raise RegistrationError(
            f"{name!r} looks like noise at the atlas's resolution (neighbouring voxels "
            f"correlate by {r:.2f}; a brain scores about 0.9): check that this is the right "
            "file and channel."
        )


def overlap_fraction(fixed: Volume, moving: Volume, moving_to_fixed: np.ndarray) -> float:
    """Fraction of the atlas's tissue (sampled) that falls inside the moving grid.

    ``moving_to_fixed`` is the 4 x 4 RAS world map (mm) from the moving volume to
    the atlas; the atlas's brighter half of voxels is mapped back through its inverse.
    """
    data = np.asarray(fixed.data)
    step = max(1, round((data.size / 200_000) ** (1 / data.ndim)))
    sub = data[tuple(slice(None, None, step) for _ in range(data.ndim))]
    idx = np.argwhere(sub > np.percentile(sub, 50)) * step
    if len(idx) == 0:
        return 0.0
    n = fixed.ndim
    inverse = np.linalg.inv(np.asarray(moving_to_fixed, dtype=float))
    if inverse.shape[0] != n + 1:  # a 3D world map used on 2D volumes: its in-plane part
        keep = [*range(n), 3]
        inverse = inverse[np.ix_(keep, keep)]
    moved = frames.apply_affine(inverse, fixed.index_to_world(idx))
    mi = moving.world_to_index(moved)
    inside = np.all((mi > -0.5) & (mi < np.asarray(moving.shape) - 0.5), axis=1)
    return float(inside.mean())
