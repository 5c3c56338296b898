"""Initial alignment: the preview is exactly where the engines start; crop and centring."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import SimpleITK as sitk
from dipy.align.imaffine import AffineMap

from napari_ccf_align.core import align, frames, sampling
from napari_ccf_align.core.align import AlignmentState
from napari_ccf_align.core.align import previews as align_preview
from napari_ccf_align.core.errors import CropError
from napari_ccf_align.core.volume import Volume, to_sitk


def _atlas_grid() -> Volume:
    return Volume.from_array(np.zeros((60, 66, 40), np.float32), 0.2, "RAS", name="atlas")


def _landmark_volume(voxel=(20, 25, 18)) -> Volume:
    data = np.zeros((40, 50, 36), np.float32)
    data[voxel] = 1000.0
    return Volume.from_array(data, 0.25, "PIR", origin_mm=(0.5, 12.0, 8.0), name="moving")


@pytest.mark.parametrize(
    "params",
    [
        frames.RigidParams((20, -10, 15), (0.5, -1.0, 0.8), (6, 6.6, 4)),
        frames.RigidParams((-5, 30, 0), (-0.2, 0.4, 0), (5, 5, 3), (True, False, False)),
    ],
)
def test_landmark_lands_where_sitk_and_dipy_say(params):
    fixed, moving = _atlas_grid(), _landmark_volume()
    state = AlignmentState(params)
    prev = align.preview(fixed, moving, state)
    got = prev.index_to_world(np.unravel_index(np.argmax(prev.data), prev.shape))
    p_moving = moving.index_to_world(np.array([20, 25, 18], float))
    # SimpleITK TransformPoint maps atlas -> moving; find the atlas point by inverting
    expected = frames.apply_affine(params.matrix(), p_moving)
    back = frames.lps_to_ras(
        np.asarray(params.sitk_transform().TransformPoint(tuple(frames.ras_to_lps(expected))))
    )
    np.testing.assert_allclose(back, p_moving, atol=1e-6)
    assert np.linalg.norm(got - expected) <= fixed.spacing.max()
    dipy = AffineMap(
        params.dipy_prealign(),
        domain_grid_shape=fixed.shape,
        domain_grid2world=fixed.affine,
        codomain_grid_shape=moving.shape,
        codomain_grid2world=moving.affine,
    )
    d = dipy.transform(moving.data, interpolation="linear")
    got_dipy = fixed.index_to_world(np.unravel_index(np.argmax(d), d.shape))
    assert np.linalg.norm(got_dipy - expected) <= fixed.spacing.max()


def _sitk_double(moving: Volume, grid: Volume, state: AlignmentState) -> np.ndarray:
    """SimpleITK's linear resample of the (cut) moving volume, in double precision."""
    src = align.cropped_moving(moving, state)
    out = sitk.Resample(
        to_sitk(src, np.float64), to_sitk(grid), state.rigid.sitk_transform(), sitk.sitkLinear, 0.0
    )
    return sitk.GetArrayFromImage(out)


def _assert_rounded(got: np.ndarray, exact: np.ndarray) -> None:
    """Integer ``got`` is SimpleITK's value rounded to nearest (a halfway value either way)."""
    tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-6
    ok = (got == np.floor(exact + 0.5)) | (tie & (np.abs(got - exact) <= 0.5 + 1e-6))
    assert ok.all(), f"{np.count_nonzero(~ok)} voxels differ from SimpleITK's resample"


def test_preview_equals_direct_sitk_resample_with_the_engine_transform(template_100):
    moving = template_100.transformed(frames.RigidParams((5, 0, 0)).matrix())
    state = align.centre_on_atlas(AlignmentState(), moving, template_100).with_rigid(
        rotation_deg=(12.0, -7.0, 3.0)
    )
    prev = align.preview(template_100, moving, state)
    _assert_rounded(prev.data, _sitk_double(moving, template_100, state))
    np.testing.assert_allclose(prev.affine, template_100.affine)
    assert prev.data.dtype == moving.data.dtype  # previews keep the volume's type
    as_float = moving.with_data(moving.data.astype(np.float32))
    prev = align.preview(template_100, as_float, state)
    direct = sitk.Resample(
        to_sitk(as_float), to_sitk(template_100), state.rigid.sitk_transform(), sitk.sitkLinear
    )
    np.testing.assert_allclose(prev.data, sitk.GetArrayFromImage(direct), rtol=1e-6, atol=1e-4)


