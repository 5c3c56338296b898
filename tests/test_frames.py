"""The coordinate contract: orientation codes, LPS/ITK conversion, rigid parameters."""

from __future__ import annotations

import numpy as np
import pytest
import SimpleITK as sitk

from napari_ccf_align.core import frames
from napari_ccf_align.core.errors import AffineError, OrientationError, VoxelSizeError

ALL_CODES = frames.all_orientation_codes()


def test_there_are_48_codes_and_each_round_trips():
    assert len(ALL_CODES) == 48 == len(set(ALL_CODES))
    for code in ALL_CODES:
        affine = frames.orientation_affine(code, (0.1, 0.2, 0.3))
        assert frames.affine_orientation(affine) == code
        assert frames.parse_orientation(frames.to_brainglobe(code), "brainglobe") == code


def test_brainglobe_asl_is_nibabel_pir():
    assert frames.parse_orientation("asl", "brainglobe") == "PIR"
    assert frames.to_brainglobe("PIR") == "asl"


def test_pir_affine_sends_axes_where_the_letters_say():
    a = frames.orientation_affine("PIR", 0.1)
    # array axis 0 increases towards Posterior: world A decreases
    np.testing.assert_allclose(frames.apply_affine(a, [1, 0, 0]), [0, -0.1, 0])
    np.testing.assert_allclose(frames.apply_affine(a, [0, 1, 0]), [0, 0, -0.1])
    np.testing.assert_allclose(frames.apply_affine(a, [0, 0, 1]), [0.1, 0, 0])


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("RRA", "same anatomical axis twice"),
        ("XYZ", "not a direction"),
        ("RA", "has 2 letters"),
        ("RASL", "has 4 letters"),
        ("", "No orientation code"),
        ("LR S", "has 4 letters"),
    ],
)
def test_bad_codes_are_rejected_with_a_sentence(code, words):
    with pytest.raises(OrientationError, match=words):
        frames.parse_orientation(code, "nibabel")


def test_style_must_be_stated():
    with pytest.raises(OrientationError, match="Unknown orientation style"):
        frames.parse_orientation("RAS", "auto")


@pytest.mark.parametrize(
    "size", [0, -1, float("nan"), float("inf"), (1, 2), (1, 2, 3, 4), "abc", (0.1, 0, 0.1)]
)
def test_bad_voxel_sizes_are_rejected(size):
    with pytest.raises(VoxelSizeError, match="Voxel size"):
        frames.check_voxel_size(size, 3)


def test_itk_geometry_round_trip_and_shear_rejected():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    a = np.eye(4)
    a[:3, :3] = q @ np.diag([0.1, 0.2, 0.3])
    a[:3, 3] = [1, 2, 3]
    origin, spacing, direction = frames.itk_geometry(a)
    np.testing.assert_allclose(frames.affine_from_itk(origin, spacing, direction), a, atol=1e-12)
    # ITK spacing is in reversed (x, y, z) order
    np.testing.assert_allclose(spacing, [0.3, 0.2, 0.1])
    sheared = a.copy()
    sheared[0, 1] += 0.05
    with pytest.raises(AffineError, match="shear"):
        frames.itk_geometry(sheared)


def test_rotation_angles_invert_rotation_matrix():
    rng = np.random.default_rng(1)
    for _ in range(100):
        angles = rng.uniform(-180, 180, 3)
        angles[1] = rng.uniform(-89, 89)
        r = frames.rotation_matrix(angles)
        np.testing.assert_allclose(frames.rotation_matrix(frames.rotation_angles(r)), r, atol=1e-9)


def test_positive_rotation_about_r_turns_anterior_towards_superior():
    r = frames.rotation_matrix((90, 0, 0))
    np.testing.assert_allclose(r @ [0, 1, 0], [0, 0, 1], atol=1e-12)


def test_rigid_params_round_trip_through_sitk_and_json():
    p = frames.RigidParams((12.5, -20, 33), (1.5, -0.25, 2), (5.7, 6.6, 4.0))
    tx = p.sitk_transform()
    assert isinstance(tx, sitk.Euler3DTransform)
    q = frames.RigidParams.from_sitk(tx)
    np.testing.assert_allclose(q.rotation_deg, p.rotation_deg, atol=1e-9)
    np.testing.assert_allclose(q.translation_mm, p.translation_mm, atol=1e-9)
    np.testing.assert_allclose(q.centre_mm, p.centre_mm, atol=1e-9)
    assert frames.RigidParams.from_dict(p.to_dict()) == p


def test_sitk_transform_read_back_from_a_file(tmp_path):
    p = frames.RigidParams((5, 10, -15), (0.5, 1, -1), (1, 2, 3))
    sitk.WriteTransform(p.sitk_transform(), str(tmp_path / "t.tfm"))
    q = frames.RigidParams.from_sitk(sitk.ReadTransform(str(tmp_path / "t.tfm")), p.centre_mm)
    np.testing.assert_allclose(q.matrix(), p.matrix(), atol=1e-9)


def test_flipped_params_give_an_affine_sitk_transform_with_the_same_map():
    p = frames.RigidParams((10, 0, 0), (0, 0, 1), (1, 1, 1), (False, True, False))
    assert p.has_flip
    tx = p.sitk_transform()
    assert isinstance(tx, sitk.AffineTransform)
    q = frames.RigidParams.from_sitk(tx)
    np.testing.assert_allclose(q.matrix(), p.matrix(), atol=1e-9)


def test_scaling_transform_is_not_rigid():
    with pytest.raises(ValueError, match="not rigid"):
        frames.RigidParams.from_matrix(np.diag([1.1, 1, 1, 1]))
