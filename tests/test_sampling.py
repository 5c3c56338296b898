"""The preview's linear sampler gives SimpleITK's linear resample, voxel for voxel."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from napari_ccf_align.core import frames, sampling
from napari_ccf_align.core.errors import DimensionError
from napari_ccf_align.core.sampling import trilinear
from napari_ccf_align.core.volume import Volume, to_sitk

GRID = Volume.from_array(np.zeros((33, 41, 29), np.uint8), 0.05, "RAS", origin_mm=(-0.1, 0.2, 0))


def _moving(dtype=np.float64, lo=50.0, hi=1000.0) -> Volume:
    rng = np.random.default_rng(7)
    data = rng.uniform(lo, hi, (30, 40, 50)).astype(dtype)  # no zeros: "outside" is visible
    return Volume.from_array(data, (0.05, 0.04, 0.06), "PIR", origin_mm=(0.3, 1.9, 1.2))


def _sitk_exact(moving: Volume, grid: Volume, params: frames.RigidParams, box=None) -> np.ndarray:
    """SimpleITK's linear resample in double precision (no cast to an integer type)."""
    src = moving if box is None else moving.cropped(box)
    image = to_sitk(src, np.float64)
    out = sitk.Resample(image, to_sitk(grid), params.sitk_transform(), sitk.sitkLinear, 0.0)
    return sitk.GetArrayFromImage(out)


PARAMS = [
    frames.RigidParams(centre_mm=(0.8, 1.0, 0.9)),  # identity
    frames.RigidParams((23, -11, 31), (0.1, -0.05, 0.2), (0.8, 1.0, 0.9)),
    frames.RigidParams((-5, 40, 7), (-0.1, 0.1, 0.0), (0.7, 1.1, 1.0), (False, True, False)),
    frames.RigidParams((0, 0, 90), (0.0, 0.0, 0.0), (0.8, 1.0, 0.9)),  # a quarter turn
]
BOXES = [None, ((3, 25), (5, 33), (2, 40))]


def _ours(moving, params, box=None, grid=GRID, **kw):
    m = sampling.index_map(moving.affine, grid.affine, params.matrix())
    return sampling.linear(moving.data, m, grid.shape, box=box, **kw)


@pytest.mark.parametrize("box", BOXES)
@pytest.mark.parametrize("params", PARAMS)
def test_float_volume_equals_sitk_and_lands_on_the_same_voxels(params, box):
    moving = _moving()
    ours = _ours(moving, params, box)
    expected = _sitk_exact(moving, GRID, params, box)
    np.testing.assert_array_equal(ours != 0, expected != 0)  # the same voxels land inside
    assert np.count_nonzero(expected) > 1000
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-9)
    assert ours.dtype == np.float64


@pytest.mark.parametrize("dtype", [np.uint16, np.int16, np.uint8])
def test_integer_volume_is_sitk_value_rounded_to_nearest(dtype):
    lo, hi = (-900.0, 900.0) if dtype == np.int16 else (1.0, 250.0)
    moving = _moving(np.float64, lo, hi)
    moving = moving.with_data(np.round(moving.data).astype(dtype))
    for params in PARAMS:
        ours = _ours(moving, params)
        exact = _sitk_exact(moving, GRID, params)
        rounded = np.floor(exact + 0.5)
        tie = np.abs(exact - np.floor(exact) - 0.5) < 1e-6  # halfway: either neighbour
        assert ours.dtype == dtype
        assert np.all((ours == rounded) | (tie & (np.abs(ours - exact) <= 0.5 + 1e-6)))
        assert np.count_nonzero(tie) < 0.25 * tie.size  # most voxels are checked exactly


def test_identity_keeps_integer_values_where_sitk_truncates_some():
    # the reason integer outputs are rounded: SimpleITK's cast truncates, and an identity
    # through world millimetres is exact only to an ulp, so ITK loses 1 in many voxels
    data = np.random.default_rng(0).integers(1, 1000, (20, 24, 28)).astype(np.uint16)
    v = Volume.from_array(data, 0.025, "RAS", origin_mm=(-5.3, 2.1, 0.7))
    params = frames.RigidParams(centre_mm=(1.1, 0.7, 2.3))
    ours = sampling.linear(data, sampling.index_map(v.affine, v.affine, params.matrix()), v.shape)
    np.testing.assert_array_equal(ours, data)
    itk = sitk.GetArrayFromImage(
        sitk.Resample(to_sitk(v), to_sitk(v), params.sitk_transform(), sitk.sitkLinear, 0)
    )
    assert np.all((itk == data) | (itk == data - 1)) and np.any(itk != data)


def test_region_and_threads_do_not_change_values(monkeypatch):
    moving = _moving(np.float32)
    whole = _ours(moving, PARAMS[1])
    region = ((4, 30), (0, 41), (10, 22))
    part = _ours(moving, PARAMS[1], region=region)
    sl = tuple(slice(a, b) for a, b in region)
    np.testing.assert_array_equal(part[sl], whole[sl])
    outside = np.ones(GRID.shape, bool)
    outside[sl] = False
    assert not part[outside].any() and whole[outside].any()
    monkeypatch.setattr(trilinear, "_threads", lambda: 1)
    np.testing.assert_array_equal(_ours(moving, PARAMS[1]), whole)


def test_bool_and_strided_sources_and_bad_input():
    moving = _moving()
    strided = Volume(moving.data[:, ::2, :], moving.affine @ np.diag([1, 2, 1, 1.0]), "strided")
    assert not strided.data.flags.c_contiguous
    expected = _sitk_exact(strided, GRID, PARAMS[1])
    np.testing.assert_allclose(_ours(strided, PARAMS[1]), expected, rtol=1e-12, atol=1e-9)
    mask = moving.with_data(moving.data > 500)
    got = _ours(mask, PARAMS[1])
    assert got.dtype == np.uint8 and set(np.unique(got)) <= {0, 1}
    for odd in (">f8", "<f2"):  # big-endian, half float: converted, same values
        same = Volume(moving.data.astype(odd), moving.affine, "odd")
        got = _ours(same, PARAMS[1])
        np.testing.assert_allclose(got, _ours(moving, PARAMS[1]), rtol=2e-3)
        assert got.dtype == (np.float32 if odd == "<f2" else np.float64)
    with pytest.raises(DimensionError, match="3D"):
        sampling.linear(np.zeros((4, 4)), np.eye(4), (4, 4, 4))
    with pytest.raises(TypeError, match="complex"):
        sampling.linear(np.zeros((2, 2, 2), complex), np.eye(4), (2, 2, 2))
    assert not sampling.linear(
        moving.data, np.eye(4), GRID.shape, box=((5, 5), (0, 9), (0, 9))
    ).any()


def test_spans_mask_paints_each_row_interval_minus_its_hole():
    rng = np.random.default_rng(1)
    first = rng.integers(-1, 12, (5, 6))
    last = first + rng.integers(-2, 9, (5, 6))
    hole_first, hole_last = first + 2, last - 2
    got = sampling.spans_mask((5, 6, 14), first, last, (hole_first, hole_last))
    k = np.arange(14)
    inside = (k >= first[..., None]) & (k <= last[..., None])
    hole = (k >= hole_first[..., None]) & (k <= hole_last[..., None])
    np.testing.assert_array_equal(got, (inside & ~hole).astype(np.uint8))


def test_warm_up_leaves_the_kernel_compiled_for_the_common_types():
    sampling.warm_up((np.uint16, np.float32))
    loaded = {str(sig[0].dtype) for sig in trilinear._linear_planes.signatures}
    assert {"uint16", "float32"} <= loaded