def test_coarse_preview_is_small_and_covers_the_same_box():
    big = Volume.from_array(np.zeros((200, 200, 100), np.uint8), 0.025, "RAS")
    coarse = align.coarse_grid(big)
    assert np.prod(coarse.shape) <= align.COARSE_MAX_VOXELS
    lo_big = big.index_to_world(np.full(3, -0.5))
    lo_coarse = coarse.index_to_world(np.full(3, -0.5))
    np.testing.assert_allclose(lo_big, lo_coarse, atol=1e-9)


def test_crop_keeps_world_positions_and_auto_box_fits_known_extent():
    data = np.zeros((50, 60, 40), np.float32)
    data[10:30, 15:45, 5:25] = 100.0  # a known block of "tissue"
    v = Volume.from_array(data, 0.1, "LPS", origin_mm=(3, 2, 1))
    box = align.auto_crop(v, margin_mm=0.3)
    assert box == ((7, 33), (12, 48), (2, 28))
    c = v.cropped(box)
    for i in [(0, 0, 0), (5, 6, 7), (25, 35, 25)]:
        np.testing.assert_allclose(
            c.index_to_world(np.asarray(i)), v.index_to_world(np.asarray(i) + [7, 12, 2])
        )
    state = AlignmentState(crop=box)
    assert AlignmentState.from_json(state.to_json()) == state
    with pytest.raises(CropError, match="outside the volume"):
        align.check_crop(v, ((0, 60), (0, 60), (0, 40)))


def test_centre_on_atlas_and_match_moments_bring_centroids_together(template_100):
    truth = frames.RigidParams((0, 0, 25), (1.5, -2.0, 0.5), tuple(template_100.centre_mm))
    moving = template_100.transformed(np.linalg.inv(truth.matrix()))
    c_fixed = align.centre_of(template_100, "tissue")
    for state in (
        align.centre_on_atlas(AlignmentState(), moving, template_100),
        align.match_moments(AlignmentState(), moving, template_100),
    ):
        moved = frames.apply_affine(state.rigid.matrix(), align.centre_of(moving, "tissue"))
        np.testing.assert_allclose(moved, c_fixed, atol=1e-6)
    m = align.match_moments(AlignmentState(), moving, template_100)
    assert np.allclose(m.rigid.linear(), truth.linear(), atol=0.15)


def test_with_centre_keeps_the_map():
    moving = _landmark_volume()
    state = AlignmentState(
        frames.RigidParams((10, 20, 30), (1, 2, 3), (0, 0, 0), (False, True, False))
    )
    new = align.with_centre(state, moving, "volume")
    np.testing.assert_allclose(new.rigid.centre_mm, moving.centre_mm)
    np.testing.assert_allclose(new.rigid.matrix(), state.rigid.matrix(), atol=1e-9)


def test_exact_preview_comes_slab_first_and_the_slab_is_exact(template_100):
    # a grid above the coarse budget: 0.08 mm over the atlas box
    fixed = Volume(
        np.broadcast_to(np.zeros((), np.uint8), (143, 165, 100)), np.diag([0.08] * 3 + [1.0])
    )
    state = AlignmentState(
        frames.RigidParams((8, -5, 3), (0.2, 0, 0), tuple(template_100.centre_mm))
    )
    steps = list(align.exact_previews(fixed, template_100, state, shown=(1, 6.5)))
    assert [s.partial for s in steps] == [True, False]
    slab, full = steps[0].image, steps[1].image
    assert slab.shape == full.shape == (143, 165, 100)  # the layer keeps its place and size
    np.testing.assert_allclose(slab.affine, full.affine)
    first = round(6.5 / 0.08) - 2
    np.testing.assert_array_equal(slab.data[:, first : first + 5], full.data[:, first : first + 5])
    assert full.data[:, first : first + 5].any()
    assert not slab.data[:, :first].any() and not slab.data[:, first + 5 :].any()
    assert full.data[:, : first - 10].any()
    only = list(align.exact_previews(fixed, template_100, state, shown=None))
    assert [s.partial for s in only] == [False]
    cropped = replace(state, crop=((10, 100), (20, 120), (5, 70)))
    steps = list(align.exact_previews(fixed, template_100, cropped, shown=(1, 6.5)))
    slab_box, full_box = steps[0].box.data, steps[1].box.data
    assert slab_box.shape == full_box.shape == fixed.shape
    np.testing.assert_array_equal(slab_box[:, first : first + 5], full_box[:, first : first + 5])
    assert slab_box[:, first : first + 5].any() and not slab_box[:, :first].any()


