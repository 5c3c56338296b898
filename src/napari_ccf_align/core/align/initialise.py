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
    params = frames.RigidParams.from_matrix(m, cm)
    return replace(state, rigid=params)


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
