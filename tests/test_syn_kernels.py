"""SyN's threaded kernels compute what DIPY's Cython kernels compute."""

import numpy as np
import pytest
from dipy.align import crosscorr
from dipy.align import vector_fields as vfu

from napari_ccf_align.core.register import syn_kernels
from napari_ccf_align.core.testing.phantom import smooth_field

SHAPE = (23, 19, 17)
SPACING = np.array([0.1, 0.125, 0.2])  # anisotropic voxels (mm)


def _world2grid() -> np.ndarray:
    grid2world = np.diag([*SPACING, 1.0])
    grid2world[:3, :3] = grid2world[:3, :3] @ np.array([[0, 1, 0], [-1, 0, 0], [0, 0, 1]])
    grid2world[:3, 3] = [1.5, -2.0, 0.7]  # a rotated, shifted grid: B is not diagonal
    return np.linalg.inv(grid2world)


@pytest.fixture(params=["one block", "plane blocks on threads"], autouse=True)
def blocks(request, monkeypatch):
    """Each test on these small grids both ways: one block, and split as large grids are."""
    if request.param != "one block":
        monkeypatch.setattr(syn_kernels, "_SMALL", 0)
    return request.param


def _field(peak_voxels: float, seed: int) -> np.ndarray:
    # non-zero up to the faces, so the edge rule (points pushed off the grid) is exercised
    return smooth_field(SHAPE, SPACING, peak_voxels=peak_voxels, seed=seed).astype(np.float32)


@pytest.mark.parametrize("time_scaling", [1.0, 0.25])
def test_compose_equals_dipys(time_scaling):
    d1, d2 = _field(2.5, 1), _field(3.0, 2)
    w2g = _world2grid()
    ours, stats = syn_kernels.compose(d1, d2, None, w2g, time_scaling, None)
    theirs, their_stats = vfu.compose_vector_fields_3d(d1, d2, None, w2g, time_scaling, None)
    theirs = np.asarray(theirs)
    assert np.count_nonzero(np.all(theirs == 0, axis=-1)) > 0  # some points left the grid
    np.testing.assert_array_equal(np.all(ours == 0, axis=-1), np.all(theirs == 0, axis=-1))
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6 * np.abs(theirs).max())
    np.testing.assert_allclose(stats, np.asarray(their_stats), rtol=1e-5)
    in_place = d1.copy()
    syn_kernels.compose(in_place, d2, None, w2g, time_scaling, in_place)  # as DIPY's update
    np.testing.assert_array_equal(in_place, ours)


@pytest.mark.parametrize("start", [False, True])
def test_invert_equals_dipys_and_inverts(start):
    d = _field(2.0, 3)
    w2g = _world2grid()
    first = -0.9 * d if start else None
    ours = syn_kernels.invert(d, w2g, SPACING, 20, 1e-3, first)
    theirs = np.asarray(vfu.invert_vector_field_fixed_point_3d(d, w2g, SPACING, 20, 1e-3, first))
    assert ours.dtype == d.dtype and ours.shape == d.shape
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())
    # and it is an inverse: away from the faces, p + d(x + p) is below 0.1 voxel
    residual, _ = syn_kernels.compose(ours, d, None, w2g, 1.0, None)
    inner = residual[3:-3, 3:-3, 3:-3] / SPACING
    assert np.linalg.norm(inner, axis=-1).max() < 0.1


def test_results_do_not_depend_on_the_threads(monkeypatch):
    monkeypatch.setattr(syn_kernels, "_SMALL", 0)
    d = _field(2.0, 4)
    w2g = _world2grid()
    many = syn_kernels.invert(d, w2g, SPACING, 20, 1e-3)
    monkeypatch.setattr(syn_kernels, "_pool", None)
    monkeypatch.setattr(syn_kernels.os, "cpu_count", lambda: 1)
    one = syn_kernels.invert(d, w2g, SPACING, 20, 1e-3)
    np.testing.assert_array_equal(one, many)


@pytest.mark.parametrize("radius", [2, 4])
def test_cc_factors_in_halves_equal_dipys(radius):
    rng = np.random.default_rng(5)
    static, moving = (rng.random((31, 14, 12)).astype(np.float32) for _ in range(2))
    ours = syn_kernels.cc_factors(static, moving, radius)
    theirs = np.asarray(crosscorr.precompute_cc_factors_3d(static, moving, radius))
    assert ours.shape == theirs.shape == (31, 14, 12, 5)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
