"""Files: nibabel as the oracle for NIfTI, TIFF metadata, and one sentence per bad file."""

from __future__ import annotations

import gzip
import os

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk
import tifffile

from napari_ccf_align.core import frames, io
from napari_ccf_align.core.errors import (
    DimensionError,
    EmptyVolumeError,
    MissingFileError,
    MissingVoxelSizeError,
    OrientationError,
    UnreadableFileError,
    WriteError,
)
from napari_ccf_align.core.io import volumes as io_volumes
from napari_ccf_align.core.volume import Volume


def _oblique_affine(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if np.linalg.det(q) < 0:
        q[:, 0] *= -1
    a = np.eye(4)
    a[:3, :3] = q @ np.diag(rng.uniform(0.05, 0.5, 3))
    a[:3, 3] = rng.uniform(-10, 10, 3)
    return a


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_nibabel_written_files_land_where_nibabel_says(tmp_path, seed, suffix):
    affine = _oblique_affine(seed) if seed else np.diag([0.1, 0.2, 0.3, 1.0])
    data = np.random.default_rng(seed).random((5, 6, 7)).astype(np.float32)
    path = tmp_path / f"x{suffix}"
    nib.save(nib.Nifti1Image(data, affine), path)
    v = io.read_volume(path)
    # SimpleITK hands arrays over in C order: our axes are nibabel's (i, j, k) reversed.
    idx = np.array([[0, 0, 0], [4, 5, 6], [1, 2, 3]], float)
    expected = nib.affines.apply_affine(affine, idx)
    np.testing.assert_allclose(v.index_to_world(idx[:, ::-1]), expected, atol=1e-5)
    np.testing.assert_array_equal(v.data, data.T)


@pytest.mark.parametrize("seed", range(4))
def test_files_we_write_read_back_through_nibabel(tmp_path, seed):
    affine = _oblique_affine(seed)
    v = Volume(np.random.default_rng(seed).random((5, 6, 7)).astype(np.float32), affine)
    img = nib.load(io.write_volume(v, tmp_path / "y.nii.gz"))
    idx = np.array([[0, 0, 0], [4, 5, 6], [1, 2, 3]], float)
    got = nib.affines.apply_affine(img.affine, idx[:, ::-1])
    np.testing.assert_allclose(got, v.index_to_world(idx), atol=1e-5)
    np.testing.assert_array_equal(np.asarray(img.dataobj), v.data.T)


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    v = Volume.from_array(np.ones((3, 3, 3)), 0.1, "RAS")
    io.write_volume(v, tmp_path / "a.nrrd")
    assert [p.name for p in tmp_path.iterdir()] == ["a.nrrd"]
    with pytest.raises(WriteError, match="cannot write"):
        io.write_volume(v, tmp_path / "a.xyz")
    assert [p.name for p in tmp_path.iterdir()] == ["a.nrrd"]
    with pytest.raises(WriteError, match="does not exist"):
        io.write_volume(v, tmp_path / "missing" / "a.nrrd")


def test_generic_nrrd_read_keeps_the_header_meaning(shared_data):
    # The raw Allen header claims LPS with spacing 100; a generic read keeps that meaning.
    v = io.read_volume(shared_data / "average_template_100.nrrd")
    assert v.shape == (114, 80, 132)  # numpy order of ITK's (x, y, z) = (132, 80, 114)
    np.testing.assert_allclose(v.spacing, 100.0)
    # numpy axes are ITK's (z, y, x), which the header calls (S, P, L)
    assert v.orientation == "SPL"
    # Stated truth: NRRD sizes (AP, DV, ML) = PIR, so the C-order array is (ML, DV, AP) = RIP.
    t = io.read_volume(
        shared_data / "average_template_100.nrrd", voxel_size_um=100, orientation="RIP"
    )
    np.testing.assert_allclose(t.spacing, 0.1)


def test_tiff_needs_orientation_and_voxel_size(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.ones((4, 5, 6), np.uint16), photometric="minisblack")
    with pytest.raises(OrientationError, match="TIFF, which carries no trustworthy orientation"):
        io.read_volume(path)
    with pytest.raises(MissingVoxelSizeError, match="no voxel size"):
        io.read_volume(path, orientation="PIR")
    v = io.read_volume(path, orientation="asl", style="brainglobe", voxel_size_um=(20, 10, 10))
    assert v.orientation == "PIR"
    np.testing.assert_allclose(v.spacing, [0.02, 0.01, 0.01])


def test_imagej_tiff_voxel_size_is_read(tmp_path):
    path = tmp_path / "ij.tif"
    tifffile.imwrite(
        path,
        np.ones((4, 5, 6), np.uint16),
        imagej=True,
        resolution=(1 / 2.5, 1 / 2.5),
        metadata={"spacing": 5.0, "unit": "um", "axes": "ZYX"},
    )
    np.testing.assert_allclose(io.tiff_voxel_size_um(path), [5.0, 2.5, 2.5])
    v = io.read_volume(path, orientation="SAR")
    np.testing.assert_allclose(v.spacing, [0.005, 0.0025, 0.0025])


def test_missing_file(tmp_path):
    with pytest.raises(MissingFileError, match="No file at"):
        io.read_volume(tmp_path / "nope.nii.gz")


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz", ".mha", ".tif"])
def test_garbage_file_is_unreadable(tmp_path, suffix):
    path = tmp_path / f"bad{suffix}"
    path.write_bytes(b"this is not an image at all\n" * 10)
    with pytest.raises(UnreadableFileError, match=r"bad\..*(not really|could not be read)"):
        io.read_volume(path, orientation="RAS", voxel_size_um=10)


@pytest.mark.parametrize("suffix", [".nrrd", ".nii.gz"])
def test_truncated_file_is_unreadable(tmp_path, suffix):
    v = Volume.from_array(np.random.default_rng(0).random((30, 30, 30)), 0.1, "RAS")
    whole = io.write_volume(v, tmp_path / f"whole{suffix}").read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(UnreadableFileError, match=r"cut\..* truncated"):  # the problem named
        io.read_volume(cut)


def test_unknown_format(tmp_path):
    path = tmp_path / "x.png"
    path.write_bytes(b"\x89PNG")
    with pytest.raises(UnreadableFileError, match="not a format"):
        io.read_volume(path)


def test_four_d_file_and_nan_file_are_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((2, 3, 4, 5), np.float32), np.eye(4)), tmp_path / "4d.nii")
    with pytest.raises(DimensionError, match="2D or 3D"):
        io.read_volume(tmp_path / "4d.nii")
    # (ITK's NIfTI reader turns NaN into 0, so the all-NaN case is checked with MHA.)
    sitk.WriteImage(
        sitk.GetImageFromArray(np.full((2, 3, 4), np.nan, np.float32)), str(tmp_path / "n.mha")
    )
    with pytest.raises(EmptyVolumeError, match="only NaN"):
        io.read_volume(tmp_path / "n.mha")


