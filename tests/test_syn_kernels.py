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


@pytest.mark.parametrize("case", ["as SyN warps", "general matrices"])
def test_warp_equals_dipys_with_points_off_the_grids(case):
    """DIPY's ``warp_3d`` as SyN calls it each iteration (the smoothed full-grid image onto a
    coarser level: A the identity, B and C scale), and with rotated, shifted matrices that
    push points off both grids (where DIPY adds the corners that are on them)."""
    rng = np.random.default_rng(6)
    volume = rng.random((41, 35, 30)).astype(np.float32)
    d = _field(3.0, 7)
    w2g = _world2grid()
    if case == "as SyN warps":
        a = np.eye(4)
        b = np.diag([2.0, 2.0, 2.0, 1.0])
        c = w2g.copy()
        c[:3, :3] *= 2.0
    else:
        a = np.linalg.inv(w2g) @ w2g
        a[:3, 3] += [0.5, -1.2, 0.3]
        b = np.eye(4)
        b[:3, :3] = [[1.9, 0.2, 0], [-0.1, 1.8, 0.1], [0, 0.3, 1.7]]
        b[:3, 3] = [-2.0, 1.0, 0.5]
        c = w2g
    shape = np.array(SHAPE, dtype=np.int32)
    ours = syn_kernels.warp(volume, d, a, b, c, shape)
    theirs = np.asarray(
        vfu.warp_3d(volume, d, affine_idx_in=a, affine_idx_out=b, affine_disp=c, out_shape=shape)
    )
    assert ours.dtype == theirs.dtype and ours.shape == theirs.shape == SHAPE
    assert 0 < np.count_nonzero(theirs == 0) < theirs.size  # some points left the image
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6)


def test_install_sends_syn_linear_3d_warps_to_the_kernel_and_nothing_else():
    from dipy.align.imwarp import DiffeomorphicMap, SymmetricDiffeomorphicRegistration
    from dipy.align.metrics import CCMetric

    sdr = SymmetricDiffeomorphicRegistration(CCMetric(3), level_iters=[1])
    sdr.static_to_ref = DiffeomorphicMap(3, SHAPE, disp_grid2world=np.linalg.inv(_world2grid()))
    sdr.moving_to_ref = DiffeomorphicMap(3, SHAPE, disp_grid2world=np.linalg.inv(_world2grid()))
    syn_kernels.install(sdr)
    assert sdr.static_to_ref._get_warping_function("linear") is syn_kernels.warp
    assert sdr.moving_to_ref._get_warping_function("nearest") is vfu.warp_3d_nn
    with syn_kernels.dipys_own():
        other = SymmetricDiffeomorphicRegistration(CCMetric(3), level_iters=[1])
        other.static_to_ref = DiffeomorphicMap(
            3, SHAPE, disp_grid2world=np.linalg.inv(_world2grid())
        )
        other.moving_to_ref = other.static_to_ref
        syn_kernels.install(other)
        assert other.static_to_ref._get_warping_function("linear") is vfu.warp_3d


@pytest.mark.parametrize("sigma", [4.0, 2.0, 0.7])
def test_smooth_equals_scipys_gaussian_per_component(sigma):
    """SyN's step smoothing (sigma_diff 4, DIPY's 2, and a narrow one); at 4 the kernel's
    radius (16) is near the grid's 17 to 23 voxels, so the mirrored edges count."""
    from scipy import ndimage

    field = _field(2.0, 8)
    before = field.copy()
    ours = syn_kernels.smooth(field, sigma)
    theirs = np.stack([ndimage.gaussian_filter(field[..., c], sigma) for c in range(3)], -1)
    np.testing.assert_array_equal(field, before)  # the input is left as it was
    assert ours.dtype == theirs.dtype == np.float32
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6 * np.abs(theirs).max())


def test_cc_steps_through_the_kernels_equal_dipys():
    from dipy.align.metrics import CCMetric

    rng = np.random.default_rng(9)
    static, moving = (rng.random(SHAPE).astype(np.float32) for _ in range(2))
    steps = []
    for ours in (False, True):
        metric = CCMetric(3, sigma_diff=4.0, radius=2)
        metric.set_static_image(static, np.eye(4), np.ones(3), None)
        metric.set_moving_image(moving, np.eye(4), np.ones(3), None)
        if ours:
            sdr = type("SyN", (), {})()
            sdr.metric = metric
            sdr.static_to_ref = sdr.moving_to_ref = type("Map", (), {})()
            syn_kernels.install(sdr)
            assert metric.compute_forward.func is syn_kernels._cc_forward
        metric.initialize_iteration()
        steps.append((metric.compute_forward(), metric.get_energy(), metric.compute_backward()))
    (f0, e0, b0), (f1, e1, b1) = steps
    assert e1 == pytest.approx(e0, rel=1e-6)
    np.testing.assert_allclose(f1, f0, rtol=0, atol=1e-5 * np.abs(f0).max())
    np.testing.assert_allclose(b1, b0, rtol=0, atol=1e-5 * np.abs(b0).max())
