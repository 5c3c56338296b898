"""Setting the alignment from the images: centring, principal-axis moments, the tissue box."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import SimpleITK as sitk

from napari_ccf_align.core import frames
from napari_ccf_align.core.align.state import AlignmentState, CentreMode
from napari_ccf_align.core.errors import CropError, EmptyVolumeError
from napari_ccf_align.core.volume import (
    Volume,
    strided_sample,
)


def tissue_threshold(volume: Volume) -> float:
    """Otsu threshold separating tissue from background (computed on a subsample)."""
    sample = strided_sample(np.asarray(volume.data), 2_000_000).astype(np.float32)
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
    _, mean, _ = index_moments(tissue_mask(volume))
    return volume.index_to_world(mean)


def with_centre(state: AlignmentState, moving: Volume, mode: CentreMode) -> AlignmentState:
    """The same map from moving to atlas, expressed about a new centre of rotation.

    Rotation and flips stay as they are; the shift changes so that every voxel
    still lands in the same place.
    """
    c = centre_of(moving, mode)
    t = frames.apply_affine(state.rigid.matrix(), c) - c
    return state.with_rigid(centre_mm=tuple(c), translation_mm=tuple(t))


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
        rigid=frames.RigidParams(
            state.rigid.rotation_deg,
            tuple((c_fixed - c_moving).tolist()),
            tuple(c_moving.tolist()),
            state.rigid.flip,
        ),
    )


def index_moments(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray]:
    """``(count, mean, covariance)`` of the indices of ``mask``'s true voxels (index units;
    the covariance with N - 1, as ``np.cov``), from its 1D and 2D projections: no list of
    coordinates (that would be 24 bytes per voxel, 28 GB for a 10 µm brain)."""
    mask = np.asarray(mask, bool)
    n = mask.ndim
    count = int(np.count_nonzero(mask))
    if count == 0:
        return 0, np.full(n, np.nan), np.full((n, n), np.nan)
    sums, squares = np.zeros(n), np.zeros((n, n))
    for a in range(n):
        profile = np.count_nonzero(mask, axis=tuple(k for k in range(n) if k != a))
        i = np.arange(mask.shape[a], dtype=float)
        sums[a] = i @ profile
        squares[a, a] = (i * i) @ profile
        for b in range(a + 1, n):
            plane = np.count_nonzero(mask, axis=tuple(k for k in range(n) if k not in (a, b)))
            j = np.arange(mask.shape[b], dtype=float)
            squares[a, b] = squares[b, a] = i @ plane @ j
    mean = sums / count
    cov = (squares - count * np.outer(mean, mean)) / max(count - 1, 1)
    return count, mean, cov


def _principal_axes(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    count, mean, cov_index = index_moments(tissue_mask(volume))
    if count < 10:
        raise EmptyVolumeError(
            f"{volume.name!r} has almost no tissue above its threshold: check the volume."
        )
    linear = volume.affine[: volume.ndim, : volume.ndim]
    cov = linear @ cov_index @ linear.T  # the indices' covariance in world units (mm²)
    _, vecs = np.linalg.eigh(cov)
    return volume.index_to_world(mean), vecs


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
    params = frames.RigidParams.from_matrix(m, cm)
    return replace(state, rigid=params)


def auto_crop(volume: Volume, margin_mm: float = 0.5) -> tuple[tuple[int, int], ...]:
    """Voxel box around the tissue (Otsu threshold) plus a margin in mm, clipped to the grid."""
    mask = tissue_mask(volume)
    if not mask.any():
        raise CropError(f"No tissue found in {volume.name!r}: set the crop by hand.")
    first, last = [], []
    for a in range(mask.ndim):  # the box from each axis's profile, not every voxel's index
        profile = np.flatnonzero(np.any(mask, axis=tuple(k for k in range(mask.ndim) if k != a)))
        first.append(profile[0])
        last.append(profile[-1])
    margin = np.ceil(margin_mm / volume.spacing).astype(int)
    lo = np.maximum(np.asarray(first) - margin, 0)
    hi = np.minimum(np.asarray(last) + 1 + margin, volume.shape)
    return tuple((int(a), int(b)) for a, b in zip(lo, hi, strict=True))