def test_gz_suffix_detection():
    assert io.suffix_of("a/b.NII.GZ") == ".nii.gz"
    assert io.suffix_of("x.ome.tif") == ".ome.tif"
    assert frames.parse_orientation("pir", "nibabel") == "PIR"
    assert gzip  # used by truncated-file tests through the writers


def test_tiff_with_three_slices_is_not_taken_for_rgb(tmp_path):
    v = Volume.from_array(np.arange(90, dtype=np.uint16).reshape(3, 5, 6), 0.01, "SAR")
    back = io.read_volume(io.write_volume(v, tmp_path / "three.tif"))
    np.testing.assert_array_equal(back.data, v.data)
    np.testing.assert_allclose(back.affine, v.affine)


def test_rgb_and_multichannel_tiffs_are_refused(tmp_path):
    tifffile.imwrite(tmp_path / "rgb.tif", np.zeros((20, 30, 3), np.uint8), photometric="rgb")
    with pytest.raises(DimensionError, match="colour, channel or time axes"):
        io.read_volume(tmp_path / "rgb.tif", orientation="RA", voxel_size_um=1)
    tifffile.imwrite(
        tmp_path / "ch.tif",
        np.zeros((4, 2, 5, 6), np.uint16),
        imagej=True,
        metadata={"axes": "ZCYX"},
    )
    with pytest.raises(DimensionError, match="C=2"):
        io.read_volume(tmp_path / "ch.tif", orientation="RAS", voxel_size_um=1)


