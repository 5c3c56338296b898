"""The one input-preparation step every engine calls: flips, crop, masks, normalisation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from napari_ccf_align.core import frames
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.errors import CropError, EmptyVolumeError, RegistrationError
from napari_ccf_align.core.register import prepare
from napari_ccf_align.core.volume import Volume


def _volume(shape=(20, 24, 16), spacing=(0.1, 0.15, 0.2), name="moving") -> Volume:
    rng = np.random.default_rng(0)
    # smooth, tissue-like values (white noise is refused as no brain)
    data = ndimage.gaussian_filter(rng.uniform(0, 1000, shape), 2.0).astype(np.float32)
    return Volume.from_array(data, spacing, "RAS", "nibabel", origin_mm=(1, 2, 3), name=name)


def test_flip_is_moved_onto_the_moving_affine_and_unflipped_restores_the_users_map():
    moving, fixed = _volume(), _volume(name="atlas")
    rigid = frames.RigidParams((10, -5, 30), (0.3, 0.1, -0.2), tuple(moving.centre_mm), (1, 0, 1))
    p = prepare.prepare(fixed, moving, AlignmentState(rigid))
    assert np.linalg.det(p.start[:3, :3]) > 0
    np.testing.assert_allclose(p.start @ p.flip, rigid.matrix(), atol=1e-12)
    # a voxel of the user's volume lands where the state sends it, through the prepared pair
    idx = np.array([[3.0, 7.0, 11.0]])
    users = frames.apply_affine(rigid.matrix() @ moving.affine, idx)
    prepared = frames.apply_affine(p.start @ p.moving.affine, idx)
    np.testing.assert_allclose(prepared, users, atol=1e-9)
    # and an engine's map of the prepared volume becomes a map of the user's volume
    np.testing.assert_allclose(p.unflipped(p.start), rigid.matrix(), atol=1e-12)


def test_crop_cuts_or_masks_and_keeps_world_position():
    moving, fixed = _volume(), _volume(name="atlas")
    box = ((2, 12), (4, 20), (0, 10))
    cut = prepare.prepare(fixed, moving, AlignmentState(crop=box))
    assert cut.moving.shape == (10, 16, 10) and cut.moving_mask is None
    np.testing.assert_allclose(
        cut.moving.index_to_world([0, 0, 0]), moving.index_to_world([2, 4, 0])
    )
    masked = prepare.prepare(fixed, moving, AlignmentState(crop=box, crop_as_mask=True))
    assert masked.moving.shape == moving.shape
    assert masked.moving_mask.data.sum() == 10 * 16 * 10
    assert masked.moving_mask.data[2, 4, 0] == 1 and masked.moving_mask.data[1, 4, 0] == 0


def test_intensities_are_clipped_and_scaled_to_unit_range():
    p = prepare.prepare(_volume(name="atlas"), _volume(), clip_percentiles=(1, 99))
    for v in (p.fixed, p.moving):
        assert v.data.dtype == np.float32
        assert v.data.min() == 0.0 and v.data.max() == 1.0
        assert 0.01 <= np.mean(v.data == 1.0) <= 0.02  # the top percent is clipped


def test_bad_inputs_are_refused_with_a_sentence():
    moving, fixed = _volume(), _volume(name="atlas")
    flat = moving.with_data(np.zeros(moving.shape, np.float32))
    with pytest.raises(EmptyVolumeError, match="no contrast"):
        prepare.prepare(fixed, flat)
    with pytest.raises(CropError):
        prepare.prepare(fixed, moving, AlignmentState(crop=((0, 50), (0, 5), (0, 5))))
    with pytest.raises(RegistrationError, match="mask is empty"):
        prepare.prepare(fixed, moving, fixed_mask=fixed.with_data(np.zeros(fixed.shape)))
    flat2d = Volume.from_array(np.ones((4, 4)), (1, 1), "RA", "nibabel", name="section")
    with pytest.raises(RegistrationError, match="2D but 'atlas' is 3D"):
        prepare.prepare(fixed, flat2d)


def test_overlap_fraction_falls_to_zero_when_shifted_away():
    fixed = _volume(name="atlas")
    assert prepare.overlap_fraction(fixed, fixed, np.eye(4)) == 1.0
    far = np.eye(4)
    far[:3, 3] = (50, 0, 0)
    assert prepare.overlap_fraction(fixed, fixed, far) == 0.0


def test_a_start_matrix_replaces_the_hand_alignment_and_mirrors_are_split_off():
    moving, fixed = _volume(), _volume(name="atlas")
    state = AlignmentState(frames.RigidParams((30, 0, 0), centre_mm=tuple(moving.centre_mm)))
    mirrored = frames.RigidParams((5, 5, 5), (1, 0, 0), tuple(moving.centre_mm), (1, 0, 0))
    p = prepare.prepare(fixed, moving, state, start=mirrored.matrix())
    np.testing.assert_allclose(p.unflipped(p.start), mirrored.matrix(), atol=1e-12)
    assert p.flip[0, 0] == -1 and np.linalg.det(p.start[:3, :3]) > 0
    two_flips = frames.RigidParams(flip=(True, True, False))
    q = prepare.prepare(fixed, moving, AlignmentState(two_flips))
    np.testing.assert_array_equal(q.flip, np.eye(4))  # two mirrors are a rotation


def test_a_fine_sample_is_averaged_to_the_atlas_spacing_in_place_with_its_mask():
    atlas = _volume((12, 12, 12), (0.1, 0.1, 0.1), name="atlas")
    fine = _volume((60, 48, 40), (0.02, 0.025, 0.03))  # 20-30 µm against a 100 µm atlas
    crop = ((0, 60), (4, 44), (0, 40))
    p = prepare.prepare(atlas, fine, AlignmentState(crop=crop, crop_as_mask=True))
    np.testing.assert_allclose(p.moving.spacing, (0.1, 0.1, 0.09))  # blocks of 5, 4, 3
    assert p.moving.shape == (12, 12, 13)
    # the blocks keep their world place: the first block's centre is the mean of its voxels'
    first = fine.index_to_world(np.argwhere(np.ones((5, 4, 3))).mean(axis=0))
    np.testing.assert_allclose(p.moving.index_to_world(np.zeros(3)), first, atol=1e-12)
    # the mask follows the same blocks: rows 4-43 of axis 1 are blocks 1-10 of 4 voxels
    assert p.moving_mask.shape == p.moving.shape
    inside = np.asarray(p.moving_mask.data).any(axis=(0, 2))
    assert inside.tolist() == [False] + [True] * 10 + [False]
    coarse = _volume((12, 12, 12), (0.1, 0.1, 0.1))
    assert prepare.prepare(atlas, coarse).moving.shape == coarse.shape  # nothing to average
