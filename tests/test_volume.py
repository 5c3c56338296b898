"""Volume: reorientation and crop keep world positions; bad arrays are refused."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import SimpleITK as sitk
from hypothesis import given, settings
from hypothesis import strategies as st

from napari_ccf_align.core import frames
from napari_ccf_align.core.errors import CropError, DimensionError, EmptyVolumeError
from napari_ccf_align.core.volume import Volume, array_of, from_sitk, to_sitk

codes = st.sampled_from(frames.all_orientation_codes())


@settings(max_examples=100, deadline=None)
@given(code=codes, target=codes, seed=st.integers(0, 2**16))
def test_reorientation_changes_layout_not_world_position(code, target, seed):
    rng = np.random.default_rng(seed)
    data = rng.random((4, 5, 6))
    v = Volume.from_array(data, (0.1, 0.2, 0.3), code, origin_mm=(1, -2, 3))
    r = v.reoriented(target)
    assert r.orientation == target
    # each voxel value sits at the same world point before and after
    for _ in range(5):
        i = tuple(rng.integers(0, s) for s in r.shape)
        j = np.rint(v.world_to_index(r.index_to_world(np.asarray(i, float)))).astype(int)
        assert r.data[i] == v.data[tuple(j)]
        np.testing.assert_allclose(v.index_to_world(j), r.index_to_world(np.asarray(i)), atol=1e-9)


def test_reorient_to_ras_from_pir_gives_allen_like_layout():
    v = Volume.from_array(np.zeros((132, 80, 114)), 0.1, "PIR")
    assert v.reoriented("RAS").shape == (114, 132, 80)


def test_crop_keeps_voxels_in_place():
    data = np.arange(4 * 5 * 6, dtype=float).reshape(4, 5, 6)
    v = Volume.from_array(data, (0.1, 0.2, 0.3), "LIP", origin_mm=(5, 6, 7))
    c = v.cropped([(1, 3), (2, 5), (0, 4)])
    assert c.shape == (2, 3, 4)
    for i in np.ndindex(c.shape):
        orig = np.asarray(i) + [1, 2, 0]
        assert c.data[i] == v.data[tuple(orig)]
        np.testing.assert_allclose(c.index_to_world(np.asarray(i)), v.index_to_world(orig))


@pytest.mark.parametrize(
    "box", [[(0, 0), (0, 5), (0, 6)], [(0, 5), (0, 5), (0, 6)], [(-1, 2), (0, 5), (0, 6)], [(0, 2)]]
)
def test_bad_crops_are_refused(box):
    v = Volume.from_array(np.zeros((4, 5, 6)), 0.1, "RAS")
    with pytest.raises(CropError, match="crop"):
        v.cropped(box)


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5)])
def test_wrong_dimensionality_is_refused(shape):
    with pytest.raises(DimensionError, match="2D or 3D"):
        Volume.from_array(np.zeros(shape), 0.1, "RAS"[: len(shape)] if len(shape) <= 3 else "RAS")


def test_all_nan_volume_is_refused():
    with pytest.raises(EmptyVolumeError, match="only NaN"):
        Volume.from_array(np.full((3, 3, 3), np.nan), 0.1, "RAS")


def test_2d_volume_world_axes_follow_the_code():
    v = Volume.from_array(np.zeros((3, 4)), 0.1, "SL")
    assert v.world_axes == "RS"
    np.testing.assert_allclose(v.index_to_world([1, 1]), [-0.1, 0.1])


def test_array_without_copy_shares_the_buffer_and_keeps_the_image_alive():
    image = sitk.Add(sitk.GetImageFromArray(np.arange(24, dtype=np.uint16).reshape(2, 3, 4)), 1)
    view = array_of(image, copy=False)
    assert not view.flags.owndata and view.flags.writeable
    view[0, 0, 0] = 99  # the same memory as the image's
    assert image.GetPixel(0, 0, 0) == 99
    del image
    gc.collect()
    junk = [np.full(100_000, 7) for _ in range(20)]  # reuse freed memory, if it were freed
    assert junk[0][0] == 7
    expected = np.arange(24).reshape(2, 3, 4) + 1
    expected[0, 0, 0] = 99
    np.testing.assert_array_equal(view, expected)


@pytest.mark.parametrize("dtype", [">u2", "<f2"])
def test_to_sitk_takes_big_endian_and_half_float_arrays(dtype):
    data = np.arange(24).reshape(2, 3, 4).astype(dtype)
    v = Volume.from_array(data, 0.1, "RAS")
    back = from_sitk(to_sitk(v))
    np.testing.assert_array_equal(back.data, data.astype(float))
    np.testing.assert_allclose(back.affine, v.affine)