def test_non_numeric_array_is_refused():
    with pytest.raises(DimensionError, match="not a grey-value image"):
        Volume.from_array(np.array([["a", "b"], ["c", "d"]]), 0.1, "RA")


def _small() -> Volume:
    data = np.random.default_rng(1).random((12, 14, 10)).astype(np.float32)
    return Volume.from_array(data, (0.05, 0.04, 0.03), "PIR", name="small")


@pytest.mark.parametrize("suffix", [".nii", ".nrrd", ".mha"])
def test_truncated_uncompressed_file_says_so_instead_of_zeros(tmp_path, suffix):
    whole = io.write_volume(_small(), tmp_path / f"whole{suffix}", compress=False).read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(whole[: len(whole) - 1000])
    with pytest.raises(UnreadableFileError, match=r"is truncated: it holds .* of the 6,720 data"):
        io.read_volume(cut)


def test_mhd_is_written_with_its_raw_and_a_missing_raw_is_named(tmp_path):
    path = io.write_volume(_small(), tmp_path / "pair.mhd", compress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pair.mhd", "pair.raw"]
    np.testing.assert_array_equal(io.read_volume(path).data, _small().data)
    (tmp_path / "pair.raw").unlink()
    with pytest.raises(UnreadableFileError, match=r"data file pair\.raw, which is missing"):
        io.read_volume(path)


def test_a_write_that_silently_truncates_keeps_the_previous_file(tmp_path, monkeypatch):
    # ITK's writers report a full disk on stderr and return: the file is cut short
    path = io.write_volume(_small(), tmp_path / "keep.nii", compress=False)
    before = path.read_bytes()
    real = sitk.WriteImage

    def disk_full(image, name, *args):
        real(image, name, *args)
        with open(name, "r+b") as f:
            f.truncate(4096)

    monkeypatch.setattr(io_volumes.sitk, "WriteImage", disk_full)
    bigger = Volume.from_array(np.ones((20, 20, 20), np.float32), 0.1, "RAS", name="new")
    with pytest.raises(WriteError, match=r"incomplete .* may be full.*previous file.* kept"):
        io.write_volume(bigger, path, compress=False)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.nii"]  # no temporary file left


def test_a_nii_gz_write_that_is_short_inside_its_gzip_keeps_the_previous_file(
    tmp_path, monkeypatch
):
    # NIfTI's writer on a nearly full disk: "wrote only 0 of N bytes", a whole but short
    # gzip stream, and a normal return
    path = io.write_volume(_small(), tmp_path / "keep.nii.gz")
    before = path.read_bytes()
    real = sitk.WriteImage

    def short(image, name, *args):
        real(image, name, *args)
        with gzip.open(name, "rb") as f:
            content = f.read()
        with gzip.open(name, "wb") as f:
            f.write(content[: int(len(content) * 0.6)])

    monkeypatch.setattr(io_volumes.sitk, "WriteImage", short)
    bigger = Volume.from_array(np.ones((20, 20, 20), np.float32), 0.1, "RAS", name="new")
    with pytest.raises(WriteError, match=r"incomplete .*previous file.* kept"):
        io.write_volume(bigger, path)
    assert path.read_bytes() == before


def test_a_nii_gz_short_inside_its_gzip_stream_is_refused_on_read(tmp_path):
    whole = io.write_volume(
        Volume.from_array(np.ones((20, 20, 20), np.float32), 0.1, "RAS", name="v"),
        tmp_path / "whole.nii.gz",
    )
    with gzip.open(whole, "rb") as f:
        content = f.read()
    cut = tmp_path / "cut.nii.gz"
    with gzip.open(cut, "wb") as f:
        f.write(content[: int(len(content) * 0.6)])
    with pytest.raises(UnreadableFileError, match=r"cut.nii.gz is truncated: it holds"):
        io.read_volume(cut)
    assert io.read_volume(whole).shape == (20, 20, 20)


def test_partials_of_killed_writes_are_removed_and_live_ones_kept(tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    stale = tmp_path / f".brain.{int(dead.stdout)}.abc123.partial.nii.gz"
    stale.write_bytes(b"half")
    live = tmp_path / f".other.{os.getppid()}.def456.partial.nii.gz"  # a running process
    live.write_bytes(b"in progress")
    io.write_volume(_small(), tmp_path / "brain.nii.gz")
    assert not stale.exists() and live.exists()


def test_written_files_get_the_users_umask(tmp_path, monkeypatch):
    monkeypatch.setattr(io_volumes, "_UMASK", 0o027)
    path = io.write_volume(_small(), tmp_path / "perm.nii.gz")
    assert path.stat().st_mode & 0o777 == 0o640
    monkeypatch.setattr(io_volumes, "_UMASK", 0o022)
    path = io.write_volume(_small(), tmp_path / "perm.nii.gz")
    assert path.stat().st_mode & 0o777 == 0o644


def test_absurd_geometry_and_empty_axes_are_refused(tmp_path):
    from napari_ccf_align.core.errors import VoxelSizeError

    image = sitk.GetImageFromArray(np.ones((4, 5, 6), np.float32))
    image.SetSpacing((5000.0, 1.0, 1.0))  # 5 m voxels: a unit mistake
    sitk.WriteImage(image, str(tmp_path / "huge.nrrd"))
    with pytest.raises(VoxelSizeError, match="outside 1 nm to 1 m"):
        io.read_volume(tmp_path / "huge.nrrd")
    with pytest.raises(VoxelSizeError, match="outside 1 nm to 1 m"):
        Volume.from_array(np.ones((3, 3, 3)), 1e-9, "RAS")  # 1 pm in mm
    with pytest.raises(VoxelSizeError, match="outside 1 nm to 1 m"):
        io.read_volume(tmp_path / "huge.nrrd", voxel_size_um=(1e9, 1, 1), orientation="RAS")
    tifffile.imwrite(tmp_path / "empty.tif", np.zeros((0, 4, 4), np.uint8))
    with pytest.raises((DimensionError, UnreadableFileError)):
        io.read_volume(tmp_path / "empty.tif", orientation="RAS", voxel_size_um=10)
    with pytest.raises(DimensionError, match="empty axis"):
        Volume.from_array(np.ones((3, 0, 3)), 0.1, "RAS")


@pytest.mark.parametrize("kind", ["absolute", "parent", "symlink"])
def test_a_header_whose_data_file_leaves_its_folder_is_refused(tmp_path, kind):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    secret = outside / "secret.raw"
    secret.write_bytes(bytes(range(256)) * 4)  # 1024 bytes: a 16 x 8 x 8 uint8 volume
    folder = tmp_path / "sample"
    folder.mkdir()
    name = {"absolute": str(secret), "parent": "../elsewhere/secret.raw", "symlink": "link.raw"}[
        kind
    ]
    if kind == "symlink":
        (folder / "link.raw").symlink_to(secret)
    header = folder / "brain.mhd"
    header.write_text(
        "ObjectType = Image\nNDims = 3\nDimSize = 8 8 16\nElementType = MET_UCHAR\n"
        f"ElementSpacing = 1 1 1\nElementDataFile = {name}\n"
    )
    with pytest.raises(
        UnreadableFileError, match=r"brain.mhd names its data file .* not a file in its own folder"
    ):
        io.read_volume(header, orientation="RAS", voxel_size_um=10)
    # the same data beside its header reads as usual
    (folder / "data.raw").write_bytes(secret.read_bytes())
    header.write_text(
        header.read_text().replace(f"ElementDataFile = {name}", "ElementDataFile = data.raw")
    )
    assert io.read_volume(header, orientation="RAS", voxel_size_um=10).shape == (16, 8, 8)


@pytest.mark.parametrize("ending", [".nii.gz", ".nii", ".nrrd", ".tif"])
def test_a_write_onto_a_really_full_disk_keeps_the_previous_file(small_disk, ending):
    previous = io.write_volume(_small(), small_disk / f"keep{ending}")
    before = previous.read_bytes()
    noise = np.random.default_rng(0).random((64, 64, 64), np.float32)  # 1 MB, incompressible
    big = Volume.from_array(noise, 0.1, "RAS", name="big")
    with pytest.raises(WriteError, match=r"full|incomplete"):
        io.write_volume(big, previous)
    assert previous.read_bytes() == before
    assert [p.name for p in small_disk.iterdir()] == [previous.name]  # no temporary file left
