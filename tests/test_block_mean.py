"""Block means for the coarse preview: values, places, and what the coarse preview shows."""

from __future__ import annotations

import numpy as np
import pytest

from napari_ccf_align.core import align, frames, volume
from napari_ccf_align.core.align import previews as align_preview
from napari_ccf_align.core.errors import SettingsError
from napari_ccf_align.core.testing import phantom
from napari_ccf_align.core.volume import Volume


def test_block_means_sit_at_their_blocks_centres():
    rng = np.random.default_rng(2)
    v = Volume.from_array(
        rng.uniform(0, 100, (13, 10, 9)), (0.1, 0.2, 0.05), "PIR", origin_mm=(1, 2, 3)
    )
    small = volume.block_mean(v, (3, 2, 4))
    assert small.shape == (4, 5, 2)  # leftovers dropped
    for j in [(0, 0, 0), (3, 4, 1), (2, 1, 0)]:
        members = [
            (j[0] * 3 + a, j[1] * 2 + b, j[2] * 4 + c)
            for a in range(3)
            for b in range(2)
            for c in range(4)
        ]
        values = [v.data[m] for m in members]
        np.testing.assert_allclose(small.data[j], np.mean(values), rtol=1e-5)
        centre = v.index_to_world(np.asarray(members, float)).mean(axis=0)
        np.testing.assert_allclose(small.index_to_world(np.asarray(j, float)), centre, atol=1e-9)


def test_block_mean_in_chunks_and_integer_rounding():
    data = np.random.default_rng(3).integers(0, 60000, (20, 12, 12)).astype(np.uint16)
    v = Volume.from_array(data, 0.025, "RAS")
    whole = volume.block_mean(v, (2, 3, 4))
    chunked = volume.block_mean(v, (2, 3, 4), chunk_voxels=100)
    np.testing.assert_array_equal(whole.data, chunked.data)
    expected = np.rint(data.reshape(10, 2, 4, 3, 3, 4).astype(float).mean(axis=(1, 3, 5)))
    np.testing.assert_array_equal(whole.data, expected)
    assert whole.data.dtype == np.uint16
    assert volume.block_mean(v, (1, 1, 1)) is v
    with pytest.raises(SettingsError, match="whole numbers >= 1"):
        volume.block_mean(v, (0, 1, 1))


def test_block_factors_reach_the_target_spacing_from_below():
    v = Volume.from_array(np.zeros((100, 100, 6)), (0.025, 0.05, 0.025), "RAS")
    assert volume.block_factors(v, (0.125, 0.125, 0.125)) == (5, 2, 3)  # last: 6 // 2
    assert volume.block_factors(v, (0.01,) * 3) == (1, 1, 1)


def test_coarse_preview_shows_what_the_exact_one_shows_at_its_points(template_100):
    # a fine grid (0.04 mm) over the atlas box, so the coarse grid is 3x coarser per axis
    fine = Volume(
        np.broadcast_to(np.zeros((), np.uint8), (285, 330, 200)), np.diag([0.04] * 3 + [1.0])
    )
    moving = align.preview(fine, template_100, align.AlignmentState())  # a fine volume
    state = align.AlignmentState(
        frames.RigidParams((10, -6, 4), (0.3, 0, 0), tuple(moving.centre_mm)),
        crop=((20, 260), (30, 300), (10, 190)),
    )
    coarse = align.preview_with_box(fine, moving, state, coarse=True)
    grid = coarse.image
    assert np.prod(grid.shape) <= align.COARSE_MAX_VOXELS
    exact_at_points = align.preview(grid, moving, state)  # exact values, coarse points
    a, b = grid.data.astype(float), exact_at_points.data.astype(float)
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.97
    assert np.abs(a - b).mean() < 0.05 * b.max()
    phantom_like = phantom.brain_phantom(100)  # another volume gets its own block means
    assert (
        align_preview._coarse_source(phantom_like, grid)[0]
        is not align_preview._coarse_source(moving, grid)[0]
    )
