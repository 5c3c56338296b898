"""One Result protocol: a linear result and a SyN result with a zero field answer alike."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from napari_ccf_align.core import frames
from napari_ccf_align.core.register import rigid, syn
from napari_ccf_align.core.register.result import Result
from napari_ccf_align.core.results import apply, qc
from napari_ccf_align.core.volume import Volume


def _results():
    """A rigid result and a SyN result on top of it whose field is zero everywhere."""
    matrix = frames.RigidParams((8.0, -5.0, 12.0), (0.3, -0.2, 0.1), (1.0, 1.5, 1.2)).matrix()
    linear = rigid.RigidResult(
        sitk.Euler3DTransform(), matrix, None, (), "done", -0.5, 1.0, rigid.RigidSettings()
    )
    grid = Volume.grid((12, 14, 10), np.diag([0.25, 0.25, 0.25, 1.0]), "SyN grid", "RAS")
    zero = np.zeros((*grid.shape, 3), np.float32)
    deformable = syn.SynResult(
        grid, zero, zero, matrix, (), 0.1, 2.0, "done", syn.SynSettings(), linear=linear
    )
    return linear, deformable


def _volumes():
    rng = np.random.default_rng(3)
    atlas = Volume.from_array(
        rng.random((24, 28, 20)).astype(np.float32), 0.125, "RAS", name="atlas"
    )
    sample = Volume.from_array(
        (rng.random((18, 22, 16)) * 1000).astype(np.uint16), (0.2, 0.15, 0.15), "PIR", name="sample"
    )
    labels = atlas.with_data(rng.integers(0, 5, atlas.shape).astype(np.uint32) * 100)
    return atlas, sample, labels


def test_both_kinds_are_results_and_say_what_they_are():
    linear, deformable = _results()
    assert isinstance(linear, Result) and isinstance(deformable, Result)
    assert (linear.method, linear.deformable, linear.linear_stage) == ("rigid", False, linear)
    assert (deformable.method, deformable.deformable) == ("rigid+syn", True)
    assert deformable.linear_stage is linear


def test_points_images_and_labels_agree_between_the_two_kinds():
    linear, deformable = _results()
    atlas, sample, labels = _volumes()
    points = sample.index_to_world(np.argwhere(np.ones((3, 3, 3))) * 4.0 + 2.0)
    np.testing.assert_allclose(deformable.to_atlas(points), linear.to_atlas(points), atol=1e-9)
    back = atlas.index_to_world(np.argwhere(np.ones((3, 3, 3))) * 5.0 + 3.0)
    np.testing.assert_allclose(deformable.to_moving(back), linear.to_moving(back), atol=1e-9)

    a, b = linear.warp(atlas, sample), deformable.warp(atlas, sample)
    assert a.name == b.name == "sample (in atlas)" and a.data.dtype == b.data.dtype == np.uint16
    assert np.abs(a.data.astype(int) - b.data.astype(int)).max() <= 1  # rounding only

    on_a = linear.warp_to_sample(labels, sample)
    on_b = apply.map_volume(deformable, labels, "sample", atlas, sample, True)
    np.testing.assert_array_equal(on_a.data, on_b.data)  # nearest neighbour, ids kept
    assert set(np.unique(on_a.data)) <= set(np.unique(labels.data))
    assert on_a.metadata["labels"] and on_a.shape == sample.shape


def test_the_jacobian_and_deformation_come_from_the_protocol():
    linear, deformable = _results()
    atlas, _, _ = _volumes()
    assert linear.deformation(atlas) is None
    np.testing.assert_array_equal(deformable.deformation(atlas), 0.0)
    jac_a, uniform_a = qc.jacobian_of(linear, atlas)
    jac_b, uniform_b = qc.jacobian_of(deformable, atlas)
    assert uniform_a and not uniform_b
    np.testing.assert_allclose(jac_a, 1.0, atol=1e-6)  # rigid: volume kept
    np.testing.assert_allclose(jac_b, 1.0, atol=1e-5)


def test_a_warp_asked_twice_is_computed_once_and_never_shared(monkeypatch):
    from napari_ccf_align.core.register import result as result_module

    for last in result_module._last_warps.values():  # this test's grids are small
        monkeypatch.setattr(last, "min_voxels", 0)

    rng = np.random.default_rng(5)
    labels = Volume.from_array(rng.integers(0, 9, (12, 10, 8)).astype(np.uint16), (0.1,) * 3, "RAS")
    grid = Volume.from_array(
        np.zeros((9, 9, 9), np.uint8), (0.12,) * 3, "RAS", origin_mm=(0.1,) * 3
    )
    turn = frames.RigidParams((5.0, 0.0, 0.0)).matrix()
    calls = []
    real = result_module.sampling.fused.warp

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    result_module.sampling.fused.warp = counted
    try:
        first = result_module.warp_through(labels, grid, "sample", turn, np.eye(4), labels=True)
        again = result_module.warp_through(labels, grid, "sample", turn, np.eye(4), labels=True)
        assert len(calls) == 1  # the second came from memory
        np.testing.assert_array_equal(first.data, again.data)
        assert first.data is not again.data  # each caller gets its own array to paint
        labels.data[0, 0, 0] += 1  # painted in place: computed again
        result_module.warp_through(labels, grid, "sample", turn, np.eye(4), labels=True)
        assert len(calls) == 2
        image = labels.with_data(labels.data.astype(np.float32))  # an image too, linear
        once = result_module.warp_through(image, grid, "atlas", turn, np.eye(4))
        twice = result_module.warp_through(image, grid, "atlas", turn, np.eye(4))
        assert len(calls) == 3 and once.data is not twice.data
        np.testing.assert_array_equal(once.data, twice.data)
        result_module.warp_through(labels, grid, "sample", turn, np.eye(4), labels=True)
        assert len(calls) == 3  # the label warp kept beside it
    finally:
        result_module.sampling.fused.warp = real
