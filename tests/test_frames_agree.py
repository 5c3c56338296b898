"""One voxel, every path: napari affine, SimpleITK, DIPY and files put it in the same place.

Tolerances: 1e-6 mm for point maps; one voxel (the largest spacing) for resampling,
where the bright voxel's position is read off as the intensity centroid.
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from dipy.align.imaffine import AffineMap
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from napari.layers import Image

from napari_ccf_align.core import align, frames, io
from napari_ccf_align.core.volume import Volume, from_sitk, to_sitk

POINT_TOL_MM = 1e-6
SHAPE = (9, 11, 10)

angles = st.tuples(*[st.floats(-180, 180, allow_nan=False)] * 3)
vectors = st.tuples(*[st.floats(-3, 3, allow_nan=False)] * 3)
flips = st.tuples(st.booleans(), st.booleans(), st.booleans())
codes = st.sampled_from(frames.all_orientation_codes())
sizes = st.tuples(*[st.floats(0.05, 0.4, allow_nan=False)] * 3)
voxels = st.tuples(*[st.integers(2, s - 3) for s in SHAPE])

params_st = st.builds(frames.RigidParams, angles, vectors, vectors, flips)


def _moving(code, size, origin, voxel) -> Volume:
    data = np.zeros(SHAPE, np.float32)
    data[voxel] = 1000.0
    return Volume.from_array(data, size, code, origin_mm=origin, name="moving")


def _fixed_grid_around(point_mm: np.ndarray, spacing: float) -> Volume:
    """An RAS grid of ``spacing`` mm whose centre is ``point_mm``."""
    shape = (15, 15, 15)
    origin = point_mm - spacing * (np.asarray(shape) - 1) / 2
    return Volume.from_array(np.zeros(shape, np.float32), spacing, "RAS", origin_mm=origin)


def _centroid_world(volume: Volume, data: np.ndarray) -> np.ndarray:
    w = np.clip(np.asarray(data, float), 0, None)
    assert w.sum() > 0, "the bright voxel did not reach the output grid"
    idx = np.indices(w.shape).reshape(3, -1).T
    return volume.index_to_world((idx * w.reshape(-1, 1)).sum(0) / w.sum())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=params_st, code=codes, size=sizes, origin=vectors, voxel=voxels)
def test_napari_sitk_dipy_agree_on_points(params, code, size, origin, voxel):
    moving = _moving(code, size, origin, voxel)
    p_moving = moving.index_to_world(np.asarray(voxel, float))
    p_aligned = frames.apply_affine(params.matrix(), p_moving)

    layer = Image(moving.data, affine=params.matrix() @ moving.affine)
    np.testing.assert_allclose(layer.data_to_world(voxel), p_aligned, atol=POINT_TOL_MM)

    tx = params.sitk_transform()
    back = np.asarray(tx.TransformPoint(tuple(frames.ras_to_lps(p_aligned).tolist())))
    np.testing.assert_allclose(frames.lps_to_ras(back), p_moving, atol=POINT_TOL_MM)

    image = to_sitk(moving)
    idx_itk = image.TransformPhysicalPointToContinuousIndex(tuple(frames.ras_to_lps(p_moving)))
    np.testing.assert_allclose(idx_itk[::-1], voxel, atol=1e-6)

    np.testing.assert_allclose(
        frames.apply_affine(params.dipy_prealign(), p_aligned), p_moving, atol=POINT_TOL_MM
    )


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(params=params_st, code=codes, size=sizes, origin=vectors, voxel=voxels)
def test_sitk_and_dipy_resampling_move_the_bright_voxel_to_the_same_place(
    params, code, size, origin, voxel
):
    moving = _moving(code, size, origin, voxel)
    p_aligned = frames.apply_affine(
        params.matrix(), moving.index_to_world(np.asarray(voxel, float))
    )
    spacing = float(max(size))
    fixed = _fixed_grid_around(p_aligned, spacing)

    out = sitk.Resample(to_sitk(moving), to_sitk(fixed), params.sitk_transform(), sitk.sitkLinear)
    got_sitk = _centroid_world(fixed, sitk.GetArrayFromImage(out))
    assert np.linalg.norm(got_sitk - p_aligned) <= spacing

    amap = AffineMap(
        params.dipy_prealign(),
        domain_grid_shape=fixed.shape,
        domain_grid2world=fixed.affine,
        codomain_grid_shape=moving.shape,
        codomain_grid2world=moving.affine,
    )
    got_dipy = _centroid_world(fixed, amap.transform(moving.data, interpolation="linear"))
    assert np.linalg.norm(got_dipy - p_aligned) <= spacing
    assert np.linalg.norm(got_dipy - got_sitk) <= spacing

    # the previews' sampler (and the Register result's): SimpleITK's values, to rounding
    ours = align.preview(fixed, moving, align.AlignmentState(params)).data
    got_ours = _centroid_world(fixed, ours)
    assert np.linalg.norm(got_ours - got_sitk) <= 1e-4  # mm; float32 rounding only


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(code=codes, size=sizes, origin=vectors, voxel=voxels, params=params_st)
def test_file_round_trip_keeps_every_voxel_in_place(
    tmp_path_factory, code, size, origin, voxel, params
):
    # A rotated volume (oblique affine) for the ITK formats; an axis-aligned one for TIFF.
    moving = _moving(code, size, origin, voxel)
    oblique = moving.transformed(params.matrix()) if not params.has_flip else moving
    folder = tmp_path_factory.mktemp("rt")
    idx = np.array([voxel, (0, 0, 0), np.asarray(SHAPE) - 1], float)
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha"):
        back = io.read_volume(io.write_volume(oblique, folder / f"v{suffix}"))
        np.testing.assert_allclose(back.index_to_world(idx), oblique.index_to_world(idx), atol=1e-5)
        np.testing.assert_array_equal(back.data, oblique.data)
    back = io.read_volume(io.write_volume(moving, folder / "v.tif"))
    np.testing.assert_allclose(back.index_to_world(idx), moving.index_to_world(idx), atol=1e-9)


def test_sitk_image_round_trip_2d():
    vol = Volume.from_array(np.arange(12.0).reshape(3, 4), (0.2, 0.1), "SR")
    assert vol.world_axes == "RS"
    back = from_sitk(to_sitk(vol), world_axes=vol.world_axes)
    np.testing.assert_allclose(back.affine, vol.affine)
