"""The fused warp kernel equals SimpleITK's Resample through the same files' transforms."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from napari_ccf_align.core import frames
from napari_ccf_align.core.io import transforms
from napari_ccf_align.core.register import rigid, syn
from napari_ccf_align.core.volume import Volume, to_sitk


def _smooth_field(grid: Volume, amplitude_mm: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    idx = np.indices(grid.shape, dtype=float)
    out = np.zeros((*grid.shape, 3), np.float32)
    for c in range(3):
        phase = rng.uniform(0, 2 * np.pi, 3)
        out[..., c] = amplitude_mm * np.prod(
            [np.sin(idx[k] / grid.shape[k] * np.pi * 2 + phase[k]) for k in range(3)], axis=0
        )
    return out


def _case(seed: int, dtype):
    """A random affine + smooth field SyN result, an anisotropic PIR sample, an atlas grid."""
    rng = np.random.default_rng(seed)
    matrix = frames.RigidParams(
        tuple(rng.uniform(-15, 15, 3)), tuple(rng.uniform(-0.3, 0.3, 3)), (1.2, 1.4, 1.0)
    ).matrix()
    matrix[:3, :3] = matrix[:3, :3] @ np.diag(rng.uniform(0.92, 1.08, 3))  # an affine stage
    atlas = Volume.from_array(
        (rng.random((26, 30, 22)) * 200).astype(np.float32), 0.1, "RAS", name="atlas"
    )
    field_grid = Volume.grid((9, 11, 8), np.diag([0.3, 0.3, 0.3, 1.0]), "SyN grid", "RAS")
    forward = _smooth_field(field_grid, 0.15, seed)
    backward = -forward
    result = syn.SynResult(
        field_grid, forward, backward, matrix, (), 0.0, 0.0, "", syn.SynSettings()
    )
    data = rng.random((20, 16, 24)) * (4000 if np.dtype(dtype).kind in "ui" else 1.0)
    sample = Volume.from_array(
        data.astype(dtype), (0.14, 0.17, 0.12), "PIR", origin_mm=(0.2, 2.6, 2.3), name="sample"
    )
    return result, atlas, sample


def _sitk_resample(image: Volume, grid: Volume, transform, labels: bool) -> np.ndarray:
    interpolator = sitk.sitkNearestNeighbor if labels else sitk.sitkLinear
    out = sitk.Resample(to_sitk(image), to_sitk(grid), transform, interpolator, 0.0)
    return sitk.GetArrayFromImage(out)


def _composite_to_sample(result, tmp_path):
    """atlas -> sample as SimpleITK reads our files: rigid.tfm after the forward field."""
    linear = transforms.read_transform(
        transforms.write_transform(transforms.linear_transform(result.matrix), tmp_path / "l.tfm")
    )
    warp, grid = transforms.read_field(
        transforms.write_field(result.forward, result.grid, tmp_path / "w.nii.gz")
    )
    field = sitk.DisplacementFieldTransform(transforms.field_image(warp, grid))
    return sitk.CompositeTransform([linear, field])


def _composite_to_atlas(result, tmp_path):
    linear = transforms.linear_transform(result.matrix)
    inverse, grid = transforms.read_field(
        transforms.write_field(result.backward, result.grid, tmp_path / "iw.nii.gz")
    )
    field = sitk.DisplacementFieldTransform(transforms.field_image(inverse, grid))
    return sitk.CompositeTransform([field, linear.GetInverse()])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_warp_to_the_atlas_equals_simpleitk_with_the_saved_files(seed, tmp_path):
    result, atlas, sample = _case(seed, np.float32)
    ours = result.warp(atlas, sample).data
    theirs = _sitk_resample(sample, atlas, _composite_to_sample(result, tmp_path), False)
    assert np.count_nonzero(ours) > 0.2 * ours.size  # the case is not empty
    np.testing.assert_allclose(ours, theirs, atol=1e-4)  # float precision


def test_uint16_warp_differs_from_simpleitk_by_rounding_only(tmp_path):
    result, atlas, sample = _case(3, np.uint16)
    ours = result.warp(atlas, sample).data
    assert ours.dtype == np.uint16
    floats = sample.with_data(sample.data.astype(np.float32))
    theirs = _sitk_resample(floats, atlas, _composite_to_sample(result, tmp_path), False)
    assert np.abs(ours.astype(float) - theirs).max() <= 0.5 + 1e-3  # rounded to nearest


def test_labels_to_the_sample_equal_simpleitk_except_on_ties(tmp_path):
    result, atlas, sample = _case(4, np.float32)
    rng = np.random.default_rng(4)
    labels = atlas.with_data((rng.integers(0, 7, atlas.shape) * 1000 + 5).astype(np.uint32))
    ours = result.warp_to_sample(labels, sample).data
    theirs = _sitk_resample(labels, sample, _composite_to_atlas(result, tmp_path), True)
    assert ours.dtype == np.uint32 and set(np.unique(ours)) <= set(np.unique(labels.data)) | {0}
    assert np.count_nonzero(ours) > 0.2 * ours.size
    assert np.mean(ours == theirs) > 0.999  # ties of nearest neighbour only


def test_image_to_the_sample_and_linear_results_match_simpleitk(tmp_path):
    result, atlas, sample = _case(5, np.float32)
    ours = result.warp_to_sample(atlas, sample, labels=False).data
    theirs = _sitk_resample(atlas, sample, _composite_to_atlas(result, tmp_path), False)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)
    linear = rigid.RigidResult(
        transforms.linear_transform(result.matrix), result.matrix, None, (), "", 0, 0,
        rigid.RigidSettings(),
    )  # fmt: skip
    labels = atlas.with_data((atlas.data > 100).astype(np.uint8) * 3)
    on_sample = linear.warp_to_sample(labels, sample).data
    expected = _sitk_resample(labels, sample, linear.transform.GetInverse(), True)
    assert np.mean(on_sample == expected) > 0.999


def test_chunks_and_threads_do_not_change_the_output(monkeypatch):
    from napari_ccf_align.core.sampling import fused

    result, atlas, sample = _case(6, np.uint16)
    whole = result.warp(atlas, sample).data
    monkeypatch.setattr(fused, "_CHUNK_VOXELS", 500)  # many small chunks over threads
    np.testing.assert_array_equal(result.warp(atlas, sample).data, whole)
    monkeypatch.setattr(fused, "_threads", lambda: 1)
    np.testing.assert_array_equal(result.warp(atlas, sample).data, whole)