@pytest.mark.parametrize(
    "crop, as_mask, shift_mm",
    [
        (None, False, (1.0, -0.5, 0.3)),  # partly off the grid
        (((4, 30), (10, 40), (3, 20)), False, (0.5, 0.0, 0.0)),  # a crop that cuts
        (((4, 30), (10, 40), (3, 20)), True, (0.5, 0.0, 0.0)),  # the crop as a metric mask
        (None, False, (40.0, 0.0, 0.0)),  # lands nowhere on the grid
    ],
)
def test_preview_samples_only_the_footprint_and_equals_a_whole_grid_resample(
    crop, as_mask, shift_mm
):
    rng = np.random.default_rng(3)
    fixed = _atlas_grid()
    data = rng.uniform(50, 1000, (36, 44, 28)).astype(np.uint16)  # no zero background
    moving = Volume.from_array(data, 0.2, "RAS", origin_mm=(2.0, 2.5, 1.5), name="moving")
    state = AlignmentState(
        frames.RigidParams((14, -9, 6), shift_mm, tuple(moving.centre_mm)), crop, as_mask
    )
    got = align.preview_with_box(fixed, moving, state)
    direct = _sitk_double(moving, fixed, state)  # of the cut volume when the crop cuts
    region = align.footprint(fixed, moving, state)
    if crop is None:
        assert got.box is None
    else:
        np.testing.assert_array_equal(got.box.data, align.box_faces(fixed, moving, state))
    np.testing.assert_array_equal(got.image.data != 0, direct != 0)  # the same voxels land
    _assert_rounded(got.image.data, direct)
    assert got.image.data.dtype == np.uint16 and got.image.shape == fixed.shape
    np.testing.assert_allclose(got.image.affine, fixed.affine)
    if shift_mm[0] > 10:
        assert region is None and not got.image.data.any()
    else:  # the test exercises a part of the grid, not all of it
        assert np.prod([b - a for a, b in region]) < 0.8 * np.prod(fixed.shape)
        assert direct.any()


def test_box_row_spans_and_faces_match_every_voxel_mapped_one_by_one():
    fixed = _atlas_grid()
    moving = _landmark_volume()
    crop = ((5, 30), (8, 41), (4, 30))
    state = AlignmentState(frames.RigidParams((25, -12, 40), (0.3, -0.2, 0.1), (6, 6.6, 4)), crop)
    spans, _ = align_preview._box_row_spans(fixed, moving, state)
    inside = sampling.spans_mask(fixed.shape, *spans).view(bool)
    faces = align.box_faces(fixed, moving, state)
    # oracle: every grid voxel through world and the inverse alignment into moving indices
    idx = np.indices(fixed.shape).reshape(3, -1).T.astype(float)
    src = moving.world_to_index(
        frames.apply_affine(np.linalg.inv(state.rigid.matrix()), fixed.index_to_world(idx))
    )
    lo = np.array([a for a, _ in crop]) - 0.5
    hi = np.array([b for _, b in crop]) - 0.5
    expect = np.all((src >= lo) & (src <= hi), axis=1).reshape(fixed.shape)
    np.testing.assert_array_equal(inside, expect)
    m = np.linalg.inv(moving.affine) @ np.linalg.inv(state.rigid.matrix()) @ fixed.affine
    thick = np.abs(m[:3, :3]).sum(axis=1)
    core = np.all((src >= lo + thick) & (src <= hi - thick), axis=1).reshape(fixed.shape)
    np.testing.assert_array_equal(faces, (expect & ~core).astype(np.uint8))
    assert 0 < faces.sum() < expect.sum()


def test_tissue_moments_from_projections_equal_those_of_every_voxel():
    from napari_ccf_align.core.align import initialise

    rng = np.random.default_rng(2)
    mask = rng.random((17, 13, 11)) > 0.7
    mask[:3] = False
    count, mean, cov = initialise.index_moments(mask)
    idx = np.argwhere(mask)
    assert count == len(idx)
    np.testing.assert_allclose(mean, idx.mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(idx.T), rtol=1e-10, atol=1e-12)
    flat = initialise.index_moments(mask[:, :, 0])  # 2D too
    np.testing.assert_allclose(flat[2], np.cov(np.argwhere(mask[:, :, 0]).T), rtol=1e-10)
